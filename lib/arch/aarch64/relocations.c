/* relocations.c - the arm64 relocation types the patch and the build deal
 * in, sorted into kinds that mean the same on every architecture. */
#include <elf.h>
#include <stdint.h>
#include <string.h>

#include "arch/arch.h"

enum hp_relocation_kind relocation_kind(unsigned type)
{
	switch (type) {
	case R_AARCH64_RELATIVE:
		return HP_RELOCATION_RELATIVE;
	case R_AARCH64_ABS64:
		return HP_RELOCATION_ABSOLUTE64;
	case R_AARCH64_ABS32:
		return HP_RELOCATION_ABSOLUTE32;
	case R_AARCH64_GLOB_DAT:
		return HP_RELOCATION_GLOBAL_DATA;
	case R_AARCH64_JUMP_SLOT:
		return HP_RELOCATION_JUMP_SLOT;
	case R_AARCH64_TLS_DTPMOD:
		return HP_RELOCATION_TLS_MODULE;
	case R_AARCH64_TLS_DTPREL:
		return HP_RELOCATION_TLS_OFFSET;
	case R_AARCH64_TLS_TPREL:
		return HP_RELOCATION_TLS_STATIC;
	/* Initial-exec: adrp + ldr of a GOT entry the link makes (TPREL). */
	case R_AARCH64_TLSIE_ADR_GOTTPREL_PAGE21:
	case R_AARCH64_TLSIE_LD64_GOTTPREL_LO12_NC:
		return HP_RELOCATION_TLS_STATIC_GOT;
	/* bl and b: 26 bits, +-128 MiB; the link sends a call to the binary
	 * through a PLT entry (x16 and x17, which the ABI gives veneers). */
	case R_AARCH64_CALL26:
	case R_AARCH64_JUMP26:
		return HP_RELOCATION_CALL;
	case R_AARCH64_NONE:
		return HP_RELOCATION_NONE;
	/* Local-exec (R_AARCH64_TLSLE_*) puts the offset into add/movz
	 * immediates, split over two instructions: no field a patch can
	 * carry whole, so `hotpatch build` refuses it (OTHER) and asks for
	 * code that reaches the variable otherwise. */
	default:
		return HP_RELOCATION_OTHER;
	}
}

/* Variant I: the thread pointer points at the 16-byte TCB, and the
 * module's block lies above it; l_tls_offset counts from the pointer. */
uint64_t relocation_tls_static_value(uint64_t offset, uint64_t static_offset)
{
	return static_offset + offset;
}

unsigned relocation_type(enum hp_relocation_kind kind)
{
	return kind == HP_RELOCATION_ABSOLUTE64 ? R_AARCH64_ABS64 : R_AARCH64_NONE;
}

size_t relocation_field_size(unsigned type)
{
	(void)type;
	return 0;	/* no TLS_STATIC_FIELD type on arm64 (above) */
}

bool relocation_tls_static_field(unsigned type, uint64_t value, unsigned char field[8])
{
	(void)type;
	(void)value;
	(void)field;
	return false;
}
