/* fuzz_proc_maps.c - libFuzzer harness for proc_maps_parse: any bytes as the
 * text of /proc/PID/maps, whose paths the target chooses.  Checks what a
 * parse promises its callers; reads no real /proc file. */
#include <string.h>

#include "fuzz.h"
#include "common/proc_maps.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* Not NUL-terminated: the parser is given a length and must keep to it. */
	char *text = (char *)fuzz_copy(data, size);
	struct hp_maps maps = { 0 };
	struct hp_error error = { 0 };

	if (proc_maps_parse(text, size, &maps, &error) == HP_OK) {
		FUZZ_REQUIRE(maps.count == 0 || maps.items != NULL);
		for (size_t i = 0; i < maps.count; i++) {
			const struct hp_mapping *mapping = &maps.items[i];

			FUZZ_REQUIRE(mapping->start < mapping->end);
			FUZZ_REQUIRE(mapping->path != NULL && !strchr(mapping->path, '\n'));
			FUZZ_REQUIRE(proc_maps_find(&maps, mapping->start) != NULL);
		}
	} else {
		/* A failure leaves nothing to release and says what went wrong. */
		FUZZ_REQUIRE(maps.count == 0 && maps.items == NULL);
		FUZZ_REQUIRE(error.message[0] != '\0');
	}
	proc_maps_release(&maps);
	free(text);
	return 0;
}
