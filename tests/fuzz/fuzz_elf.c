/* fuzz_elf.c - libFuzzer harness for elf_info_read_memory: any bytes as one
 * of the target's ELF objects (executable or library), which a hostile
 * target can make up.  Checks what a read promises; opens no file. */
#include <string.h>

#include <elf.h>

#include "fuzz.h"
#include "symbols/symbols.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char *bytes = fuzz_copy(data, size);
	struct hp_elf_info info = { 0 };
	struct hp_error error = { 0 };

	if (elf_info_read_memory(bytes, size, "fuzz", &info, &error) == HP_OK) {
		FUZZ_REQUIRE(info.build_id_size <= sizeof(info.build_id));
		FUZZ_REQUIRE(info.symbol_count == 0 || info.symbols != NULL);
		for (size_t i = 0; i < info.symbol_count; i++) {
			const struct hp_symbol *symbol = &info.symbols[i];

			FUZZ_REQUIRE(symbol->name != NULL && symbol->name[0] != '\0');
			FUZZ_REQUIRE(symbol->type == STT_FUNC || symbol->type == STT_GNU_IFUNC ||
				     symbol->type == STT_OBJECT || symbol->type == STT_TLS ||
				     symbol->type == STT_NOTYPE);
			/* A source file only for a local symbol, and one that exists. */
			FUZZ_REQUIRE(symbol->file == 0 || symbol->bind == STB_LOCAL);
			FUZZ_REQUIRE(symbol->file <= info.file_count);
			FUZZ_REQUIRE(symbol->file == 0 || elf_symbol_file(&info, symbol) != NULL);
		}
		for (size_t i = 0; i < info.file_count; i++)
			FUZZ_REQUIRE(info.files[i] != NULL);
	} else {
		FUZZ_REQUIRE(info.symbol_count == 0 && info.symbols == NULL && !info.soname &&
			     info.file_count == 0 && info.files == NULL);
		FUZZ_REQUIRE(error.message[0] != '\0');
	}
	/* libelf reads the image in place; it must never write to it. */
	FUZZ_REQUIRE(size == 0 || memcmp(bytes, data, size) == 0);
	elf_info_release(&info);
	free(bytes);
	return 0;
}
