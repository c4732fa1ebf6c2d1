/* tls_lib_fix.c - for targets/tls_lib_threads: lib_bump of libtlscount.so
 * adds 100 to the calling thread's own lib_count (file-local) and
 * lib_total (exported), both thread-local variables of the library. */
#include <hotpatch.h>

extern __thread int lib_count, lib_total;
HOTPATCH_THREAD_SYMBOL_IN("libtlscount.so", lib_count);
HOTPATCH_THREAD_SYMBOL_IN("libtlscount.so", lib_total);

static int lib_bump_fixed(int *total)
{
	lib_count += 100;
	lib_total += 100;
	*total = lib_total;
	return lib_count;
}

HOTPATCH_REPLACE_IN("libtlscount.so", lib_bump, lib_bump_fixed);
