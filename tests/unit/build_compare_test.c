/* build_compare_test.c - build_compare on two compiles of small C files:
 * which functions changed, which are new, which stayed the same although
 * their strings and switch tables moved, and which data changes are refused.
 * It runs cc, as `hotpatch build` does. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "build/build.h"
#include "check.h"

static char directory[] = "/tmp/hotpatch-compare-test.XXXXXX";

/* Compiles `text` as NAME.c into NAME.o at `level` with the flags build uses. */
static bool compile(const char *name, const char *level, const char *text)
{
	char path[256], command[1024];
	FILE *file;

	snprintf(path, sizeof(path), "%s/%s.c", directory, name);
	file = fopen(path, "w");
	if (!file)
		return false;
	fputs(text, file);
	if (fclose(file) != 0)
		return false;
	snprintf(command, sizeof(command),
		 "cd %s && cc %s -ffunction-sections -fdata-sections -fno-pic -mcmodel=large -g "
		 "-c %s.c -o %s.o",
		 directory, level, name, name);
	return system(command) == 0;
}

struct pair {
	struct build_object orig, fixed;
	unsigned char *fate;
	struct hp_error error;
	int status;
};

static void compare_at(struct pair *pair, const char *level, const char *before,
		       const char *after)
{
	char path[256];
	int status;

	memset(pair, 0, sizeof(*pair));
	pair->orig.fd = pair->fixed.fd = -1;
	pair->status = HP_FAILED;
	if (!compile("orig", level, before) || !compile("fixed", level, after))
		return;
	snprintf(path, sizeof(path), "%s/orig.o", directory);
	status = build_object_open(&pair->orig, path, "orig.c", &pair->error);
	snprintf(path, sizeof(path), "%s/fixed.o", directory);
	if (status == HP_OK)
		status = build_object_open(&pair->fixed, path, "fixed.c", &pair->error);
	if (status == HP_OK)
		pair->fate = calloc(pair->fixed.symbol_count, 1);
	if (pair->fate)
		pair->status = build_compare(&pair->orig, &pair->fixed, pair->fate, &pair->error);
}

static void compare(struct pair *pair, const char *before, const char *after)
{
	compare_at(pair, "-O2", before, after);
}

static int fate_of(const struct pair *pair, const char *name)
{
	for (size_t i = 1; pair->fate && i < pair->fixed.symbol_count; i++)
		if (strcmp(pair->fixed.symbols[i].name, name) == 0)
			return pair->fate[i];
	return -1;
}

static void release(struct pair *pair)
{
	build_object_close(&pair->orig);
	build_object_close(&pair->fixed);
	free(pair->fate);
}

static const char base[] =
	"int printf(const char *, ...);\n"
	"static int table[4] = { 1, 2, 3, 4 };\n"
	"int counter;\n"
	"__attribute__((noipa)) static int helper(int x) { return x * 3; }\n"
	"int lookup(int i) { static int calls; calls++; return table[i] + counter; }\n"
	"int say(int x) { printf(\"say %d\\n\", helper(x)); return x; }\n"
	"int pick(int x) { switch (x) { case 0: return 5; case 1: return 7; case 2: return 9;\n"
	"  case 3: return 11; case 4: return 2; case 5: return 3; } return 0; }\n";

static void test_changed_and_unchanged(void)
{
	/* A new first string moves say's string; a new function comes first. */
	static const char fixed[] =
		"int printf(const char *, ...);\n"
		"static int table[4] = { 1, 2, 3, 4 };\n"
		"int counter;\n"
		"int added(void) { printf(\"first\\n\"); return 1; }\n"
		"__attribute__((noipa)) static int helper(int x) { return x * 3; }\n"
		"int lookup(int i) { static int calls; calls++;\n"
		"  if (i < 0 || i > 3) return -1; return table[i] + counter; }\n"
		"int say(int x) { printf(\"say %d\\n\", helper(x)); return x; }\n"
		"int pick(int x) { switch (x) { case 0: return 5; case 1: return 7; case 2: return 9;\n"
		"  case 3: return 11; case 4: return 2; case 5: return 3; } return 0; }\n";
	struct pair pair;

	compare(&pair, base, fixed);
	CHECK(pair.status == HP_OK, "the fix compares");
	CHECK(fate_of(&pair, "lookup") == BUILD_CHANGED, "lookup changed");
	CHECK(fate_of(&pair, "say") == BUILD_UNCHANGED, "say is the same, its string moved");
	CHECK(fate_of(&pair, "pick") == BUILD_UNCHANGED, "pick is the same, its table moved");
	CHECK(fate_of(&pair, "helper") == BUILD_UNCHANGED, "helper is the same");
	CHECK(fate_of(&pair, "added") == BUILD_NEW, "added is new");
	release(&pair);
}

static void test_string_and_table_changes(void)
{
	static const char fixed[] =
		"int printf(const char *, ...);\n"
		"static int table[4] = { 1, 2, 3, 4 };\n"
		"int counter;\n"
		"__attribute__((noipa)) static int helper(int x) { return x * 3; }\n"
		"int lookup(int i) { static int calls; calls++; return table[i] + counter; }\n"
		"int say(int x) { printf(\"said %d\\n\", helper(x)); return x; }\n"
		"int pick(int x) { switch (x) { case 0: return 5; case 1: return 7; case 2: return 9;\n"
		"  case 3: return 11; case 4: return 2; case 5: return 33; } return 0; }\n";
	struct pair pair;

	compare(&pair, base, fixed);
	CHECK(pair.status == HP_OK, "the fix compares");
	CHECK(fate_of(&pair, "say") == BUILD_CHANGED, "a changed string changes say");
	CHECK(fate_of(&pair, "pick") == BUILD_CHANGED, "a changed switch table changes pick");
	CHECK(fate_of(&pair, "lookup") == BUILD_UNCHANGED, "lookup is the same");
	release(&pair);
}

static void test_refusals(void)
{
	struct pair pair;
	char fixed[sizeof(base) + 128];

	snprintf(fixed, sizeof(fixed), "%s", base);
	memcpy(strstr(fixed, "{ 1, 2, 3, 4 }"), "{ 1, 2, 3, 5 }", 14);
	compare(&pair, base, fixed);
	CHECK(pair.status == HP_MISFIT, "a changed initial value is refused");
	CHECK(strstr(pair.error.message, "'table'") != NULL, "the refusal names the table");
	release(&pair);

	snprintf(fixed, sizeof(fixed), "%sint nothing;\nint use(void) { return nothing++; }\n", base);
	compare(&pair, base, fixed);
	/* A new variable has no old state to keep: the patch holds it. */
	CHECK(pair.status == HP_OK, "a new writable variable is accepted");
	CHECK(fate_of(&pair, "use") == BUILD_NEW, "the function using it is new");
	release(&pair);
}

/* At -O0 every literal of the file is in one plain .rodata, one after the
 * other, and data points at them too. */
static const char literals[] =
	"int printf(const char *, ...);\n"
	"int puts(const char *);\n"
	"static const char *msg = \"message: as shipped\";\n"
	"void greet(int n) { printf(\"greeting %d: hello\\n\", n); }\n"
	"void bye(int n) { printf(\"%d\\n\", n); printf(\"farewell %d\\n\", n); }\n"
	"void say(void) { puts(msg); }\n"
	"void whole(void) { puts(\"hello world\"); }\n"
	"void tail(void) { puts(\"hello world\" + 6); }\n"
	"int main(void) { greet(1); bye(2); say(); whole(); tail(); return 0; }\n";

/* `literals` with `old` (once) replaced by `new`, into `fixed`. */
static void replace_text(char *fixed, size_t size, const char *old, const char *new)
{
	const char *at = strstr(literals, old);

	snprintf(fixed, size, "%.*s%s%s", (int)(at - literals), literals, new, at + strlen(old));
}

static void test_literal_moves_at_O0(void)
{
	struct pair pair;
	char fixed[sizeof(literals) + 128];

	/* A longer first literal moves every later one (and, at 32 bytes and
	 * more, is aligned: zeros come before it). */
	replace_text(fixed, sizeof(fixed), "greeting %d: hello", "greeting %d: hello, patched world");
	compare_at(&pair, "-O0", literals, fixed);
	CHECK(pair.status == HP_OK, "-O0: a longer literal is no change of msg");
	CHECK(fate_of(&pair, "greet") == BUILD_CHANGED, "-O0: greet, whose literal changed, changed");
	CHECK(fate_of(&pair, "bye") == BUILD_UNCHANGED, "-O0: bye, whose literals moved, is the same");
	CHECK(fate_of(&pair, "say") == BUILD_UNCHANGED, "-O0: say is the same");
	CHECK(fate_of(&pair, "whole") == BUILD_UNCHANGED, "-O0: whole is the same");
	CHECK(fate_of(&pair, "tail") == BUILD_UNCHANGED, "-O0: tail is the same");
	CHECK(fate_of(&pair, "main") == BUILD_UNCHANGED, "-O0: main is the same");
	release(&pair);

	/* A shorter one, from a function whose other literal stays. */
	replace_text(fixed, sizeof(fixed), "farewell %d", "bye %d");
	compare_at(&pair, "-O0", literals, fixed);
	CHECK(pair.status == HP_OK, "-O0: a shorter literal compares");
	CHECK(fate_of(&pair, "bye") == BUILD_CHANGED, "-O0: bye changed");
	CHECK(fate_of(&pair, "greet") == BUILD_UNCHANGED, "-O0: greet is the same");
	CHECK(fate_of(&pair, "tail") == BUILD_UNCHANGED, "-O0: tail is the same");
	release(&pair);
}

static void test_literal_changes_at_O0(void)
{
	struct pair pair;
	char fixed[sizeof(literals) + 128];

	replace_text(fixed, sizeof(fixed), "message: as shipped", "message: as patched");
	compare_at(&pair, "-O0", literals, fixed);
	CHECK(pair.status == HP_MISFIT, "-O0: a new text for msg's literal is refused");
	CHECK(strstr(pair.error.message, "'msg'") != NULL, "-O0: the refusal names msg");
	release(&pair);

	/* Both uses of "hello world" change; tail points into its middle, and
	 * whole, which points at its start, reads that part too. */
	snprintf(fixed, sizeof(fixed), "%s", literals);
	for (char *at = strstr(fixed, "hello world"); at; at = strstr(at, "hello world"))
		memcpy(at, "hello WORLD", 11);
	compare_at(&pair, "-O0", literals, fixed);
	CHECK(pair.status == HP_OK, "-O0: a changed shared literal compares");
	CHECK(fate_of(&pair, "whole") == BUILD_CHANGED, "-O0: whole changed with the literal's end");
	CHECK(fate_of(&pair, "tail") == BUILD_CHANGED, "-O0: tail changed");
	CHECK(fate_of(&pair, "greet") == BUILD_UNCHANGED, "-O0: greet is the same");
	release(&pair);
}

int main(void)
{
	char command[256];

	if (!mkdtemp(directory)) {
		perror("mkdtemp");
		return 1;
	}
	test_changed_and_unchanged();
	test_string_and_table_changes();
	test_refusals();
	test_literal_moves_at_O0();
	test_literal_changes_at_O0();
	snprintf(command, sizeof(command), "rm -rf %s", directory);
	if (system(command) != 0)
		fprintf(stderr, "could not remove %s\n", directory);
	return check_report();
}
