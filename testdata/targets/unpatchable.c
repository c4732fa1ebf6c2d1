/* unpatchable.c - two functions that cannot hold a 5-byte jump, written in
 * assembly so that their bytes are exactly these:
 *   loop_function  the loop label sits at offset 2, inside the first 5 bytes,
 *                  so a jump written there would be jumped into
 *   tiny_function  3 bytes long (its .size says so), placed right after
 *                  loop_function and right before tiny_neighbour with no
 *                  padding: a jump would run over tiny_neighbour
 * (each with call-frame information, so a stack stopped in them unwinds),
 * and compute(), an ordinary patchable function.  Output lines:
 *   ready pid=PID
 *   loop N -> R        R = N for N >= 1
 *   tiny -> 0 neighbour -> 7
 *   compute N -> R     original: R = 2 * N */
#include "target.h"

int loop_function(int limit);
int tiny_function(void);
int tiny_neighbour(void);

#if defined(__aarch64__)
/* arm64 fits a 4-byte `b` wherever its loop branches to, and no function
 * is shorter than one instruction: loop_function signs its return address
 * (paciasp, a no-op without pointer authentication), which hotpatch
 * refuses, and tiny_function's .size says 2 bytes (its code is 8). */
__asm__(".text\n"
	".p2align 4\n"
	".globl loop_function\n"
	".type loop_function, %function\n"
	"loop_function:\n"
	"	.cfi_startproc\n"
	"	paciasp\n"
	"	.cfi_negate_ra_state\n"
	"	mov w1, #0\n"
	"1:	add w1, w1, #1\n"
	"	cmp w1, w0\n"
	"	b.lt 1b\n"
	"	mov w0, w1\n"
	"	autiasp\n"
	"	.cfi_negate_ra_state\n"
	"	ret\n"
	"	.cfi_endproc\n"
	".size loop_function, .-loop_function\n"
	".globl tiny_function\n"
	".type tiny_function, %function\n"
	"tiny_function:\n"
	"	.cfi_startproc\n"
	"	mov w0, #0\n"
	"	ret\n"
	"	.cfi_endproc\n"
	".size tiny_function, 2\n"
	".globl tiny_neighbour\n"
	".type tiny_neighbour, %function\n"
	"tiny_neighbour:\n"
	"	.cfi_startproc\n"
	"	mov w0, #7\n"
	"	ret\n"
	"	.cfi_endproc\n"
	".size tiny_neighbour, .-tiny_neighbour\n");
#else
__asm__(".text\n"
	".p2align 4\n"
	".globl loop_function\n"
	".type loop_function, @function\n"
	"loop_function:\n"
	"	.cfi_startproc\n"
	"	xorl %eax, %eax\n"	/* 2 bytes */
	"1:	addl $1, %eax\n"	/* offset 2: the loop branches back here */
	"	cmpl %edi, %eax\n"
	"	jl 1b\n"
	"	ret\n"
	"	.cfi_endproc\n"
	".size loop_function, .-loop_function\n"
	".globl tiny_function\n"
	".type tiny_function, @function\n"
	"tiny_function:\n"
	"	.cfi_startproc\n"
	"	xorl %eax, %eax\n"
	"	ret\n"
	"	.cfi_endproc\n"
	".size tiny_function, .-tiny_function\n"
	".globl tiny_neighbour\n"
	".type tiny_neighbour, @function\n"
	"tiny_neighbour:\n"
	"	.cfi_startproc\n"
	"	movl $7, %eax\n"
	"	ret\n"
	"	.cfi_endproc\n"
	".size tiny_neighbour, .-tiny_neighbour\n");
#endif

static unsigned long compute_calls;

__attribute__((noipa)) int compute(int value)
{
	compute_calls++;
	return 2 * value;
}

int main(void)
{
	target_start();
	printf("ready pid=%d\n", (int)getpid());
	for (int i = 1;; i++) {
		printf("loop %d -> %d\n", i, loop_function(i));
		printf("tiny -> %d neighbour -> %d\n", tiny_function(), tiny_neighbour());
		printf("compute %d -> %d\n", i, compute(i));
		sleep_ms(5);
	}
}
