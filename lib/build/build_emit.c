/* build_emit.c - the last steps of `hotpatch build`: a C file of records
 * (<hotpatch.h> macros: what is replaced, which symbols of the binary the
 * aliases stand for, the binary's build-id, name and description), the link
 * of the rewritten objects into a shared object, and its move into place. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "build/build.h"
#include "arch/arch.h"
#include "hotpatch.h"

#define LINK_OUTPUT_MAX 8192

/* A C string literal of `text`: octal escapes for all but plain ASCII. */
static void write_literal(FILE *file, const char *text)
{
	fputc('"', file);
	for (const unsigned char *c = (const unsigned char *)text; *c; c++)
		if (*c >= 0x20 && *c < 0x7f && *c != '"' && *c != '\\' && *c != '?')
			fputc(*c, file);
		else
			fprintf(file, "\\%03o", *c);
	fputc('"', file);
}

static void write_record(FILE *file, const char *macro, const char *const *values, size_t count)
{
	fprintf(file, "%s(", macro);
	for (size_t i = 0; i < count; i++) {
		if (i)
			fputs(", ", file);
		write_literal(file, values[i]);
	}
	fputs(");\n", file);
}

/* The thunk in front of a replacement whose callers in the binary may keep
 * values in registers the old code left alone (see build_plan.c), drawn in
 * arch/ARCH/thunk.c. */
static void write_thunk(FILE *file, const struct build_replace *replace)
{
	enum hp_result_register result = HP_RESULT_NONE;

	if (replace->returns == BUILD_RETURNS_INTEGER)
		result = HP_RESULT_INTEGER;
	else if (replace->returns == BUILD_RETURNS_SSE)
		result = HP_RESULT_VECTOR;
	code_write_thunk(file, replace->name, replace->code, result);
}

static void write_records(FILE *file, const struct build_plan *plan,
			  const struct hp_build_request *request, const struct build_binary *binary)
{
	const char *object = request->object ? request->object : "";

	fputs("/* Made by hotpatch build. */\n#include \"hotpatch.h\"\n\n", file);
	for (size_t i = 0; i < plan->replace_count; i++) {
		const struct build_replace *r = &plan->replaces[i];

		if (r->thunk)
			write_thunk(file, r);
		/* The name has a dot, no C identifier: an assembler name. */
		fprintf(file, "extern void hotpatch_new_%zu(void) __asm__(", i);
		write_literal(file, r->name);
		fputs(");\nHOTPATCH_REPLACE_FROM(", file);
		write_literal(file, object);
		fputs(", ", file);
		write_literal(file, r->file);
		fprintf(file, ", %s, hotpatch_new_%zu);\n", r->function, i);
	}
	for (size_t i = 0; i < plan->alias_count; i++) {
		const struct build_alias *a = &plan->aliases[i];
		const char *values[] = { object, a->file, a->symbol, a->alias };

		write_record(file, "HOTPATCH_SYMBOL_ALIAS", values, 4);
	}
	if (binary->build_id[0]) {
		const char *values[] = { object, binary->build_id };

		write_record(file, "HOTPATCH_BUILD_ID", values, 2);
	}
	if (request->name)
		write_record(file, "HOTPATCH_NAME", &request->name, 1);
	if (request->description)
		write_record(file, "HOTPATCH_DESCRIPTION", &request->description, 1);
	for (size_t i = 0; i < request->id_count; i++)
		write_record(file, "HOTPATCH_ID", &request->ids[i], 1);
	if (request->cumulative)
		fputs("HOTPATCH_CUMULATIVE();\n", file);
	build_fixes_write(file, plan, object, write_record);
}

static int write_text_file(const char *path, const char *text, struct hp_error *error)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	size_t length = strlen(text);
	int status = HP_OK;

	if (fd < 0)
		return hp_fail_errno(error, HP_FAILED, "cannot create %s", path);
	if (trust_write_all(fd, text, length) != length)
		status = hp_fail_errno(error, HP_FAILED, "cannot write %s", path);
	if (close(fd) != 0 && status == HP_OK)
		status = hp_fail_errno(error, HP_FAILED, "cannot write %s", path);
	return status;
}

static int write_sources(const struct build_plan *plan, const struct hp_build_request *request,
			 const struct build_binary *binary, const struct build_tree *tree,
			 struct hp_error *error)
{
	char path[PATH_MAX + 32];
	FILE *file;
	int status = HP_OK;

	snprintf(path, sizeof(path), "%s/include", tree->root);
	if (mkdir(path, 0700) != 0)
		return hp_fail_errno(error, HP_FAILED, "cannot make %s", path);
	snprintf(path, sizeof(path), "%s/include/hotpatch.h", tree->root);
	status = write_text_file(path, build_header_text, error);
	snprintf(path, sizeof(path), "%s/exports.map", tree->root);
	if (status == HP_OK)
		status = write_text_file(path, "{ local: *; };\n", error);
	snprintf(path, sizeof(path), "%s/records.c", tree->root);
	if (status != HP_OK)
		return status;
	file = fopen(path, "wx");
	if (!file)
		return hp_fail_errno(error, HP_FAILED, "cannot create %s", path);
	write_records(file, plan, request, binary);
	if (ferror(file) | (fclose(file) != 0))
		status = hp_fail_errno(error, HP_FAILED, "cannot write %s", path);
	return status;
}

static int link_patch(const struct build_plan *plan, const struct build_tree *tree,
		      const char *linked, struct hp_error *error)
{
	char include[PATH_MAX + 16], script[PATH_MAX + 48], records[PATH_MAX + 16];
	char output[LINK_OUTPUT_MAX], (*objects)[PATH_MAX + 32];
	const char **argv;
	size_t argc = 0;
	int exit_status = 0, status;

	objects = calloc(plan->unit_count, sizeof(*objects));
	argv = calloc(plan->unit_count + 16, sizeof(*argv));
	if (!objects || !argv) {
		free(objects);
		free(argv);
		return hp_fail(error, HP_FAILED, "out of memory linking the patch");
	}
	snprintf(include, sizeof(include), "-I%s/include", tree->root);
	snprintf(script, sizeof(script), "-Wl,--version-script=%s/exports.map", tree->root);
	snprintf(records, sizeof(records), "%s/records.c", tree->root);
	argv[argc++] = "cc";
	argv[argc++] = "-shared";
	argv[argc++] = "-o";
	argv[argc++] = linked;
	for (size_t u = 0; u < plan->unit_count; u++) {
		snprintf(objects[u], sizeof(objects[u]), "%s/patch-%zu.o", tree->objects, u);
		argv[argc++] = objects[u];
	}
	argv[argc++] = records;
	argv[argc++] = include;
	argv[argc++] = "-fPIC";
	/* Only what the records reach; code with absolute references. */
	argv[argc++] = "-Wl,--gc-sections";
	argv[argc++] = "-Wl,-z,notext";
	argv[argc++] = script;
	argv[argc] = NULL;
	status = HP_OK;
	for (size_t u = 0; status == HP_OK && u < plan->unit_count; u++)
		status = build_rewrite(plan, u, objects[u], error);
	if (status == HP_OK)
		status = build_run(argv, tree->root, output, sizeof(output), &exit_status, error);
	if (status == HP_OK && exit_status != 0) {
		hp_detail(error, "%s", output);
		status = hp_fail(error, HP_FAILED, "linking the patch failed");
	}
	free(objects);
	free(argv);
	return status;
}

/* Into place in one step: a temporary file beside OUT, then rename. */
static int install(const char *linked, const char *out, struct hp_error *error)
{
	char temporary[PATH_MAX + 16], buffer[65536];
	int in = open(linked, O_RDONLY | O_CLOEXEC), fd = -1, status = HP_OK;
	ssize_t got;

	if ((size_t)snprintf(temporary, sizeof(temporary), "%s.XXXXXX", out) >= sizeof(temporary))
		status = hp_fail(error, HP_USAGE, "the output path is too long");
	else if (in < 0)
		status = hp_fail_errno(error, HP_FAILED, "cannot read the linked patch");
	else if ((fd = mkostemp(temporary, O_CLOEXEC)) < 0)
		status = hp_fail_errno(error, HP_FAILED, "cannot write %s", out);
	while (status == HP_OK && (got = read(in, buffer, sizeof(buffer))) != 0) {
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0 || trust_write_all(fd, buffer, (size_t)got) != (size_t)got)
			status = hp_fail_errno(error, HP_FAILED, "cannot write %s", out);
	}
	/* hotpatch apply loads only patches nobody else can write. */
	if (status == HP_OK && fchmod(fd, 0644) != 0)
		status = hp_fail_errno(error, HP_FAILED, "cannot write %s", out);
	if (fd >= 0 && close(fd) != 0 && status == HP_OK)
		status = hp_fail_errno(error, HP_FAILED, "cannot write %s", out);
	if (status == HP_OK && rename(temporary, out) != 0)
		status = hp_fail_errno(error, HP_FAILED, "cannot write %s", out);
	if (status != HP_OK && fd >= 0)
		unlink(temporary);
	if (in >= 0)
		close(in);
	if (status != HP_OK)
		hp_error_file(error, out);
	return status;
}

int build_emit(const struct build_plan *plan, const struct hp_build_request *request,
	       const struct build_binary *binary, const struct build_tree *tree,
	       struct hp_error *error)
{
	char linked[PATH_MAX + 16];
	int status = write_sources(plan, request, binary, tree, error);

	snprintf(linked, sizeof(linked), "%s/patch.so", tree->root);
	if (status == HP_OK)
		status = link_patch(plan, tree, linked, error);
	if (status == HP_OK)
		status = build_linked_check(plan, linked, error);
	if (status == HP_OK)
		status = install(linked, request->output, error);
	return status;
}
