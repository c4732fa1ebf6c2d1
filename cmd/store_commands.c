/* store_commands.c - install, uninstall and status: the store's engine
 * calls (lib/machine/store*.c) around the fan-out that applies or reverts
 * in every process concerned, each in a child of its own.  It never
 * prints: the printers of print_store.c do. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"

/* The one-process command `name` over `pids`, its documents kept. */
static void fan_out(const struct invocation *invocation, const char *name,
		    const pid_t *pids, size_t count, const char *harmless_kind,
		    struct outcome *outcome)
{
	struct invocation each = *invocation;
	struct output output = { .command = name, .json = true };

	each.command = command_find(name);
	each.selector = (struct hp_selector){ 0 };
	outcome->exit_code = fanout_processes(&each, pids, count, 0, harmless_kind, &output,
					      invocation->request.interrupted, &outcome->processes);
}

/* Into the store, then applied (from the store's copy, so that list shows
 * where it lives) wherever it fits; the same bytes again change nothing. */
int run_install(const struct invocation *invocation, struct outcome *outcome,
		struct hp_error *error)
{
	struct invocation apply = *invocation;
	pid_t *pids = NULL;
	size_t count = 0;
	int status = hp_install(&invocation->request, &outcome->installed, &pids, &count, error);

	if (status != HP_OK)
		return status;
	apply.request.patch_path = outcome->installed.path;
	fan_out(&apply, "apply", pids, count, NULL, outcome);
	free(pids);
	/* A cumulative patch took the older ones over wherever it applied:
	 * once it did everywhere, they leave the store. */
	if (outcome->installed.cumulative && outcome->exit_code == 0)
		return hp_install_replace(&outcome->installed, error);
	return HP_OK;
}

/* Whether a revert document says the patch was not there at all. */
static bool not_applied_there(json_t *document)
{
	const char *kind = json_string_value(
		json_object_get(json_object_get(document, "error"), "kind"));

	return kind && strcmp(kind, "not_applied") == 0;
}

/* Reverted wherever it is applied; removed from the store only when every
 * revert succeeded, so that a busy process can be retried. */
int run_uninstall(const struct invocation *invocation, struct outcome *outcome,
		  struct hp_error *error)
{
	struct invocation revert = *invocation;
	pid_t *pids = NULL;
	size_t count = 0;
	int status = hp_uninstall_prepare(invocation->argument, &outcome->installed, &pids, &count,
					  error);

	if (status != HP_OK)
		return status;
	revert.request.patch_name = outcome->installed.name;
	fan_out(&revert, "revert", pids, count, "not_applied", outcome);
	free(pids);
	/* A process it was never applied to is no news. */
	for (size_t i = json_array_size(outcome->processes); i-- > 0;)
		if (not_applied_there(json_array_get(outcome->processes, i)))
			json_array_remove(outcome->processes, i);
	if (outcome->exit_code == 0 && outcome->processes)
		return hp_uninstall_finish(outcome->installed.name, error);
	return hp_uninstall_keep(error);
}

int run_status(const struct invocation *invocation, struct outcome *outcome,
	       struct hp_error *error)
{
	int status = hp_machine_status(&outcome->status, error);

	(void)invocation;
	if (status == HP_OK && !outcome->status.as_installed)
		outcome->exit_code = 1;
	return status;
}

void outcome_release_store(struct outcome *outcome)
{
	hp_machine_status_release(&outcome->status);
	json_decref(outcome->processes);
	outcome->processes = NULL;
}
