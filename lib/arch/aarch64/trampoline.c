/* trampoline.c - where an arm64 trampoline page can go and what a slot
 * holds.  A `b` reaches ±128 MiB; a patch loaded by dlopen may land
 * farther from the code it replaces, so the jump goes to a slot in a page
 * we map near that code, and the slot jumps on with a 64-bit address:
 *
 *     slot + 0:  ldr x16, .+8      (58000050)
 *     slot + 4:  br x16            (d61f0200)
 *     slot + 8:  <8-byte replacement address, 8-aligned as slots are 16>
 *
 * `br x16` lands on a replacement's `bti c` or `paciasp`, which BTI accepts
 * for a branch through x16.  Pure: it computes from a maps snapshot;
 * mapping and filling happen in apply.c. */
#include <string.h>

#include "arch/arch.h"

#define REACH ((uint64_t)0x07ff0000)	/* a little under 128 MiB, for safety */
#define LOWEST_ADDRESS ((uint64_t)0x10000)
#define HIGHEST_ADDRESS ((uint64_t)0xfffffffff000)	/* 48-bit user addresses */

void trampoline_encode_slot(uint64_t to, unsigned char slot[HP_TRAMPOLINE_SLOT])
{
	static const uint32_t code[2] = { 0x58000050, 0xd61f0200 };

	_Static_assert(sizeof(code) == HP_TRAMPOLINE_POINTER, "the address follows the code");
	memcpy(slot, code, sizeof(code));
	memcpy(slot + HP_TRAMPOLINE_POINTER, &to, sizeof(to));
}

static bool gap_is_free(const struct hp_maps *maps, uint64_t start, uint64_t size)
{
	for (size_t i = 0; i < maps->count; i++)
		if (start < maps->items[i].end && maps->items[i].start < start + size)
			return false;
	return true;
}

static bool try_candidate(const struct hp_maps *maps, uint64_t candidate, uint64_t window_low,
			  uint64_t window_high, uint64_t size, uint64_t *address)
{
	if (candidate < window_low || candidate + size > window_high)
		return false;
	if (!gap_is_free(maps, candidate, size))
		return false;
	*address = candidate;
	return true;
}

bool trampoline_find_gap(const struct hp_maps *maps, uint64_t low, uint64_t high, uint64_t size,
			 uint64_t *address)
{
	/* Every byte of the gap must be reachable from every jump in [low, high). */
	uint64_t window_low = high > REACH ? high - REACH : 0;
	uint64_t window_high = low + REACH;

	if (window_low < LOWEST_ADDRESS)
		window_low = LOWEST_ADDRESS;
	if (window_high > HIGHEST_ADDRESS)
		window_high = HIGHEST_ADDRESS;
	size = (size + HP_PAGE_SIZE - 1) & ~(uint64_t)(HP_PAGE_SIZE - 1);
	/* Candidates: a page below or above each mapping (a guard page apart),
	 * walking the mappings in address order. */
	for (size_t i = 0; i < maps->count; i++) {
		const struct hp_mapping *mapping = &maps->items[i];
		/* Keep clear of the room the heap and the stack grow into. */
		bool grows = strcmp(mapping->path, "[heap]") == 0 ||
			     strcmp(mapping->path, "[stack]") == 0;

		if (!grows && mapping->start >= size + HP_PAGE_SIZE &&
		    try_candidate(maps, mapping->start - size - HP_PAGE_SIZE, window_low, window_high,
				  size, address))
			return true;
		if (!grows && try_candidate(maps, mapping->end + HP_PAGE_SIZE, window_low,
					    window_high, size, address))
			return true;
	}
	return false;
}
