/* return_sites_test.c - code_return_sites on hand-assembled byte sequences:
 * every kind of call, bytes that are no instruction, and a call that ends
 * the code (a noreturn callee). */
#include <stdint.h>

#include "check.h"
#include "arch/arch.h"

#if !defined(__x86_64__)
#error "return_sites_test tests x86-64 code: the Makefile builds it only for x86-64"
#endif

#define BASE ((uint64_t)0x401000)

static void test_calls(void)
{
	/* 0: push rbx; 1: call rel32; 6: call *rax; 8: call *0x10(%rip);
	 * 14: mov eax,1; 19: pop rbx; 20: ret */
	static const unsigned char code[] = { 0x53, 0xe8, 0x00, 0x00, 0x00, 0x00, 0xff, 0xd0,
					      0xff, 0x15, 0x10, 0x00, 0x00, 0x00, 0xb8, 0x01,
					      0x00, 0x00, 0x00, 0x5b, 0xc3 };
	uint64_t sites[sizeof(code) / 2 + 1];
	size_t count = code_return_sites(code, sizeof(code), BASE, sites, HP_ARRAY_SIZE(sites));

	CHECK(count == 3, "three calls, three return sites");
	CHECK(count >= 3 && sites[0] == BASE + 6, "after call rel32");
	CHECK(count >= 3 && sites[1] == BASE + 8, "after call *rax");
	CHECK(count >= 3 && sites[2] == BASE + 14, "after call *disp(%rip)");
}

static void test_no_calls(void)
{
	/* push rbp; mov rbp,rsp; jmp rel8 +0; pop rbp; ret: a jump is no call */
	static const unsigned char code[] = { 0x55, 0x48, 0x89, 0xe5, 0xeb, 0x00, 0x5d, 0xc3 };
	uint64_t sites[sizeof(code) / 2 + 1];

	CHECK(code_return_sites(code, sizeof(code), BASE, sites, HP_ARRAY_SIZE(sites)) == 0,
	      "a leaf has no return site");
}

static void test_garbage_then_call(void)
{
	/* 0: 0x06 (no instruction in 64-bit mode); 1: call *rbx; 3: ret */
	static const unsigned char code[] = { 0x06, 0xff, 0xd3, 0xc3 };
	uint64_t sites[sizeof(code) / 2 + 1];
	size_t count = code_return_sites(code, sizeof(code), BASE, sites, HP_ARRAY_SIZE(sites));

	CHECK(count == 1 && sites[0] == BASE + 3, "a byte that is no instruction is stepped over");
}

static void test_call_at_the_end(void)
{
	/* 0: mov edi,1; 5: call rel32 (exit): nothing returns to +10, where the
	 * next function starts */
	static const unsigned char code[] = { 0xbf, 0x01, 0x00, 0x00, 0x00,
					      0xe8, 0x00, 0x00, 0x00, 0x00 };
	uint64_t sites[sizeof(code) / 2 + 1];

	CHECK(code_return_sites(code, sizeof(code), BASE, sites, HP_ARRAY_SIZE(sites)) == 0,
	      "a call that ends the code has no return site in it");
}

static void test_capacity(void)
{
	/* call *rax four times */
	static const unsigned char code[] = { 0xff, 0xd0, 0xff, 0xd0, 0xff, 0xd0, 0xff, 0xd0, 0xc3 };
	uint64_t sites[2];

	CHECK(code_return_sites(code, sizeof(code), BASE, sites, HP_ARRAY_SIZE(sites)) == 2,
	      "never more than the capacity");
}

int main(void)
{
	test_calls();
	test_no_calls();
	test_garbage_then_call();
	test_call_at_the_end();
	test_capacity();
	return check_report();
}
