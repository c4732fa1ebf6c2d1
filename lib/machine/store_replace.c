/* store_replace.c - install of a cumulative patch: the installed patches it
 * replaces leave the store once it is applied, so that no process started
 * later gets both.  It reads the store's files as apply reads a patch and
 * removes files through uninstall's own half; it touches no process. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "machine/machine.h"
#include "trust/trust.h"

static int patch_entry(const struct dirent *entry)
{
	size_t length = strlen(entry->d_name);

	return entry->d_name[0] != '.' && length > 3 &&
	       strcmp(entry->d_name + length - 3, ".so") == 0;
}

/* Every object `newer` pins, `older` pins with the same build-id: every
 * process `older` fits, `newer` fits too. */
static bool pins_cover(const struct hp_patch_file *newer, const struct hp_patch_file *older)
{
	for (size_t i = 0; i < newer->pin_count; i++) {
		bool found = false;

		for (size_t j = 0; j < older->pin_count && !found; j++)
			found = strcmp(newer->pins[i].object, older->pins[j].object) == 0 &&
				strcmp(newer->pins[i].build_id, older->pins[j].build_id) == 0;
		if (!found)
			return false;
	}
	return newer->pin_count > 0;
}

/* Whether the store file `file_name` holds a patch `newer` replaces; an
 * unreadable one is left for status to report. */
static bool replaced_by(const struct hp_patch_file *newer, const char *file_name, char *name,
			size_t size)
{
	struct hp_request request = { 0 };
	struct hp_patch_file older;
	struct hp_patch_identity identity;
	struct hp_error ignored = { 0 };
	char path[HP_PATH_MAX];
	bool replaced;

	snprintf(path, sizeof(path), "%s/%s", store_directory(), file_name);
	request.patch_path = path;
	replaced = patch_file_read(&request, &older, &identity, &ignored) == HP_OK &&
		   strcmp(older.name, newer->name) != 0 && pins_cover(newer, &older) &&
		   strlen(file_name) == strlen(older.name) + 3 &&
		   strncmp(file_name, older.name, strlen(older.name)) == 0;
	hp_copy_string(name, size, older.name);
	patch_file_release(&older);
	hp_error_release(&ignored);
	return replaced;
}

int hp_install_replace(struct hp_installed_report *installed, struct hp_error *error)
{
	struct hp_request request = { .patch_path = installed->path };
	struct hp_patch_file newer;
	struct hp_patch_identity identity;
	struct dirent **entries = NULL;
	int count, status = patch_file_read(&request, &newer, &identity, error);

	installed->replaced[0] = '\0';
	count = status == HP_OK ? scandir(store_directory(), &entries, patch_entry, alphasort) : 0;
	if (count < 0)
		status = hp_fail_errno(error, HP_FAILED, "cannot list the store %s",
				       store_directory());
	for (int i = 0; i < count; i++) {
		char name[HP_PATCH_NAME_MAX];
		size_t used = strlen(installed->replaced);

		if (status == HP_OK && replaced_by(&newer, entries[i]->d_name, name, sizeof(name))) {
			status = hp_uninstall_finish(name, error);
			if (status == HP_OK && used + strlen(name) + 2 < sizeof(installed->replaced))
				snprintf(installed->replaced + used, sizeof(installed->replaced) - used,
					 "%s%s", used ? " " : "", name);
		}
		free(entries[i]);
	}
	free(entries);
	patch_file_release(&newer);
	return status;
}
