/* build_commands_test.c - build_commands_invocation: what runs for one
 * source of a compilation database.  The entry's output, compile-only and
 * source words and its dependency-file options go; paths into the tree
 * (the directory, -I, the source) are moved into the copy; our flags and
 * "-c SOURCE -o OBJECT" come last.  No compiler runs here. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "build/build.h"
#include "check.h"

static char tree[] = "/tmp/hotpatch-commands-test.XXXXXX";
static char copy[] = "/tmp/hotpatch-commands-copy.XXXXXX";

static void write_file(const char *path, const char *text)
{
	FILE *file = fopen(path, "w");

	if (!file || fputs(text, file) < 0 || fclose(file) != 0)
		fprintf(stderr, "cannot write %s\n", path);
}

/* The argv joined by single spaces, for one comparison. */
static const char *joined(const struct build_invocation *run)
{
	static char text[8192];
	size_t used = 0;

	text[0] = '\0';
	for (size_t i = 0; i < run->count && run->argv[i]; i++)
		used += (size_t)snprintf(text + used, sizeof(text) - used, "%s%s", i ? " " : "",
					 run->argv[i]);
	return text;
}

static void test_database(void)
{
	char path[512], database[512], expected[4096];
	struct build_commands commands = { .count = 0 };
	struct build_invocation run = { .argv = NULL };
	struct hp_error error = { 0 };
	int status;

	snprintf(path, sizeof(path), "%s/src", tree);
	mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/src/a.c", tree);
	write_file(path, "int a;\n");
	snprintf(path, sizeof(path), "%s/src/b.c", tree);
	write_file(path, "int b;\n");
	snprintf(database, sizeof(database), "%s/compile_commands.json", tree);
	snprintf(expected, sizeof(expected),
		 "[{\"directory\": \"%s/src\", \"file\": \"a.c\", \"arguments\": [\"cc\", \"-O2\", "
		 "\"-I%s/include\", \"-MD\", \"-MF\", \"a.d\", \"-MFa2.d\", \"-Wp,-MMD,a3.d\", "
		 "\"-c\", \"-o\", \"../obj/a.o\", \"a.c\"]},\n"
		 " {\"directory\": \"%s/src\", \"file\": \"%s/src/b.c\", "
		 "\"command\": \"cc -Os -DNAME='\\\"x y\\\"' -o b.o -c %s/src/b.c\"}]\n",
		 tree, tree, tree, tree, tree);
	write_file(database, expected);

	status = build_commands_load(&commands, database, tree, &error);
	CHECK(status == HP_OK, "the database loads");
	CHECK(build_commands_find(&commands, "src/a.c") != NULL, "a.c has its entry");
	CHECK(build_commands_find(&commands, "src/c.c") == NULL, "c.c has none");

	status = build_commands_invocation(&commands, "src/a.c", copy, "-fno-pic -g", "/obj/a.o",
					   &run, &error);
	CHECK(status == HP_OK, "a.c's command is made");
	snprintf(expected, sizeof(expected), "cc -O2 -I%s/include -fno-pic -g -c a.c -o /obj/a.o",
		 copy);
	CHECK(strcmp(joined(&run), expected) == 0, "a.c: output, -c, source and -M* replaced");
	if (strcmp(joined(&run), expected) != 0)
		fprintf(stderr, "  got:      %s\n  expected: %s\n", joined(&run), expected);
	snprintf(expected, sizeof(expected), "%s/src", copy);
	CHECK(strcmp(run.directory, expected) == 0, "a.c runs in its directory, in the copy");
	build_invocation_release(&run);

	status = build_commands_invocation(&commands, "src/b.c", copy, "", "/obj/b.o", &run,
					   &error);
	CHECK(status == HP_OK, "b.c's command string is split and made");
	snprintf(expected, sizeof(expected),
		 "cc -Os -DNAME=\"x y\" -fmacro-prefix-map=%s=%s -c %s/src/b.c -o /obj/b.o", copy,
		 tree, copy);
	CHECK(strcmp(joined(&run), expected) == 0, "b.c: an absolute source moved into the copy");
	if (strcmp(joined(&run), expected) != 0)
		fprintf(stderr, "  got:      %s\n  expected: %s\n", joined(&run), expected);
	build_invocation_release(&run);

	memset(&error, 0, sizeof(error));
	status = build_commands_invocation(&commands, "src/c.c", copy, "", "/obj/c.o", &run,
					   &error);
	CHECK(status == HP_MISFIT && strstr(error.message, "no entry") != NULL,
	      "a source without an entry is refused, naming it");
	build_invocation_release(&run);
	build_commands_release(&commands);
}

static void test_command_substitution_refused(void)
{
	char database[512], text[1024];
	struct build_commands commands = { .count = 0 };
	struct hp_error error = { 0 };

	snprintf(database, sizeof(database), "%s/substitution.json", tree);
	snprintf(text, sizeof(text),
		 "[{\"directory\": \"%s/src\", \"file\": \"a.c\", "
		 "\"command\": \"cc $(touch %s/ran) -c a.c\"}]\n", tree, tree);
	write_file(database, text);
	CHECK(build_commands_load(&commands, database, tree, &error) != HP_OK,
	      "a command substitution is refused");
	snprintf(text, sizeof(text), "%s/ran", tree);
	CHECK(access(text, F_OK) != 0, "and never run");
	build_commands_release(&commands);
}

int main(void)
{
	char command[256];

	if (!mkdtemp(tree) || !mkdtemp(copy)) {
		perror("mkdtemp");
		return 1;
	}
	test_database();
	test_command_substitution_refused();
	snprintf(command, sizeof(command), "rm -rf %s %s", tree, copy);
	if (system(command) != 0)
		fprintf(stderr, "could not remove %s\n", tree);
	return check_report();
}
