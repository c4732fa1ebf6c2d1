/* store_index.c - the store's patch files, read as apply reads a patch,
 * and STORE/index: the few bytes a process starting reads to learn which
 * installed patches may fit it (the loader, loader/preload.c), without
 * parsing any patch.  The files stay the record; the index is rewritten
 * from them by every install and uninstall, and the loader checks the
 * patch file itself before it applies anything. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "machine/machine.h"
#include "trust/trust.h"
#include "engine.h"

#define INDEX_FILE "index"
/* What the loader understands; it ignores an index of another version. */
#define INDEX_HEADER "hotpatch-index 1\n"

static bool is_patch_file_name(const char *name)
{
	size_t length = strlen(name);

	return name[0] != '.' && length > 3 && strcmp(name + length - 3, ".so") == 0;
}

static int patch_entry(const struct dirent *entry)
{
	return is_patch_file_name(entry->d_name);
}

int store_list(char ***names, size_t *count, struct hp_error *error)
{
	struct dirent **entries = NULL;
	int found = scandir(store_directory(), &entries, patch_entry, alphasort);
	int status = HP_OK;

	*names = NULL;
	*count = 0;
	if (found <= 0) {	/* no store yet, or an empty one: nothing installed */
		free(entries);
		return HP_OK;
	}
	*names = calloc((size_t)found + 1, sizeof(**names));
	for (int i = 0; i < found; i++) {
		if (*names && !((*names)[i] = strdup(entries[i]->d_name)))
			status = HP_FAILED;
		free(entries[i]);
	}
	free(entries);
	if (!*names || status != HP_OK) {
		store_list_release(*names, (size_t)found);
		*names = NULL;
		return hp_fail(error, HP_FAILED, "out of memory reading the store");
	}
	*count = (size_t)found;
	return HP_OK;
}

void store_list_release(char **names, size_t count)
{
	for (size_t i = 0; names && i < count; i++)
		free(names[i]);
	free(names);
}

void store_read_installed(const char *file_name, struct hp_installed_report *installed,
			  struct hp_patch_file *patch, bool *usable)
{
	struct hp_request request = { 0 };
	struct hp_patch_identity identity;
	struct hp_error error = { 0 };

	snprintf(installed->path, sizeof(installed->path), "%s/%s", store_directory(), file_name);
	hp_copy_string(installed->name, sizeof(installed->name), file_name);
	installed->name[strlen(installed->name) - 3] = '\0';
	request.patch_path = installed->path;
	*usable = patch_file_read(&request, patch, &identity, &error) == HP_OK;
	/* The file name is the record's key: uninstall finds it by name. */
	if (*usable && strcmp(patch->name, installed->name) != 0) {
		hp_fail_as(&error, HP_KIND_BAD_PATCH, "store file %s holds the patch %s, not %s",
			   installed->path, patch->name, installed->name);
		*usable = false;
	}
	hp_copy_string(installed->sha256, sizeof(installed->sha256), identity.sha256);
	if (*usable) {
		hp_copy_string(installed->name, sizeof(installed->name), patch->name);
		hp_copy_string(installed->ids, sizeof(installed->ids), patch->ids);
		*usable = store_exclusions_read(patch->name, 0, installed->excluded,
						sizeof(installed->excluded), &error) == HP_OK;
	}
	if (!*usable) {
		installed->unreadable = true;
		hp_copy_string(installed->problem, sizeof(installed->problem), error.message);
		hp_copy_string(installed->problem_kind, sizeof(installed->problem_kind),
			       hp_error_kind_of(&error));
	}
	hp_error_release(&error);
}

/* "NAME BUILDID...\n" appended to `text`; false when out of memory. */
static bool index_line(const struct hp_patch_file *patch, char **text, size_t *size)
{
	size_t needed = strlen(patch->name) + 2;
	char *larger;

	for (size_t i = 0; i < patch->pin_count; i++)
		needed += strlen(patch->pins[i].build_id) + 1;
	larger = realloc(*text, *size + needed + 1);
	if (!larger)
		return false;
	*text = larger;
	*size += (size_t)sprintf(larger + *size, "%s", patch->name);
	for (size_t i = 0; i < patch->pin_count; i++)
		*size += (size_t)sprintf(larger + *size, " %s", patch->pins[i].build_id);
	*size += (size_t)sprintf(larger + *size, "\n");
	return true;
}

int store_index_write(const char *leaving_out, struct hp_error *error)
{
	char path[HP_PATH_MAX], **names = NULL, *text = strdup(INDEX_HEADER);
	size_t count = 0, size = text ? strlen(text) : 0;
	int status = text ? store_list(&names, &count, error)
			  : hp_fail(error, HP_FAILED, "out of memory");

	for (size_t i = 0; status == HP_OK && i < count; i++) {
		struct hp_installed_report installed = { 0 };
		struct hp_patch_file patch;
		bool usable = false;

		store_read_installed(names[i], &installed, &patch, &usable);
		if (usable && patch.pin_count > 0 &&
		    !(leaving_out && strcmp(patch.name, leaving_out) == 0) &&
		    !index_line(&patch, &text, &size))
			status = hp_fail(error, HP_FAILED, "out of memory writing the store's index");
		patch_file_release(&patch);
	}
	if (status == HP_OK &&
	    snprintf(path, sizeof(path), "%s/%s", store_directory(), INDEX_FILE) >= (int)sizeof(path))
		status = hp_fail(error, HP_FAILED, "the store path %s is too long", store_directory());
	/* Nothing installed: no index, and a process starting pays one failed open. */
	if (status == HP_OK && size == strlen(INDEX_HEADER) && unlink(path) != 0 && errno != ENOENT)
		status = hp_fail_errno(error, HP_FAILED, "cannot remove %s", path);
	else if (status == HP_OK && size > strlen(INDEX_HEADER))
		status = store_write(path, (const unsigned char *)text, size, error);
	store_list_release(names, count);
	free(text);
	return status;
}
