/* cmd.h - the front end's shared pieces: the command table (commands.c),
 * option parsing (options.c), help (help.c), the printers (print_text.c,
 * print_json.c) and the audit record (audit.c).  No ptrace or ELF here. */
#ifndef HOTPATCH_CMD_H
#define HOTPATCH_CMD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine.h"

/* Every option of every command; a command's table entry names the ones it
 * takes.  The values follow the table in options.c. */
enum option_id {
	OPTION_PID,
	OPTION_EXE,
	OPTION_PROCESS_OBJECT,
	OPTION_TIMEOUT,
	OPTION_UNRELIABLE,
	OPTION_ALLOW_SUSPENDED,
	OPTION_REQUIRE_SIGNATURE,
	OPTION_DEBUG_DIR,
	OPTION_DEBUG_FILE,
	OPTION_SEQUENCE,
	OPTION_OUT,
	OPTION_KEY,
	OPTION_SOURCE,
	OPTION_DIFF,
	OPTION_COMPILE,
	OPTION_COMPILE_COMMANDS,
	OPTION_BINARY,
	OPTION_OUTPUT,
	OPTION_OBJECT,
	OPTION_NAME,
	OPTION_DESCRIPTION,
	OPTION_ID,
	OPTION_ROOT,
	OPTION_LOADER,
	OPTION_CUMULATIVE,
	OPTION_FIX,
	OPTION_EXCLUDE,
	OPTION_STOP_ALL,
	OPTION_GATES,
	OPTION_COUNT
};

#define OPTION_BIT(id) (1u << (id))

/* The most times a repeatable option (--debug-dir, --id, ...) may be given,
 * and the most --pid options. */
#define REPEAT_MAX 32
#define PIDS_MAX 4096
/* The options that choose processes: one --pid, or several, or a file. */
#define PROCESS_OPTIONS                                                               \
	(OPTION_BIT(OPTION_PID) | OPTION_BIT(OPTION_EXE) | OPTION_BIT(OPTION_PROCESS_OBJECT))

/* What the command line asked for. */
struct invocation {
	const struct command *command;
	struct hp_request request;
	struct hp_build_request build;
	const char *out, *key;		/* keygen, sign */
	const char *root, *loader;	/* startup */
	const char *argument;		/* the positional argument, or NULL */
	unsigned given;			/* OPTION_BIT()s seen */
	const char *debug_directories[REPEAT_MAX], *debug_files[REPEAT_MAX];
	const char *ids[REPEAT_MAX];
	const char *excludes[REPEAT_MAX];
	struct hp_build_fix fixes[REPEAT_MAX];	/* --fix ID=FILE: ID copied, FILE in argv */
	char fix_ids[REPEAT_MAX][64];
	struct hp_debug_search debug;
	pid_t pids[PIDS_MAX];		/* every --pid, in order */
	struct hp_selector selector;	/* what --pid, --exe and --object chose */
};

/* What a command produced, for its printers. */
struct outcome {
	struct hp_result engine;	/* apply, revert, list, check */
	struct hp_installed_report installed;	/* install, uninstall */
	struct hp_status_result status;	/* status */
	struct json_t *processes;	/* install, uninstall: one-process documents */
	int exit_code;			/* install, uninstall, status: a run that succeeded
					 * may still exit non-zero (a process failed, the
					 * machine is not as installed) */
	struct hp_signing signing;	/* keygen, sign */
	struct hp_build_result build;	/* build */
	struct hp_startup_result startup;	/* startup */
};

struct output {
	const char *command;		/* "" before one is known */
	bool json;
	int pid;
};

typedef int (*run_function)(const struct invocation *invocation, struct outcome *outcome,
			    struct hp_error *error);
typedef int (*engine_function)(const struct hp_request *request, struct hp_result *result,
			       struct hp_error *error);
typedef void (*print_function)(const struct output *output,
			       const struct invocation *invocation,
			       const struct outcome *outcome);

/* One subcommand: what it takes, what it says about itself, what runs it
 * and how its success is printed (a failure is printed alike for all). */
struct command {
	const char *name;
	const char *synopsis;		/* options and arguments, as --help and man show them */
	const char *summary;		/* one line, for the list of commands */
	const char *description;	/* a paragraph, for COMMAND --help */
	unsigned takes, needs;		/* OPTION_BIT()s */
	int min_arguments, max_arguments;
	const char *argument;		/* what the positional one is: "a patch file" */
	bool argument_is_name;		/* a patch's name, not a file */
	bool audited;			/* changes a target: a record of every run */
	run_function run;
	engine_function engine;		/* for the commands about a process */
	print_function print_text, print_json;
};

/* commands.c */
extern const struct command commands[];
extern const size_t command_count;
const struct command *command_find(const char *name);

/* options.c: fills the invocation; returns 0, or the exit code of a usage
 * error already printed.  *help is set for --help. */
int options_parse(const struct command *command, int argc, char **argv,
		  struct invocation *invocation, struct output *output, bool *help,
		  volatile const int *interrupted);
/* For help.c: an option's spelling ("--pid PID") and its help text. */
const char *option_synopsis(enum option_id id);
const char *option_help(enum option_id id);
char option_short_name(enum option_id id);	/* or 0 */
bool option_has_long_name(enum option_id id);

/* Whether the command works on several processes (several --pid, --exe or
 * --object): one document per process, in "processes". */
bool invocation_is_many(const struct invocation *invocation);

/* fanout.c: runs the command on each chosen process, a few at a time, each
 * in a child of its own; prints the "processes" document (or a line per
 * process) and returns the exit code. */
int fanout_run(const struct invocation *invocation, struct output *output,
	       volatile const int *interrupted);

/* The same over `targets` (the first `named` given by the user: they must
 * exist), without printing: the one-process documents in *processes (a
 * JSON array the caller releases), and the exit code; a process whose
 * failure is of `harmless_kind` (or NULL) counts as a success. */
struct json_t;
int fanout_processes(const struct invocation *invocation, const pid_t *targets, size_t count,
		     size_t named, const char *harmless_kind, struct output *output,
		     volatile const int *interrupted, struct json_t **processes);
/* A line per process, as fanout_run prints them for `command`. */
void fanout_print_lines(const char *command, struct json_t *processes);

/* store_commands.c: install, uninstall and status; what they hold released. */
int run_install(const struct invocation *, struct outcome *, struct hp_error *);
int run_uninstall(const struct invocation *, struct outcome *, struct hp_error *);
int run_status(const struct invocation *, struct outcome *, struct hp_error *);
void outcome_release_store(struct outcome *outcome);

/* startup.c: startup enable, disable and status, and their printers. */
int run_startup(const struct invocation *, struct outcome *, struct hp_error *);
void print_startup_text(const struct output *, const struct invocation *, const struct outcome *);
void print_startup_json(const struct output *, const struct invocation *, const struct outcome *);

/* help.c */
int help_print(const struct output *output, const struct command *command);
int help_usage_error(const struct output *output);
int version_print(const struct output *output);

/* Prints a usage error (exit status 2) and returns 2. */
int usage_error(struct output *output, const char *format, ...)
	__attribute__((format(printf, 2, 3)));

/* Exit code for an engine status: the one place that maps them. */
int exit_code_for(int status);

/* print_text.c and print_json.c: the success printers of the table, and
 * the failure of any command (prose on stderr; JSON on stdout as well). */
void print_list_text(const struct output *, const struct invocation *, const struct outcome *);
void print_change_text(const struct output *, const struct invocation *, const struct outcome *);
void print_check_text(const struct output *, const struct invocation *, const struct outcome *);
void print_signing_text(const struct output *, const struct invocation *, const struct outcome *);
void print_build_text(const struct output *, const struct invocation *, const struct outcome *);
void print_list_json(const struct output *, const struct invocation *, const struct outcome *);
void print_change_json(const struct output *, const struct invocation *, const struct outcome *);
void print_signing_json(const struct output *, const struct invocation *, const struct outcome *);
void print_build_json(const struct output *, const struct invocation *, const struct outcome *);
void print_install_text(const struct output *, const struct invocation *, const struct outcome *);
void print_install_json(const struct output *, const struct invocation *, const struct outcome *);
void print_status_text(const struct output *, const struct invocation *, const struct outcome *);
void print_status_json(const struct output *, const struct invocation *, const struct outcome *);
void print_failure(const struct output *output, const struct hp_error *error, int exit_code);
void print_failure_text(const struct hp_error *error);
/* "2026-05-01T12:00:00Z" for seconds since the epoch; false for 0 (unknown). */
bool utc_time(uint64_t seconds, char *buffer, size_t size);
/* A copy of `value` on one line without control characters, for prose. */
const char *one_line(const char *value, char *clean, size_t size);

/* print_json.c: the one writer of JSON documents, and lossless text. */
struct json_t;
void json_emit(struct json_t *document);
struct json_t *json_text(const char *value);
/* "CVE-1 CVE-2" as a JSON array of texts. */
struct json_t *json_id_list(const char *ids);

/* audit.c: one line for every apply and revert, to syslog (LOG_AUTHPRIV). */
struct audit_target {
	char comm[64];		/* the process's name, from /proc/PID/comm; "" if gone */
};

void audit_target_read(int pid, struct audit_target *target);
void audit_started(const char *command, const struct hp_request *request,
		   const struct audit_target *target);
void audit_command(const char *command, const struct hp_request *request,
		   const struct audit_target *target, const struct hp_result *result,
		   const struct hp_error *error, int exit_code);
/* startup enable and disable, done or not. */
void audit_startup(const char *action, const struct hp_startup_result *result,
		   const struct hp_error *error, int exit_code);

#endif
