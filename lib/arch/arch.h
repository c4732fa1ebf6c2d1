/* arch/arch.h - what differs between processor architectures: jump planning and encoding, trampolines. */
#ifndef HOTPATCH_ARCH_ARCH_H
#define HOTPATCH_ARCH_ARCH_H

#include "common/base.h"
#include "common/proc_maps.h"

/* The jumps we write: e9 + rel32, or ff 25 + disp32 (jmp *disp32(%rip)). */
#define HP_JUMP_SIZE 5
#define HP_INDIRECT_JUMP_SIZE 6
/* Room kept for saved bytes; a jump never needs more than HP_JUMP_SIZE. */
#define HP_SAVED_MAX 8

/* ---- code_plan.c: where the jump goes, checked with capstone ---- */
struct hp_code_plan {
	uint64_t jump_address;	/* the function start, or just past endbr64 */
	unsigned char saved[HP_SAVED_MAX];	/* bytes the jump may overwrite */
	size_t length;		/* bytes that may be overwritten: 6, or 5 */
};

/* Decides where a jump can go in the function whose bytes are `code`
 * (`size` bytes at `address`); on refusal writes the reason to `why`. */
int code_plan_function(const unsigned char *code, size_t size, uint64_t address,
		       struct hp_code_plan *plan, char *why, size_t why_size) HP_MUST_CHECK;
/* Finds the first syscall instruction in `code` (libc's syscall()). */
int code_find_syscall(const unsigned char *code, size_t size, uint64_t address,
		      uint64_t *found) HP_MUST_CHECK;
/* Encodes `jmp rel32` from `from` to `to`; false when out of reach. */
bool code_encode_jump(uint64_t from, uint64_t to, unsigned char jump[HP_JUMP_SIZE]);
/* Encodes `jmp *disp32(%rip)` reading its target at `pointer`. */
bool code_encode_indirect_jump(uint64_t from, uint64_t pointer,
			       unsigned char jump[HP_INDIRECT_JUMP_SIZE]);
/* Decodes a jmp rel32 at `from`; false when `bytes` are not one. */
bool code_decode_jump(uint64_t from, const unsigned char bytes[HP_JUMP_SIZE], uint64_t *to);

/* ---- trampoline.c: near pages for jumps that cannot reach the patch ---- */
/* Finds a free page-aligned gap of `size` bytes whose every byte is within
 * a rel32 jump of every address in [low, high). Pure. */
bool trampoline_find_gap(const struct hp_maps *maps, uint64_t low, uint64_t high,
			 uint64_t size, uint64_t *address);
/* Encodes `jmp *0(%rip); .quad to` into a 16-byte slot. */
void trampoline_encode_slot(uint64_t to, unsigned char slot[16]);
#define HP_TRAMPOLINE_SLOT 16
/* Where in a slot the target address is, for an indirect jump reading it. */
#define HP_TRAMPOLINE_POINTER 6

#endif
