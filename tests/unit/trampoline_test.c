/* trampoline_test.c - finding a page near the jump site and encoding a slot. */
#include <string.h>

#include "check.h"
#include "arch/arch.h"

#if !defined(__x86_64__)
#error "trampoline_test tests x86-64 code: the Makefile builds it only for x86-64"
#endif

#define GIB ((uint64_t)1 << 30)

static struct hp_mapping mapping(uint64_t start, uint64_t end, const char *path)
{
	struct hp_mapping m = { 0 };

	m.start = start;
	m.end = end;
	m.readable = true;
	m.path = (char *)path;
	return m;
}

static bool free_in(const struct hp_maps *maps, uint64_t start, uint64_t size)
{
	for (size_t i = 0; i < maps->count; i++)
		if (start < maps->items[i].end && maps->items[i].start < start + size)
			return false;
	return true;
}

/* Every byte of the gap reachable by a rel32 jump from every site in [low, high). */
static bool reachable(uint64_t low, uint64_t high, uint64_t gap, uint64_t size)
{
	int64_t forward = (int64_t)(gap + size - 1) - (int64_t)(low + HP_JUMP_SIZE);
	int64_t backward = (int64_t)gap - (int64_t)(high - 1 + HP_JUMP_SIZE);

	return forward <= INT32_MAX && backward >= INT32_MIN;
}

static void test_gap_found(void)
{
	struct hp_mapping items[] = {
		mapping(0x555555554000, 0x555555556000, "/usr/bin/target"),
		mapping(0x555555556000, 0x555555558000, "/usr/bin/target"),
		mapping(0x555555560000, 0x555555581000, "[heap]"),
		mapping(0x7f0000000000, 0x7f0000200000, "/usr/lib/libc.so.6"),
		mapping(0x7ffc00000000, 0x7ffc00021000, "[stack]"),
	};
	struct hp_maps maps = { HP_ARRAY_SIZE(items), items };
	const uint64_t low = 0x555555554100, high = 0x555555554180;
	uint64_t gap = 0;

	CHECK(trampoline_find_gap(&maps, low, high, HP_PAGE_SIZE, &gap), "gap found");
	CHECK(gap % HP_PAGE_SIZE == 0, "gap page aligned");
	CHECK(free_in(&maps, gap, HP_PAGE_SIZE), "gap is free");
	CHECK(reachable(low, high, gap, HP_PAGE_SIZE), "gap within rel32 reach");

	CHECK(trampoline_find_gap(&maps, low, high, 100, &gap), "small size rounds up");
	CHECK(gap % HP_PAGE_SIZE == 0 && free_in(&maps, gap, HP_PAGE_SIZE),
	      "rounded gap aligned and free");

	CHECK(trampoline_find_gap(&maps, low, high, 3 * HP_PAGE_SIZE, &gap), "3-page gap found");
	CHECK(free_in(&maps, gap, 3 * HP_PAGE_SIZE) && reachable(low, high, gap, 3 * HP_PAGE_SIZE),
	      "3-page gap free and reachable");
}

static void test_gap_skips_neighbours(void)
{
	/* The page just below the code is taken and so is the page just above
	 * it: the gap must be elsewhere and still free. */
	struct hp_mapping items[] = {
		mapping(0x555555550000, 0x555555553000, "/usr/bin/below"),
		mapping(0x555555554000, 0x555555556000, "/usr/bin/target"),
		mapping(0x555555557000, 0x555555558000, "/usr/bin/above"),
	};
	struct hp_maps maps = { HP_ARRAY_SIZE(items), items };
	const uint64_t low = 0x555555554100, high = 0x555555554105;
	uint64_t gap = 0;

	CHECK(trampoline_find_gap(&maps, low, high, HP_PAGE_SIZE, &gap), "crowded: gap found");
	CHECK(free_in(&maps, gap, HP_PAGE_SIZE), "crowded: gap is free");
	CHECK(reachable(low, high, gap, HP_PAGE_SIZE), "crowded: gap reachable");
}

static void test_gap_full(void)
{
	const uint64_t low = 0x555555554100, high = 0x555555554105;
	uint64_t gap = 0;

	{
		/* One mapping covering the whole ±3 GiB around the site. */
		struct hp_mapping items[] = {
			mapping(low - 3 * GIB, high + 3 * GIB, "/usr/bin/huge"),
		};
		struct hp_maps maps = { HP_ARRAY_SIZE(items), items };

		CHECK(!trampoline_find_gap(&maps, low, high, HP_PAGE_SIZE, &gap),
		      "fully covered window: no gap");
	}
	{
		/* Two touching mappings tiling the window. */
		struct hp_mapping items[] = {
			mapping(low - 3 * GIB, 0x555555600000, "/a"),
			mapping(0x555555600000, high + 3 * GIB, "/b"),
		};
		struct hp_maps maps = { HP_ARRAY_SIZE(items), items };

		CHECK(!trampoline_find_gap(&maps, low, high, HP_PAGE_SIZE, &gap),
		      "tiled window: no gap");
	}
	{
		/* Free room exists only beyond reach. */
		struct hp_mapping items[] = {
			mapping(low - 2 * GIB - 0x100000, high + 2 * GIB + 0x100000, "/big"),
		};
		struct hp_maps maps = { HP_ARRAY_SIZE(items), items };

		CHECK(!trampoline_find_gap(&maps, low, high, HP_PAGE_SIZE, &gap),
		      "room only out of reach: no gap");
	}
}

static void test_slot(void)
{
	unsigned char slot[HP_TRAMPOLINE_SLOT];
	static const unsigned char head[6] = { 0xff, 0x25, 0, 0, 0, 0 };
	const uint64_t to = 0x7f1234567890;
	uint64_t stored;

	trampoline_encode_slot(to, slot);
	CHECK(memcmp(slot, head, sizeof(head)) == 0, "slot starts ff 25 00 00 00 00");
	memcpy(&stored, slot + 6, sizeof(stored));
	CHECK(stored == to, "slot holds the 8-byte address");
	CHECK(slot[6] == 0x90 && slot[7] == 0x78 && slot[13] == 0x00, "address is little endian");
	CHECK(slot[14] == 0xcc && slot[15] == 0xcc, "slot padded with int3");
}

int main(void)
{
	test_gap_found();
	test_gap_skips_neighbours();
	test_gap_full();
	test_slot();
	return check_report();
}
