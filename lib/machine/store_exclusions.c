/* store_exclusions.c - the fixes an installed patch leaves out (`install
 * --exclude`), kept beside it as STORE/NAME.exclude: one line, the fix ids
 * as the patch reports them after the exclusion (sorted, space separated).
 * Every apply of the installed patch leaves out the same fixes: the
 * install's own in the running processes, and the loader's in each process
 * started later; status compares what each process runs with it.  No file:
 * nothing is left out.  The file is read as the store's patches are: only
 * when root (or the process's owner) can have written it, and bounded. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/trusted_files.h"
#include "machine/machine.h"

bool store_exclusions_path(const char *name, char *path, size_t size)
{
	int length = snprintf(path, size, "%s/%s.exclude", store_directory(), name);

	return length > 0 && (size_t)length < size;
}

/* The text of the file, one line of valid fix ids, into `excluded` with
 * the line's end taken off; false for anything else. */
static bool exclusions_parse(const unsigned char *bytes, size_t size, char *excluded,
			     size_t capacity)
{
	char *copy, *word, *rest = NULL;
	bool valid = size > 1 && size < capacity && bytes[size - 1] == '\n' &&
		     !memchr(bytes, '\0', size) && memchr(bytes, '\n', size) == bytes + size - 1;

	if (!valid)
		return false;
	memcpy(excluded, bytes, size - 1);
	excluded[size - 1] = '\0';
	copy = strdup(excluded);
	if (!copy)
		return false;
	for (word = strtok_r(copy, " ", &rest); word && valid; word = strtok_r(NULL, " ", &rest))
		valid = patch_fix_id_is_valid(word);
	free(copy);
	return valid;
}

int store_exclusions_read(const char *name, pid_t for_pid, char *excluded, size_t size,
			  struct hp_error *error)
{
	struct trust_file file = TRUST_FILE_INIT;
	struct trust_owners owners;
	unsigned char *bytes = NULL;
	char path[HP_PATH_MAX];
	size_t length = 0;
	int status;

	excluded[0] = '\0';
	if (!store_exclusions_path(name, path, sizeof(path)))
		return hp_fail(error, HP_FAILED, "the store path %s is too long", store_directory());
	if (access(path, F_OK) != 0 && errno == ENOENT)
		return HP_OK;
	if (for_pid > 0)
		trust_owners_of_target(for_pid, &owners);
	else
		trust_owners_root(&owners);
	status = trust_open(path, "exclusion list", &owners, &file, error);
	if (status == HP_OK)
		status = trust_read(&file, "exclusion list", size, &bytes, &length, error);
	if (status == HP_OK && !exclusions_parse(bytes, length, excluded, size)) {
		excluded[0] = '\0';
		hp_hint(error, "uninstall %s and install it again", name);
		status = hp_fail_as(error, HP_KIND_BAD_PATCH,
				    "%s is not one line of fix ids", path);
	}
	free(bytes);
	trust_close(&file);
	return status;
}

int store_exclusions_write(const char *name, const char *excluded, struct hp_error *error)
{
	char path[HP_PATH_MAX], line[HP_FIXES_MAX + 1];
	int length;

	if (!store_exclusions_path(name, path, sizeof(path)))
		return hp_fail(error, HP_FAILED, "the store path %s is too long", store_directory());
	if (!excluded[0]) {
		if (unlink(path) != 0 && errno != ENOENT)
			return hp_fail_errno(error, HP_FAILED, "cannot remove %s", path);
		return HP_OK;
	}
	length = snprintf(line, sizeof(line), "%s\n", excluded);
	if (length <= 0 || (size_t)length >= sizeof(line))
		return hp_fail(error, HP_FAILED, "the fixes left out of %s do not fit a line", name);
	return store_write(path, (const unsigned char *)line, (size_t)length, error);
}

int hp_installed_exclusions(const char *patch_path, char *excluded, size_t size,
			    struct hp_error *error)
{
	char name[HP_PATCH_NAME_MAX];
	const char *base = hp_base_name(patch_path);
	size_t length = strlen(base);

	excluded[0] = '\0';
	if (length <= 3 || length - 3 >= sizeof(name) || strcmp(base + length - 3, ".so") != 0)
		return hp_fail(error, HP_USAGE, "%s is not a store file (NAME.so)", patch_path);
	memcpy(name, base, length - 3);
	name[length - 3] = '\0';
	return store_exclusions_read(name, getpid(), excluded, size, error);
}
