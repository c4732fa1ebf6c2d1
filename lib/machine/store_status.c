/* store_status.c - the machine at a glance: what the store holds and, for
 * every process an installed patch fits or some patch is applied to, which
 * patches it has.  Read-only: it reads /proc and each process's state
 * through hp_list, which stops nothing and takes no lock, so a running
 * apply never blocks it.  A store file that is not a usable patch is
 * reported, never fatal. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/loader_outcomes.h"
#include "machine/machine.h"
#include "trust/trust.h"

/* The store's patches, parsed; `usable[i]` false for an unreadable one. */
struct store_contents {
	size_t count;
	struct hp_patch_file *patches;
	bool *usable;
};

static int read_store(struct hp_status_result *result, struct store_contents *store,
		      struct hp_error *error)
{
	char **names = NULL;
	size_t count = 0;
	int status = store_list(&names, &count, error);

	if (status != HP_OK || count == 0)
		return status;
	result->installed = calloc(count, sizeof(*result->installed));
	store->patches = calloc(count, sizeof(*store->patches));
	store->usable = calloc(count, sizeof(*store->usable));
	if (!result->installed || !store->patches || !store->usable)
		status = hp_fail(error, HP_FAILED, "out of memory reading the store");
	for (size_t i = 0; status == HP_OK && i < count; i++)
		store_read_installed(names[i], &result->installed[i], &store->patches[i],
				     &store->usable[i]);
	if (status == HP_OK)
		result->installed_count = store->count = count;
	store_list_release(names, count);
	return status;
}

static void release_store(struct store_contents *store)
{
	/* A file that failed to parse holds its bytes all the same. */
	for (size_t i = 0; store->patches && i < store->count; i++)
		patch_file_release(&store->patches[i]);
	free(store->patches);
	free(store->usable);
}

static bool fits_any(pid_t pid, const struct store_contents *store)
{
	for (size_t i = 0; i < store->count; i++)
		if (store->usable[i] && store_patch_fits(pid, &store->patches[i]))
			return true;
	return false;
}

static bool concerned(pid_t pid, const void *context)
{
	return store_has_state(pid) || fits_any(pid, context);
}

static bool add_patch(struct hp_process_status *process, const char *name, const char *state,
		      bool installed, const struct hp_patch_report *applied)
{
	struct hp_process_patch *larger =
		realloc(process->patches, (process->patch_count + 1) * sizeof(*larger));

	if (!larger)
		return false;
	process->patches = larger;
	larger = &process->patches[process->patch_count++];
	memset(larger, 0, sizeof(*larger));
	hp_copy_string(larger->name, sizeof(larger->name), name);
	hp_copy_string(larger->state, sizeof(larger->state), state);
	larger->installed = installed;
	if (applied) {
		hp_copy_string(larger->fixes, sizeof(larger->fixes), applied->fixes);
		hp_copy_string(larger->excluded, sizeof(larger->excluded), applied->excluded);
	}
	return true;
}

/* The applied patch of that name and bytes (unknown bytes: by name). */
static const struct hp_patch_report *applied_copy(const struct hp_result *list, const char *name,
						  const char *sha256)
{
	for (size_t i = 0; i < list->patch_count; i++) {
		const struct hp_patch_report *patch = &list->patches[i];

		if (strcmp(patch->name, name) == 0 &&
		    (!patch->sha256[0] || strcmp(patch->sha256, sha256) == 0))
			return patch;
	}
	return NULL;
}

static bool is_installed_name(const struct hp_status_result *result, const char *name)
{
	for (size_t i = 0; i < result->installed_count; i++)
		if (strcmp(result->installed[i].name, name) == 0)
			return true;
	return false;
}

/* An installed patch the process does not have: "failed" when the loader
 * tried it there and said why, else "not applied". */
static bool add_missing(struct hp_process_status *process, const char *name,
			const struct loader_outcomes *outcomes)
{
	const struct loader_outcome *outcome = outcomes ? loader_outcome_find(outcomes, name) : NULL;
	bool failed = outcome && outcome->code != 0;

	if (!add_patch(process, name, failed ? "failed" : "not applied", true, NULL))
		return false;
	if (failed)
		hp_copy_string(process->patches[process->patch_count - 1].reason,
			       sizeof(process->patches[0].reason), outcome->reason);
	return true;
}

/* One process: each installed patch that fits it, applied or not, then
 * every other patch applied to it.  False when the machine is not as
 * installed there. */
static bool describe_process(struct hp_process_status *process,
			     const struct hp_status_result *result,
			     const struct store_contents *store)
{
	struct hp_request request = { .pid = process->pid, .timeout_seconds = 5 };
	struct hp_result list = { 0 };
	struct hp_error error = { 0 };
	struct loader_outcomes *outcomes = malloc(sizeof(*outcomes));
	char link[64];
	ssize_t length;
	bool listed, as_installed = true, memory = outcomes != NULL;

	snprintf(link, sizeof(link), "/proc/%d/exe", (int)process->pid);
	length = readlink(link, process->exe, sizeof(process->exe) - 1);
	process->exe[length > 0 ? length : 0] = '\0';
	listed = hp_list(&request, &list, &error) == HP_OK;
	if (!listed)
		hp_copy_string(process->problem, sizeof(process->problem), error.message);
	if (outcomes && !loader_outcomes_read(process->pid, outcomes)) {
		free(outcomes);
		outcomes = NULL;
	}
	for (size_t i = 0; i < store->count; i++) {
		const struct hp_installed_report *installed = &result->installed[i];
		const struct hp_patch_report *copy;

		if (!store->usable[i] || !store_patch_fits(process->pid, &store->patches[i]))
			continue;
		copy = listed ? applied_copy(&list, installed->name, installed->sha256) : NULL;
		memory = memory && (copy ? add_patch(process, installed->name, copy->state, true, copy)
					 : add_missing(process, installed->name, outcomes));
		/* As installed: applied, leaving out what the installation does. */
		as_installed = as_installed && copy && strcmp(copy->state, "applied") == 0 &&
			       strcmp(copy->excluded, installed->excluded) == 0;
	}
	for (size_t i = 0; listed && i < list.patch_count; i++)
		if (!is_installed_name(result, list.patches[i].name))
			memory = memory && add_patch(process, list.patches[i].name,
						     list.patches[i].state, false, &list.patches[i]);
	free(outcomes);
	hp_result_release(&list);
	hp_error_release(&error);
	return as_installed && memory;
}

int hp_machine_status(struct hp_status_result *result, struct hp_error *error)
{
	struct store_contents store = { 0 };
	pid_t *pids = NULL;
	size_t count = 0;
	int status;

	memset(result, 0, sizeof(*result));
	result->as_installed = true;
	status = read_store(result, &store, error);
	if (status == HP_OK)
		status = processes_scan(concerned, &store, &pids, &count, error);
	if (status == HP_OK && count > 0) {
		result->processes = calloc(count, sizeof(*result->processes));
		if (!result->processes)
			status = hp_fail(error, HP_FAILED, "out of memory for %zu processes", count);
	}
	for (size_t i = 0; status == HP_OK && i < count; i++) {
		result->processes[i].pid = pids[i];
		if (!describe_process(&result->processes[i], result, &store))
			result->as_installed = false;
		result->process_count++;
	}
	for (size_t i = 0; i < result->installed_count; i++)
		if (result->installed[i].unreadable)
			result->as_installed = false;
	free(pids);
	release_store(&store);
	return status;
}

void hp_machine_status_release(struct hp_status_result *result)
{
	for (size_t i = 0; i < result->process_count; i++)
		free(result->processes[i].patches);
	free(result->processes);
	free(result->installed);
	memset(result, 0, sizeof(*result));
}
