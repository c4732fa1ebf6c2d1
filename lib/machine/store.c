/* store.c - the store of installed patches: STORE/NAME.so, root-owned
 * copies in /var/lib/hotpatch (or HOTPATCH_STORE, ignored in secure
 * execution), each written under a temporary name and renamed into place,
 * so that a reader sees a whole file or none.  The files are the whole
 * record: there is no index to go stale.  install and uninstall's store
 * halves; the processes are worked on by the front end's fan-out. */
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "machine/machine.h"
#include "trust/trust.h"

/* A signature file is one short line. */
#define SIGNATURE_SIZE_MAX 4096


/* The store, made if missing; refused unless it is a directory only root
 * (or we) can write to, since later processes trust what it holds. */
static int store_open_directory(bool create, struct hp_error *error)
{
	const char *directory = store_directory();
	struct stat info;

	if (create && mkdir(directory, 0755) != 0 && errno != EEXIST)
		return hp_fail_errno(error, HP_FAILED, "cannot make the store %s", directory);
	if (lstat(directory, &info) != 0) {
		if (errno == ENOENT && !create)
			return HP_OK;
		return hp_fail_errno(error, HP_FAILED, "cannot open the store %s", directory);
	}
	if (!S_ISDIR(info.st_mode) || (info.st_uid != 0 && info.st_uid != geteuid()) ||
	    (info.st_mode & (S_IWGRP | S_IWOTH))) {
		hp_hint(error, "the store must be a directory owned by root, mode 0755");
		return hp_fail_as(error, HP_KIND_UNTRUSTED,
				  "the store %s is not a directory only root can write to",
				  directory);
	}
	return HP_OK;
}

/* Every object the patch replaces functions in must be pinned: a function
 * name alone would match unrelated programs across the machine. */
static int check_pinned(const struct hp_patch_file *patch, struct hp_error *error)
{
	for (size_t i = 0; i < patch->count; i++) {
		const char *object = patch->replacements[i].object;
		bool pinned = false;

		for (size_t j = 0; j < patch->pin_count && !pinned; j++)
			pinned = strcmp(patch->pins[j].object, object) == 0;
		if (pinned)
			continue;
		hp_hint(error, "pin it with HOTPATCH_BUILD_ID(\"%s\", \"...\") (hotpatch build "
			       "does), or apply it to chosen processes with apply",
			object);
		return hp_fail_as(error, HP_KIND_UNPINNED,
				  "patch %s replaces %s in %s without pinning its build-id",
				  patch->path, patch->replacements[i].function,
				  object[0] ? object : "the main executable");
	}
	return HP_OK;
}

/* The sha256 (hex) of the file at `path`, bounded like a patch; false
 * when it cannot be read. */
static bool file_sha256(const char *path, char hex[65])
{
	unsigned char digest[crypto_hash_sha256_BYTES], buffer[65536];
	crypto_hash_sha256_state state;
	size_t total = 0;
	ssize_t got = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

	if (fd < 0)
		return false;
	crypto_hash_sha256_init(&state);
	while (total <= HP_PATCH_SIZE_MAX && (got = read(fd, buffer, sizeof(buffer))) > 0) {
		crypto_hash_sha256_update(&state, buffer, (size_t)got);
		total += (size_t)got;
	}
	close(fd);
	if (got < 0 || total > HP_PATCH_SIZE_MAX)
		return false;
	crypto_hash_sha256_final(&state, digest);
	sodium_bin2hex(hex, 65, digest, sizeof(digest));
	return true;
}



/* A signed patch keeps its signature beside the store's copy, written
 * first, so that the copy is never there unsigned under a policy that
 * asks for signatures. */
static int store_signature(const struct hp_patch_file *patch, const char *path,
			   struct hp_error *error)
{
	char source[HP_PATH_MAX + 8], target[HP_PATH_MAX + 8];
	unsigned char bytes[SIGNATURE_SIZE_MAX];
	ssize_t size;
	int fd;

	snprintf(source, sizeof(source), "%s.sig", patch->absolute_path);
	snprintf(target, sizeof(target), "%s.sig", path);
	fd = open(source, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return hp_fail_errno(error, HP_FAILED, "cannot read the signature %s", source);
	size = read(fd, bytes, sizeof(bytes));
	close(fd);
	if (size <= 0 || (size_t)size == sizeof(bytes))
		return hp_fail(error, HP_FAILED, "cannot read the signature %s", source);
	return store_write(target, bytes, (size_t)size, error);
}

/* The same patch installed again must leave out the same fixes: the
 * processes that have it run without those. */
static int same_exclusions(const char *name, const char *excluded, struct hp_error *error)
{
	char installed[HP_FIXES_MAX];
	int status = store_exclusions_read(name, 0, installed, sizeof(installed), error);

	if (status != HP_OK || strcmp(installed, excluded) == 0)
		return status;
	hp_hint(error, "uninstall %s first to install it with other exclusions", name);
	return hp_fail_as(error, HP_KIND_NAME_CONFLICT,
			  "%s is installed leaving out %s; this install leaves out %s", name,
			  installed[0] ? installed : "no fix", excluded[0] ? excluded : "no fix");
}

/* Into the store, unless it is there: the same bytes are a success that
 * changes nothing, other bytes under that name a conflict. */
static int store_put(const struct hp_patch_file *patch, bool signed_patch,
		     struct hp_installed_report *installed, struct hp_error *error)
{
	char existing[65];
	int status = HP_OK;

	if (!store_patch_path(patch->name, installed->path, sizeof(installed->path)))
		return hp_fail(error, HP_FAILED, "the store path %s is too long", store_directory());
	if (access(installed->path, F_OK) != 0) {
		/* What it leaves out first: the copy is never there without it. */
		status = store_exclusions_write(patch->name, installed->excluded, error);
		if (status == HP_OK && signed_patch)
			status = store_signature(patch, installed->path, error);
		if (status == HP_OK)
			status = store_write(installed->path, patch->bytes, patch->size, error);
		return status;
	}
	if (!file_sha256(installed->path, existing))
		return hp_fail_errno(error, HP_FAILED, "cannot read the installed %s",
				     installed->path);
	if (strcmp(existing, installed->sha256) == 0) {
		installed->unchanged = true;
		return same_exclusions(patch->name, installed->excluded, error);
	}
	hp_hint(error, "uninstall %s first, or give the new patch another name", patch->name);
	return hp_fail_as(error, HP_KIND_NAME_CONFLICT,
			  "another patch named %s is installed (%s, sha256 %s); %s has sha256 %s",
			  patch->name, installed->path, existing, patch->path, installed->sha256);
}

static bool fits_wanted(pid_t pid, const void *context)
{
	return store_patch_fits(pid, context);
}

int hp_install(const struct hp_request *request, struct hp_installed_report *installed,
	       pid_t **pids, size_t *count, struct hp_error *error)
{
	struct hp_patch_file patch;
	struct hp_patch_identity identity;
	int status;

	memset(installed, 0, sizeof(*installed));
	*pids = NULL;
	*count = 0;
	status = patch_file_read(request, &patch, &identity, error);
	if (status == HP_OK) {
		hp_copy_string(installed->name, sizeof(installed->name), patch.name);
		hp_copy_string(installed->ids, sizeof(installed->ids), patch.ids);
		hp_copy_string(installed->sha256, sizeof(installed->sha256), identity.sha256);
		installed->cumulative = patch.cumulative;
		status = check_pinned(&patch, error);
	}
	/* An exclusion apply would refuse is refused before anything is stored. */
	if (status == HP_OK && request->exclude_count)
		status = patch_fixes_exclude(&patch, request->excludes, request->exclude_count, error);
	if (status == HP_OK && request->exclude_count)
		hp_copy_string(installed->excluded, sizeof(installed->excluded), patch.excluded);
	if (status == HP_OK)
		status = store_open_directory(true, error);
	if (status == HP_OK)
		status = store_put(&patch, identity.signer[0] != '\0', installed, error);
	/* Indexed before the running processes are listed: one that starts
	 * meanwhile gets the patch from the loader, or from us, or both (the
	 * second is a success that changes nothing). */
	if (status == HP_OK)
		status = store_index_write(NULL, error);
	if (status == HP_OK)
		status = processes_scan(fits_wanted, &patch, pids, count, error);
	patch_file_release(&patch);
	return status;
}

/* Whether the installed copy (that name, those bytes) is applied to `pid`:
 * another patch that only shares its name is not the store's to revert. */
static bool installed_copy_applied(pid_t pid, const void *context)
{
	const struct hp_installed_report *installed = context;
	struct hp_request request = { .pid = pid, .timeout_seconds = 5 };
	struct hp_result list = { 0 };
	struct hp_error ignored = { 0 };
	bool found = false;

	if (!store_has_state(pid))
		return false;
	if (hp_list(&request, &list, &ignored) == HP_OK)
		for (size_t i = 0; i < list.patch_count && !found; i++)
			found = strcmp(list.patches[i].name, installed->name) == 0 &&
				strcmp(list.patches[i].sha256, installed->sha256) == 0;
	hp_result_release(&list);
	hp_error_release(&ignored);
	return found;
}

int hp_uninstall_prepare(const char *name, struct hp_installed_report *installed, pid_t **pids,
			 size_t *count, struct hp_error *error)
{
	int status;

	memset(installed, 0, sizeof(*installed));
	*pids = NULL;
	*count = 0;
	if (!patch_name_is_valid(name) ||
	    !store_patch_path(name, installed->path, sizeof(installed->path)))
		return hp_fail(error, HP_USAGE, "'%s' is not a patch name", name);
	hp_copy_string(installed->name, sizeof(installed->name), name);
	status = store_open_directory(false, error);
	if (status != HP_OK)
		return status;
	if (!file_sha256(installed->path, installed->sha256)) {
		hp_hint(error, "hotpatch status lists the installed patches");
		return hp_fail_as(error, HP_KIND_NOT_INSTALLED, "no patch named %s is installed in %s",
				  name, store_directory());
	}
	/* Out of the index first: no process starting from now on gets it,
	 * so the list below misses none that has it. */
	status = store_index_write(name, error);
	if (status != HP_OK)
		return status;
	return processes_scan(installed_copy_applied, installed, pids, count, error);
}

int hp_uninstall_finish(const char *name, struct hp_error *error)
{
	char path[HP_PATH_MAX], signature[HP_PATH_MAX + 8];
	int status;

	if (!store_patch_path(name, path, sizeof(path)))
		return hp_fail(error, HP_USAGE, "'%s' is not a patch name", name);
	if (unlink(path) != 0 && errno != ENOENT)
		return hp_fail_errno(error, HP_FAILED, "cannot remove %s", path);
	/* After the patch: a copy is never left there without its signature
	 * or what it leaves out. */
	snprintf(signature, sizeof(signature), "%s.sig", path);
	if (unlink(signature) != 0 && errno != ENOENT)
		return hp_fail_errno(error, HP_FAILED, "cannot remove %s", signature);
	status = store_exclusions_write(name, "", error);
	return status == HP_OK ? store_index_write(NULL, error) : status;
}

int hp_uninstall_keep(struct hp_error *error)
{
	return store_index_write(NULL, error);
}
