/* build_registers_test.c - build_registers_left_alone on a small program
 * compiled here: a leaf function leaves registers alone, one that calls
 * into libc or through a pointer changes them all, and a function that only
 * calls a leaf of its own binary leaves alone what both leave alone. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "build/build.h"
#include "check.h"

static char directory[] = "/tmp/hotpatch-registers-test.XXXXXX";

static const char program[] =
	"#include <stdio.h>\n"
	"long sink;\n"
	"__attribute__((noinline)) long leaf(long x) { sink = x; return x + 1; }\n"
	"__attribute__((noinline)) long wrapper(long x) { return leaf(x) * 3; }\n"
	"__attribute__((noinline)) long talker(long x) { printf(\"%ld\\n\", x); return x; }\n"
	"__attribute__((noinline)) long pointer(long (*f)(long), long x) { return f(x) + 1; }\n"
	"int main(void) { return (int)(wrapper(1) + talker(2) + pointer(leaf, 3)); }\n";

static bool build_program(char *binary, size_t size)
{
	char source[256], command[768];
	FILE *file;

	snprintf(source, sizeof(source), "%s/program.c", directory);
	snprintf(binary, size, "%s/program", directory);
	file = fopen(source, "w");
	if (!file || fputs(program, file) < 0 || fclose(file) != 0)
		return false;
	snprintf(command, sizeof(command), "cc -O2 -o %s %s", binary, source);
	return system(command) == 0;
}

static int left_alone(const struct build_binary *binary, const char *name)
{
	const char *why;
	const struct hp_symbol *function = build_binary_find(binary, "", name, &why);
	struct hp_error error = { 0 };
	bool alone = false;

	if (!function || build_registers_left_alone(binary, function, &alone, &error) != HP_OK)
		return -1;
	return alone;
}

int main(void)
{
	struct build_binary binary = { 0 };
	struct hp_error error = { 0 };
	char path[256], command[128];

	if (!mkdtemp(directory)) {
		perror("mkdtemp");
		return 1;
	}
	CHECK(build_program(path, sizeof(path)), "the program compiles");
	CHECK(build_binary_open(&binary, path, &error) == HP_OK, "the program is read");
	CHECK(left_alone(&binary, "leaf") == 1, "a leaf leaves registers alone");
	CHECK(left_alone(&binary, "wrapper") == 1, "a caller of a leaf only leaves some alone");
	CHECK(left_alone(&binary, "talker") == 0, "a caller of printf leaves none alone");
	CHECK(left_alone(&binary, "pointer") == 0, "a call through a pointer leaves none alone");
	build_binary_close(&binary);
	snprintf(command, sizeof(command), "rm -rf %s", directory);
	if (system(command) != 0)
		fprintf(stderr, "could not remove %s\n", directory);
	return check_report();
}
