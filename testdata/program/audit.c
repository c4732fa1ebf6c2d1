/* audit.c - remembers the size of the request audited last.  remember()
 * uses few registers: compiled with -fipa-ra (on at -O2), its caller keeps
 * a value in a register that the call would otherwise clobber
 * (register_use.diff changes only remember()). */
#include "service.h"

static long audited, last_size;

/* Records `size`; the size recorded before it (0 the first time).  Bug: the
 * size without its header (register_use.diff). */
static __attribute__((noinline)) long remember(long size)
{
	long previous = last_size;

	last_size = size;
	audited++;
	return previous;
}

/* The size audited before `size` plus `base` bytes for each of `count` parts. */
long audit_request(long size, long base, long count)
{
	long previous = remember(size);

	return previous + base * count;
}
