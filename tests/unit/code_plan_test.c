/* code_plan_test.c - code_plan_function, the jump codec and code_find_syscall
 * on hand-assembled byte sequences. */
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "arch/arch.h"

#if !defined(__x86_64__)
#error "code_plan_test tests x86-64 code: the Makefile builds it only for x86-64"
#endif

#define BASE ((uint64_t)0x401000)

static int plan(const unsigned char *code, size_t size, struct hp_code_plan *p, char *why,
		size_t why_size)
{
	why[0] = '\0';
	return code_plan_function(code, size, BASE, p, why, why_size);
}

static void test_normal_prologue(void)
{
	/* push rbp; mov rbp,rsp; mov [rbp-4],edi; mov eax,[rbp-4]; pop rbp; ret */
	static const unsigned char code[] = { 0x55, 0x48, 0x89, 0xe5, 0x89, 0x7d, 0xfc,
					      0x8b, 0x45, 0xfc, 0x5d, 0xc3 };
	struct hp_code_plan p;
	char why[256];

	CHECK(plan(code, sizeof(code), &p, why, sizeof(why)) == HP_OK, "normal prologue accepted");
	CHECK(p.jump_address == BASE, "jump at the function start");
	CHECK(p.length == HP_INDIRECT_JUMP_SIZE, "six bytes may be overwritten");
	CHECK(memcmp(p.saved, code, HP_INDIRECT_JUMP_SIZE) == 0, "saved bytes are the first six");
}

static void test_endbr64(void)
{
	/* endbr64; push rbp; mov rbp,rsp; pop rbp; ret */
	static const unsigned char code[] = { 0xf3, 0x0f, 0x1e, 0xfa, 0x55, 0x48,
					      0x89, 0xe5, 0x5d, 0xc3 };
	struct hp_code_plan p;
	char why[256];

	CHECK(plan(code, sizeof(code), &p, why, sizeof(why)) == HP_OK, "endbr64 function accepted");
	CHECK(p.jump_address == BASE + 4, "jump goes just past endbr64");
	CHECK(memcmp(p.saved, code + 4, HP_JUMP_SIZE) == 0, "saved bytes follow endbr64");
}

static void test_five_bytes_only(void)
{
	/* 0: push rbp; 1: mov rbp,rsp; 4: nop; 5: inc eax; 7: jne 5; 9: ret:
	 * a branch to +5 leaves five bytes, enough for a jmp rel32 only. */
	static const unsigned char code[] = { 0x55, 0x48, 0x89, 0xe5, 0x90,
					      0xff, 0xc0, 0x75, 0xfc, 0xc3 };
	/* exactly five bytes long: mov eax,1 */
	static const unsigned char five[] = { 0xb8, 0x01, 0x00, 0x00, 0x00 };
	struct hp_code_plan p;
	char why[256];

	CHECK(plan(code, sizeof(code), &p, why, sizeof(why)) == HP_OK,
	      "a branch to byte 5 still allows a 5-byte jump");
	CHECK(p.length == HP_JUMP_SIZE, "only five bytes may be overwritten");
	CHECK(plan(five, sizeof(five), &p, why, sizeof(why)) == HP_OK, "5-byte function accepted");
	CHECK(p.length == HP_JUMP_SIZE, "a 5-byte function gets five");
}

static void test_too_short(void)
{
	static const unsigned char four[] = { 0x55, 0x48, 0x89, 0xe5 };
	static const unsigned char endbr_four[] = { 0xf3, 0x0f, 0x1e, 0xfa, 0x55, 0x48, 0x89, 0xe5 };
	struct hp_code_plan p;
	char why[256];

	CHECK(plan(four, sizeof(four), &p, why, sizeof(why)) == HP_MISFIT, "4-byte function refused");
	CHECK(strstr(why, "4 bytes") != NULL, "reason mentions the 4-byte length");
	CHECK(plan(endbr_four, sizeof(endbr_four), &p, why, sizeof(why)) == HP_MISFIT,
	      "endbr64 + 4 bytes refused");
	CHECK(strstr(why, "8 bytes") != NULL, "reason mentions the 8-byte length");
}

static void test_branch_into_jump(void)
{
	/* 0: xor eax,eax; 2: inc eax; 4: cmp eax,10; 7: jne 2; 9: ret */
	static const unsigned char jcc[] = { 0x31, 0xc0, 0xff, 0xc0, 0x83, 0xf8,
					     0x0a, 0x75, 0xf9, 0xc3 };
	/* same with jmp 2 */
	static const unsigned char jmp[] = { 0x31, 0xc0, 0xff, 0xc0, 0x83, 0xf8,
					     0x0a, 0xeb, 0xf9, 0xc3 };
	/* same with a rel32 jne 2 at 7 (0f 85 rel32, next 13) */
	static const unsigned char jcc32[] = { 0x31, 0xc0, 0xff, 0xc0, 0x83, 0xf8, 0x0a,
					       0x0f, 0x85, 0xf5, 0xff, 0xff, 0xff, 0xc3 };
	/* call to offset 2 (e8 rel32 at 0, next 5) */
	static const unsigned char call[] = { 0xe8, 0xfd, 0xff, 0xff, 0xff, 0xc3 };
	struct hp_code_plan p;
	char why[256];

	CHECK(plan(jcc, sizeof(jcc), &p, why, sizeof(why)) == HP_MISFIT, "jcc into +2 refused");
	CHECK(strstr(why, "branches into") != NULL, "jcc reason says branches into");
	CHECK(plan(jmp, sizeof(jmp), &p, why, sizeof(why)) == HP_MISFIT, "jmp into +2 refused");
	CHECK(strstr(why, "branches into") != NULL, "jmp reason says branches into");
	CHECK(plan(jcc32, sizeof(jcc32), &p, why, sizeof(why)) == HP_MISFIT,
	      "rel32 jcc into +2 refused");
	CHECK(strstr(why, "branches into") != NULL, "rel32 jcc reason says branches into");
	CHECK(plan(call, sizeof(call), &p, why, sizeof(why)) == HP_MISFIT, "call into +2 refused");
}

static void test_branch_outside_jump(void)
{
	/* 0: xor eax,eax; 2: inc eax; 4: cmp eax,10; 7: jne 0; 9: ret */
	static const unsigned char to_start[] = { 0x31, 0xc0, 0xff, 0xc0, 0x83, 0xf8,
						  0x0a, 0x75, 0xf7, 0xc3 };
	/* 0: xor eax,eax; 2: xor edx,edx; 4: nop; 5: inc eax; 7: cmp eax,10;
	 * 10: jne 5; 12: ret */
	static const unsigned char past_jump[] = { 0x31, 0xc0, 0x31, 0xd2, 0x90, 0xff, 0xc0,
						   0x83, 0xf8, 0x0a, 0x75, 0xf9, 0xc3 };
	struct hp_code_plan p;
	char why[256];

	CHECK(plan(to_start, sizeof(to_start), &p, why, sizeof(why)) == HP_OK,
	      "branch to the function start accepted");
	CHECK(p.jump_address == BASE, "branch to start: jump at start");
	CHECK(plan(past_jump, sizeof(past_jump), &p, why, sizeof(why)) == HP_OK,
	      "branch to +5 (just past the jump) accepted");
	CHECK(memcmp(p.saved, past_jump, HP_JUMP_SIZE) == 0, "branch to +5: saved bytes");
}

static void test_undecodable(void)
{
	/* 0x06 (push es) is invalid in 64-bit mode */
	static const unsigned char leading[] = { 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0xc3 };
	static const unsigned char later[] = { 0x55, 0x48, 0x89, 0xe5, 0x5d, 0x06, 0xc3 };
	struct hp_code_plan p;
	char why[256];

	CHECK(plan(leading, sizeof(leading), &p, why, sizeof(why)) == HP_MISFIT,
	      "undecodable first bytes refused");
	CHECK(strstr(why, "not an instruction") != NULL, "reason says not an instruction");
	CHECK(plan(later, sizeof(later), &p, why, sizeof(why)) == HP_MISFIT,
	      "undecodable later bytes refused");
	CHECK(strstr(why, "+5") != NULL, "reason names offset +5");
}

static void test_rip_relative(void)
{
	/* 0: lea rax,[rip-5] -> BASE+2; 7: ret */
	static const unsigned char into[] = { 0x48, 0x8d, 0x05, 0xfb, 0xff, 0xff, 0xff, 0xc3 };
	/* 0: lea rax,[rip-3] -> BASE+4 */
	static const unsigned char into4[] = { 0x48, 0x8d, 0x05, 0xfd, 0xff, 0xff, 0xff, 0xc3 };
	/* 0: lea rax,[rip-7] -> BASE+0, fine */
	static const unsigned char to_start[] = { 0x48, 0x8d, 0x05, 0xf9, 0xff, 0xff, 0xff, 0xc3 };
	struct hp_code_plan p;
	char why[256];

	CHECK(plan(into, sizeof(into), &p, why, sizeof(why)) == HP_MISFIT,
	      "rip-relative lea into +2 refused");
	CHECK(strstr(why, "branches into") != NULL, "lea reason says branches into");
	CHECK(plan(into4, sizeof(into4), &p, why, sizeof(why)) == HP_MISFIT,
	      "rip-relative lea into +4 refused");
	CHECK(plan(to_start, sizeof(to_start), &p, why, sizeof(why)) == HP_OK,
	      "rip-relative lea to the start accepted");
}

static void test_jump_codec(void)
{
	unsigned char jump[HP_JUMP_SIZE];
	uint64_t to = 0;
	const uint64_t from = 0x555555554100;

	CHECK(code_encode_jump(from, from + 0x12345, jump), "forward jump encodes");
	CHECK(jump[0] == 0xe9, "opcode e9");
	CHECK(code_decode_jump(from, jump, &to) && to == from + 0x12345, "forward round trip");
	CHECK(code_encode_jump(from, from - 0x7000000, jump), "backward jump encodes");
	CHECK(code_decode_jump(from, jump, &to) && to == from - 0x7000000, "backward round trip");
	CHECK(code_encode_jump(from, from, jump), "jump to self encodes");
	CHECK(jump[1] == 0xfb && jump[2] == 0xff && jump[3] == 0xff && jump[4] == 0xff,
	      "jump to self is rel32 -5");
	CHECK(code_encode_jump(from, from + HP_JUMP_SIZE + INT32_MAX, jump),
	      "farthest forward reach encodes");
	CHECK(code_decode_jump(from, jump, &to) && to == from + HP_JUMP_SIZE + INT32_MAX,
	      "farthest forward round trip");
	CHECK(code_encode_jump(from, from + HP_JUMP_SIZE - 0x80000000ull, jump),
	      "farthest backward reach encodes");
	CHECK(!code_encode_jump(from, from + HP_JUMP_SIZE + INT32_MAX + 1ull, jump),
	      "one past forward reach refused");
	CHECK(!code_encode_jump(from, from + HP_JUMP_SIZE - 0x80000001ull, jump),
	      "one past backward reach refused");
	CHECK(!code_encode_jump(from, from + 0x100000000ull, jump), "4 GiB forward refused");
	CHECK(!code_encode_jump(0x7f0000000000, 0x400000, jump), "far backward refused");
	{
		static const unsigned char not_jump[HP_JUMP_SIZE] = { 0xe8, 0, 0, 0, 0 };

		CHECK(!code_decode_jump(from, not_jump, &to), "call is not decoded as jmp");
	}
}

static void test_indirect_jump_codec(void)
{
	unsigned char jump[HP_INDIRECT_JUMP_SIZE];
	int32_t relative;

	CHECK(code_encode_indirect_jump(0x1000, 0x2006, jump), "near pointer encodes");
	memcpy(&relative, jump + 2, sizeof(relative));
	CHECK(jump[0] == 0xff && jump[1] == 0x25, "jmp *disp32(%rip) opcode");
	CHECK(relative == 0x2006 - 0x1006, "displacement counts from the next instruction");
	CHECK(!code_encode_indirect_jump(0x1000, 0x1000 + (3ull << 31), jump),
	      "a pointer 6 GiB away is refused");
}

static void test_find_syscall(void)
{
	/* mov eax,60; syscall; ret */
	static const unsigned char code[] = { 0xb8, 0x3c, 0x00, 0x00, 0x00, 0x0f, 0x05, 0xc3 };
	/* mov eax,60; ret */
	static const unsigned char none[] = { 0xb8, 0x3c, 0x00, 0x00, 0x00, 0xc3 };
	uint64_t found = 0;

	CHECK(code_find_syscall(code, sizeof(code), BASE, &found) == HP_OK, "syscall found");
	CHECK(found == BASE + 5, "syscall at +5");
	CHECK(code_find_syscall(none, sizeof(none), BASE, &found) == HP_MISFIT,
	      "no syscall -> HP_MISFIT");
}

int main(void)
{
	test_normal_prologue();
	test_endbr64();
	test_five_bytes_only();
	test_too_short();
	test_branch_into_jump();
	test_branch_outside_jump();
	test_undecodable();
	test_rip_relative();
	test_jump_codec();
	test_indirect_jump_codec();
	test_find_syscall();
	return check_report();
}
