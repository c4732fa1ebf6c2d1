/* arch/x86_64/arch_types.h - x86-64's sizes and register file, for arch.h
 * alone: the rest of the engine sees them through arch.h's neutral names. */
#ifndef HOTPATCH_ARCH_X86_64_ARCH_TYPES_H
#define HOTPATCH_ARCH_X86_64_ARCH_TYPES_H

#include <elf.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/user.h>

/* The ELF machine of the objects we patch and build, and its name. */
#define HP_ELF_MACHINE EM_X86_64
#define HP_ARCH_NAME "x86-64"
/* Capstone's name for this processor (arch/disassembler.c). */
#define HP_CAPSTONE_ARCH CS_ARCH_X86
#define HP_CAPSTONE_MODE CS_MODE_64

/* The jumps we write: e9 + rel32, or ff 25 + disp32 (jmp *disp32(%rip)). */
#define HP_JUMP_SIZE 5
#define HP_INDIRECT_JUMP_SIZE 6

/* A trampoline slot: `jmp *0(%rip); .quad to`, the address at +6. */
#define HP_TRAMPOLINE_SLOT 16

/* trampoline_gap.c: a jump's reach, kept a little under 2 GiB, and the
 * user addresses a trampoline page may take. */
#define HP_GAP_REACH ((uint64_t)0x7fff0000)
#define HP_USER_LOWEST ((uint64_t)0x10000)
#define HP_USER_HIGHEST ((uint64_t)0x7ffffffff000)
#define HP_TRAMPOLINE_POINTER 6

/* The code at the start of the stub page (stub.c draws it). */
#define HP_STUB_CALL 0x00	/* call the function, then sync and restore */
#define HP_STUB_SYSCALL 0x20	/* the system call, then sync and restore */
#define HP_STUB_RESTORE 0x40	/* the frame on the stack put back */
#define HP_STUB_CALL_SYNC (HP_STUB_CALL + 0x0c)	/* just after the sync syscall */
#define HP_STUB_SYSCALL_SYNC (HP_STUB_SYSCALL + 0x0c)
#define HP_STUB_CODE_SIZE 0x100

/* The system call the stubs and return trampolines stop at (getpid). */
#define HP_SYNC_SYSCALL 39

/* A return trampoline (stub.c): where it stops at its sync system call,
 * where its code ends, and how many words it pushes below the SP. */
#define HP_RETURN_TRAMPOLINE_SYNC 0x0b
#define HP_RETURN_TRAMPOLINE_LENGTH 0x15
#define HP_RETURN_TRAMPOLINE_PUSHED 3

/* The gate mapping of an apply without a global stop (gate.c draws it): the
 * store routine's offset, where the gates begin, each gate's size, the most
 * prologue bytes a gate runs in its place. */
#define HP_HAVE_GATES 1
#define HP_GATE_STORE_MANY 0xc0
#define HP_GATE_STORE_SIZE 16
/* A landing of a punned entry's jump: jmp *0(%rip); .quad gate. */
#define HP_LANDING_SIZE 14
/* One entry of the store list store_many reads: the block's address, the
 * 16 bytes it must hold, the 16 it gets. */
#define HP_GATE_STORE_ITEM 40
#define HP_GATE_FIRST 0x100
#define HP_GATE_SIZE 96
#define HP_GATE_DISPLACED_MAX 16
/* The most instructions a thread runs from inside a moved prologue out of its gate. */
#define HP_GATE_STEPS (HP_GATE_DISPLACED_MAX + 1)
/* What gate_rewind reads of a thread's stack: words from SP - below. */
#define HP_GATE_REWIND_BELOW 0x20
#define HP_GATE_REWIND_WORDS 5

/* Every register a call may change, one bit each (clobbers.c). */
#define HP_CLOBBERED_ALL ((UINT64_C(1) << 25) - 1)

/* A call pushes the return address just below the SP the callee returns
 * with: where a moved thread's return is rewritten when libunwind does not
 * say (thread_move.c). */
#define HP_RETURN_ADDRESS_BELOW_SP 8

/* How `hotpatch build` compiles a patch's code: every reference to the
 * binary an absolute 64-bit one (a movabs), which apply can point anywhere. */
#define HP_BUILD_CODE_MODEL "-mcmodel=large"

/* libunwind's search of an .eh_frame_hdr table in the target. */
#define HP_UNWIND_SEARCH_TABLE _Ux86_64_dwarf_search_unwind_table

/* The instruction that enters the kernel, and how long it is. */
#define HP_SYSCALL_INSTRUCTION_SIZE 2

/* A context that getcontext or swapcontext saved (glibc's ucontext_t): its
 * fpregs member, HP_CONTEXT_MARK bytes in, points at its own __fpregs_mem,
 * HP_CONTEXT_MARK_DISTANCE bytes further on; the HP_CONTEXT_HEAD bytes up
 * to and with the mark hold what saved_context_read needs. */
#define HP_CONTEXT_MARK 224
#define HP_CONTEXT_MARK_DISTANCE 200
#define HP_CONTEXT_HEAD 232

/* Whether the word at `at` may be such a mark: it points past itself. */
static inline bool saved_context_is_mark(uint64_t word, uint64_t at)
{
	return word - at == HP_CONTEXT_MARK_DISTANCE;
}

/* A stopped thread's general registers, as PTRACE_GETREGSET (NT_PRSTATUS)
 * gives them. */
struct hp_registers {
	struct user_regs_struct user;
};

/* Extended (FPU/SSE/AVX) state: the XSAVE area, or the legacy FXSAVE one
 * when `size` is 0. */
struct hp_extended_state {
	unsigned char *bytes;
	size_t size;
};

#endif
