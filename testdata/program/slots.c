/* slots.c - a fixed table of slots: the first few are in use and count
 * their hits, the rest are free.  The table is file-local and changes every
 * tick, so a fixed slot_hits() that reads it must read the service's own
 * table, not a copy of its initial contents. */
#include <stdlib.h>

#include "service.h"

#define SLOTS 8

static struct slot {
	int key;
	long hits;
} slots[SLOTS] = {
	{ 100, 10 },
	{ 101, 20 },
	{ 102, 30 },
	{ 103, 40 },
};

/* Slots in use: the first `used` ones. */
static int used = 4;

/* SERVICE_SLOTS=N puts only the first N slots in use. */
__attribute__((constructor)) static void slots_init(void)
{
	const char *wanted = getenv("SERVICE_SLOTS");

	if (wanted && atoi(wanted) > 0 && atoi(wanted) < used)
		used = atoi(wanted);
}

/* 1 if `index` is a slot of the table (in use or not). */
static __attribute__((noinline)) int check(int index)
{
	return index >= 0 && index < SLOTS;
}

/* Every slot in use is hit once per tick. */
void slots_tick(void)
{
	for (int i = 0; i < used; i++)
		slots[i].hits++;
}

/* The hits of slot `index`, or -1 if there is no such slot in use.
 * Bug: it checks the index against the table, not against the slots in
 * use, and reports a free slot's 0 (bounds_check.diff). */
long slot_hits(int index)
{
	if (!check(index))
		return -1;
	return slots[index].hits;
}
