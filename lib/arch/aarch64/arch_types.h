/* arch/aarch64/arch_types.h - arm64's sizes and register file, for arch.h
 * alone: the rest of the engine sees them through arch.h's neutral names.
 * Free of arm64 system headers, so that the unit tests of the pure parts
 * build on any host (registers.c checks the layouts against them). */
#ifndef HOTPATCH_ARCH_AARCH64_ARCH_TYPES_H
#define HOTPATCH_ARCH_AARCH64_ARCH_TYPES_H

#include <elf.h>
#include <stdbool.h>
#include <stdint.h>

/* The ELF machine of the objects we patch and build, and its name. */
#define HP_ELF_MACHINE EM_AARCH64
#define HP_ARCH_NAME "arm64"
/* Capstone's name for this processor (arch/disassembler.c). */
#define HP_CAPSTONE_ARCH CS_ARCH_ARM64
#define HP_CAPSTONE_MODE CS_MODE_ARM

/* The jumps we write (code_plan.c): `b imm26` (±128 MiB), or
 * `ldr x16, literal; br x16` reading the address at a slot within ±1 MiB. */
#define HP_JUMP_SIZE 4
#define HP_INDIRECT_JUMP_SIZE 8

/* A trampoline slot: `ldr x16, .+8; br x16; .quad to`, the address at +8. */
#define HP_TRAMPOLINE_SLOT 16

/* trampoline_gap.c: a `b`'s reach, kept a little under 128 MiB, and the
 * user addresses (48-bit) a trampoline page may take. */
#define HP_GAP_REACH ((uint64_t)0x07ff0000)
#define HP_USER_LOWEST ((uint64_t)0x10000)
#define HP_USER_HIGHEST ((uint64_t)0xfffffffff000)
#define HP_TRAMPOLINE_POINTER 8

/* The code at the start of the stub page (stub.c draws it); the sync
 * points are the pc after each sync `svc`. */
#define HP_STUB_CALL 0x00	/* call the function, then sync and restore */
#define HP_STUB_SYSCALL 0x20	/* the system call, then sync and restore */
#define HP_STUB_RESTORE 0x40	/* rt_sigreturn from the frame on the stack */
#define HP_STUB_CALL_SYNC (HP_STUB_CALL + 0x10)
#define HP_STUB_SYSCALL_SYNC (HP_STUB_SYSCALL + 0x10)
#define HP_STUB_CODE_SIZE 0x100

/* The system call the stubs and return trampolines stop at (getpid). */
#define HP_SYNC_SYSCALL 172

/* A return trampoline (stub.c): where it stops at its sync system call,
 * where its code ends, and how many words it pushes below the SP. */
#define HP_RETURN_TRAMPOLINE_SYNC 0x0c
#define HP_RETURN_TRAMPOLINE_LENGTH 0x18
#define HP_RETURN_TRAMPOLINE_PUSHED 2

/* Every register a call may change, one bit each (clobbers.c): x0-x18,
 * v0-v7, v16-v31. */
#define HP_CLOBBERED_ALL ((UINT64_C(1) << 43) - 1)

/* bl leaves the return address in x30, for the callee to store where it
 * likes: only its unwind information says where (thread_move.c). */
#define HP_RETURN_ADDRESS_BELOW_SP 0

/* How `hotpatch build` compiles a patch's code: every reference to the
 * binary an absolute 64-bit word of a literal pool (R_AARCH64_ABS64),
 * which apply can point anywhere. */
#define HP_BUILD_CODE_MODEL "-mcmodel=large"

/* libunwind's search of an .eh_frame_hdr table in the target. */
#define HP_UNWIND_SEARCH_TABLE _Uaarch64_dwarf_search_unwind_table

/* The instruction that enters the kernel (svc #0), and how long it is. */
#define HP_SYSCALL_INSTRUCTION_SIZE 4

/* A context that getcontext or swapcontext saved (glibc's ucontext_t on
 * arm64): no pointer into itself marks it, so the mark is the first
 * record of its __reserved area, glibc's fpsimd_context (FPSIMD_MAGIC and
 * its size), HP_CONTEXT_MARK bytes in; the HP_CONTEXT_HEAD bytes up to and
 * with the mark hold what saved_context_read needs. */
#define HP_CONTEXT_MARK 464
#define HP_CONTEXT_HEAD 472
#define HP_CONTEXT_MARK_WORD UINT64_C(0x0000021046508001)	/* magic, then 528 */

/* Whether the word at `at` may be such a mark. */
static inline bool saved_context_is_mark(uint64_t word, uint64_t at)
{
	(void)at;
	return word == HP_CONTEXT_MARK_WORD;
}

/* A stopped thread's general registers, as PTRACE_GETREGSET (NT_PRSTATUS)
 * gives them (struct user_pt_regs), with what arm64 keeps elsewhere: the
 * system-call number (NT_ARM_SYSTEM_CALL), which stop of a system call
 * this is (PTRACE_GET_SYSCALL_INFO) and the first argument the kernel
 * keeps apart from x0 (orig_x0, from /proc/TID/syscall), needed to run
 * the call again. */
struct hp_registers {
	struct {
		uint64_t regs[31];
		uint64_t sp, pc, pstate;
	} user;
	uint64_t thread_pointer;	/* TPIDR_EL0 (NT_ARM_TLS) */
	int64_t syscall;		/* -1: not in a system call */
	uint8_t syscall_stop;		/* PTRACE_SYSCALL_INFO_ENTRY, _EXIT or 0 */
	bool first_argument_known;
	uint64_t first_argument;	/* orig_x0, when known */
	uint64_t code_pac_mask;		/* NT_ARM_PAC_MASK's insn_mask; 0: no PAC */
};

/* FP/SIMD state: NT_PRFPREG (v0-v31, fpsr, fpcr: struct user_fpsimd_state),
 * and the SVE registers (NT_ARM_SVE) when the processor has them. */
#define HP_FPSIMD_SIZE 528
struct hp_extended_state {
	unsigned char *bytes;		/* HP_FPSIMD_SIZE bytes when `size` is not 0 */
	size_t size;
	unsigned char *sve;
	size_t sve_size;
};

/* Gates (an apply without a global stop, transition.c) are x86-64's only
 * so far: HP_HAVE_GATES 0 keeps every arm64 apply on the global stop, and
 * gate.c's functions say no.  The sizes keep the neutral code compiling. */
#define HP_HAVE_GATES 0
#define HP_GATE_STORE_MANY 0xc0
#define HP_GATE_STORE_SIZE 16
/* No landings without gates. */
#define HP_LANDING_SIZE 16
/* One entry of the store list store_many reads: the block's address, the
 * 16 bytes it must hold, the 16 it gets. */
#define HP_GATE_STORE_ITEM 40
#define HP_GATE_FIRST 0x100
#define HP_GATE_SIZE 96
#define HP_GATE_DISPLACED_MAX 16
/* The most instructions a thread runs from inside a moved prologue out of its gate. */
#define HP_GATE_STEPS (HP_GATE_DISPLACED_MAX + 1)
#define HP_GATE_REWIND_BELOW 0x20
#define HP_GATE_REWIND_WORDS 5

#endif
