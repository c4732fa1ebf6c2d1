/* trampoline.c - what an arm64 trampoline slot holds (where its page
 * goes: ../trampoline_gap.c).  A `b` reaches ±128 MiB; a patch loaded by
 * dlopen may land farther from the code it replaces, so the jump goes to a slot in a page
 * we map near that code, and the slot jumps on with a 64-bit address:
 *
 *     slot + 0:  ldr x16, .+8      (58000050)
 *     slot + 4:  br x16            (d61f0200)
 *     slot + 8:  <8-byte replacement address, 8-aligned as slots are 16>
 *
 * `br x16` lands on a replacement's `bti c` or `paciasp`, which BTI accepts
 * for a branch through x16.  Pure; mapping and filling happen in apply.c. */
#include <string.h>

#include "arch/arch.h"

void trampoline_encode_slot(uint64_t to, unsigned char slot[HP_TRAMPOLINE_SLOT])
{
	static const uint32_t code[2] = { 0x58000050, 0xd61f0200 };

	_Static_assert(sizeof(code) == HP_TRAMPOLINE_POINTER, "the address follows the code");
	memcpy(slot, code, sizeof(code));
	memcpy(slot + HP_TRAMPOLINE_POINTER, &to, sizeof(to));
}
