/* gate_choose_test.c - the gate page's choose routine run for real, in this
 * process: what each byte of the table and each phase make of the calling
 * thread (the new code or the original), and what byte it leaves behind.
 * hotpatch's moves rely on exactly this: a "held" byte becomes what it
 * held back, by the thread's own locked exchange.  And the store_many
 * routine that writes the entries' jumps, a page of them a call. */
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "check.h"
#include "arch/arch.h"

#if !defined(__x86_64__)
#error "gate_choose_test tests x86-64 code: the Makefile builds it only for x86-64"
#endif

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

/* store_many over three 16-byte blocks: the first two hold what the list
 * expects and take the new bytes; the third does not, and the stores stop
 * there, leaving it as it was. */
static void test_store_many(struct gate_mapping *mapping)
{
	static uint64_t blocks[3][2] __attribute__((aligned(16)));
	uint64_t list[3][HP_GATE_STORE_ITEM / sizeof(uint64_t)];
	uint64_t (*store_many)(const void *, uint64_t) =
		(uint64_t (*)(const void *, uint64_t))(uintptr_t)(mapping->page + HP_GATE_STORE_MANY);

	for (int i = 0; i < 3; i++) {
		blocks[i][0] = 0x1111 * (uint64_t)(i + 1);
		blocks[i][1] = 0x2222 * (uint64_t)(i + 1);
		list[i][0] = (uint64_t)(uintptr_t)blocks[i];
		list[i][1] = blocks[i][0];
		list[i][2] = blocks[i][1];
		list[i][3] = 0xaaaa * (uint64_t)(i + 1);
		list[i][4] = 0xbbbb * (uint64_t)(i + 1);
	}
	list[2][2] ^= 1;	/* the third block changed meanwhile */
	CHECK(store_many(list, 2) == 2 && blocks[0][0] == 0xaaaa && blocks[1][1] == 0xbbbb * 2,
	      "store_many stores each entry of the list");
	list[0][1] = 0xaaaa, list[0][2] = 0xbbbb, list[0][3] = 0x1111, list[0][4] = 0x2222;
	list[1][1] = 0xaaaa * 2, list[1][2] = 0xbbbb * 2, list[1][3] = 0x5555, list[1][4] = 0x6666;
	CHECK(store_many(list, 3) == 2 && blocks[0][0] == 0x1111 && blocks[1][0] == 0x5555 &&
		      blocks[2][0] == 0x1111 * 3 && blocks[2][1] == 0x2222 * 3,
	      "store_many stops at a block that does not hold what it expects, and leaves it");
	CHECK(store_many(list, 0) == 0, "store_many of no entry stores nothing");
}

int main(void)
{
	struct gate_mapping mapping = { 0 };

	CHECK(map_gate(&mapping), "a gate page maps in this process");
	if (mapping.page) {
		test_bytes(&mapping);
		test_store_many(&mapping);
		munmap(mapping.page, HP_PAGE_SIZE + mapping.limit);
	}
	return check_report();
}
