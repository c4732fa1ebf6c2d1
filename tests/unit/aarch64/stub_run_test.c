/* stub_run_test.c - arm64's stub page run for real, in this process
 * (built for arm64 only): the call stub calls a
 * function and the restore code's rt_sigreturn, reading a frame of
 * restore_frame.c, lands at the pc with every register, the SP, the FP/SIMD
 * state and the signal mask of the frame; a return trampoline, reached by a
 * return, goes on through its slot with x0 and x8 intact (what a borrowed
 * or moved thread does by itself when hotpatch is gone); and the jumps and
 * trampoline slots a patched function goes through. */
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include "check.h"
#include "arch/arch.h"

#if !defined(__aarch64__)
#error "stub_run_test runs arm64 code: the Makefile builds it only for arm64"
#else

#define STACK_SIZE (64 << 10)

static jmp_buf back;
/* Written by the assembly below: global, and hidden for its adrp. */
__attribute__((visibility("hidden"))) uint64_t landed_registers[31], landed_sp;
__attribute__((visibility("hidden"))) unsigned char landed_vector[16];
static uint64_t called_with[6];
static volatile int called;
static unsigned char stack_area[STACK_SIZE] __attribute__((aligned(16)));

void landing(void);
void landed(void);
void called_function(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t, uint64_t);
uint64_t returns_through(uint64_t trampoline, uint64_t value);
uint64_t after_trampoline(void);

/* The frame's pc: stores x0-x30 and sp into landed_registers/landed_sp,
 * and v7 into landed_vector, then goes on to landed() on our own stack. */
__asm__(".text\n"
	".globl landing\n"
	".type landing, %function\n"
	"landing:\n"
	"	stp x16, x17, [sp, #-16]!\n"
	"	adrp x16, landed_registers\n"
	"	add x16, x16, :lo12:landed_registers\n"
	"	stp x0, x1, [x16, #0]\n"
	"	stp x2, x3, [x16, #16]\n"
	"	stp x4, x5, [x16, #32]\n"
	"	stp x6, x7, [x16, #48]\n"
	"	stp x8, x9, [x16, #64]\n"
	"	stp x10, x11, [x16, #80]\n"
	"	stp x12, x13, [x16, #96]\n"
	"	stp x14, x15, [x16, #112]\n"
	"	ldp x0, x1, [sp], #16\n"
	"	stp x0, x1, [x16, #128]\n"
	"	stp x18, x19, [x16, #144]\n"
	"	stp x20, x21, [x16, #160]\n"
	"	stp x22, x23, [x16, #176]\n"
	"	stp x24, x25, [x16, #192]\n"
	"	stp x26, x27, [x16, #208]\n"
	"	stp x28, x29, [x16, #224]\n"
	"	str x30, [x16, #240]\n"
	"	mov x0, sp\n"
	"	adrp x1, landed_sp\n"
	"	str x0, [x1, :lo12:landed_sp]\n"
	"	adrp x1, landed_vector\n"
	"	str q7, [x1, :lo12:landed_vector]\n"
	"	b landed\n"
	".size landing, .-landing\n");

void landed(void)
{
	longjmp(back, 1);
}

void called_function(uint64_t a, uint64_t b, uint64_t c, uint64_t d, uint64_t e, uint64_t f)
{
	uint64_t arguments[6] = { a, b, c, d, e, f };

	memcpy(called_with, arguments, sizeof(arguments));
	called = 1;
}

/* Calls the stub at `entry` with the SP at `frame`, x16 = `function` and
 * the arguments; never returns (the stub's restore lands at the frame's pc). */
static void enter_stub(uint64_t entry, uint64_t frame, uint64_t function)
{
	register uint64_t x0 __asm__("x0") = 1, x1 __asm__("x1") = 2, x2 __asm__("x2") = 3;
	register uint64_t x3 __asm__("x3") = 4, x4 __asm__("x4") = 5, x5 __asm__("x5") = 6;
	register uint64_t x16 __asm__("x16") = function, x17 __asm__("x17") = entry;
	register uint64_t x9 __asm__("x9") = frame;

	__asm__ volatile("mov sp, x9\n\tbr x17"
			 :
			 : "r"(x0), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5), "r"(x16),
			   "r"(x17), "r"(x9)
			 : "memory");
	__builtin_unreachable();
}

static void test_call_and_restore(unsigned char *page)
{
	struct hp_registers registers;
	unsigned char fpsimd[HP_FPSIMD_SIZE] = { 0 };
	struct hp_extended_state extended = { fpsimd, sizeof(fpsimd), NULL, 0 };
	sigset_t usr1, before, after;
	uint64_t mask = 0;
	struct hp_thread_image thread = { &registers, &extended, 0 };
	struct hp_frame_image frame = { 0 };
	bool out_of_memory = false;
	uint64_t sp = ((uint64_t)(uintptr_t)(stack_area + STACK_SIZE) - 256) & ~(uint64_t)15;

	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	sigprocmask(SIG_SETMASK, NULL, &before);
	memcpy(&mask, &before, sizeof(mask));
	mask |= UINT64_C(1) << (SIGUSR1 - 1);
	thread.signal_mask = mask;
	memset(&registers, 0, sizeof(registers));
	for (unsigned i = 0; i < 31; i++)
		registers.user.regs[i] = UINT64_C(0x5a5a000000000000) + i;
	registers.user.sp = sp;
	registers.user.pc = (uint64_t)(uintptr_t)landing;
	registers.user.pstate = 0;
	memset(fpsimd + 7 * 16, 0x77, 16);	/* v7 */
	CHECK(restore_frame_build(&thread, 0, &frame, &out_of_memory), "a frame");
	if (!frame.bytes)
		return;
	memcpy((void *)(uintptr_t)frame.address, frame.bytes, frame.length);
	if (setjmp(back) == 0)
		enter_stub((uint64_t)(uintptr_t)page + HP_STUB_CALL, frame.address,
			   (uint64_t)(uintptr_t)called_function);
	sigprocmask(SIG_SETMASK, NULL, &after);
	CHECK(called && called_with[0] == 1 && called_with[5] == 6,
	      "the call stub called x16 with x0-x5");
	CHECK(landed_registers[0] == UINT64_C(0x5a5a000000000000) &&
		      landed_registers[19] == UINT64_C(0x5a5a000000000013) &&
		      landed_registers[30] == UINT64_C(0x5a5a00000000001e),
	      "rt_sigreturn put back x0-x30");
	CHECK(landed_registers[16] == UINT64_C(0x5a5a000000000010), "and x16");
	CHECK(landed_sp == sp, "and the SP");
	CHECK(landed_vector[0] == 0x77 && landed_vector[15] == 0x77, "and v7");
	CHECK(sigismember(&after, SIGUSR1) == 1, "and the frame's signal mask");
	sigprocmask(SIG_SETMASK, &before, NULL);
	free(frame.bytes);
}

/* returns_through(trampoline, value): calls a function whose return
 * address is the trampoline (as thread_move.c rewrites it); the slot
 * sends it on to after_trampoline, which returns x0 + x8 to our caller. */
__asm__(".text\n"
	".globl returns_through\n"
	".type returns_through, %function\n"
	"returns_through:\n"
	"	stp x29, x30, [sp, #-16]!\n"
	"	mov x30, x0\n"		/* the function returns into the trampoline */
	"	mov x0, x1\n"
	"	mov x8, #1000\n"
	"	ret\n"			/* 'the function' is empty: it returns */
	".size returns_through, .-returns_through\n"
	".globl after_trampoline\n"
	".type after_trampoline, %function\n"
	"after_trampoline:\n"
	"	add x0, x0, x8\n"
	"	ldp x29, x30, [sp], #16\n"
	"	ret\n"
	".size after_trampoline, .-after_trampoline\n");

static void test_return_trampoline(unsigned char *page)
{
	uint64_t trampoline = (uint64_t)(uintptr_t)page + 0xc00, slot = (uint64_t)(uintptr_t)page + 0xe00;
	uint64_t target = (uint64_t)(uintptr_t)after_trampoline;

	stub_return_trampoline(trampoline, slot, page + 0xc00, 0x20);
	memcpy(page + 0xe00, &target, sizeof(target));
	__builtin___clear_cache((char *)page, (char *)page + HP_PAGE_SIZE);
	CHECK(returns_through(trampoline, 7) == 1007,
	      "through the trampoline's getpid and slot, x0 and x8 intact");
}

static int forty_three(void)
{
	return 43;
}

/* The jumps a patched function starts with, and a trampoline slot, run:
 * each reached by a call returns what its target returns. */
static void test_jumps(unsigned char *page)
{
	typedef int (*function)(void);
	uint64_t base = (uint64_t)(uintptr_t)page, target = (uint64_t)(uintptr_t)forty_three;
	static const uint32_t forty_two[] = { 0x52800540, 0xd65f03c0 };	/* mov w0, #42; ret */
	bool encoded;

	memcpy(page + 0x300, forty_two, sizeof(forty_two));
	encoded = code_encode_jump(base + 0x200, base + 0x300, page + 0x200);
	memcpy(page + 0x500, &target, sizeof(target));
	encoded &= code_encode_indirect_jump(base + 0x400, base + 0x500, page + 0x400);
	trampoline_encode_slot(target, page + 0x600);
	encoded &= code_encode_jump(base + 0x700, base + 0x600, page + 0x700);
	__builtin___clear_cache((char *)page, (char *)page + HP_PAGE_SIZE);
	CHECK(encoded, "the jumps encode");
	if (!encoded)
		return;
	CHECK(((function)(uintptr_t)(base + 0x200))() == 42, "b reaches its target");
	CHECK(((function)(uintptr_t)(base + 0x400))() == 43, "ldr x16 + br x16 go through the pointer");
	CHECK(((function)(uintptr_t)(base + 0x600))() == 43, "a trampoline slot jumps on");
	CHECK(((function)(uintptr_t)(base + 0x700))() == 43, "b to a slot, then on");
}

int main(void)
{
	unsigned char *page = mmap(NULL, HP_PAGE_SIZE, PROT_READ | PROT_WRITE | PROT_EXEC,
				   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (page == MAP_FAILED) {
		CHECK(false, "an executable page");
		return check_report();
	}
	stub_code_bytes(page);
	__builtin___clear_cache((char *)page, (char *)page + HP_STUB_CODE_SIZE);
	test_call_and_restore(page);
	test_return_trampoline(page);
	test_jumps(page);
	munmap(page, HP_PAGE_SIZE);
	return check_report();
}
#endif
