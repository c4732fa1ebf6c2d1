/* options.c - every option of every command, read into an invocation.
 * Options and the positional argument may come in any order; an option a
 * command does not take, one given twice that does not repeat, or a value
 * that is not what the option wants is a usage error naming it. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cmd.h"

struct option_spec {
	const char *name;		/* long name, without "--"; NULL: short only */
	char short_name;		/* or 0 */
	const char *argument;		/* what the value is, or NULL for a flag */
	bool repeats;
	const char *help;
};

static const struct option_spec specs[OPTION_COUNT] = {
	[OPTION_PID] = { "pid", 'p', "PID", true,
			 "the target process; repeats, for several processes" },
	[OPTION_EXE] = { "exe", 0, "PATH", false,
			 "every process whose executable is PATH (also one started from an "
			 "older copy replaced on disk since, when the build-id is the same)" },
	[OPTION_PROCESS_OBJECT] = { "object", 0, "PATH", false,
				    "every process that maps the shared object PATH" },
	[OPTION_TIMEOUT] = { "timeout", 't', "SECONDS", false,
			     "bounds the whole command (default 10); threads busy in a "
			     "replaced function are waited for until then" },
	[OPTION_UNRELIABLE] = { "allow-unreliable-stacks", 0, NULL, false,
				"count a thread whose stack cannot be unwound (code without "
				"unwind information, JIT) as safe" },
	[OPTION_ALLOW_SUSPENDED] = { "allow-suspended", 0, NULL, false,
				     "do not look for functions suspended on coroutine stacks or in "
				     "saved contexts (the memory scan), and let them be replaced" },
	[OPTION_REQUIRE_SIGNATURE] = { "require-signature", 0, NULL, false,
				       "refuse a patch without a signature by a trusted key "
				       "(/etc/hotpatch/keys); a bad signature is always refused" },
	[OPTION_DEBUG_DIR] = { "debug-dir", 0, "DIR", true,
			       "also look for a stripped object's debug file in DIR, laid out "
			       "like /usr/lib/debug (DIR/.build-id/xx/rest.debug) or named after "
			       "the object (DIR/NAME.debug); repeats" },
	[OPTION_DEBUG_FILE] = { "debug-file", 0, "FILE", true,
				"a debug file, used for the object of its build-id; repeats" },
	[OPTION_SEQUENCE] = { "sequence", 0, "N", false,
			      "the patch list shows with sequence number N (one copy of a "
			      "patch applied twice)" },
	[OPTION_OUT] = { "out", 0, "PREFIX", false, "where keygen writes PREFIX.key and PREFIX.pub" },
	[OPTION_KEY] = { "key", 0, "PREFIX.key", false, "the secret key to sign with" },
	[OPTION_SOURCE] = { "source", 0, "DIR", false, "the tree PROGRAM was built from (only read)" },
	[OPTION_DIFF] = { "diff", 0, "FIX.diff", false, "the fix, a unified diff (patch -p1, else -p0)" },
	[OPTION_COMPILE] = { "compile", 0, "'CC FLAGS...'", false,
			     "the command PROGRAM's sources were compiled with" },
	[OPTION_COMPILE_COMMANDS] = { "compile-commands", 0, "FILE", false,
				      "or a compile_commands.json, one command per file" },
	[OPTION_BINARY] = { "binary", 0, "PROGRAM", false,
			    "the executable (or library) the process runs" },
	[OPTION_OUTPUT] = { NULL, 'o', "OUT.so", false, "where the patch is written" },
	[OPTION_OBJECT] = { "object", 0, "LIBNAME", false,
			    "patch this library of the process, not the executable" },
	[OPTION_NAME] = { "name", 0, "NAME", false, "what list shows (default: OUT without .so)" },
	[OPTION_DESCRIPTION] = { "description", 0, "TEXT", false, "what list shows under the name" },
	[OPTION_ID] = { "id", 0, "ID", true, "an identifier of the fix (a CVE, say); repeats" },
	[OPTION_ROOT] = { "root", 0, "DIR", false,
			  "work on DIR/etc/ld.so.preload, for an image or a container's tree "
			  "(default /)" },
	[OPTION_LOADER] = { "loader", 0, "PATH", false,
			    "the loader's absolute path as processes see it (default: where "
			    "make install put it, PREFIX/lib/hotpatch/libhotpatch-loader.so)" },
	[OPTION_FIX] = { "fix", 0, "ID=FIX.diff", true,
			 "one fix of several, in order: its id and its diff (instead of --diff "
			 "and --id); repeats" },
	[OPTION_EXCLUDE] = { "exclude", 0, "ID", true,
			     "leave out the fix ID of a patch built from several (--fix); repeats" },
	[OPTION_STOP_ALL] = { "stop-all", 0, NULL, false,
			       "stop every thread at once to check the stacks and write the "
			       "jumps, instead of moving each thread alone" },
	[OPTION_GATES] = { "gates", 0, NULL, false,
			   "move each thread alone while the others run, through gates (the "
			   "default: apply to the new code, revert of a patch applied so back "
			   "to the original; where they cannot be used, every thread is stopped "
			   "at once and the JSON says why: see hotpatch(1))" },
	[OPTION_CUMULATIVE] = { "cumulative", 0, NULL, false,
				"a cumulative patch: applied, it takes over every patch applied "
				"before it (see hotpatch(1))" },
};

/* getopt's values: an option's id plus this; --json and --help below it. */
#define OPTION_VALUE_BASE 1000
#define JSON_VALUE 'j'
#define HELP_VALUE 'h'

/* "--pid" or "-o": how the option is spelled in messages. */
static const char *option_label(enum option_id id)
{
	static char text[OPTION_COUNT][40];

	if (!text[id][0] && specs[id].name)
		snprintf(text[id], sizeof(text[id]), "--%s", specs[id].name);
	else if (!text[id][0])
		snprintf(text[id], sizeof(text[id]), "-%c", specs[id].short_name);
	return text[id];
}

const char *option_synopsis(enum option_id id)
{
	static char text[OPTION_COUNT][64];

	if (!text[id][0])
		snprintf(text[id], sizeof(text[id]), "%s%s%s", option_label(id),
			 specs[id].argument ? " " : "",
			 specs[id].argument ? specs[id].argument : "");
	return text[id];
}

char option_short_name(enum option_id id)
{
	return specs[id].short_name;
}

bool option_has_long_name(enum option_id id)
{
	return specs[id].name != NULL;
}

const char *option_help(enum option_id id)
{
	return specs[id].help;
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

static bool is_kind(const char *path, bool directory)
{
	struct stat info;

	return path[0] && stat(path, &info) == 0 &&
	       (directory ? S_ISDIR(info.st_mode) : S_ISREG(info.st_mode));
}

/* Adds one value of a repeating option; false when there are too many. */
static bool add_repeated(const char **list, size_t *count, const char *value)
{
	if (*count >= REPEAT_MAX)
		return false;
	list[(*count)++] = value;
	return true;
}

/* --fix ID=FIX.diff: the id copied, the diff's path where it is in argv. */
static int store_fix(const char *value, struct invocation *invocation, struct output *output)
{
	struct hp_build_request *build = &invocation->build;
	const char *equals = strchr(value, '=');
	size_t length = equals ? (size_t)(equals - value) : 0;
	char *id;

	if (build->fix_count == REPEAT_MAX)
		return usage_error(output, "--fix repeats at most %d times", REPEAT_MAX);
	id = invocation->fix_ids[build->fix_count];
	if (!equals || length == 0 || length >= sizeof(invocation->fix_ids[0]) || !equals[1])
		return usage_error(output, "--fix wants ID=FIX.diff (an id of at most %zu characters), "
				   "not '%s'", sizeof(invocation->fix_ids[0]) - 1, value);
	memcpy(id, value, length);
	id[length] = '\0';
	invocation->fixes[build->fix_count++] = (struct hp_build_fix){ id, equals + 1 };
	return 0;
}

/* Stores one option's value; returns 0 or the exit code of a usage error. */
static int store(enum option_id id, const char *value, struct invocation *invocation,
		 struct output *output)
{
	struct hp_build_request *build = &invocation->build;
	bool added = true;

	switch (id) {
	case OPTION_PID:
		if (!parse_pid(value, &output->pid))
			return usage_error(output, "--pid wants a process id, not '%s'", value);
		if (invocation->selector.pid_count == PIDS_MAX)
			return usage_error(output, "--pid repeats at most %d times", PIDS_MAX);
		invocation->pids[invocation->selector.pid_count++] = output->pid;
		invocation->request.pid = output->pid;
		break;
	case OPTION_EXE: invocation->selector.exe = value; break;
	case OPTION_PROCESS_OBJECT: invocation->selector.object = value; break;
	case OPTION_TIMEOUT:
		if (!parse_timeout(value, &invocation->request.timeout_seconds))
			return usage_error(output, "--timeout wants a number of seconds, not '%s'",
					   value);
		break;
	case OPTION_SEQUENCE:
		if (!parse_sequence(value, &invocation->request.patch_sequence))
			return usage_error(output, "--sequence wants a sequence number as list shows "
					   "it, not '%s'", value);
		break;
	case OPTION_UNRELIABLE: invocation->request.allow_unreliable_stacks = true; break;
	case OPTION_ALLOW_SUSPENDED: invocation->request.allow_suspended = true; break;
	case OPTION_STOP_ALL: invocation->request.stop_all = true; break;
	case OPTION_GATES: invocation->request.stop_all = false; break;
	case OPTION_REQUIRE_SIGNATURE: invocation->request.require_signature = true; break;
	case OPTION_DEBUG_DIR:
	case OPTION_DEBUG_FILE:
		if (!is_kind(value, id == OPTION_DEBUG_DIR))
			return usage_error(output, "%s wants an existing %s, not '%s'", option_label(id),
					   id == OPTION_DEBUG_DIR ? "directory" : "file", value);
		added = id == OPTION_DEBUG_DIR
				? add_repeated(invocation->debug_directories,
					       &invocation->debug.directory_count, value)
				: add_repeated(invocation->debug_files,
					       &invocation->debug.file_count, value);
		break;
	case OPTION_ID: added = add_repeated(invocation->ids, &build->id_count, value); break;
	case OPTION_OUT: invocation->out = value; break;
	case OPTION_KEY: invocation->key = value; break;
	case OPTION_SOURCE: build->source = value; break;
	case OPTION_DIFF: build->diff = value; break;
	case OPTION_COMPILE: build->compile = value; break;
	case OPTION_COMPILE_COMMANDS: build->compile_commands = value; break;
	case OPTION_BINARY: build->binary = value; break;
	case OPTION_OUTPUT: build->output = value; break;
	case OPTION_OBJECT: build->object = value; break;
	case OPTION_NAME: build->name = value; break;
	case OPTION_DESCRIPTION: build->description = value; break;
	case OPTION_ROOT: invocation->root = value; break;
	case OPTION_LOADER: invocation->loader = value; break;
	case OPTION_CUMULATIVE: build->cumulative = true; break;
	case OPTION_EXCLUDE:
		added = add_repeated(invocation->excludes, &invocation->request.exclude_count,
				     value);
		break;
	case OPTION_FIX: return store_fix(value, invocation, output);
	case OPTION_COUNT: break;
	}
	if (!added)
		return usage_error(output, "%s repeats at most %d times", option_label(id),
				   REPEAT_MAX);
	if (specs[id].argument && !value[0])
		return usage_error(output, "%s wants %s, not an empty string", option_label(id),
				   specs[id].argument);
	return 0;
}

/* One option as given: checked against the command, then stored. */
static int take(const struct command *command, enum option_id id, const char *value,
		struct invocation *invocation, struct output *output)
{
	if (!(command->takes & OPTION_BIT(id)))
		return usage_error(output, "%s takes no %s", command->name, option_label(id));
	if ((invocation->given & OPTION_BIT(id)) && !specs[id].repeats)
		return usage_error(output, "%s given twice", option_label(id));
	invocation->given |= OPTION_BIT(id);
	return store(id, value, invocation, output);
}

/* Two options may share a name in different commands (build's --object
 * LIBNAME, apply's --object PATH): the one the command takes wins, else the
 * first. */
static bool shadowed(const struct command *command, enum option_id id)
{
	for (int other = 0; other < OPTION_COUNT; other++) {
		if (other == (int)id || !specs[other].name || strcmp(specs[other].name, specs[id].name))
			continue;
		if (command->takes & OPTION_BIT(other))
			return !(command->takes & OPTION_BIT(id)) || other < (int)id;
		if (!(command->takes & OPTION_BIT(id)) && other < (int)id)
			return true;
	}
	return false;
}

/* What getopt_long needs: every option (so that one of another command is
 * named as such, not as unknown), --json and --help. */
static void getopt_tables(const struct command *command, struct option *longs, char *shorts,
			  size_t shorts_size)
{
	size_t used = 0, count = 0;

	for (int id = 0; id < OPTION_COUNT; id++) {
		if (specs[id].name && !shadowed(command, (enum option_id)id))
			longs[count++] = (struct option){ specs[id].name,
							  specs[id].argument ? required_argument
									     : no_argument,
							  NULL, OPTION_VALUE_BASE + id };
		if (specs[id].short_name && used + 3 < shorts_size) {
			shorts[used++] = specs[id].short_name;
			if (specs[id].argument)
				shorts[used++] = ':';
		}
	}
	longs[count++] = (struct option){ "json", no_argument, NULL, JSON_VALUE };
	longs[count++] = (struct option){ "help", no_argument, NULL, HELP_VALUE };
	longs[count] = (struct option){ NULL, 0, NULL, 0 };
	snprintf(shorts + used, shorts_size - used, "jh");
}

bool invocation_is_many(const struct invocation *invocation)
{
	return invocation->selector.pid_count > 1 || invocation->selector.exe ||
	       invocation->selector.object;
}

/* The option id of a value getopt_long returned, or -1. */
static int option_of(int value)
{
	if (value >= OPTION_VALUE_BASE && value < OPTION_VALUE_BASE + OPTION_COUNT)
		return value - OPTION_VALUE_BASE;
	for (int id = 0; id < OPTION_COUNT; id++)
		if (specs[id].short_name && specs[id].short_name == value)
			return id;
	return -1;
}

/* The request as a whole: what is missing, or given but contradictory. */
static int check_complete(const struct command *command, int positional,
			  struct invocation *invocation, struct output *output)
{
	const struct hp_build_request *build = &invocation->build;

	/* --pid is needed where --exe or --object would do as well. */
	if ((invocation->given & OPTION_BIT(OPTION_GATES)) &&
	    (invocation->given & OPTION_BIT(OPTION_STOP_ALL)))
		return usage_error(output, "--gates and --stop-all exclude each other");
	if ((command->needs & OPTION_BIT(OPTION_PID)) && !(invocation->given & PROCESS_OPTIONS))
		return usage_error(output, "%s needs %s", command->name,
				   (command->takes & OPTION_BIT(OPTION_EXE))
					   ? "--pid PID (or --exe PATH or --object PATH)"
					   : "--pid PID");
	for (int id = 0; id < OPTION_COUNT; id++)
		if (id != OPTION_PID && (command->needs & OPTION_BIT(id)) &&
		    !(invocation->given & OPTION_BIT(id)))
			return usage_error(output, "%s needs %s", command->name,
					   option_synopsis((enum option_id)id));
	if (command->takes & OPTION_BIT(OPTION_FIX)) {
		if (!build->diff && !build->fix_count)
			return usage_error(output, "%s needs --diff FIX.diff or --fix ID=FIX.diff",
					   command->name);
		if (build->diff && build->fix_count)
			return usage_error(output, "%s takes --diff or --fix, not both", command->name);
		if (build->id_count && build->fix_count)
			return usage_error(output, "%s names each fix's id in --fix: it takes no --id "
					   "with it", command->name);
	}
	if (command->takes & OPTION_BIT(OPTION_COMPILE)) {
		if (build->compile && build->compile_commands)
			return usage_error(output, "%s takes --compile or --compile-commands, not both",
					   command->name);
		if (!build->compile && !build->compile_commands)
			return usage_error(output, "%s needs --compile 'CC FLAGS...' or "
					   "--compile-commands FILE", command->name);
	}
	if (positional < command->min_arguments)
		return usage_error(output, "%s needs %s", command->name, command->argument);
	if ((invocation->given & OPTION_BIT(OPTION_SEQUENCE)) && positional > 0)
		return usage_error(output, "%s takes a patch name or --sequence, not both",
				   command->name);
	return 0;
}

int options_parse(const struct command *command, int argc, char **argv,
		  struct invocation *invocation, struct output *output, bool *help,
		  volatile const int *interrupted)
{
	struct option longs[OPTION_COUNT + 3];
	char shorts[2 * OPTION_COUNT + 3];
	int option, positional, code;

	getopt_tables(command, longs, shorts, sizeof(shorts));
	invocation->command = command;
	invocation->request.timeout_seconds = 10;
	/* Gates by default: each thread moved alone where they fit (apply.c
	 * says why not where they do not). */
	invocation->request.stop_all = false;
	invocation->request.interrupted = interrupted;
	invocation->build.object = "";
	invocation->build.ids = invocation->ids;
	invocation->build.fixes = invocation->fixes;
	invocation->request.excludes = invocation->excludes;
	invocation->build.interrupted = interrupted;
	opterr = 0;
	optind = 1;
	*help = false;
	while ((option = getopt_long(argc, argv, shorts, longs, NULL)) != -1) {
		if (option == HELP_VALUE) {
			*help = true;
			return 0;
		}
		if (option == JSON_VALUE)
			continue;
		option = option_of(option);
		if (option < 0)
			return usage_error(output, "unknown or incomplete option %s",
					   argv[optind - 1]);
		code = take(command, (enum option_id)option, optarg, invocation, output);
		if (code != 0)
			return code;
	}
	positional = argc - optind;
	if (positional > command->max_arguments)
		return usage_error(output, "unexpected argument '%s'",
				   argv[optind + command->max_arguments]);
	code = check_complete(command, positional, invocation, output);
	if (code != 0)
		return code;
	if (positional > 0)
		invocation->argument = argv[optind];
	if (command->argument_is_name)
		invocation->request.patch_name = invocation->argument;
	else
		invocation->request.patch_path = invocation->argument;
	invocation->selector.pids = invocation->pids;
	if (invocation_is_many(invocation))
		output->pid = 0;
	invocation->debug.directories = invocation->debug_directories;
	invocation->debug.files = invocation->debug_files;
	invocation->debug.timeout_seconds = invocation->request.timeout_seconds;
	invocation->debug.interrupted = interrupted;
	return 0;
}
