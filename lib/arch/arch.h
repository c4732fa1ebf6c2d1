/* arch/arch.h - everything that differs between processors, behind
 * neutral names: registers, system calls, the code we write into a target
 * (jumps, trampolines, stubs), relocation kinds, unwinding registers and
 * the disassembler, the build's register analysis.  The rest of the engine never names a register or an
 * opcode; a new architecture implements this header in lib/arch/NAME/. */
#ifndef HOTPATCH_ARCH_ARCH_H
#define HOTPATCH_ARCH_ARCH_H

#include <capstone/capstone.h>
#include <stdio.h>
#include <sys/types.h>

#include "common/base.h"
#include "common/proc_maps.h"

/* The processor compiled for; HP_ARCH_AARCH64 picks arm64 on any host, for
 * the unit tests of its pure parts (tests/unit/aarch64/). */
#if defined(__aarch64__) || defined(HP_ARCH_AARCH64)
#include "arch/aarch64/arch_types.h"
#elif defined(__x86_64__)
#include "arch/x86_64/arch_types.h"
#else
#error "hotpatch knows only x86-64 and arm64: see docs/ARCHITECTURE.md, adding an architecture"
#endif

/* Room kept for the bytes a jump overwrites, on every architecture (an
 * arm64 LDR+BR+literal is 16); the in-target record is laid out with it. */
#define HP_SAVED_MAX 16
_Static_assert(HP_JUMP_SIZE <= HP_SAVED_MAX && HP_INDIRECT_JUMP_SIZE <= HP_SAVED_MAX,
	       "a jump fits the saved bytes");

/* ---- code_plan.c: where the jump goes, checked with the disassembler ---- */
struct hp_code_plan {
	uint64_t jump_address;	/* the function start, or past a landing pad (endbr64) */
	unsigned char saved[HP_SAVED_MAX];	/* bytes the jump may overwrite */
	size_t length;		/* bytes that may be overwritten */
};

/* Decides where a jump can go in the function whose bytes are `code`
 * (`size` bytes at `address`); on refusal writes the reason to `why`. */
int code_plan_function(const unsigned char *code, size_t size, uint64_t address,
		       struct hp_code_plan *plan, char *why, size_t why_size) HP_MUST_CHECK;
/* Finds the first system-call instruction in `code` (libc's syscall()). */
int code_find_syscall(const unsigned char *code, size_t size, uint64_t address,
		      uint64_t *found) HP_MUST_CHECK;
/* Encodes a direct jump from `from` to `to`; false when out of reach. */
bool code_encode_jump(uint64_t from, uint64_t to, unsigned char jump[HP_JUMP_SIZE]);
/* Encodes a jump reading its target at `pointer`. */
bool code_encode_indirect_jump(uint64_t from, uint64_t pointer,
			       unsigned char jump[HP_INDIRECT_JUMP_SIZE]);
/* Decodes a direct jump at `from`; false when `bytes` are not one. */
bool code_decode_jump(uint64_t from, const unsigned char bytes[HP_JUMP_SIZE], uint64_t *to);
/* ---- disassembler.c ---- */
/* Capstone for this processor, details on: one handle for the whole
 * process, opened at the first call, never closed by its users. */
cs_err code_disassembler(csh *handle);

/* ---- frameless.c: code that needs no unwind information ---- */
/* Whether one function's `code` (`size` bytes at `address`) keeps its
 * caller's stack pointer, callee-saved registers and return address
 * wherever a thread stands in it: it returns, calls nothing, and no
 * instruction writes the stack pointer, a callee-saved register or the
 * link register (but to sign or authenticate it).  A frame there returns
 * to the link register's address (registers_leave_frameless).  arm64's
 * vDSO is such code and has no unwind information; on x86-64 (whose vDSO
 * has it, and whose return address is on the stack) it is always false. */
bool code_frameless(const unsigned char *code, size_t size, uint64_t address);
/* Whether the HP_CALL_STUB_SIZE bytes at a 16-byte boundary are a PLT
 * entry as GNU ld writes them for arm64 (adrp x16; ldr x17; add x16; br
 * x17): frameless code too, to which linkers give no unwind information.
 * Always false on x86-64, whose PLT has unwind information. */
#define HP_CALL_STUB_SIZE 16
bool code_is_call_stub(const unsigned char bytes[HP_CALL_STUB_SIZE]);

/* ---- return_sites.c: where suspended frames return into code ---- */
/* The return addresses of the calls in `code` (`size` bytes at `address`):
 * where a frame suspended in it (a coroutine's, a saved context's) comes
 * back.  Writes at most `capacity` (size / 2 + 1 always suffices), in
 * order; returns how many. */
size_t code_return_sites(const unsigned char *code, size_t size, uint64_t address,
			 uint64_t *sites, size_t capacity);

/* ---- saved_context.c: a context getcontext/swapcontext saved ---- */
struct hp_saved_context {
	uint64_t pc, sp;		/* where it resumes, and its stack pointer then */
	uint64_t stack, stack_size;	/* the stack makecontext gave it (uc_stack) */
};

/* Reads the context at `address` from `head`, its first HP_CONTEXT_HEAD
 * bytes; false when they are not a saved context (no mark).  Pure. */
bool saved_context_read(const unsigned char head[HP_CONTEXT_HEAD], uint64_t address,
			struct hp_saved_context *context);

/* ---- trampoline.c: near pages for jumps that cannot reach the patch ---- */
/* Finds a free page-aligned gap of `size` bytes whose every byte is within
 * a direct jump of every address in [low, high). Pure. */
bool trampoline_find_gap(const struct hp_maps *maps, uint64_t low, uint64_t high,
			 uint64_t size, uint64_t *address);
/* Encodes a jump to `to` through a 64-bit address at HP_TRAMPOLINE_POINTER
 * into a slot of HP_TRAMPOLINE_SLOT bytes. */
void trampoline_encode_slot(uint64_t to, unsigned char slot[HP_TRAMPOLINE_SLOT]);

/* ---- registers.c: a stopped thread's registers (PTRACE_GETREGSET) ---- */
/* Both return 0, or -1 with errno set, as ptrace does. */
int registers_read(pid_t tid, struct hp_registers *registers);
int registers_write(pid_t tid, const struct hp_registers *registers);
uint64_t registers_pc(const struct hp_registers *registers);
void registers_set_pc(struct hp_registers *registers, uint64_t pc);
uint64_t registers_sp(const struct hp_registers *registers);
void registers_set_sp(struct hp_registers *registers, uint64_t sp);
/* The thread pointer (TLS base): glibc keeps the thread's descriptor there,
 * at the top of the stack it allocated for the thread. */
uint64_t registers_thread_pointer(const struct hp_registers *registers);
/* What a function or a system call returned (at a system-call exit stop). */
uint64_t registers_return_value(const struct hp_registers *registers);
/* The system call the thread stopped in (entry or exit), or -1 if none. */
long registers_syscall(const struct hp_registers *registers);
/* At a system-call stop: true at the exit, false at the entry. */
bool registers_syscall_exited(const struct hp_registers *registers);
/* Forgets the system call the thread stopped in, so that the kernel does
 * not restart it when the thread runs on. */
void registers_forget_syscall(struct hp_registers *registers);
/* Sets the thread, stopped just after a system-call instruction, to run
 * system call `number` again from that instruction, with the arguments it
 * had. */
void registers_restart_syscall(struct hp_registers *registers, long number);
/* The system call whose EINTR a thread held at a signal stop still has in
 * its registers, when the kernel no longer says which call it was (arm64
 * forgets it before it stops the thread, x86-64 keeps it: -1 there); -1
 * when there is none. */
long registers_forgotten_syscall(const struct hp_registers *registers);
/* Gets what registers_restart_syscall() needs to run system call `number`
 * (the one the thread stopped in) again that its registers no longer hold:
 * arm64's first argument, whose register holds the result by now.  False
 * when it cannot: then the call is not to be run again. */
bool registers_recall_arguments(pid_t tid, struct hp_registers *registers, long number);
/* At a system-call entry stop: makes the kernel run `number`, with the
 * arguments in the registers, whatever call the thread entered. */
void registers_set_entered_syscall(struct hp_registers *registers, long number);
/* Whether the stub's restore code gives a thread these registers with all
 * they go on with: arm64's is rt_sigreturn, which empties the kernel's
 * restart block, so restart_syscall would find nothing to carry on from
 * and fail with EINTR; then the tracer puts them back. */
bool registers_restored_by_stub(const struct hp_registers *registers);
/* Sets up system call `number` with its arguments, for the stub's (or
 * libc's) system-call instruction; no single-stepping. */
void registers_set_syscall(struct hp_registers *registers, long number,
			   const uint64_t arguments[6]);
/* Makes libc's syscall(), run from its system-call instruction with the SP
 * at a signal frame (signal_frame_build), return into `restorer`: arm64
 * returns through x30; on x86-64 the frame's first word is the return
 * address already. */
void registers_set_signal_return(struct hp_registers *registers, uint64_t restorer);
/* Sets up a call of `function` with its arguments, for the call stub. */
void registers_set_call(struct hp_registers *registers, uint64_t function,
			const uint64_t arguments[6]);
/* Makes the registers start a stub with the stack at `frame`: no system
 * call to restart, flags a called function may rely on cleared. */
void registers_enter_stub(struct hp_registers *registers, uint64_t frame);
/* What the call or system call of a stub returned, at its sync point. */
uint64_t registers_stub_result(const struct hp_registers *registers);
/* The register libunwind numbers `number`; false if there is none. */
bool registers_unwind_value(const struct hp_registers *registers, int number, uint64_t *value);
bool registers_set_unwind_value(struct hp_registers *registers, int number, uint64_t value);
/* libunwind's numbers of the registers a called function keeps. */
size_t registers_callee_saved(const int **numbers);
/* The registers a thread in frameless code (code_frameless) will have in
 * its caller: the same, at the return address the link register holds,
 * its pointer-authentication code taken off (arm64).  False where a
 * return address is not kept in a register (x86-64). */
bool registers_leave_frameless(struct hp_registers *registers);

/* ---- syscall_code.c: system-call instructions in the target's code ---- */
/* The HP_SYSCALL_INSTRUCTION_SIZE bytes before a stopped thread's pc are
 * a system-call instruction. */
bool code_is_syscall(const unsigned char bytes[HP_SYSCALL_INSTRUCTION_SIZE]);
/* libc's signal-return code (rt_sigreturn), searched for in its text. */
size_t code_signal_return(const unsigned char **bytes);
/* What libc's syscall() runs after its system-call instruction, when it
 * returns straight to its caller (then a frame put under its return takes
 * the thread to rt_sigreturn). */
size_t code_syscall_return(const unsigned char **bytes);

/* ---- extended_state.c: FPU/vector registers, saved and put back ---- */
/* Both return 0, or -1 with errno set. */
int extended_state_save(pid_t tid, struct hp_extended_state *state);
int extended_state_restore(pid_t tid, const struct hp_extended_state *state);
void extended_state_release(struct hp_extended_state *state);

/* ---- stub.c: the code of the stub page, and return trampolines ---- */
/* The code part of the stub page: the call and system-call stubs, each
 * ending at the sync system call, and the restore code that puts back the
 * frame of restore_frame.c. */
void stub_code_bytes(unsigned char code[HP_STUB_CODE_SIZE]);
/* A return trampoline at `trampoline`: stops at the sync system call, then
 * jumps on to the address held at `slot`, registers as they were. */
void stub_return_trampoline(uint64_t trampoline, uint64_t slot, unsigned char *code,
			    size_t size);
/* The thread stopped `offset` bytes into a return trampoline: puts in
 * *registers what it had pushed (`pushed`, the HP_RETURN_TRAMPOLINE_PUSHED
 * words below the SP it returned with, lowest first) and had not popped. */
void stub_return_trampoline_land(struct hp_registers *registers, uint64_t offset,
				 const uint64_t pushed[HP_RETURN_TRAMPOLINE_PUSHED]);
/* How many words a thread `offset` bytes into a return trampoline has
 * pushed (the unwinder pops them); -1 past its code. */
int stub_return_trampoline_pushed_words(uint64_t offset);

/* ---- gate.c: entries sent through gates, for applying without a global stop ---- */
/* Each thread runs either the old code or the new, as its byte in the
 * gate mapping's table says (transition.c tells the protocol). */
enum hp_gate_phase {
	HP_GATE_UNSEEN_ORIGINAL = 0,	/* a thread not in the table: written in as original */
	HP_GATE_ALL_NEW = 1,
	HP_GATE_ALL_ORIGINAL = 2,
	HP_GATE_UNSEEN_NEW = 3,		/* a thread not in the table: written in as new */
};
enum hp_gate_universe {
	HP_GATE_UNSEEN = 0,
	HP_GATE_NEW = 1,
	HP_GATE_ORIGINAL = 2,
	/* Original, until the thread's next gate makes it HP_GATE_ORIGINAL:
	 * hotpatch exchanges it for HP_GATE_NEW only if no gate ran since. */
	HP_GATE_HELD = 3,
	/* New, until the thread's next gate makes it HP_GATE_NEW: a revert
	 * exchanges it for HP_GATE_ORIGINAL only if no gate ran since. */
	HP_GATE_HELD_NEW = 4,
};
/* The most functions one gate mapping takes: its code pages are then
 * gate_code_length(HP_GATE_FUNCTIONS_MAX) bytes. */
#define HP_GATE_FUNCTIONS_MAX 1024
/* The length of a gate mapping's code, whole pages: the shared part, one
 * gate per function, then room for the list of their entries' stores
 * (gate_store_list).  Its table follows. */
static inline uint64_t gate_code_length(size_t count)
{
	uint64_t used = HP_GATE_FIRST + (uint64_t)count * (HP_GATE_SIZE + HP_GATE_STORE_ITEM);

	return (used + HP_PAGE_SIZE - 1) & ~(uint64_t)(HP_PAGE_SIZE - 1);
}
/* The gate of function `index` in the gate mapping at `page`. */
static inline uint64_t gate_address(uint64_t page, size_t index)
{
	return page + HP_GATE_FIRST + (uint64_t)index * HP_GATE_SIZE;
}
/* Where, in the gate mapping at `page` with `count` gates, the list that
 * the store_many routine reads goes: right after the last gate. */
static inline uint64_t gate_store_list(uint64_t page, size_t count)
{
	return gate_address(page, count);
}
/* The first HP_GATE_FIRST bytes of a gate mapping whose table, right after
 * its `code_length` bytes of code, holds `limit` bytes: phase 0, the store
 * and choose routines. */
void gate_page_code(uint64_t code_length, uint64_t limit, unsigned char code[HP_GATE_FIRST]);
/* Where the phase byte and the table of the mapping at `page` are. */
uint64_t gate_phase(uint64_t page);
uint64_t gate_table(uint64_t page, uint64_t code_length);
/* The gate at `gate` (in the mapping at `page`): jumps to `replacement`
 * for a thread of the new code, else runs the first `displaced_length`
 * bytes of the function, `displaced` (at `site`), moved, and jumps on past
 * them.  False when it cannot be built. */
bool gate_encode(uint64_t page, uint64_t gate, uint64_t replacement, const unsigned char *displaced,
		 size_t displaced_length, uint64_t site, unsigned char code[HP_GATE_SIZE]);
/* Whether the function's first instructions at `address` (`code`, `length`
 * bytes that may be overwritten) can run in a gate (moved), and take a
 * jump written by one aligned store: *displaced is how many bytes. */
bool gate_displaceable(const unsigned char *code, size_t length, uint64_t address,
		       size_t *displaced);
/* Whether the jump to a gate at `address` replaces one whole instruction
 * (the first is at least as long as the jump).  The jump goes in while
 * threads run: one between two of the instructions it covers would go on
 * inside the jump's bytes. */
bool gate_entry_whole(const unsigned char *code, size_t length, uint64_t address);
/* Instruction punning, for an entry whose first instruction is shorter
 * than the jump (push %rbp, endbr64, sub $N,%rsp): only its first byte
 * becomes the jump's opcode, and the bytes after it, never written, are
 * the jump's displacement.  A thread between two of the instructions they
 * hold runs on through bytes that did not change.  The jump lands where
 * those bytes say: *landing, where hotpatch maps a landing that jumps on
 * to the gate.  False when the first instruction cannot run in a gate or
 * the landing would be outside user space or across a page;
 * *displaced is the first instruction's length. */
bool gate_pun(const unsigned char *code, size_t length, uint64_t site, size_t *displaced,
	      uint64_t *landing);
/* A landing: jumps to `gate`. */
void gate_landing_encode(uint64_t gate, unsigned char code[HP_LANDING_SIZE]);
/* A page of landings and int3 fill, nothing else. */
bool gate_landing_page_is_ours(const unsigned char page[HP_PAGE_SIZE]);
/* The first HP_GATE_FIRST bytes of a page are a gate page's shared part
 * (its phase and limit aside). */
bool gate_page_is_gate(const unsigned char bytes[HP_GATE_FIRST]);
/* A thread stopped in the gate mapping at `page` before any of its
 * function ran: put back at that function's entry (`entries`, one per
 * gate), its registers as they were there.  `words`: the thread's stack
 * from SP - HP_GATE_REWIND_BELOW.  False, nothing changed, when it is
 * running a prologue or a jump on: it leaves by itself. */
bool gate_rewind(uint64_t page, const uint64_t *entries, size_t count,
		 const uint64_t words[HP_GATE_REWIND_WORDS], struct hp_registers *registers);
/* A thread at `pc` running on in one of the `count` gates of the mapping
 * at `page` (a moved prologue, or the jump back into the function), where
 * gate_rewind cannot put it back: it leaves that gate, [*start, *end),
 * within HP_GATE_STEPS instructions of its own, none a system call. */
bool gate_running_on(uint64_t page, size_t count, uint64_t pc, uint64_t *start, uint64_t *end);

/* ---- restore_frame.c: frames a thread restores itself from ---- */
/* What a thread had, for it to get back by itself. */
struct hp_thread_image {
	const struct hp_registers *registers;
	const struct hp_extended_state *extended;
	uint64_t signal_mask;
};

/* A frame image, to be written at `address` of the thread's stack. */
struct hp_frame_image {
	uint64_t address;
	unsigned char *bytes;	/* malloc'd */
	size_t length;
};

/* The frame the stub's restore code reads, below `below` (0: below the
 * thread's SP and red zone).  False when it cannot be built (no extended
 * state saved, or out of memory: *out_of_memory). */
bool restore_frame_build(const struct hp_thread_image *thread, uint64_t below,
			 struct hp_frame_image *frame, bool *out_of_memory);
/* A kernel signal frame for rt_sigreturn, under a return address pointing
 * at libc's signal-return code `restorer`: the frame's address is the SP
 * for a system call through libc's syscall(), whose return then takes the
 * thread back.  False when it cannot be built. */
bool signal_frame_build(const struct hp_thread_image *thread, uint64_t restorer,
			struct hp_frame_image *frame, bool *out_of_memory);

/* ---- clobbers.c: registers an instruction changes, where it goes ---- */
/* The registers a call may change that `instruction` writes, as bits of
 * HP_CLOBBERED_ALL (capstone detail on). */
uint64_t code_clobbered_by(csh handle, const cs_insn *instruction);

enum hp_flow {
	HP_FLOW_NEXT,		/* on to the next instruction (or a return) */
	HP_FLOW_JUMP,		/* a jump, conditional or not */
	HP_FLOW_CALL,
};

/* Where `instruction` goes; *direct when to an address it names, *target. */
enum hp_flow code_flow(csh handle, const cs_insn *instruction, bool *direct, uint64_t *target);

/* ---- thunk.c: the build's register-keeping thunk ---- */
/* Where a function's result comes back, for simple signatures. */
enum hp_result_register {
	HP_RESULT_NONE,
	HP_RESULT_INTEGER,	/* one general register */
	HP_RESULT_VECTOR,	/* one floating-point/vector register */
};

/* Writes, as a top-level __asm__ of C source, the function `name` that
 * calls `code` with the caller's arguments and keeps every register a
 * call may change, except the one `result` comes back in. */
void code_write_thunk(FILE *file, const char *name, const char *code,
		      enum hp_result_register result);

/* ---- relocations.c: the relocation types of this architecture ---- */
enum hp_relocation_kind {
	HP_RELOCATION_OTHER,
	HP_RELOCATION_RELATIVE,		/* load base + addend */
	HP_RELOCATION_ABSOLUTE64,	/* symbol + addend, 64 bits */
	HP_RELOCATION_ABSOLUTE32,	/* symbol + addend, 32 bits (zero or sign extended) */
	HP_RELOCATION_GLOBAL_DATA,	/* a GOT entry: the symbol's address */
	HP_RELOCATION_JUMP_SLOT,	/* a PLT's GOT entry: the function's address */
	HP_RELOCATION_TLS_MODULE,	/* a thread-local variable's module id */
	HP_RELOCATION_TLS_OFFSET,	/* its offset in the module's block */
	HP_RELOCATION_TLS_STATIC,	/* its offset from the thread pointer */
	/* In relocatable objects (hotpatch build): code that reaches a
	 * thread-local variable at its offset from the thread pointer, either
	 * held in the instruction (local-exec: a field no shared object can
	 * carry, which the patch records for apply to fill) or in a GOT entry
	 * the link makes (initial-exec: a TLS_STATIC place of the patch). */
	HP_RELOCATION_TLS_STATIC_FIELD,
	HP_RELOCATION_TLS_STATIC_GOT,
	/* In relocatable objects: a direct call or jump to a function (arm64's
	 * bl and b, which -mcmodel=large leaves direct), which the patch link
	 * routes through a PLT entry whose JUMP_SLOT place apply fills. */
	HP_RELOCATION_CALL,
	HP_RELOCATION_NONE,		/* nothing */
};

enum hp_relocation_kind relocation_kind(unsigned type);
/* What a TLS_STATIC place holds for a variable `offset` bytes into its
 * module's block, the block `static_offset` from the thread pointer as the
 * dynamic linker records it (l_tls_offset). */
uint64_t relocation_tls_static_value(uint64_t offset, uint64_t static_offset);
/* The type that has `kind` (ABSOLUTE64 or NONE), for relocations the
 * build writes. */
unsigned relocation_type(enum hp_relocation_kind kind);
/* How many bytes a place of the TLS_STATIC_FIELD `type` has, at most 8. */
size_t relocation_field_size(unsigned type);
/* The bytes such a place holds for `value` (what a TLS_STATIC place would
 * hold); false when the value does not fit the field. */
bool relocation_tls_static_field(unsigned type, uint64_t value, unsigned char field[8]);

#endif
