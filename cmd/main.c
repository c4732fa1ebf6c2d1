/* main.c - the command table, option parsing and the exit code.  Only this
 * file calls exit; the engine in lib/ does the work and reports a status. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"

static volatile int interrupted;

static const char usage_text[] =
	"usage: hotpatch <command> [options]\n"
	"\n"
	"Replace functions inside a running process without restarting it.\n"
	"\n"
	"commands:\n"
	"  apply   --pid PID [--timeout SECONDS] [--allow-unreliable-stacks] [--json] PATCH.so\n"
	"          load PATCH.so into the process and redirect the functions it replaces\n"
	"  revert  --pid PID [--timeout SECONDS] [--allow-unreliable-stacks] [--json] [PATCH]\n"
	"          take back PATCH (default: the most recently applied patch)\n"
	"  list    --pid PID [--json]\n"
	"          show the applied patches, newest first\n"
	"  check   --pid PID [--timeout SECONDS] [--allow-unreliable-stacks] [--json] PATCH.so\n"
	"          run every check of apply without changing the process\n"
	"\n"
	"options:\n"
	"  -p, --pid PID          the target process\n"
	"  -t, --timeout SECONDS  bounds the whole command (default 10); threads busy\n"
	"                         in a replaced function are waited for until then\n"
	"      --allow-unreliable-stacks\n"
	"                         count a thread whose stack cannot be unwound (code\n"
	"                         without unwind information, JIT) as safe\n"
	"  -j, --json             print one JSON document on stdout\n"
	"  -h, --help             show this help\n"
	"  -V, --version          show the version\n"
	"\n"
	"exit status: 0 done, 1 failed, 2 usage error, 3 busy (a function stayed on a\n"
	"thread's stack until the timeout), 4 the patch does not fit this target.\n";

typedef int (*engine_function)(const struct hp_request *, struct hp_result *,
			       struct hp_error *);

struct command {
	const char *name;
	engine_function run;
	bool checks_stacks;	/* takes --timeout and --allow-unreliable-stacks */
	int min_arguments, max_arguments;	/* positional */
};

static const struct command commands[] = {
	{ "apply", hp_apply, true, 1, 1 },
	{ "revert", hp_revert, true, 0, 1 },
	{ "list", hp_list, false, 0, 0 },
	{ "check", hp_check, true, 1, 1 },
};

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

__attribute__((format(printf, 2, 3)))
static int usage_error(struct output *output, const char *format, ...)
{
	struct hp_error error = { .status = HP_USAGE };
	va_list arguments;

	va_start(arguments, format);
	vsnprintf(error.message, sizeof(error.message), format, arguments);
	va_end(arguments);
	snprintf(error.hint, sizeof(error.hint), "see hotpatch --help");
	print_failure(output, &error, 2);
	return 2;
}

static const struct command *find_command(const char *name)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

static bool parse_pid(const char *text, int *pid)
{
	char *end;
	long value;

	errno = 0;
	value = strtol(text, &end, 10);
	if (errno || *end || end == text || value <= 0 || value > 0x3fffffff)
		return false;
	*pid = (int)value;
	return true;
}

static bool parse_timeout(const char *text, double *seconds)
{
	char *end;
	double value;

	errno = 0;
	value = strtod(text, &end);
	if (errno || *end || end == text || !(value > 0) || value > 86400)
		return false;
	*seconds = value;
	return true;
}

static int run_command(const struct command *command, int argc, char **argv,
		       struct output *output)
{
	static const struct option options[] = {
		{ "pid", required_argument, NULL, 'p' },   { "timeout", required_argument, NULL, 't' },
		{ "json", no_argument, NULL, 'j' },	   { "help", no_argument, NULL, 'h' },
		{ "allow-unreliable-stacks", no_argument, NULL, 'u' },
		{ NULL, 0, NULL, 0 },
	};
	struct hp_request request = { .timeout_seconds = 10, .interrupted = &interrupted };
	struct hp_result result = { 0 };
	struct hp_error error = { 0 };
	const char *bad_pid = NULL, *bad_timeout = NULL;
	bool timeout_given = false, unreliable_given = false;
	int option, status, positional;

	/* --json first, so even a usage error is reported as JSON. */
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--json") == 0 || strcmp(argv[i], "-j") == 0)
			output->json = true;
	opterr = 0;
	optind = 1;
	while ((option = getopt_long(argc, argv, "+p:t:jh", options, NULL)) != -1) {
		switch (option) {
		case 'p':
			if (!parse_pid(optarg, &output->pid))
				bad_pid = optarg;
			break;
		case 't':
			timeout_given = true;
			if (!parse_timeout(optarg, &request.timeout_seconds))
				bad_timeout = optarg;
			break;
		case 'j':
			break;
		case 'u':
			unreliable_given = true;
			request.allow_unreliable_stacks = true;
			break;
		case 'h':
			fputs(usage_text, stdout);
			return 0;
		default:
			return usage_error(output, "unknown or incomplete option %s",
					   argv[optind - 1]);
		}
	}
	if (bad_pid)
		return usage_error(output, "--pid wants a process id, not '%s'", bad_pid);
	if (bad_timeout)
		return usage_error(output, "--timeout wants a number of seconds, not '%s'",
				   bad_timeout);
	if (timeout_given && !command->checks_stacks)
		return usage_error(output, "%s takes no --timeout", command->name);
	if (unreliable_given && !command->checks_stacks)
		return usage_error(output, "%s takes no --allow-unreliable-stacks", command->name);
	if (!output->pid)
		return usage_error(output, "%s needs --pid PID", command->name);
	positional = argc - optind;
	if (positional < command->min_arguments)
		return usage_error(output, "%s needs a patch file", command->name);
	if (positional > command->max_arguments)
		return usage_error(output, "unexpected argument '%s'",
				   argv[optind + command->max_arguments]);
	request.pid = output->pid;
	if (positional > 0 && strcmp(command->name, "revert") == 0)
		request.patch_name = argv[optind];
	else if (positional > 0)
		request.patch_path = argv[optind];
	status = command->run(&request, &result, &error);
	if (status == HP_OK)
		print_success(output, &result);
	else
		print_failure(output, &error, exit_code_for(status));
	hp_result_release(&result);
	return exit_code_for(status);
}

int main(int argc, char **argv)
{
	struct output output = { .command = "" };
	const struct command *command;

	install_signal_handlers();
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--json") == 0 || strcmp(argv[i], "-j") == 0)
			output.json = true;
	if (argc < 2)
		return usage_error(&output, "no command given");
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		fputs(usage_text, stdout);
		return 0;
	}
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0) {
		printf("hotpatch %s\n", HOTPATCH_VERSION);
		return 0;
	}
	command = find_command(argv[1]);
	if (!command)
		return usage_error(&output, "unknown command '%s'", argv[1]);
	output.command = command->name;
	return run_command(command, argc - 1, argv + 1, &output);
}
