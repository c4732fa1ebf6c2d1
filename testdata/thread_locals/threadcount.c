/* threadcount.c - libthreadcount.so, for counters.c and dlopen_counter.c:
 * lib_count counts the calling thread's calls in a file-local thread-local
 * variable and in an exported one (global-dynamic and local-dynamic code
 * in the library itself; threadcount.diff makes it add 100 to each).
 * lib_seen is counted by the program. */
static __thread int lib_calls;
__thread int lib_hits;
__thread int lib_seen;

__attribute__((noipa, noinline)) int lib_count(int *hits)
{
	lib_calls += 1;
	lib_hits += 1;
	*hits = lib_hits;
	return lib_calls;
}
