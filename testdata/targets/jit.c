/* jit.c - one thread runs machine code the program wrote itself into an
 * anonymous mapping, as a JIT compiler would: a loop sleeping 10 ms through
 * the nanosleep system call, with no unwind information anywhere.  Its stack
 * cannot be unwound, so it cannot be shown to be outside any function.  The
 * main thread calls tick() every 5 ms.  Output lines:
 *   ready pid=PID jit_tid=TID jit_code=ADDRESS
 *   tick N -> R          original: R = N + 1; the tick_fix patch: R = N + 10 */
#include "target.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>

static atomic_int jit_tid;
static void *jit_code;
static unsigned long tick_calls;

/* mov %rdi,%rbx; loop: mov $35,%eax (nanosleep); mov %rbx,%rdi; xor %esi,%esi;
 * syscall; jmp loop.  It never returns, so clobbering rbx is harmless. */
static const unsigned char sleeping_loop[] = {
	0x48, 0x89, 0xfb,			/* mov %rdi,%rbx */
	0xb8, 0x23, 0x00, 0x00, 0x00,		/* mov $35,%eax */
	0x48, 0x89, 0xdf,			/* mov %rbx,%rdi */
	0x31, 0xf6,				/* xor %esi,%esi */
	0x0f, 0x05,				/* syscall */
	0xeb, 0xf2,				/* jmp -14 (the mov $35) */
};

__attribute__((noipa)) int tick(int value)
{
	tick_calls++;
	return value + 1;
}

static void *run_generated(void *argument)
{
	static const struct timespec pause = { 0, 10 * 1000 * 1000 };
	void (*generated)(const struct timespec *) = (void (*)(const struct timespec *))argument;

	atomic_store(&jit_tid, (int)gettid());
	generated(&pause);
	return NULL;
}

int main(void)
{
	pthread_t thread;

	target_start();
	jit_code = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (jit_code == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	memcpy(jit_code, sleeping_loop, sizeof(sleeping_loop));
	if (mprotect(jit_code, 4096, PROT_READ | PROT_EXEC) != 0) {
		perror("mprotect");
		return 1;
	}
	pthread_create(&thread, NULL, run_generated, jit_code);
	while (atomic_load(&jit_tid) == 0)
		sleep_ms(1);
	printf("ready pid=%d jit_tid=%d jit_code=%p\n", (int)getpid(), atomic_load(&jit_tid),
	       jit_code);
	for (int i = 1;; i++) {
		printf("tick %d -> %d\n", i, tick(i));
		sleep_ms(5);
	}
}
