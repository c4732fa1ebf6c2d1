/* once.c - starts, calls compute() for N = 1..3, prints, exits 0: a process
 * whose whole life a test can compare with and without the preloaded loader
 * (loader.bats), and the program the loader's start-up cost is measured on
 * (bench/loader.sh, with the argument "quiet": no output at all).
 *   compute N -> R      original: R = 2 * N
 *   preloaded NAME      with the argument "preloaded": each libhotpatch-loader
 *                       object mapped (a test's proof that it was preloaded) */
#include "target.h"

#include <link.h>
#include <stdbool.h>
#include <string.h>

int compute_calls;

/* Long enough for a jump (a bare `2 * value` is four bytes). */
__attribute__((noipa)) int compute(int value)
{
	compute_calls++;
	return 2 * value;
}

static int print_loader(struct dl_phdr_info *info, size_t size, void *data)
{
	const char *name = strrchr(info->dlpi_name, '/');

	(void)size;
	(void)data;
	name = name ? name + 1 : info->dlpi_name;
	if (strncmp(name, "libhotpatch-loader", 18) == 0)
		printf("preloaded %s\n", name);
	return 0;
}

int main(int argc, char **argv)
{
	bool quiet = argc > 1 && strcmp(argv[1], "quiet") == 0;

	for (int i = 1; i <= 3; i++) {
		int computed = compute(i);

		if (!quiet)
			printf("compute %d -> %d\n", i, computed);
	}
	if (argc > 1 && strcmp(argv[1], "preloaded") == 0)
		dl_iterate_phdr(print_loader, NULL);
	return 0;
}
