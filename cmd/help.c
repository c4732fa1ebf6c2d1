/* help.c - --help, COMMAND --help and --version, in prose or (with --json)
 * as one JSON document, all read from the command and option tables so
 * that the help cannot drift from what the parser accepts. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"

#define HELP_COLUMN 25		/* where an option's help text starts */
#define HELP_WIDTH 79

static const char exit_status_text[] =
	"exit status: 0 done, 1 failed, 2 usage error, 3 busy (a function stayed on a\n"
	"thread's stack until the timeout), 4 the patch does not fit this target.\n"
	"With --json, a failure's \"error\".\"kind\" says which failure it was (see\n"
	"hotpatch(1), ERRORS).\n";

/* Words of `text` from column `indent` to HELP_WIDTH; the first line
 * continues where the cursor is (`column`). */
static void print_wrapped(FILE *stream, const char *text, size_t column, size_t indent)
{
	while (*text) {
		size_t length = strcspn(text, " ");

		if (column > indent && column + 1 + length > HELP_WIDTH) {
			fprintf(stream, "\n%*s", (int)indent, "");
			column = indent;
		} else if (column > indent) {
			fputc(' ', stream);
			column++;
		}
		fprintf(stream, "%.*s", (int)length, text);
		column += length;
		text += length;
		text += strspn(text, " ");
	}
	fputc('\n', stream);
}

static void print_option(FILE *stream, enum option_id id)
{
	char head[64];
	char short_name = option_short_name(id);
	int width;

	if (short_name && option_has_long_name(id))
		width = snprintf(head, sizeof(head), "  -%c, %s", short_name, option_synopsis(id));
	else if (short_name)
		width = snprintf(head, sizeof(head), "  %s", option_synopsis(id));
	else
		width = snprintf(head, sizeof(head), "      %s", option_synopsis(id));
	fputs(head, stream);
	if (width + 2 > HELP_COLUMN) {
		fprintf(stream, "\n%*s", HELP_COLUMN, "");
		width = HELP_COLUMN;
	}
	fprintf(stream, "%*s", HELP_COLUMN - width, "");
	print_wrapped(stream, option_help(id), HELP_COLUMN, HELP_COLUMN);
}

static void print_common_options(FILE *stream)
{
	fputs("  -j, --json             print one JSON document on stdout\n"
	      "  -h, --help             show this help\n", stream);
}

static void print_usage(FILE *stream)
{
	unsigned every = 0;

	fputs("usage: hotpatch <command> [options]\n\n"
	      "Replace functions inside a running process without restarting it.\n\n"
	      "commands:\n", stream);
	for (size_t i = 0; i < command_count; i++) {
		fprintf(stream, "  %-7s %s\n          ", commands[i].name, commands[i].synopsis);
		print_wrapped(stream, commands[i].summary, 10, 10);
		every |= commands[i].takes;
	}
	fputs("\noptions (hotpatch COMMAND --help shows a command's own):\n", stream);
	for (int id = 0; id < OPTION_COUNT; id++)
		if (every & OPTION_BIT(id))
			print_option(stream, (enum option_id)id);
	print_common_options(stream);
	fputs("  -V, --version          show the version\n\n", stream);
	fputs(exit_status_text, stream);
}

static void print_command_help(FILE *stream, const struct command *command)
{
	fprintf(stream, "usage: hotpatch %s %s\n\n", command->name, command->synopsis);
	print_wrapped(stream, command->description, 0, 0);
	fputs("\noptions:\n", stream);
	for (int id = 0; id < OPTION_COUNT; id++)
		if (command->takes & OPTION_BIT(id))
			print_option(stream, (enum option_id)id);
	print_common_options(stream);
	fputc('\n', stream);
	fputs(exit_status_text, stream);
}

static json_t *command_json(const struct command *command)
{
	json_t *options = json_array();

	for (int id = 0; id < OPTION_COUNT; id++)
		if (command->takes & OPTION_BIT(id))
			json_array_append_new(options,
					      json_pack("{s:s, s:s, s:b}", "option",
							option_synopsis((enum option_id)id), "help",
							option_help((enum option_id)id), "required",
							(command->needs & OPTION_BIT(id)) != 0));
	return json_pack("{s:s, s:s, s:s, s:s, s:o}", "name", command->name, "synopsis",
			 command->synopsis, "summary", command->summary, "description",
			 command->description, "options", options);
}

/* The whole text too, so that a script can show it as a person would see it. */
static void help_json(const struct command *command)
{
	json_t *list = json_array();
	char *text = NULL;
	size_t size = 0;
	FILE *stream = open_memstream(&text, &size);

	if (stream) {
		if (command)
			print_command_help(stream, command);
		else
			print_usage(stream);
		fclose(stream);
	}
	for (size_t i = 0; i < command_count; i++)
		if (!command || command == &commands[i])
			json_array_append_new(list, command_json(&commands[i]));
	json_emit(json_pack("{s:s, s:b, s:i, s:o, s:o}", "command", "help", "ok", 1, "exit_code", 0,
			    "text", text ? json_text(text) : json_null(), "commands", list));
	free(text);
}

int help_print(const struct output *output, const struct command *command)
{
	if (output->json)
		help_json(command);
	else if (command)
		print_command_help(stdout, command);
	else
		print_usage(stdout);
	return 0;
}

/* A bare `hotpatch`: the usage on stderr, and exit 2. */
int help_usage_error(const struct output *output)
{
	struct hp_error error = { .status = HP_USAGE, .kind = HP_KIND_USAGE };

	if (!output->json)
		print_usage(stderr);
	snprintf(error.message, sizeof(error.message), "no command given");
	snprintf(error.hint, sizeof(error.hint), "see hotpatch --help");
	print_failure(output, &error, 2);
	return 2;
}

int version_print(const struct output *output)
{
	if (output->json)
		json_emit(json_pack("{s:s, s:b, s:i, s:s}", "command", "version", "ok", 1,
				    "exit_code", 0, "version", HOTPATCH_VERSION));
	else
		printf("hotpatch %s\n", HOTPATCH_VERSION);
	return 0;
}
