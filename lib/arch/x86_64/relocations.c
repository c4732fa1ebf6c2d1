/* relocations.c - the x86-64 relocation types the patch and the build
 * deal in, sorted into kinds that mean the same on every architecture. */
#include <elf.h>
#include <stdint.h>
#include <string.h>

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
	case R_X86_64_TPOFF32:
		return HP_RELOCATION_TLS_STATIC_FIELD;
	case R_X86_64_GOTTPOFF:
		return HP_RELOCATION_TLS_STATIC_GOT;
	case R_X86_64_NONE:
		return HP_RELOCATION_NONE;
	default:
		return HP_RELOCATION_OTHER;
	}
}

/* Variant II: the block lies below the thread pointer. */
uint64_t relocation_tls_static_value(uint64_t offset, uint64_t static_offset)
{
	return offset - static_offset;
}

unsigned relocation_type(enum hp_relocation_kind kind)
{
	return kind == HP_RELOCATION_ABSOLUTE64 ? R_X86_64_64 : R_X86_64_NONE;
}

size_t relocation_field_size(unsigned type)
{
	return type == R_X86_64_TPOFF32 ? sizeof(int32_t) : 0;
}

/* R_X86_64_TPOFF32: a 32-bit displacement or immediate (%fs:x@tpoff), which
 * the processor sign-extends; little-endian. */
bool relocation_tls_static_field(unsigned type, uint64_t value, unsigned char field[8])
{
	int64_t offset = (int64_t)value;
	int32_t narrow = (int32_t)offset;

	if (type != R_X86_64_TPOFF32 || offset != narrow)
		return false;
	memcpy(field, &narrow, sizeof(narrow));
	return true;
}
