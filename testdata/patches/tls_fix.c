/* tls_fix.c - for targets/tls_threads: bump adds 100 to the calling
 * thread's own `count`, a file-local thread-local variable of the target,
 * reached through HOTPATCH_THREAD_SYMBOL (the general-dynamic model of -fPIC:
 * __tls_get_addr with the module id and offset hotpatch fills in). */
#include <hotpatch.h>

extern __thread int count;
HOTPATCH_THREAD_SYMBOL(count);

static int bump_fixed(void)
{
	count += 100;
	return count;
}

HOTPATCH_REPLACE(bump, bump_fixed);
