/* trampoline.c - what an x86-64 trampoline slot holds (where its page
 * goes: ../trampoline_gap.c).  A 5-byte jump reaches ±2 GiB; a patch loaded
 * by dlopen usually lands much farther from the code it replaces, so the jump goes to a slot in a page we
 * map near that code, and the slot jumps on with a 64-bit address:
 *
 *     slot + 0:  ff 25 00 00 00 00    jmp *0(%rip)
 *     slot + 6:  <8-byte replacement address>
 *     slot + 14: cc cc                (padding to 16 bytes)
 *
 * Pure; mapping and filling happen in
 * apply.c through the borrowed thread and /proc/PID/mem. */
#include <string.h>

#include "arch/arch.h"

void trampoline_encode_slot(uint64_t to, unsigned char slot[HP_TRAMPOLINE_SLOT])
{
	static const unsigned char jump_indirect[6] = { 0xff, 0x25, 0, 0, 0, 0 };

	memset(slot, 0xcc, HP_TRAMPOLINE_SLOT);
	memcpy(slot, jump_indirect, sizeof(jump_indirect));
	memcpy(slot + sizeof(jump_indirect), &to, sizeof(to));
}
