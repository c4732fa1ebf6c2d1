/* startup.c - `hotpatch startup enable|disable|status`: the word read into
 * the engine's request (lib/machine/startup.c does the work), and what the
 * command prints: one line, or one JSON document. */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "cmd.h"

static const char *const action_names[] = {
	[HP_STARTUP_STATUS] = "status",
	[HP_STARTUP_ENABLE] = "enable",
	[HP_STARTUP_DISABLE] = "disable",
};

int run_startup(const struct invocation *invocation, struct outcome *outcome,
		struct hp_error *error)
{
	struct hp_startup_request request = { .root = invocation->root,
					       .loader = invocation->loader };
	size_t action = 0;
	int status;

	while (action < sizeof(action_names) / sizeof(action_names[0]) &&
	       strcmp(action_names[action], invocation->argument) != 0)
		action++;
	if (action == sizeof(action_names) / sizeof(action_names[0])) {
		error->status = HP_USAGE;
		error->kind = HP_KIND_USAGE;
		snprintf(error->message, sizeof(error->message),
			 "startup wants enable, disable or status, not '%s'", invocation->argument);
		snprintf(error->hint, sizeof(error->hint), "see hotpatch startup --help");
		return HP_USAGE;
	}
	request.action = (enum hp_startup_action)action;
	status = hp_startup(&request, &outcome->startup, error);
	if (request.action != HP_STARTUP_STATUS)
		audit_startup(invocation->argument, &outcome->startup, error,
			      exit_code_for(status));
	return status;
}

/* "enable" or "disable" as the command was given. */
static bool is_action(const struct invocation *invocation, const char *name)
{
	return strcmp(invocation->argument, name) == 0;
}

void print_startup_text(const struct output *output, const struct invocation *invocation,
			const struct outcome *outcome)
{
	const struct hp_startup_result *result = &outcome->startup;
	char file[HP_TEXT_MAX], loader[HP_TEXT_MAX], backup[HP_TEXT_MAX];

	(void)output;
	one_line(result->file, file, sizeof(file));
	one_line(result->loader, loader, sizeof(loader));
	one_line(result->backup, backup, sizeof(backup));
	if (is_action(invocation, "status"))
		printf("%s: %s %s in %s\n", result->enabled ? "enabled" : "disabled", loader,
		       result->enabled ? "is" : "is not", file);
	else if (!result->changed)
		printf("already %s: %s %s in %s\n", result->enabled ? "enabled" : "disabled",
		       loader, result->enabled ? "is" : "is not", file);
	else if (result->enabled)
		printf("enabled: added %s to %s; processes started from now on load it\n", loader,
		       file);
	else if (result->removed)
		printf("disabled: removed %s, which listed nothing else\n", file);
	else
		printf("disabled: took %s out of %s\n", loader, file);
	if (result->changed && backup[0])
		printf("the text from before hotpatch first changed it is in %s\n", backup);
}

void print_startup_json(const struct output *output, const struct invocation *invocation,
			const struct outcome *outcome)
{
	const struct hp_startup_result *result = &outcome->startup;

	json_emit(json_pack("{s:s, s:b, s:i, s:s, s:b, s:b, s:b, s:o, s:o, s:o}", "command",
			    output->command, "ok", 1, "exit_code", 0, "action",
			    invocation->argument, "enabled", result->enabled, "changed",
			    result->changed, "removed", result->removed, "file",
			    json_text(result->file), "loader", json_text(result->loader),
			    "backup", result->backup[0] ? json_text(result->backup) : json_null()));
}
