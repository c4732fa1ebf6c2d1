/* cmd.h - the front end's shared pieces: the printers (output.c) and the
 * audit record (audit.c) used by the command table and option parsing
 * (main.c).  No ptrace or ELF here. */
#ifndef HOTPATCH_CMD_H
#define HOTPATCH_CMD_H

#include <stdbool.h>

#include "engine.h"

struct output {
	const char *command;
	bool json;
	int pid;
};

/* Exit code for an engine status: the one place that maps them. */
int exit_code_for(int status);
void print_success(const struct output *output, const struct hp_result *result);
void print_failure(const struct output *output, const struct hp_error *error, int exit_code);
/* Prints a usage error (exit status 2) and returns 2. */
int usage_error(struct output *output, const char *format, ...) __attribute__((format(printf, 2, 3)));
void print_signing(const struct output *output, const struct hp_signing *result);
/* build: the replace/new/warning lines and "wrote OUT (...)", or one JSON object. */
void print_build(const struct output *output, const struct hp_build_request *request,
		 const struct hp_build_result *result);

/* build.c: `hotpatch build` with its own options (argv[0] is "build"). */
int cmd_build(int argc, char **argv, struct output *output, volatile const int *interrupted,
	      const char *help_text);

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

#endif
