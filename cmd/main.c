/* main.c - the command table, option parsing and the exit code.  Only this
 * file calls exit; the engine in lib/ does the work and reports a status. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cmd.h"

static volatile int interrupted;

static const char usage_text[] =
	"usage: hotpatch <command> [options]\n"
	"\n"
	"Replace functions inside a running process without restarting it.\n"
	"\n"
	"commands:\n"
	"  apply   --pid PID [--timeout SECONDS] [--allow-unreliable-stacks] [--require-signature]"
	" [--debug-dir DIR]... [--debug-file FILE]... [--json] PATCH.so\n"
	"          load PATCH.so into the process and redirect the functions it replaces\n"
	"  revert  --pid PID [--timeout SECONDS] [--allow-unreliable-stacks] [--sequence N] [--json]"
	" [PATCH]\n"
	"          take back PATCH (default: the most recently applied patch), or the\n"
	"          patch of sequence number N (as list shows it: one copy of a patch)\n"
	"  list    --pid PID [--json]\n"
	"          show the applied patches, newest first, also while another command\n"
	"          is at work on the process\n"
	"  check   --pid PID [--timeout SECONDS] [--allow-unreliable-stacks] [--require-signature]"
	" [--debug-dir DIR]... [--debug-file FILE]... [--json] PATCH.so\n"
	"          run every check of apply without changing the process\n"
	"  keygen  --out PREFIX [--json]\n"
	"          make a signing key pair: PREFIX.key (secret) and PREFIX.pub\n"
	"  sign    --key PREFIX.key [--json] PATCH.so\n"
	"          sign PATCH.so, writing PATCH.so.sig beside it\n"
	"  build   --source DIR --diff FIX.diff (--compile 'CC FLAGS...' | --compile-commands FILE)"
	" --binary PROGRAM -o OUT.so"
	" [--object LIBNAME] [--name NAME] [--description TEXT] [--id ID]...\n"
	"          make a patch from a source diff: the functions whose code the fix\n"
	"          changes, referring to PROGRAM's own variables and functions\n"
	"\n"
	"options:\n"
	"  -p, --pid PID          the target process\n"
	"  -t, --timeout SECONDS  bounds the whole command (default 10); threads busy\n"
	"                         in a replaced function are waited for until then\n"
	"      --allow-unreliable-stacks\n"
	"                         count a thread whose stack cannot be unwound (code\n"
	"                         without unwind information, JIT) as safe\n"
	"      --require-signature\n"
	"                         refuse a patch without a signature by a trusted key\n"
	"                         (/etc/hotpatch/keys); a bad signature is always refused\n"
	"      --debug-dir DIR    also look for a stripped object's debug file in DIR, laid\n"
	"                         out like /usr/lib/debug (DIR/.build-id/xx/rest.debug) or\n"
	"                         named after the object (DIR/NAME.debug); repeats\n"
	"      --debug-file FILE  a debug file, used for the object of its build-id; repeats\n"
	"      --sequence N       revert: the patch list shows with sequence number N\n"
	"      --out PREFIX       where keygen writes PREFIX.key and PREFIX.pub\n"
	"      --key PREFIX.key   the secret key sign signs with\n"
	"      --source DIR       build: the tree PROGRAM was built from (only read)\n"
	"      --diff FIX.diff    build: the fix, a unified diff (patch -p1, else -p0)\n"
	"      --compile 'CC FLAGS...'\n"
	"                         build: the command PROGRAM's sources were compiled with\n"
	"      --compile-commands FILE\n"
	"                         build: or a compile_commands.json, one command per file\n"
	"      --binary PROGRAM   build: the executable (or library) the process runs\n"
	"  -o OUT.so              build: where the patch is written\n"
	"      --object LIBNAME   build: patch this library of the process, not the executable\n"
	"      --name NAME, --description TEXT, --id ID\n"
	"                         build: what list shows (name: OUT without .so); --id repeats\n"
	"  -j, --json             print one JSON document on stdout\n"
	"  -h, --help             show this help\n"
	"  -V, --version          show the version\n"
	"\n"
	"exit status: 0 done, 1 failed, 2 usage error, 3 busy (a function stayed on a\n"
	"thread's stack until the timeout), 4 the patch does not fit this target.\n";

/* The options a command may take, besides --json and --help. */
enum option_bit {
	OPTION_PID = 1u << 0,
	OPTION_TIMEOUT = 1u << 1,
	OPTION_UNRELIABLE = 1u << 2,
	OPTION_REQUIRE_SIGNATURE = 1u << 3,
	OPTION_OUT = 1u << 4,
	OPTION_KEY = 1u << 5,
	OPTION_DEBUG_DIR = 1u << 6,
	OPTION_DEBUG_FILE = 1u << 7,
	OPTION_SEQUENCE = 1u << 8,
};

/* The most --debug-dir and --debug-file options, each. */
#define DEBUG_PLACES_MAX 16

#define STACK_OPTIONS (OPTION_PID | OPTION_TIMEOUT | OPTION_UNRELIABLE)
/* Where the commands that read a stripped target's symbols find them. */
#define DEBUG_OPTIONS (OPTION_DEBUG_DIR | OPTION_DEBUG_FILE)

static const struct {
	unsigned bit;
	const char *name, *needed;	/* "--pid", "--pid PID" */
} option_names[] = {
	{ OPTION_PID, "--pid", "--pid PID" },
	{ OPTION_TIMEOUT, "--timeout", "--timeout SECONDS" },
	{ OPTION_UNRELIABLE, "--allow-unreliable-stacks", "--allow-unreliable-stacks" },
	{ OPTION_REQUIRE_SIGNATURE, "--require-signature", "--require-signature" },
	{ OPTION_OUT, "--out", "--out PREFIX" },
	{ OPTION_KEY, "--key", "--key PREFIX.key" },
	{ OPTION_DEBUG_DIR, "--debug-dir", "--debug-dir DIR" },
	{ OPTION_DEBUG_FILE, "--debug-file", "--debug-file FILE" },
	{ OPTION_SEQUENCE, "--sequence", "--sequence N" },
};

struct command;

/* What the command line asked for. */
struct invocation {
	const struct command *command;
	struct hp_request request;
	const char *out, *key;
	const char *argument;		/* the positional argument, or NULL */
	const char *debug_directories[DEBUG_PLACES_MAX], *debug_files[DEBUG_PLACES_MAX];
	struct hp_debug_search debug;
};

typedef int (*engine_function)(const struct hp_request *, struct hp_result *,
			       struct hp_error *);
typedef int (*command_function)(const struct invocation *, struct output *);

struct command {
	const char *name;
	command_function run;
	engine_function engine;		/* for run_engine */
	unsigned takes, needs;		/* option bits */
	bool audited;			/* changes a target: a record of every run */
	int min_arguments, max_arguments;	/* positional */
};

static int run_engine(const struct invocation *invocation, struct output *output);
static int run_keygen(const struct invocation *invocation, struct output *output);
static int run_sign(const struct invocation *invocation, struct output *output);

static const struct command commands[] = {
	{ "apply", run_engine, hp_apply, STACK_OPTIONS | OPTION_REQUIRE_SIGNATURE | DEBUG_OPTIONS,
	  OPTION_PID, true, 1, 1 },
	{ "revert", run_engine, hp_revert, STACK_OPTIONS | OPTION_SEQUENCE, OPTION_PID, true, 0, 1 },
	{ "list", run_engine, hp_list, OPTION_PID, OPTION_PID, false, 0, 0 },
	{ "check", run_engine, hp_check, STACK_OPTIONS | OPTION_REQUIRE_SIGNATURE | DEBUG_OPTIONS,
	  OPTION_PID, false, 1, 1 },
	{ "keygen", run_keygen, NULL, OPTION_OUT, OPTION_OUT, false, 0, 0 },
	{ "sign", run_sign, NULL, OPTION_KEY, OPTION_KEY, false, 1, 1 },
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

int usage_error(struct output *output, const char *format, ...)
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

/* A patch's sequence number: 1 for the first patch ever applied. */
static bool parse_sequence(const char *text, uint64_t *sequence)
{
	char *end;
	unsigned long long value;

	errno = 0;
	value = strtoull(text, &end, 10);
	if (errno || *end || end == text || text[0] == '-' || text[0] == '+' || value == 0)
		return false;
	*sequence = value;
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

/* Keeps a --debug-dir or --debug-file; false when it is not an existing
 * directory or file, or one too many. */
static bool add_debug_place(struct invocation *invocation, bool directory, const char *path)
{
	size_t *count = directory ? &invocation->debug.directory_count
				  : &invocation->debug.file_count;
	const char **places = directory ? invocation->debug_directories : invocation->debug_files;
	struct stat info;

	if (*count >= DEBUG_PLACES_MAX || !path[0] || stat(path, &info) != 0 ||
	    (directory ? !S_ISDIR(info.st_mode) : !S_ISREG(info.st_mode)))
		return false;
	places[(*count)++] = path;
	return true;
}

static int debug_place_error(struct output *output, const struct invocation *invocation,
			     bool directory, const char *path)
{
	const char *name = directory ? "--debug-dir" : "--debug-file";

	if ((directory ? invocation->debug.directory_count : invocation->debug.file_count) >=
	    DEBUG_PLACES_MAX)
		return usage_error(output, "%s repeats at most %d times", name, DEBUG_PLACES_MAX);
	return usage_error(output, "%s wants an existing %s, not '%s'", name,
			   directory ? "directory" : "file", path);
}

static int run_engine(const struct invocation *invocation, struct output *output)
{
	const struct command *command = invocation->command;
	struct hp_result result = { 0 };
	struct hp_error error = { 0 };
	struct audit_target target = { 0 };
	int status, exit_code;

	/* Before the engine: the process may be gone afterwards. */
	if (command->audited) {
		audit_target_read(invocation->request.pid, &target);
		audit_started(command->name, &invocation->request, &target);
	}
	status = command->engine(&invocation->request, &result, &error);
	exit_code = exit_code_for(status);
	/* First the record, so that a closed stdout cannot lose it. */
	if (command->audited)
		audit_command(command->name, &invocation->request, &target, &result, &error,
			      exit_code);
	if (status == HP_OK)
		print_success(output, &result);
	else
		print_failure(output, &error, exit_code);
	hp_result_release(&result);
	return exit_code;
}

static int run_keygen(const struct invocation *invocation, struct output *output)
{
	struct hp_signing result;
	struct hp_error error = { 0 };
	int status = hp_keygen(invocation->out, &result, &error);

	if (status == HP_OK)
		print_signing(output, &result);
	else
		print_failure(output, &error, exit_code_for(status));
	return exit_code_for(status);
}

static int run_sign(const struct invocation *invocation, struct output *output)
{
	struct hp_signing result;
	struct hp_error error = { 0 };
	int status = hp_sign(invocation->key, invocation->argument, &result, &error);

	if (status == HP_OK)
		print_signing(output, &result);
	else
		print_failure(output, &error, exit_code_for(status));
	return exit_code_for(status);
}

static int run_command(const struct command *command, int argc, char **argv,
		       struct output *output)
{
	enum { LONG_ONLY = 256, REQUIRE_SIGNATURE, OUT, KEY, DEBUG_DIR, DEBUG_FILE, SEQUENCE };
	static const struct option options[] = {
		{ "pid", required_argument, NULL, 'p' },   { "timeout", required_argument, NULL, 't' },
		{ "json", no_argument, NULL, 'j' },	   { "help", no_argument, NULL, 'h' },
		{ "allow-unreliable-stacks", no_argument, NULL, 'u' },
		{ "require-signature", no_argument, NULL, REQUIRE_SIGNATURE },
		{ "out", required_argument, NULL, OUT },   { "key", required_argument, NULL, KEY },
		{ "debug-dir", required_argument, NULL, DEBUG_DIR },
		{ "debug-file", required_argument, NULL, DEBUG_FILE },
		{ "sequence", required_argument, NULL, SEQUENCE },
		{ NULL, 0, NULL, 0 },
	};
	struct invocation invocation = {
		.command = command,
		.request = { .timeout_seconds = 10, .interrupted = &interrupted },
	};
	const char *bad_pid = NULL, *bad_timeout = NULL, *bad_debug = NULL, *bad_sequence = NULL;
	bool bad_debug_directory = false;
	unsigned given = 0;
	int option, positional;

	/* --json first, so even a usage error is reported as JSON. */
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--json") == 0 || strcmp(argv[i], "-j") == 0)
			output->json = true;
	opterr = 0;
	optind = 1;
	while ((option = getopt_long(argc, argv, "+p:t:jh", options, NULL)) != -1) {
		switch (option) {
		case 'p':
			given |= OPTION_PID;
			if (!parse_pid(optarg, &output->pid))
				bad_pid = optarg;
			break;
		case 't':
			given |= OPTION_TIMEOUT;
			if (!parse_timeout(optarg, &invocation.request.timeout_seconds))
				bad_timeout = optarg;
			break;
		case 'j':
			break;
		case 'u':
			given |= OPTION_UNRELIABLE;
			invocation.request.allow_unreliable_stacks = true;
			break;
		case REQUIRE_SIGNATURE:
			given |= OPTION_REQUIRE_SIGNATURE;
			invocation.request.require_signature = true;
			break;
		case SEQUENCE:
			given |= OPTION_SEQUENCE;
			if (!parse_sequence(optarg, &invocation.request.patch_sequence))
				bad_sequence = optarg;
			break;
		case OUT:
			given |= OPTION_OUT;
			invocation.out = optarg;
			break;
		case KEY:
			given |= OPTION_KEY;
			invocation.key = optarg;
			break;
		case DEBUG_DIR:
		case DEBUG_FILE:
			given |= option == DEBUG_DIR ? OPTION_DEBUG_DIR : OPTION_DEBUG_FILE;
			if (!bad_debug && !add_debug_place(&invocation, option == DEBUG_DIR, optarg)) {
				bad_debug = optarg;
				bad_debug_directory = option == DEBUG_DIR;
			}
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
	if (bad_sequence)
		return usage_error(output, "--sequence wants a sequence number as list shows it, "
				   "not '%s'", bad_sequence);
	for (size_t i = 0; i < sizeof(option_names) / sizeof(option_names[0]); i++)
		if ((given & option_names[i].bit) && !(command->takes & option_names[i].bit))
			return usage_error(output, "%s takes no %s", command->name,
					   option_names[i].name);
	for (size_t i = 0; i < sizeof(option_names) / sizeof(option_names[0]); i++)
		if ((command->needs & option_names[i].bit) && !(given & option_names[i].bit))
			return usage_error(output, "%s needs %s", command->name,
					   option_names[i].needed);
	if (bad_debug)
		return debug_place_error(output, &invocation, bad_debug_directory, bad_debug);
	if ((invocation.out && !invocation.out[0]) || (invocation.key && !invocation.key[0]))
		return usage_error(output, "%s wants a path, not an empty string",
				   invocation.out ? "--out" : "--key");
	positional = argc - optind;
	if (positional < command->min_arguments)
		return usage_error(output, "%s needs a patch file", command->name);
	if (positional > command->max_arguments)
		return usage_error(output, "unexpected argument '%s'",
				   argv[optind + command->max_arguments]);
	if ((given & OPTION_SEQUENCE) && positional > 0)
		return usage_error(output, "revert takes a patch name or --sequence, not both");
	invocation.request.pid = output->pid;
	if (positional > 0)
		invocation.argument = argv[optind];
	if (positional > 0 && strcmp(command->name, "revert") == 0)
		invocation.request.patch_name = invocation.argument;
	else if (positional > 0)
		invocation.request.patch_path = invocation.argument;
	invocation.debug.directories = invocation.debug_directories;
	invocation.debug.files = invocation.debug_files;
	invocation.debug.timeout_seconds = invocation.request.timeout_seconds;
	invocation.debug.interrupted = &interrupted;
	hp_debug_search_set(&invocation.debug);
	return command->run(&invocation, output);
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
	if (strcmp(argv[1], "build") == 0) {
		output.command = "build";
		return cmd_build(argc - 1, argv + 1, &output, &interrupted, usage_text);
	}
	command = find_command(argv[1]);
	if (!command)
		return usage_error(&output, "unknown command '%s'", argv[1]);
	output.command = command->name;
	return run_command(command, argc - 1, argv + 1, &output);
}
