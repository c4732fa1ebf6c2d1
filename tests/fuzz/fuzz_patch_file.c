/* fuzz_patch_file.c - libFuzzer harness for patch_file_parse: any bytes as a
 * patch shared object, the file an operator is handed.  Checks what a parse
 * promises apply and check; reads no file and loads nothing. */
#include <string.h>

#include "fuzz.h"
#include "patch/patch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hp_patch_file patch;
	struct hp_error error = { 0 };

	/* As patch_file_read leaves it: the bytes are malloc'd and owned by
	 * `patch`, so patch_file_release frees them, whatever the outcome. */
	memset(&patch, 0, sizeof(patch));
	hp_copy_string(patch.path, sizeof(patch.path), "fuzz.so");
	patch.bytes = fuzz_copy(data, size);
	patch.size = size;
	if (patch_file_parse(&patch, &error) == HP_OK) {
		FUZZ_REQUIRE(patch.count > 0 && patch.replacements != NULL);
		FUZZ_REQUIRE(patch_name_is_valid(patch.name));
		for (size_t i = 0; i < patch.count; i++) {
			const struct hp_patch_replacement *replacement = &patch.replacements[i];

			FUZZ_REQUIRE(memchr(replacement->object, '\0', sizeof(replacement->object)));
			FUZZ_REQUIRE(memchr(replacement->function, '\0',
					    sizeof(replacement->function)));
			FUZZ_REQUIRE(replacement->function[0] != '\0');
			FUZZ_REQUIRE(memchr(replacement->file, '\0', sizeof(replacement->file)));
		}
		for (size_t i = 0; i < patch.reference_count; i++) {
			const struct hp_patch_reference *reference = &patch.references[i];

			/* Every declared symbol has a name and an alias; every place
			 * for it is 8 bytes that the patch's image holds. */
			FUZZ_REQUIRE(reference->symbol[0] != '\0' && reference->alias[0] != '\0');
			FUZZ_REQUIRE(reference->site_count == 0 || reference->sites != NULL);
			for (size_t s = 0; s < reference->site_count; s++)
				FUZZ_REQUIRE(reference->sites[s].vaddr + 8 > reference->sites[s].vaddr);
		}
		for (size_t i = 0; i < patch.pin_count; i++) {
			size_t length = strlen(patch.pins[i].build_id);

			FUZZ_REQUIRE(length >= 2 && length % 2 == 0 &&
				     strspn(patch.pins[i].build_id, "0123456789abcdef") == length);
		}
		/* What list shows operators: printable, one line. */
		for (const char *c = patch.description; *c; c++)
			FUZZ_REQUIRE(*c >= 0x20 && *c < 0x7f);
		for (const char *c = patch.ids; *c; c++)
			FUZZ_REQUIRE(*c >= 0x20 && *c < 0x7f);
	} else {
		FUZZ_REQUIRE(error.message[0] != '\0');
	}
	/* The bytes checked are the bytes later loaded into the target:
	 * parsing must leave them exactly as read. */
	FUZZ_REQUIRE(patch.size == size && (size == 0 || memcmp(patch.bytes, data, size) == 0));
	patch_file_release(&patch);
	return 0;
}
