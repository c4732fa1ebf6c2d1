/* relocations.c - the x86-64 relocation types the patch and the build
 * deal in, sorted into kinds that mean the same on every architecture. */
#include <elf.h>

#include "arch/arch.h"

enum hp_relocation_kind relocation_kind(unsigned type)
{
	switch (type) {
	case R_X86_64_RELATIVE:
		return HP_RELOCATION_RELATIVE;
	case R_X86_64_64:
		return HP_RELOCATION_ABSOLUTE64;
	case R_X86_64_32:
	case R_X86_64_32S:
		return HP_RELOCATION_ABSOLUTE32;
	case R_X86_64_GLOB_DAT:
		return HP_RELOCATION_GLOBAL_DATA;
	case R_X86_64_JUMP_SLOT:
		return HP_RELOCATION_JUMP_SLOT;
	case R_X86_64_DTPMOD64:
		return HP_RELOCATION_TLS_MODULE;
	case R_X86_64_DTPOFF64:
		return HP_RELOCATION_TLS_OFFSET;
	case R_X86_64_TPOFF64:
		return HP_RELOCATION_TLS_STATIC;
	default:
		return HP_RELOCATION_OTHER;
	}
}

/* Variant II: the block lies below the thread pointer. */
uint64_t relocation_tls_static_value(uint64_t offset, uint64_t static_offset)
{
	return offset - static_offset;
}
