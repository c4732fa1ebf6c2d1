/* code_test.c - arm64's planner, jump codec, trampoline slots, return
 * sites and system-call code, on real arm64 words (from aarch64-linux-gnu-as
 * and Debian 12's arm64 libc), on any host: the pure files of
 * lib/arch/aarch64/ are linked in directly. */
#include <capstone/capstone.h>
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "arch/arch.h"

#define BASE ((uint64_t)0x400000)

/* Little-endian words into bytes, as arm64 Linux keeps them. */
static size_t code_of(const uint32_t *words, size_t count, unsigned char *bytes)
{
	memcpy(bytes, words, count * 4);
	return count * 4;
}

static int plan(const uint32_t *words, size_t count, struct hp_code_plan *p)
{
	unsigned char code[64];
	char why[256] = "";
	size_t size = code_of(words, count, code);

	return code_plan_function(code, size, BASE, p, why, sizeof(why));
}

static void test_plan_prologue(void)
{
	/* stp x29, x30, [sp, #-16]!; mov x29, sp; bl 0; ldp; ret */
	static const uint32_t code[] = { 0xa9bf7bfd, 0x910003fd, 0x97fffffe, 0xa8c17bfd,
					 0xd65f03c0 };
	struct hp_code_plan p;

	CHECK(plan(code, 5, &p) == HP_OK, "a frame-record prologue takes a jump");
	CHECK(p.jump_address == BASE, "at the function start");
	CHECK(p.length == HP_INDIRECT_JUMP_SIZE, "eight bytes may be overwritten");
	CHECK(memcmp(p.saved, code, 8) == 0, "the first two words are saved");
}

static void test_plan_landing_pads(void)
{
	/* bti c; stp; mov x29, sp; ldp; ret */
	static const uint32_t bti[] = { 0xd503245f, 0xa9bf7bfd, 0x910003fd, 0xa8c17bfd,
					0xd65f03c0 };
	/* paciasp; stp; ldp; autiasp; ret */
	static const uint32_t pac[] = { 0xd503233f, 0xa9bf7bfd, 0xa8c17bfd, 0xd50323bf,
					0xd65f03c0 };
	struct hp_code_plan p;

	CHECK(plan(bti, 5, &p) == HP_OK, "a bti c function takes a jump");
	CHECK(p.jump_address == BASE + 4, "after its bti c, which stays first");
	CHECK(memcmp(p.saved, bti + 1, 8) == 0, "the words after bti c are saved");
	CHECK(plan(pac, 5, &p) == HP_MISFIT, "a function signing its return address is refused");
}

/* Each PC-relative kind that points at the second word (+4) leaves room
 * for a 4-byte jump only; those words come from the assembler. */
static void test_plan_pc_relative_into_the_jump(void)
{
	static const struct {
		const char *what;
		uint32_t code[4];
	} cases[] = {
		{ "b.ne", { 0x52800001, 0x11000421, 0x7100283f, 0x54ffffc1 } },
		{ "cbnz", { 0xaa0003e1, 0xd1000421, 0xb5ffffe1, 0xd65f03c0 } },
		{ "tbnz", { 0xaa0003e1, 0xd341fc21, 0x371fffe1, 0xd65f03c0 } },
		{ "adr", { 0xd503201f, 0x10000000, 0xd65f03c0, 0xd65f03c0 } },
		{ "ldr literal", { 0xd503201f, 0x58000000, 0xd65f03c0, 0xd65f03c0 } },
		{ "ldrsw literal", { 0xd503201f, 0x98000000, 0xd65f03c0, 0xd65f03c0 } },
		{ "b", { 0xd503201f, 0xd503201f, 0x17ffffff, 0xd65f03c0 } },
		{ "bl", { 0xd503201f, 0xd503201f, 0x97ffffff, 0xd65f03c0 } },
	};

	for (size_t i = 0; i < HP_ARRAY_SIZE(cases); i++) {
		struct hp_code_plan p;

		CHECK(plan(cases[i].code, 4, &p) == HP_OK, cases[i].what);
		CHECK(p.length == HP_JUMP_SIZE, cases[i].what);
	}
}

static void test_plan_edges(void)
{
	static const uint32_t ret[] = { 0xd65f03c0 };
	/* nop; nop; b to the start; ret: the start keeps its jump */
	static const uint32_t to_start[] = { 0xd503201f, 0xd503201f, 0x17fffffe, 0xd65f03c0 };
	/* nop; nop; ret; a literal-pool word capstone cannot decode */
	static const uint32_t pool[] = { 0xd503201f, 0xd503201f, 0xd65f03c0, 0x00000000 };
	/* bti c; ret: four bytes after the pad */
	static const uint32_t pad_only[] = { 0xd503245f, 0xd65f03c0 };
	unsigned char two[2] = { 0xc0, 0x03 };
	struct hp_code_plan p;
	char why[256];

	CHECK(plan(ret, 1, &p) == HP_OK && p.length == HP_JUMP_SIZE, "a bare ret takes a b");
	CHECK(plan(to_start, 4, &p) == HP_OK && p.length == HP_INDIRECT_JUMP_SIZE,
	      "a branch to the function start is fine");
	CHECK(plan(pool, 4, &p) == HP_OK, "an undecodable literal word is data");
	CHECK(plan(pad_only, 2, &p) == HP_OK && p.jump_address == BASE + 4 &&
		      p.length == HP_JUMP_SIZE,
	      "bti c; ret takes a b after the pad");
	CHECK(code_plan_function(two, sizeof(two), BASE, &p, why, sizeof(why)) == HP_MISFIT,
	      "two bytes are too few");
	CHECK(code_plan_function((const unsigned char *)ret, 4, BASE + 2, &p, why, sizeof(why)) ==
		      HP_MISFIT,
	      "a misaligned start is refused");
}

static uint32_t word_of(const unsigned char *bytes)
{
	uint32_t word;

	memcpy(&word, bytes, 4);
	return word;
}

static void test_jumps(void)
{
	unsigned char jump[HP_INDIRECT_JUMP_SIZE];
	uint64_t to = 0;

	CHECK(code_encode_jump(0x7c, 0x107c, jump) && word_of(jump) == 0x14000400,
	      "b .+0x1000 as the assembler writes it");
	CHECK(code_encode_jump(0x1080, 0x80, jump) && word_of(jump) == 0x17fffc00,
	      "b .-0x1000 as the assembler writes it");
	CHECK(code_decode_jump(0x1080, jump, &to) && to == 0x80, "decodes back");
	CHECK(code_encode_jump(BASE, BASE + (128u << 20) - 4, jump) &&
		      code_decode_jump(BASE, jump, &to) && to == BASE + (128u << 20) - 4,
	      "the farthest b forward");
	CHECK(!code_encode_jump(BASE, BASE + (128u << 20), jump), "128 MiB forward is out of reach");
	CHECK(code_encode_jump(BASE + (128u << 20), BASE, jump), "128 MiB back is in reach");
	CHECK(!code_encode_jump(BASE, BASE + 6, jump), "a misaligned target is refused");
	CHECK(!code_decode_jump(BASE, (const unsigned char[4]){ 0x1f, 0x20, 0x03, 0xd5 }, &to),
	      "a nop is no jump");
	CHECK(code_encode_indirect_jump(0x78, 0x178, jump) && word_of(jump) == 0x58000810 &&
		      word_of(jump + 4) == 0xd61f0200,
	      "ldr x16, .+0x100; br x16 as the assembler writes them");
	CHECK(!code_encode_indirect_jump(BASE, BASE + (1u << 20), jump),
	      "a literal 1 MiB away is out of ldr's reach");
	CHECK(!code_encode_indirect_jump(BASE, BASE + 0x104, jump),
	      "a slot that is not 8-aligned is refused");
}

static void test_trampolines(void)
{
	unsigned char slot[HP_TRAMPOLINE_SLOT];
	uint64_t to = 0x7f0011223344, pointer;
	struct hp_mapping items[2] = {
		{ .start = 0x10000000, .end = 0x10100000, .path = "/usr/bin/program" },
		{ .start = 0x20000000, .end = 0x20001000, .path = "[heap]" },
	};
	struct hp_maps maps = { .items = items, .count = 2 };
	uint64_t gap = 0;

	trampoline_encode_slot(to, slot);
	memcpy(&pointer, slot + HP_TRAMPOLINE_POINTER, sizeof(pointer));
	CHECK(word_of(slot) == 0x58000050 && word_of(slot + 4) == 0xd61f0200,
	      "ldr x16, .+8; br x16");
	CHECK(pointer == to, "the address at +8");
	CHECK(trampoline_find_gap(&maps, 0x10001000, 0x10002000, HP_PAGE_SIZE, &gap),
	      "a gap near the code");
	CHECK(gap + HP_PAGE_SIZE <= 0x10001000 + (128u << 20) && gap + (128u << 20) > 0x10002000,
	      "within a b of every jump");
	CHECK(!trampoline_find_gap(&maps, 0x10001000, 0x10001000 + (200u << 20), HP_PAGE_SIZE,
				   &gap),
	      "no gap reaches jumps 200 MiB apart");
}

static void test_return_sites(void)
{
	/* bl; mov x0, x1; blr x2; nop; bl (the last one ends the code) */
	static const uint32_t code[] = { 0x94000000, 0xaa0103e0, 0xd63f0040, 0xd503201f,
					 0x97fffffc };
	unsigned char bytes[32];
	uint64_t sites[8];
	size_t count = code_return_sites(bytes, code_of(code, 5, bytes), BASE, sites, 8);

	CHECK(count == 2, "two calls return into the code");
	CHECK(count == 2 && sites[0] == BASE + 4 && sites[1] == BASE + 12, "after bl and blr");
}

static void test_syscalls(void)
{
	/* glibc 2.36's syscall(): nop; mov w8, w0; mov x0, x1 ... svc; cmn; b.cs; ret */
	static const uint32_t syscall[] = { 0xd503201f, 0x2a0003e8, 0xaa0103e0, 0xaa0203e1,
					    0xaa0303e2, 0xaa0403e3, 0xaa0503e4, 0xaa0603e5,
					    0xaa0703e6, 0xd4000001, 0xb13ffc1f, 0x54000042,
					    0xd65f03c0 };
	unsigned char bytes[64];
	size_t size = code_of(syscall, 13, bytes);
	const unsigned char *after, *sigreturn;
	size_t after_size = code_syscall_return(&after), sigreturn_size;
	uint64_t found = 0;

	CHECK(code_find_syscall(bytes, size, BASE, &found) == HP_OK && found == BASE + 36,
	      "libc's svc found");
	CHECK(code_is_syscall(bytes + 36), "svc #0 is a system call");
	CHECK(!code_is_syscall(bytes + 40), "cmn is not");
	CHECK(after_size == 12 && memcmp(after, bytes + 40, after_size) == 0,
	      "what follows libc's svc");
	sigreturn_size = code_signal_return(&sigreturn);
	CHECK(sigreturn_size == 8 && word_of(sigreturn) == 0xd2801168 &&
		      word_of(sigreturn + 4) == 0xd4000001,
	      "mov x8, #139; svc #0 (the vDSO's __kernel_rt_sigreturn)");
}

static uint64_t clobbered(csh handle, uint32_t word, enum hp_flow *flow, bool *direct,
			  uint64_t *target)
{
	cs_insn *instruction = NULL;
	uint64_t bits = 0;

	if (cs_disasm(handle, (const uint8_t *)&word, 4, BASE, 1, &instruction) != 1)
		return UINT64_MAX;
	bits = code_clobbered_by(handle, instruction);
	*flow = code_flow(handle, instruction, direct, target);
	cs_free(instruction, 1);
	return bits;
}

static void test_clobbers(void)
{
	enum hp_flow flow;
	bool direct;
	uint64_t target;
	csh handle;

	if (code_disassembler(&handle) != CS_ERR_OK) {
		CHECK(false, "capstone opens arm64");
		return;
	}
	CHECK(clobbered(handle, 0xaa0103e0, &flow, &direct, &target) == 1 && flow == HP_FLOW_NEXT,
	      "mov x0, x1 writes x0");
	CHECK(clobbered(handle, 0xaa0003f3, &flow, &direct, &target) == 0,
	      "mov x19, x0 writes a kept register");
	CHECK(clobbered(handle, 0x97fffffc, &flow, &direct, &target) == 0 &&
		      flow == HP_FLOW_CALL && direct && target == BASE - 16,
	      "bl is a direct call");
	CHECK(clobbered(handle, 0xd63f0040, &flow, &direct, &target) == 0 &&
		      flow == HP_FLOW_CALL && !direct,
	      "blr is a call through a register");
	CHECK(clobbered(handle, 0x54ffffc1, &flow, &direct, &target) == 0 &&
		      flow == HP_FLOW_JUMP && direct && target == BASE - 8,
	      "b.ne is a direct jump");
	CHECK(clobbered(handle, 0xd65f03c0, &flow, &direct, &target) == 0 && flow == HP_FLOW_NEXT,
	      "ret is no jump");
	/* fmov d17, x0 (9e670011) writes v17; fmov d9, x0 (9e670009) only v9's kept half */
	CHECK(clobbered(handle, 0x9e670011, &flow, &direct, &target) == UINT64_C(1) << (19 + 8 + 1),
	      "fmov d17 writes v17");
	CHECK(clobbered(handle, 0x9e670010, &flow, &direct, &target) == UINT64_C(1) << (19 + 8) &&
		      clobbered(handle, 0x9e67001f, &flow, &direct, &target) == UINT64_C(1) << 42 &&
		      clobbered(handle, 0x9e670007, &flow, &direct, &target) == UINT64_C(1) << 26,
	      "v16 and v31 take the last bits, v7 the last of the low ones");
	CHECK(clobbered(handle, 0x9e670009, &flow, &direct, &target) == 0,
	      "fmov d9 writes a kept half");
}

/* The vDSO's __kernel_clock_getres (Linux 6.1, Debian 12's arm64 kernel):
 * a leaf that signs x30 and never touches the stack pointer. */
static const uint32_t clock_getres[] = {
	0xd503233f, 0x71003c1f, 0x54000308, 0x10fec6a4, 0x12b00006, 0x52800022,
	0x10ff4643, 0xb9400487, 0x1ac02042, 0x52811265, 0x6b0600ff, 0x9a840063,
	0x6a05005f, 0x54000141, 0x721b045f, 0x54000160, 0xd2812000, 0xf2a007a0,
	0xb4000041, 0xa900003f, 0x52800000, 0xd50323bf, 0xd65f03c0, 0xb940e860,
	0x2a0003e0, 0x17fffff9, 0xd2800e48, 0xd4000001, 0xd50323bf, 0xd65f03c0,
};

/* clock_getres with word `at` replaced by `word`: frameless or not. */
static bool frameless_with(size_t at, uint32_t word)
{
	uint32_t words[HP_ARRAY_SIZE(clock_getres)];
	unsigned char code[sizeof(words)];

	memcpy(words, clock_getres, sizeof(words));
	words[at] = word;
	return code_frameless(code, code_of(words, HP_ARRAY_SIZE(words), code), BASE);
}

static void test_frameless(void)
{
	static const uint32_t sigreturn[] = { 0xd2801168, 0xd4000001 };	/* mov x8, #139; svc */
	static const struct {
		const char *what;
		uint32_t word;
	} breaking[] = {
		{ "a frame record pushed (stp x29, x30, [sp, #-16]!)", 0xa9bf7bfd },
		{ "a call (bl)", 0x97fffffe },
		{ "a call through a register (blr x3)", 0xd63f0060 },
		{ "a callee-saved register written (mov x19, x0)", 0xaa0003f3 },
		{ "the stack pointer moved (sub sp, sp, #16)", 0xd10043ff },
		{ "a post-indexed load from the stack (ldr x0, [sp], #16)", 0xf84107e0 },
		{ "a kept vector register written (fmov d8, x0)", 0x9e670008 },
		{ "x30 loaded (ldr x30, [x1])", 0xf940003e },
	};
	unsigned char code[sizeof(clock_getres)];

	CHECK(code_frameless(code, code_of(clock_getres, HP_ARRAY_SIZE(clock_getres), code), BASE),
	      "the vDSO's clock_getres is frameless");
	CHECK(frameless_with(0, 0xd503201f), "so it is with a nop for its paciasp");
	CHECK(frameless_with(21, 0xd50320ff), "and with xpaclri for its autiasp");
	for (size_t i = 0; i < HP_ARRAY_SIZE(breaking); i++)
		CHECK(!frameless_with(5, breaking[i].word), breaking[i].what);
	CHECK(!frameless_with(22, 0xd65f0020),
	      "a return through another register than x30 (ret x1)");
	CHECK(!frameless_with(5, 0xffffffff), "a word capstone cannot read");
	CHECK(!code_frameless(code, code_of(sigreturn, 2, code), BASE),
	      "the signal-return code, which does not return to x30");
	CHECK(!code_frameless(code, code_of(clock_getres, 3, code) - 2, BASE),
	      "a size that is not whole words");
	CHECK(!code_frameless(code, code_of(clock_getres, 3, code), BASE + 2),
	      "an address that is not an instruction's");
}

static void test_call_stubs(void)
{
	/* GNU ld 2.40's arm64 PLT: exit@plt, and PLT0 before it. */
	static const uint32_t entry[] = { 0xd0000150, 0xf9400611, 0x91002210, 0xd61f0220 };
	static const uint32_t plt0[] = { 0xa9bf7bf0, 0xb0000150, 0xf947fe11, 0x913fe210 };
	static const uint32_t plt0_end[] = { 0xd61f0220, 0xd503201f, 0xd503201f, 0xd503201f };
	unsigned char code[16];
	uint32_t changed[4];

	CHECK(code_is_call_stub((code_of(entry, 4, code), code)), "a PLT entry is a call stub");
	CHECK(!code_is_call_stub((code_of(plt0, 4, code), code)), "PLT0, which pushes x30, is not");
	CHECK(!code_is_call_stub((code_of(plt0_end, 4, code), code)), "nor PLT0's tail");
	for (size_t i = 0; i < 4; i++) {
		memcpy(changed, entry, sizeof(changed));
		changed[i] ^= 0x1;	/* x16 -> x17 or x17 -> x16 in each word */
		CHECK(!code_is_call_stub((code_of(changed, 4, code), code)),
		      "an entry with another register in any word is not");
	}
}

int main(void)
{
	test_plan_prologue();
	test_plan_landing_pads();
	test_plan_pc_relative_into_the_jump();
	test_plan_edges();
	test_jumps();
	test_trampolines();
	test_return_sites();
	test_syscalls();
	test_clobbers();
	test_frameless();
	test_call_stubs();
	return check_report();
}
