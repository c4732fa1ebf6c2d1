/* build.c - `hotpatch build`: its options, read into a request for the
 * engine's hp_build (lib/build*.c), and the exit code.  Printing is
 * output.c's; nothing here reads an object file or runs a program. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"

#define BUILD_IDS_MAX 32

/* Every option build needs, or NULL; the first missing one named. */
static const char *missing_option(const struct hp_build_request *request)
{
	if (!request->source)
		return "--source DIR";
	if (!request->diff)
		return "--diff FIX.diff";
	if (!request->compile && !request->compile_commands)
		return "--compile 'CC FLAGS...' or --compile-commands FILE";
	if (!request->binary)
		return "--binary PROGRAM";
	if (!request->output)
		return "-o OUT.so";
	return NULL;
}

static int parse(int argc, char **argv, struct hp_build_request *request, const char **ids,
		 struct output *output, bool *help)
{
	enum { SOURCE = 256, DIFF, COMPILE, COMPILE_COMMANDS, BINARY, OBJECT, NAME, DESCRIPTION, ID };
	static const struct option options[] = {
		{ "source", required_argument, NULL, SOURCE },
		{ "diff", required_argument, NULL, DIFF },
		{ "compile", required_argument, NULL, COMPILE },
		{ "compile-commands", required_argument, NULL, COMPILE_COMMANDS },
		{ "binary", required_argument, NULL, BINARY },
		{ "object", required_argument, NULL, OBJECT },
		{ "name", required_argument, NULL, NAME },
		{ "description", required_argument, NULL, DESCRIPTION },
		{ "id", required_argument, NULL, ID },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int option;

	opterr = 0;
	optind = 1;
	while ((option = getopt_long(argc, argv, "+o:jh", options, NULL)) != -1) {
		switch (option) {
		case SOURCE: request->source = optarg; break;
		case DIFF: request->diff = optarg; break;
		case COMPILE: request->compile = optarg; break;
		case COMPILE_COMMANDS: request->compile_commands = optarg; break;
		case BINARY: request->binary = optarg; break;
		case 'o': request->output = optarg; break;
		case OBJECT: request->object = optarg; break;
		case NAME: request->name = optarg; break;
		case DESCRIPTION: request->description = optarg; break;
		case ID:
			if (request->id_count == BUILD_IDS_MAX)
				return usage_error(output, "at most %d --id options",
							 BUILD_IDS_MAX);
			ids[request->id_count++] = optarg;
			break;
		case 'j': break;
		case 'h': *help = true; return 0;
		default:
			return usage_error(output, "unknown or incomplete option %s",
						 argv[optind - 1]);
		}
	}
	if (optind < argc)
		return usage_error(output, "unexpected argument '%s'", argv[optind]);
	if (request->compile && request->compile_commands)
		return usage_error(output, "build takes --compile or --compile-commands, not both");
	if (missing_option(request))
		return usage_error(output, "build needs %s", missing_option(request));
	return 0;
}

int cmd_build(int argc, char **argv, struct output *output, volatile const int *interrupted,
	      const char *help_text)
{
	const char *ids[BUILD_IDS_MAX];
	struct hp_build_request request = { .object = "", .ids = ids,
					    .interrupted = interrupted };
	struct hp_build_result result = { 0 };
	struct hp_error error = { 0 };
	bool help = false;
	int status, exit_code = parse(argc, argv, &request, ids, output, &help);

	if (help) {
		fputs(help_text, stdout);
		return 0;
	}
	if (exit_code != 0)
		return exit_code;
	status = hp_build(&request, &result, &error);
	exit_code = exit_code_for(status);
	if (status == HP_OK)
		print_build(output, &request, &result);
	else
		print_failure(output, &error, exit_code);
	hp_build_result_release(&result);
	return exit_code;
}
