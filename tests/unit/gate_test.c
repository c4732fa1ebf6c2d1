/* gate_test.c - x86-64's gates (an apply without a global stop): what a
 * gate jumps to, which prologues one can run, and how a thread stopped in
 * the gates is put back at its function's entry.  Pure: no process. */
#include <string.h>

#include "check.h"
#include "arch/arch.h"

#if !defined(__x86_64__)
#error "gate_test tests x86-64 code: the Makefile builds it only for x86-64"
#endif

#define PAGE 0x7f0000000000ull
#define SITE 0x7f0000100000ull	/* a function's entry, 16-byte aligned */
#define REPLACEMENT 0x7f1000000000ull

/* push %rbp; mov %rsp,%rbp; sub $0x10,%rsp; ret */
static const unsigned char prologue[] = { 0x55, 0x48, 0x89, 0xe5, 0x48, 0x83, 0xec, 0x10, 0xc3 };

/* lea 0x0(%rsp),%rsp; push %rbp: an 8-byte first instruction */
static const unsigned char hook_prologue[] = { 0x48, 0x8d, 0xa4, 0x24, 0, 0, 0, 0, 0x55 };

static uint64_t quad_at(const unsigned char *bytes, size_t at)
{
	uint64_t value;

	memcpy(&value, bytes + at, sizeof(value));
	return value;
}

static void test_page_and_prologues(void)
{
	unsigned char page[HP_GATE_FIRST];
	static const unsigned char branching[] = { 0xeb, 0x10, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90 };
	size_t displaced = 0;

	gate_page_code(HP_PAGE_SIZE, 32768, page);
	CHECK(gate_page_is_gate(page), "the page's code is recognized");
	CHECK(page[0] == HP_GATE_UNSEEN_ORIGINAL, "a new page is in phase 0");
	page[HP_GATE_STORE_MANY] ^= 0xff;
	CHECK(!gate_page_is_gate(page), "a changed routine is not ours");
	gate_page_code(3 * HP_PAGE_SIZE, 32768, page);
	CHECK(gate_page_is_gate(page), "the code of three pages of gates is recognized");
	gate_page_code(3 * HP_PAGE_SIZE + 8, 32768, page);
	CHECK(!gate_page_is_gate(page), "a table not on a page of its own is not ours");

	CHECK(gate_displaceable(prologue, sizeof(prologue), SITE, &displaced) && displaced == 8,
	      "push, mov and sub run in a gate: 8 bytes, whole instructions");
	CHECK(!gate_displaceable(branching, sizeof(branching), SITE, &displaced),
	      "a prologue that branches does not");
	CHECK(!gate_displaceable(prologue, sizeof(prologue), SITE + 12, &displaced),
	      "a jump that would cross a 16-byte block cannot be one store");
	CHECK(!gate_entry_whole(prologue, sizeof(prologue), SITE),
	      "a 1-byte push first: the jump would cover a place a thread can be at");
	CHECK(gate_entry_whole(hook_prologue, sizeof(hook_prologue), SITE),
	      "an 8-byte lea first: the jump replaces it whole");
}

static void test_pun(void)
{
	/* endbr64; push %rbp: the jump's displacement is 1e 0f fa 55... */
	static const unsigned char endbr[] = { 0xf3, 0x0f, 0x1e, 0xfa, 0x55, 0x48, 0x89, 0xe5 };
	static const unsigned char jumping[] = { 0xeb, 0x10, 0x90, 0x90, 0x90, 0x90, 0x90 };
	unsigned char page[HP_PAGE_SIZE], landing[HP_LANDING_SIZE], jump[HP_JUMP_SIZE];
	uint64_t to = 0, decoded = 0;
	size_t displaced = 0;

	CHECK(gate_pun(prologue, sizeof(prologue), SITE, &displaced, &to) && displaced == 1 &&
		      to == SITE + HP_JUMP_SIZE + 0x48e58948ull,
	      "push %%rbp first: its byte alone is displaced, the jump lands where mov's bytes say");
	CHECK(code_encode_jump(SITE, to, jump) && jump[0] == 0xe9 &&
		      memcmp(jump + 1, prologue + 1, 4) == 0,
	      "the jump there leaves the bytes after its opcode as they were");
	CHECK(gate_pun(endbr, sizeof(endbr), SITE, &displaced, &to) && displaced == 4 &&
		      to == SITE + HP_JUMP_SIZE + 0x55fa1e0full,
	      "endbr64 first: 4 bytes displaced");
	CHECK(!gate_pun(hook_prologue, sizeof(hook_prologue), SITE, &displaced, &to),
	      "a first instruction as long as the jump needs no pun");
	CHECK(!gate_pun(jumping, sizeof(jumping), SITE, &displaced, &to),
	      "a first instruction that branches cannot run in a gate");
	CHECK(!gate_pun(prologue, 4, SITE, &displaced, &to), "a function shorter than the jump");
	CHECK(!gate_pun(prologue, sizeof(prologue), 0x1000, &displaced, &to) ||
		      to >= 0x10000,
	      "no landing below the lowest page a process maps");
	/* 55 48 89 e5 where the landing would start 8 bytes before a page ends. */
	CHECK(!gate_pun(prologue, sizeof(prologue),
			0x7f0000001ff8ull - HP_JUMP_SIZE - 0x48e58948ull, &displaced, &to) &&
		      to == 0x7f0000001ff8ull,
	      "no landing across a page");

	memset(page, 0xcc, sizeof(page));
	CHECK(!gate_landing_page_is_ours(page), "a page of int3 alone holds no landing");
	gate_landing_encode(PAGE + HP_GATE_FIRST, landing);
	memcpy(page + 0x123, landing, sizeof(landing));
	gate_landing_encode(PAGE + HP_GATE_FIRST + HP_GATE_SIZE, landing);
	memcpy(page + HP_PAGE_SIZE - HP_LANDING_SIZE, landing, sizeof(landing));
	CHECK(gate_landing_page_is_ours(page), "a page of two landings is ours");
	CHECK(quad_at(page, 0x123 + 6) == PAGE + HP_GATE_FIRST, "a landing holds its gate");
	CHECK(code_decode_jump(SITE, jump, &decoded) && decoded == SITE + HP_JUMP_SIZE + 0x48e58948ull,
	      "the punned jump decodes to its landing");
	page[0x200] = 0x90;
	CHECK(!gate_landing_page_is_ours(page), "anything else on it: not ours");
}

static void test_encode(void)
{
	unsigned char gate[HP_GATE_SIZE];
	uint64_t at = PAGE + HP_GATE_FIRST;

	CHECK(gate_encode(PAGE, at, REPLACEMENT, prologue, 8, SITE, gate), "a gate is built");
	CHECK(quad_at(gate, HP_GATE_SIZE - 16) == REPLACEMENT, "its new code is the replacement");
	CHECK(quad_at(gate, HP_GATE_SIZE - 8) == SITE + 8,
	      "its old code goes on right after the displaced bytes");
	CHECK(memchr(gate, 0x55, HP_GATE_SIZE) != NULL, "the displaced push is in the gate");
	CHECK(gate_encode(PAGE, PAGE + HP_GATE_FIRST + 100 * HP_GATE_SIZE, REPLACEMENT, prologue, 8,
			  SITE, gate),
	      "the 101st gate, two pages on, is built");
	CHECK(!gate_encode(PAGE, PAGE + gate_code_length(HP_GATE_FUNCTIONS_MAX) - 8, REPLACEMENT,
			   prologue, 8, SITE, gate),
	      "a gate past the largest gate mapping is refused");
	CHECK(gate_code_length(28) == HP_PAGE_SIZE && gate_code_length(29) == 2 * HP_PAGE_SIZE,
	      "28 gates and their store list take one page, 29 two");
	CHECK(gate_store_list(PAGE, 3) == PAGE + HP_GATE_FIRST + 3 * HP_GATE_SIZE,
	      "the store list follows the last gate");
}

static void test_rewind(void)
{
	uint64_t entries[2] = { SITE, SITE + 0x40 };
	uint64_t words[HP_GATE_REWIND_WORDS] = { 0xd, 0xb, 0xc, 0xa, 0 };
	struct hp_registers registers;

	/* In the second gate's decision part: back at its entry, as it was. */
	memset(&registers, 0, sizeof(registers));
	registers.user.rip = PAGE + HP_GATE_FIRST + HP_GATE_SIZE + 7;
	registers.user.rsp = 0x1000;
	registers.user.rax = 42;
	CHECK(gate_rewind(PAGE, entries, 2, words, &registers) && registers.user.rip == SITE + 0x40 &&
		      registers.user.rsp == 0x1000 && registers.user.rax == 42,
	      "a thread deciding in a gate is put back at the entry, its registers untouched");

	/* In choose after gettid, called from the first gate: its saved
	 * registers back, the call's return address popped. */
	memset(&registers, 0, sizeof(registers));
	registers.user.rip = PAGE + 0x40 + 0x22;
	registers.user.rsp = 0x2000;
	registers.user.rax = 12345;	/* the thread id, over rax */
	words[4] = PAGE + HP_GATE_FIRST + 26 + 5;
	CHECK(gate_rewind(PAGE, entries, 2, words, &registers) && registers.user.rip == SITE &&
		      registers.user.rsp == 0x2008 && registers.user.rax == 0xa &&
		      registers.user.rcx == 0xc && registers.user.r11 == 0xb && registers.user.rdx == 0xd,
	      "a thread in choose is put back with what choose saved");

	/* A return address that is no gate's call: left alone. */
	registers.user.rip = PAGE + 0x40 + 0x22;
	words[4] = PAGE + HP_GATE_FIRST + 3;
	CHECK(!gate_rewind(PAGE, entries, 2, words, &registers), "a stranger in choose is not moved");

	/* Running the displaced prologue: it leaves by itself. */
	registers.user.rip = PAGE + HP_GATE_FIRST + 37 + 1;
	CHECK(!gate_rewind(PAGE, entries, 2, words, &registers),
	      "a thread running the moved prologue is not moved");
}

int main(void)
{
	test_page_and_prologues();
	test_pun();
	test_encode();
	test_rewind();
	return check_report();
}
