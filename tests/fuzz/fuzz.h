/* fuzz.h - what the libFuzzer harnesses share: the entry point's prototype
 * and a check that aborts (a crash libFuzzer saves) when a parser breaks a
 * promise it makes to its callers.  Memory errors are ASan's job. */
#ifndef HOTPATCH_FUZZ_H
#define HOTPATCH_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_REQUIRE(cond)                                                               \
	do {                                                                             \
		if (!(cond)) {                                                           \
			fprintf(stderr, "%s:%d: broken promise: %s\n", __FILE__, __LINE__, \
				#cond);                                                  \
			abort();                                                         \
		}                                                                        \
	} while (0)

/* A private copy of the input, exactly `size` bytes (so ASan sees any read
 * past the end; one byte for an empty input) and writable, as the parsers' callers hand them. */
static inline unsigned char *fuzz_copy(const uint8_t *data, size_t size)
{
	unsigned char *copy = malloc(size ? size : 1);

	FUZZ_REQUIRE(copy != NULL);
	if (size > 0)
		memcpy(copy, data, size);
	return copy;
}

#endif /* HOTPATCH_FUZZ_H */
