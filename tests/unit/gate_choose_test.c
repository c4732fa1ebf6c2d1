/* gate_choose_test.c - the gate page's choose routine run for real, in this
 * process: what each byte of the table and each phase make of the calling
 * thread (the new code or the original), and what byte it leaves behind.
 * hotpatch's moves rely on exactly this: a "held" byte becomes what it
 * held back, by the thread's own locked exchange. */
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "check.h"
#include "arch/arch.h"

#if !defined(__x86_64__)
/* x86-64's code: arm64 has no gates yet. */
int main(void)
{
	return check_report();
}
#else

#define CHOOSE 0x40	/* gate.c's drawing: where choose starts in the page */

/* Calls choose as a gate does: true when it sends the thread to the new
 * code (ZF set).  Below the stack pointer choose saves four registers (a
 * gate's caller has none of its own there): this function's red zone is
 * stepped over first. */
static bool run_choose(uint64_t routine)
{
	unsigned char new_code;

	__asm__ volatile("sub $128, %%rsp\n\t"
			 "call *%1\n\t"
			 "sete %0\n\t"
			 "add $128, %%rsp"
			 : "=q"(new_code)
			 : "r"(routine)
			 : "memory", "cc");
	return new_code != 0;
}

struct gate_mapping {
	unsigned char *page;	/* code, then the table */
	uint64_t limit;
};

static bool map_gate(struct gate_mapping *mapping)
{
	unsigned char code[HP_GATE_FIRST];
	pid_t tid = (pid_t)syscall(SYS_gettid);
	void *at;

	mapping->limit = ((uint64_t)tid + HP_PAGE_SIZE) & ~(uint64_t)(HP_PAGE_SIZE - 1);
	at = mmap(NULL, HP_PAGE_SIZE + mapping->limit, PROT_READ | PROT_WRITE,
		  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (at == MAP_FAILED)
		return false;
	mapping->page = at;
	gate_page_code(HP_PAGE_SIZE, mapping->limit, code);
	memcpy(mapping->page, code, sizeof(code));
	return mprotect(mapping->page, HP_PAGE_SIZE, PROT_READ | PROT_WRITE | PROT_EXEC) == 0;
}

/* With the thread's byte `before` and phase `phase`: where choose sends it
 * and the byte it leaves. */
static bool choose_with(struct gate_mapping *mapping, unsigned char phase, unsigned char before,
			unsigned char *after)
{
	unsigned char *byte = mapping->page + HP_PAGE_SIZE + syscall(SYS_gettid);
	bool new_code;

	mapping->page[0] = phase;
	*byte = before;
	new_code = run_choose((uint64_t)(uintptr_t)(mapping->page + CHOOSE));
	*after = *byte;
	return new_code;
}

static void test_bytes(struct gate_mapping *mapping)
{
	unsigned char after = 0;

	CHECK(choose_with(mapping, HP_GATE_UNSEEN_NEW, HP_GATE_NEW, &after) && after == HP_GATE_NEW,
	      "a thread given the new code runs it");
	CHECK(!choose_with(mapping, HP_GATE_UNSEEN_NEW, HP_GATE_ORIGINAL, &after) &&
		      after == HP_GATE_ORIGINAL,
	      "a thread given the original code runs it, whatever the phase");
	CHECK(!choose_with(mapping, HP_GATE_UNSEEN_ORIGINAL, HP_GATE_UNSEEN, &after) &&
		      after == HP_GATE_ORIGINAL,
	      "phase 0: an unseen thread is written in as original");
	CHECK(choose_with(mapping, HP_GATE_UNSEEN_NEW, HP_GATE_UNSEEN, &after) &&
		      after == HP_GATE_NEW,
	      "phase 3: an unseen thread is written in as new");
	CHECK(!choose_with(mapping, HP_GATE_UNSEEN_NEW, HP_GATE_HELD, &after) &&
		      after == HP_GATE_ORIGINAL,
	      "held: original, and made so (hotpatch's exchange then fails)");
	CHECK(choose_with(mapping, HP_GATE_UNSEEN_ORIGINAL, HP_GATE_HELD_NEW, &after) &&
		      after == HP_GATE_NEW,
	      "held new: new, and made so (a revert's exchange then fails)");
}

int main(void)
{
	struct gate_mapping mapping = { 0 };

	CHECK(map_gate(&mapping), "a gate page maps in this process");
	if (mapping.page) {
		test_bytes(&mapping);
		munmap(mapping.page, HP_PAGE_SIZE + mapping.limit);
	}
	return check_report();
}
#endif
