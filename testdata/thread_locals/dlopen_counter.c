/* dlopen_counter.c - libthreadcount.so loaded with dlopen (its path is the
 * first argument), so the dynamic linker gives its thread-local variables
 * storage of their own in each thread, not at a fixed offset from the
 * thread pointer.  Each thread prints, every 5 ms,
 *   thread T: counts L/H
 * its own calls of lib_count() (+1 each). */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static int (*lib_count)(int *hits);

static void *run(void *argument)
{
	const struct timespec pause = { 0, 5 * 1000 * 1000 };
	long id = (long)argument;

	for (;;) {
		int hits = 0, lib_calls = lib_count(&hits);

		printf("thread %ld: counts %d/%d\n", id, lib_calls, hits);
		nanosleep(&pause, NULL);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	const struct timespec pause = { 0, 5 * 1000 * 1000 };
	void *library = argc == 2 ? dlopen(argv[1], RTLD_NOW) : NULL;
	pthread_t thread;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!library || !(lib_count = (int (*)(int *))dlsym(library, "lib_count"))) {
		fprintf(stderr, "usage: dlopen_counter LIBTHREADCOUNT.so (%s)\n", dlerror());
		return 2;
	}
	pthread_create(&thread, NULL, run, (void *)1L);
	printf("ready pid=%d\n", (int)getpid());
	for (;;)
		nanosleep(&pause, NULL);
}
