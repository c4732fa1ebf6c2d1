/* print_store.c - what install, uninstall and status print: prose (a line
 * for the store, a line per process; status a short table) or one JSON
 * document.  Strings from files and processes are cleaned as elsewhere. */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "cmd.h"

static bool is_install(const struct invocation *invocation)
{
	return strcmp(invocation->command->name, "install") == 0;
}

void print_install_text(const struct output *output, const struct invocation *invocation,
			const struct outcome *outcome)
{
	const struct hp_installed_report *installed = &outcome->installed;
	char name[HP_PATCH_NAME_MAX], path[HP_TEXT_MAX];

	(void)output;
	one_line(installed->name, name, sizeof(name));
	one_line(installed->path, path, sizeof(path));
	if (!is_install(invocation)) {
		fanout_print_lines("revert", outcome->processes);
		if (outcome->exit_code == 0)
			printf("uninstalled %s (removed %s)\n", name, path);
		else
			fprintf(stderr, "hotpatch: %s stays installed: its revert failed for some "
				"processes (exit %d); see above\n", name, outcome->exit_code);
		return;
	}
	printf("%s %s as %s (sha256 %.16s...)\n",
	       installed->unchanged ? "already installed:" : "installed", name, path,
	       installed->sha256);
	if (installed->excluded[0])
		printf("leaving out %s, here and in every process started later\n",
		       one_line(installed->excluded, path, sizeof(path)));
	fanout_print_lines("apply", outcome->processes);
	if (json_array_size(outcome->processes) == 0)
		printf("no running process fits it\n");
	if (installed->replaced[0])
		printf("replaced (uninstalled) %s\n",
		       one_line(installed->replaced, path, sizeof(path)));
	if (outcome->exit_code != 0)
		fprintf(stderr, "hotpatch: %s is installed, but applying it failed for some "
			"processes (exit %d); see above\n", name, outcome->exit_code);
}

void print_install_json(const struct output *output, const struct invocation *invocation,
			const struct outcome *outcome)
{
	const struct hp_installed_report *installed = &outcome->installed;
	json_t *report = json_pack("{s:o, s:o, s:s, s:o}", "name", json_text(installed->name),
				   "ids", json_id_list(installed->ids), "sha256",
				   installed->sha256, "path", json_text(installed->path));

	if (is_install(invocation)) {
		json_object_set_new(report, "unchanged", json_boolean(installed->unchanged));
		json_object_set_new(report, "cumulative", json_boolean(installed->cumulative));
		json_object_set_new(report, "excluded", json_id_list(installed->excluded));
		json_object_set_new(report, "replaced", json_id_list(installed->replaced));
	}
	json_emit(json_pack("{s:s, s:b, s:i, s:o, s:O}", "command", output->command, "ok",
			    outcome->exit_code == 0, "exit_code", outcome->exit_code,
			    is_install(invocation) ? "installed" : "uninstalled", report,
			    "processes", outcome->processes ? outcome->processes : json_array()));
}

void print_status_text(const struct output *output, const struct invocation *invocation,
		       const struct outcome *outcome)
{
	const struct hp_status_result *status = &outcome->status;
	char clean[2 * HP_TEXT_MAX], other[HP_TEXT_MAX];

	(void)output;
	(void)invocation;
	printf("installed (%s):\n", one_line(hp_store_directory(), other, sizeof(other)));
	if (status->installed_count == 0)
		printf("  nothing\n");
	for (size_t i = 0; i < status->installed_count; i++) {
		const struct hp_installed_report *installed = &status->installed[i];

		if (installed->unreadable)
			printf("  %-24s UNREADABLE (%s): %s\n",
			       one_line(installed->name, other, sizeof(other)), installed->problem_kind,
			       one_line(installed->problem, clean, sizeof(clean)));
		else
			printf("  %-24s %.16s  %s\n", one_line(installed->name, other, sizeof(other)),
			       installed->sha256, one_line(installed->ids, clean, sizeof(clean)));
		if (!installed->unreadable && installed->excluded[0])
			printf("  %-24s leaving out: %s\n", "",
			       one_line(installed->excluded, clean, sizeof(clean)));
	}
	printf("%-8s %-24s %-12s %s\n", "PID", "PATCH", "STATE", "EXE");
	for (size_t i = 0; i < status->process_count; i++) {
		const struct hp_process_status *process = &status->processes[i];

		for (size_t j = 0; j < process->patch_count; j++) {
			const struct hp_process_patch *patch = &process->patches[j];

			printf("%-8d %-24s %-12s %s\n", (int)process->pid,
			       one_line(patch->name, other, sizeof(other)), patch->state,
			       one_line(process->exe, clean, sizeof(clean)));
			if (patch->reason[0])
				printf("%-8s %-24s %s\n", "", "",
				       one_line(patch->reason, clean, sizeof(clean)));
			if (patch->excluded[0])
				printf("%-8s %-24s fixes in effect: %s; excluded: %s\n", "", "",
				       patch->fixes[0] ? one_line(patch->fixes, other, sizeof(other))
						       : "none",
				       one_line(patch->excluded, clean, sizeof(clean)));
		}
		if (process->problem[0])
			printf("%-8d %-24s %-12s %s\n", (int)process->pid, "?", "unreadable",
			       one_line(process->problem, clean, sizeof(clean)));
	}
	printf(status->as_installed ? "every process is as installed\n"
				    : "some processes are not as installed\n");
}

static json_t *installed_json(const struct hp_installed_report *installed)
{
	json_t *report = json_pack("{s:o, s:o, s:s, s:o}", "name", json_text(installed->name),
				   "ids", json_id_list(installed->ids), "sha256", installed->sha256,
				   "excluded", json_id_list(installed->excluded));

	if (installed->unreadable)
		json_object_set_new(report, "error",
				    json_pack("{s:s, s:o}", "kind", installed->problem_kind,
					      "message", json_text(installed->problem)));
	return report;
}

static json_t *process_json(const struct hp_process_status *process)
{
	json_t *patches = json_array();
	json_t *report;

	for (size_t i = 0; i < process->patch_count; i++) {
		const struct hp_process_patch *patch = &process->patches[i];

		json_array_append_new(patches,
				      json_pack("{s:o, s:s, s:b, s:o, s:o, s:o}", "name",
						json_text(patch->name), "state", patch->state,
						"installed", patch->installed, "fixes",
						json_id_list(patch->fixes), "excluded",
						json_id_list(patch->excluded), "reason",
						patch->reason[0] ? json_text(patch->reason)
								 : json_null()));
	}
	report = json_pack("{s:i, s:o, s:o}", "pid", (int)process->pid, "exe",
			   json_text(process->exe), "patches", patches);
	if (process->problem[0])
		json_object_set_new(report, "error", json_text(process->problem));
	return report;
}

void print_status_json(const struct output *output, const struct invocation *invocation,
		       const struct outcome *outcome)
{
	const struct hp_status_result *status = &outcome->status;
	json_t *installed = json_array(), *processes = json_array();

	(void)invocation;
	for (size_t i = 0; i < status->installed_count; i++)
		json_array_append_new(installed, installed_json(&status->installed[i]));
	for (size_t i = 0; i < status->process_count; i++)
		json_array_append_new(processes, process_json(&status->processes[i]));
	json_emit(json_pack("{s:s, s:b, s:i, s:s, s:o, s:o}", "command", output->command, "ok",
			    outcome->exit_code == 0, "exit_code", outcome->exit_code, "store",
			    hp_store_directory(), "installed", installed, "processes", processes));
}
