/* cmd.h - the front end's shared pieces: the printers (output.c) used by the
 * command table and option parsing (main.c).  No ptrace or ELF here. */
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

#endif
