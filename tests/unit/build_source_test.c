/* build_source_test.c - build_source_function_changed: the text of one
 * function, from its declaration line to its closing brace, compared
 * between two files; comments and literals do not fool the brace count. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "build/build.h"
#include "check.h"

static char directory[] = "/tmp/hotpatch-source-test.XXXXXX";

static const char *write_file(const char *name, const char *text)
{
	static char paths[4][256];
	static unsigned next;
	char *path = paths[next++ % 4];
	FILE *file;

	snprintf(path, sizeof(paths[0]), "%s/%s", directory, name);
	file = fopen(path, "w");
	if (!file || fputs(text, file) < 0 || fclose(file) != 0)
		return "/nonexistent";
	return path;
}

static void test_same_and_changed(void)
{
	const char *before = write_file("before.c",
					"/* header */\n"
					"static inline int clamp(int v)\n"
					"{\n"
					"\tconst char *brace = \"}\"; /* } */\n"
					"\treturn v > 100 ? 100 : (int)brace[0] * 0 + v;\n"
					"}\n"
					"int other(void) { return 1; }\n");
	const char *moved = write_file("moved.c",
				       "/* a longer\n * header */\n"
				       "static inline int clamp(int v)\n"
				       "{\n"
				       "\tconst char *brace = \"}\"; /* } */\n"
				       "\treturn v > 100 ? 100 : (int)brace[0] * 0 + v;\n"
				       "}\n"
				       "int other(void) { return 2; }\n");
	const char *fixed = write_file("fixed.c",
				       "/* header */\n"
				       "static inline int clamp(int v)\n"
				       "{\n"
				       "\tconst char *brace = \"}\"; /* } */\n"
				       "\tif (v < 0) return 0;\n"
				       "\treturn v > 100 ? 100 : (int)brace[0] * 0 + v;\n"
				       "}\n"
				       "int other(void) { return 1; }\n");

	CHECK(!build_source_function_changed(before, 2, moved, 3),
	      "a function that moved down a line, with a later function changed, is the same");
	CHECK(build_source_function_changed(before, 2, fixed, 2), "a new line in the body is a change");
	CHECK(!build_source_function_changed(before, 7, fixed, 8), "other() is the same");
	CHECK(build_source_function_changed(before, 7, moved, 8), "other() changed in moved.c");
	CHECK(build_source_function_changed(before, 2, "/nonexistent", 2),
	      "an unreadable file counts as a change");
	CHECK(!build_source_function_changed("/nonexistent/scan.l", 2, "/nonexistent/scan.l", 2),
	      "a file in neither copy (a #line to a grammar) is no change the diff made");
}

int main(void)
{
	char command[128];

	if (!mkdtemp(directory)) {
		perror("mkdtemp");
		return 1;
	}
	test_same_and_changed();
	snprintf(command, sizeof(command), "rm -rf %s", directory);
	if (system(command) != 0)
		fprintf(stderr, "could not remove %s\n", directory);
	return check_report();
}
