/* trampoline_gap.c - where a trampoline page can go, for every processor:
 * a free gap near the code a patch replaces, within a direct jump of all
 * of it.  Only the bounds differ between processors (arch_types.h: the
 * jump's reach, the lowest and highest user addresses); the slot a jump
 * lands in is each processor's own (NAME/trampoline.c).  Pure: it
 * computes from a maps snapshot. */
#include <string.h>

#include "arch/arch.h"

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
	uint64_t window_low = high > HP_GAP_REACH ? high - HP_GAP_REACH : 0;
	uint64_t window_high = low + HP_GAP_REACH;

	if (window_low < HP_USER_LOWEST)
		window_low = HP_USER_LOWEST;
	if (window_high > HP_USER_HIGHEST)
		window_high = HP_USER_HIGHEST;
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
