/* main.c - from the command line to the exit code: find the command in the
 * table, parse its options, run it, print what it did, and make sure the
 * output really reached stdout.  Only this file calls exit. */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cmd.h"

static volatile int interrupted;

static void on_signal(int number)
{
	(void)number;
	interrupted = 1;
}

static void install_signal_handlers(void)
{
	struct sigaction action = { .sa_handler = on_signal };

	sigemptyset(&action.sa_mask);
	/* No SA_RESTART: waits return early and the engine sees the flag. */
	sigaction(SIGINT, &action, NULL);
	sigaction(SIGTERM, &action, NULL);
	sigaction(SIGHUP, &action, NULL);
}

int usage_error(struct output *output, const char *format, ...)
{
	struct hp_error error = { .status = HP_USAGE, .kind = HP_KIND_USAGE };
	va_list arguments;

	va_start(arguments, format);
	vsnprintf(error.message, sizeof(error.message), format, arguments);
	va_end(arguments);
	snprintf(error.hint, sizeof(error.hint), "see hotpatch %s%s--help", output->command,
		 output->command[0] ? " " : "");
	print_failure(output, &error, 2);
	return 2;
}

static bool is_json_option(const char *word)
{
	return strcmp(word, "--json") == 0 || strcmp(word, "-j") == 0;
}

/* --json anywhere before "--" asks for JSON, so that even a usage error
 * found before it is read is reported as JSON. */
static bool wants_json(int argc, char **argv)
{
	for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
		if (is_json_option(argv[i]))
			return true;
	return false;
}

/* A failure to write stdout (a full disk, a closed pipe) is a failure of
 * the command: a script must not take a lost answer for a good one. */
static int finish_output(const struct output *output, int exit_code, bool changed_target)
{
	struct hp_error error = { .status = HP_FAILED, .kind = HP_KIND_OUTPUT };

	if (fflush(stdout) == 0 && !ferror(stdout))
		return exit_code;
	error.error_number = errno ? errno : EIO;
	snprintf(error.message, sizeof(error.message), "cannot write the output of %s: %s",
		 output->command[0] ? output->command : "hotpatch", strerror(error.error_number));
	if (changed_target && exit_code == 0)
		snprintf(error.hint, sizeof(error.hint),
			 "the %s itself was done; hotpatch list --pid %d shows the process",
			 output->command, output->pid);
	print_failure_text(&error);
	return exit_code ? exit_code : 1;
}

static int run_command(const struct command *command, int argc, char **argv,
		       struct output *output)
{
	struct invocation invocation = { 0 };
	struct outcome outcome = { 0 };
	struct hp_error error = { 0 };
	bool help;
	int status, exit_code = options_parse(command, argc, argv, &invocation, output, &help,
					      &interrupted);

	if (exit_code != 0)
		return exit_code;
	if (help)
		return finish_output(output, help_print(output, command), false);
	if (invocation_is_many(&invocation)) {
		hp_debug_search_set(&invocation.debug);
		return finish_output(output, fanout_run(&invocation, output, &interrupted), false);
	}
	hp_debug_search_set(&invocation.debug);
	error.pid = invocation.request.pid;
	status = command->run(&invocation, &outcome, &error);
	exit_code = exit_code_for(status);
	if (status == HP_OK && outcome.exit_code != 0)
		exit_code = outcome.exit_code;
	if (status == HP_OK)
		(output->json ? command->print_json : command->print_text)(output, &invocation,
									    &outcome);
	else
		print_failure(output, &error, exit_code);
	hp_result_release(&outcome.engine);
	outcome_release_store(&outcome);
	hp_build_result_release(&outcome.build);
	hp_error_release(&error);
	return finish_output(output, exit_code, command->audited);
}

int main(int argc, char **argv)
{
	struct output output = { .command = "", .json = wants_json(argc, argv) };
	const struct command *command;
	int first = 1;

	install_signal_handlers();
	/* `hotpatch --json --help` and `hotpatch --json list ...` alike. */
	while (first < argc && is_json_option(argv[first]))
		first++;
	if (first >= argc)
		return help_usage_error(&output);
	if (strcmp(argv[first], "help") == 0 && first + 1 < argc) {
		/* `hotpatch help apply`, as `hotpatch apply --help`. */
		command = command_find(argv[first + 1]);
		if (!command)
			return usage_error(&output, "unknown command '%s'", argv[first + 1]);
		output.command = command->name;
		return finish_output(&output, help_print(&output, command), false);
	}
	if (strcmp(argv[first], "--help") == 0 || strcmp(argv[first], "-h") == 0 ||
	    strcmp(argv[first], "help") == 0)
		return finish_output(&output, help_print(&output, NULL), false);
	if (strcmp(argv[first], "--version") == 0 || strcmp(argv[first], "-V") == 0)
		return finish_output(&output, version_print(&output), false);
	command = command_find(argv[first]);
	if (!command)
		return usage_error(&output, "unknown command '%s'", argv[first]);
	output.command = command->name;
	return run_command(command, argc - first, argv + first, &output);
}
