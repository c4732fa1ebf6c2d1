/* late_library.c - loads a library with dlopen only when told to, as a
 * plugin host does: every 5 ms it prints "waiting N" until the file argv[1]
 * exists, then dlopens argv[2] (a copy of libdemo.so) and from then on
 * calls its demo_value().  Output lines:
 *   ready pid=PID
 *   waiting N
 *   loaded LIBRARY
 *   demo N -> R        original: R = N + 7 */
#include <dlfcn.h>

#include "target.h"

int main(int argc, char **argv)
{
	int (*demo_value)(int) = NULL;

	if (argc != 3) {
		fprintf(stderr, "usage: late_library TRIGGER LIBRARY\n");
		return 2;
	}
	target_start();
	printf("ready pid=%d\n", (int)getpid());
	for (int i = 1;; i++) {
		if (!demo_value && access(argv[1], F_OK) == 0) {
			void *library = dlopen(argv[2], RTLD_NOW);

			if (!library || !(demo_value = (int (*)(int))dlsym(library, "demo_value"))) {
				fprintf(stderr, "cannot load %s: %s\n", argv[2], dlerror());
				return 1;
			}
			printf("loaded %s\n", argv[2]);
		}
		if (demo_value)
			printf("demo %d -> %d\n", i, demo_value(i));
		else
			printf("waiting %d\n", i);
		sleep_ms(5);
	}
}
