/* tlscount.c - libtlscount.so, for targets/tls_lib_threads: lib_bump counts
 * the calling thread's calls in a file-local thread-local variable and in
 * an exported one (tls_lib_fix.so makes it add 100 to each). */
static __thread int lib_count;
__thread int lib_total;

__attribute__((noipa, noinline)) int lib_bump(int *total)
{
	lib_count += 1;
	lib_total += 1;
	*total = lib_total;
	return lib_count;
}
