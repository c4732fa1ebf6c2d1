/* debug_file.c - a stripped object's symbols from its separate debug file,
 * found by build-id as Debian's -dbgsym packages install it
 * (/usr/lib/debug/.build-id/xx/rest.debug).  The file is used only when it
 * is trusted like a patch (its addresses decide where hotpatch writes) and
 * carries the object's very build-id.  Absent or unusable is not an error:
 * lookups that need the symbols say which file is missing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

/* The test build alone lets HOTPATCH_DEBUG_DIR move it. */
static const char *debug_directory(void)
{
#ifdef HP_FAULT_INJECTION
	const char *moved = getenv("HOTPATCH_DEBUG_DIR");

	if (moved && moved[0] == '/')
		return moved;
#endif
	return "/usr/lib/debug/.build-id";
}

void debug_file_path(const struct hp_elf_info *info, char *path, size_t size)
{
	int length = snprintf(path, size, "%s/", debug_directory());

	for (size_t i = 0; i < info->build_id_size && length > 0 && (size_t)length < size; i++)
		length += snprintf(path + length, size - (size_t)length, i == 1 ? "/%02x" : "%02x",
				   info->build_id[i]);
	if (length > 0 && (size_t)length < size)
		snprintf(path + length, size - (size_t)length, ".debug");
}

bool debug_file_take_symbols(struct hp_elf_info *info, const struct trust_owners *owners)
{
	struct trust_file file = TRUST_FILE_INIT;
	struct hp_elf_info debug = { 0 };
	struct hp_error ignored = { 0 };
	char path[HP_PATH_MAX];
	bool taken = false;

	if (info->has_symtab || info->build_id_size < 2)
		return false;
	debug_file_path(info, path, sizeof(path));
	if (access(path, F_OK) == 0 &&
	    trust_open(path, "debug file", owners, &file, &ignored) == HP_OK && file.fd >= 0 &&
	    elf_info_read_fd(file.fd, path, &debug, &ignored) == HP_OK &&
	    debug.build_id_size == info->build_id_size &&
	    memcmp(debug.build_id, info->build_id, debug.build_id_size) == 0 &&
	    debug.has_symtab && elf_info_take_symbols(info, &debug, &ignored) == HP_OK)
		taken = true;
	elf_info_release(&debug);
	trust_close(&file);
	return taken;
}
