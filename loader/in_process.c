/* in_process.c - libhotpatch-apply.so: the engine's apply, run inside the
 * process by the preloaded loader (preload.c) for an installed patch that
 * fits it.  The same steps as `hotpatch apply` (trust, pins, plan, load,
 * references, state record, jumps), with plain calls where apply borrows
 * a thread, so that list, revert and status see the patch like any other.
 * Only the entry point is visible: the engine must not interpose on the
 * process's own symbols. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "engine.h"

/* The whole of it, most of which is reading the patch and the process's
 * objects: enough on a loaded machine, short enough that a process never
 * waits long to start. */
#define LOADER_TIMEOUT_SECONDS 5.0

int hotpatch_loader_apply(const char *patch_path, char *message, size_t size);

/* The fixes install left out of the store's patch at `patch_path`, as the
 * words of `excluded` into `excludes`: the loader leaves out what every
 * other process was applied without. */
static int installed_exclusions(const char *patch_path, char excluded[HP_FIXES_MAX],
				const char *excludes[HP_FIXES_MAX / 2], size_t *count,
				struct hp_error *error)
{
	char *word, *rest = NULL;
	int status = hp_installed_exclusions(patch_path, excluded, HP_FIXES_MAX, error);

	*count = 0;
	for (word = status == HP_OK ? strtok_r(excluded, " ", &rest) : NULL;
	     word && *count < HP_FIXES_MAX / 2; word = strtok_r(NULL, " ", &rest))
		excludes[(*count)++] = word;
	return status;
}

/* The patch at `patch_path` applied to the calling process: 0, with what
 * was done in `message`, or the exit code `hotpatch apply` would give,
 * with the reason. */
__attribute__((visibility("default"))) int hotpatch_loader_apply(const char *patch_path,
								  char *message, size_t size)
{
	struct hp_request request = { .pid = getpid(),
				      .patch_path = patch_path,
				      .timeout_seconds = LOADER_TIMEOUT_SECONDS,
				      .in_process = true };
	struct hp_result result = { 0 };
	struct hp_error error = { 0 };
	char excluded[HP_FIXES_MAX];
	const char *excludes[HP_FIXES_MAX / 2];
	int status;

	status = installed_exclusions(patch_path, excluded, excludes, &request.exclude_count,
				      &error);
	request.excludes = excludes;
	if (status == HP_OK)
		status = hp_apply(&request, &result, &error);
	if (status == HP_OK && result.patch_count == 1)
		snprintf(message, size, "%s %s (sha256 %s, %zu functions)",
			 result.patches[0].state, result.patches[0].name, result.patch_file.sha256,
			 result.patches[0].function_count);
	else if (status == HP_OK)
		snprintf(message, size, "applied %s", patch_path);
	else
		snprintf(message, size, "%s: %s%s%s", hp_error_kind_of(&error), error.message,
			 error.hint[0] ? "; " : "", error.hint);
	hp_result_release(&result);
	hp_error_release(&error);
	return -status;
}
