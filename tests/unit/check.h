/* check.h - a tiny assertion helper for the unit tests.  Each test program
 * includes it once, calls CHECK() as often as it likes and ends main with
 * `return check_report();`, which prints "N passed, N failed". */
#ifndef HOTPATCH_UNIT_CHECK_H
#define HOTPATCH_UNIT_CHECK_H

#include <stdio.h>

static unsigned check_passed, check_failed;

#define CHECK(cond, description)                                                    \
	do {                                                                        \
		if (cond) {                                                         \
			check_passed++;                                             \
		} else {                                                            \
			check_failed++;                                             \
			fprintf(stderr, "%s:%d: FAILED: %s (%s)\n", __FILE__, __LINE__, \
				(description), #cond);                              \
		}                                                                   \
	} while (0)

/* Prints the final line; returns the process exit status. */
static inline int check_report(void)
{
	printf("%u passed, %u failed\n", check_passed, check_failed);
	fflush(stdout);
	return check_failed ? 1 : 0;
}

#endif /* HOTPATCH_UNIT_CHECK_H */
