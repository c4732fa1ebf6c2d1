/* build.c - `hotpatch build`, the story: check the request, read the binary,
 * copy the tree twice and apply the diff, compile what changed both ways,
 * compare, plan what the patch keeps and borrows, write it.  It never runs
 * the result and never touches a process; the temporary tree always goes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "build/build.h"
#include "hotpatch.h"

static int check_text(const char *what, const char *value, size_t limit, struct hp_error *error)
{
	if (value && strlen(value) >= limit)
		return hp_fail(error, HP_USAGE, "%s is longer than %zu characters", what, limit - 1);
	return HP_OK;
}

static int check_path(const char *what, const char *path, bool directory, struct hp_error *error)
{
	struct stat status;

	if (!path || !*path)
		return hp_fail(error, HP_USAGE, "build needs %s", what);
	if (stat(path, &status) != 0) {
		hp_error_file(error, path);
		return hp_fail_errno(error, HP_USAGE, "cannot use %s %s", what, path);
	}
	if (directory != (S_ISDIR(status.st_mode) != 0)) {
		hp_error_file(error, path);
		return hp_fail(error, HP_USAGE, "%s %s is not a %s", what, path,
			       directory ? "directory" : "file");
	}
	return HP_OK;
}

/* OUT goes into an existing directory: found out now, not after compiling. */
static int check_output_directory(const char *output, struct hp_error *error)
{
	char directory[PATH_MAX];
	const char *slash = strrchr(output, '/');
	struct stat status;

	if (!slash)
		return HP_OK;
	if ((size_t)(slash - output) >= sizeof(directory))
		return hp_fail(error, HP_USAGE, "the output path is too long");
	memcpy(directory, output, (size_t)(slash - output));
	directory[slash - output] = '\0';
	if (slash == output)
		hp_copy_string(directory, sizeof(directory), "/");
	if (stat(directory, &status) != 0 || !S_ISDIR(status.st_mode)) {
		hp_error_file(error, output);
		return hp_fail(error, HP_USAGE, "cannot write %s: %s is not a directory", output,
			       directory);
	}
	return HP_OK;
}

/* --compile or --compile-commands FILE: exactly one. */
static int check_compile_choice(const struct hp_build_request *request, struct hp_error *error)
{
	bool compile = request->compile && *request->compile;

	if (compile && request->compile_commands)
		return hp_fail(error, HP_USAGE,
			       "build takes --compile or --compile-commands, not both");
	if (request->compile_commands)
		return check_path("--compile-commands", request->compile_commands, false, error);
	if (!compile)
		return hp_fail(error, HP_USAGE,
			       "build needs --compile 'CC FLAGS...' or --compile-commands FILE");
	return HP_OK;
}

/* --fix ID=FILE.diff, each: an id a patch's fix record can hold, once,
 * and a diff that is there. */
static int check_fixes(const struct hp_build_request *request, struct hp_error *error)
{
	int status = HP_OK;

	if (request->fix_count > HP_BUILD_FIXES_MAX)
		return hp_fail(error, HP_USAGE, "build takes at most %d fixes", HP_BUILD_FIXES_MAX);
	if (request->diff && request->fix_count)
		return hp_fail(error, HP_USAGE, "build takes --diff or --fix, not both");
	for (size_t i = 0; status == HP_OK && i < request->fix_count; i++) {
		if (!patch_fix_id_is_valid(request->fixes[i].id))
			return hp_fail(error, HP_USAGE,
				       "--fix wants an id of at most %d printable characters without "
				       "spaces or '=', not '%s'", HOTPATCH_FIX_MAX - 1,
				       request->fixes[i].id);
		for (size_t j = 0; j < i; j++)
			if (strcmp(request->fixes[i].id, request->fixes[j].id) == 0)
				return hp_fail(error, HP_USAGE, "--fix %s is given twice",
					       request->fixes[i].id);
		status = check_path("--fix", request->fixes[i].diff, false, error);
	}
	return status;
}

static int check_request(const struct hp_build_request *request, struct hp_error *error)
{
	int status = check_path("--source", request->source, true, error);

	if (status == HP_OK)
		status = request->fix_count ? check_fixes(request, error)
					    : check_path("--diff", request->diff, false, error);
	if (status == HP_OK)
		status = check_path("--binary", request->binary, false, error);
	if (status == HP_OK)
		status = check_compile_choice(request, error);
	if (status == HP_OK && (!request->output || !*request->output))
		status = hp_fail(error, HP_USAGE, "build needs -o OUT.so");
	if (status == HP_OK)
		status = check_output_directory(request->output, error);
	if (status == HP_OK && request->name && !patch_name_is_valid(request->name))
		status = hp_fail(error, HP_USAGE, "--name wants letters, digits, '.', '_' and '-' "
						  "(at most %d), not '%s'",
				 HP_PATCH_NAME_MAX - 1, request->name);
	if (status == HP_OK)
		status = check_text("--object", request->object, HOTPATCH_NAME_MAX, error);
	if (status == HP_OK)
		status = check_text("--description", request->description, HOTPATCH_META_MAX, error);
	for (size_t i = 0; status == HP_OK && i < request->id_count; i++)
		status = check_text("--id", request->ids[i], HOTPATCH_META_MAX, error);
	return status;
}

/* --object must name the library --binary is, as apply will look it up:
 * a patch for the wrong object would only fail at apply, less clearly. */
static int check_object(const struct hp_build_request *request, const struct build_binary *binary,
			struct hp_error *error)
{
	const char *object = request->object ? request->object : "";
	const char *soname = binary->elf.soname;
	bool named = !object[0] || elf_file_name_matches(object, hp_base_name(binary->path)) ||
		     (soname && elf_file_name_matches(object, soname));

	if (object[0] ? named : !soname)
		return HP_OK;
	hp_error_file(error, binary->path);
	if (!object[0])
		return hp_fail(error, HP_USAGE,
			       "%s is a shared library (%s): name it with --object %s",
			       binary->path, soname, soname);
	return hp_fail(error, HP_USAGE, "--object %s does not name %s%s%s", object, binary->path,
		       soname ? ", whose soname is " : "", soname ? soname : "");
}

static bool interrupted(const struct hp_build_request *request, struct hp_error *error)
{
	if (!request->interrupted || !*request->interrupted)
		return false;
	hp_fail(error, HP_FAILED, "interrupted; nothing was written");
	return true;
}

/* Compiles one source both ways and compares the two objects. */
static int compare_source(const struct hp_build_request *request, const struct build_tree *tree,
			  const struct build_binary *binary, size_t index, struct build_unit *unit,
			  struct hp_error *error)
{
	char path[PATH_MAX + 64];
	int status = HP_OK;

	unit->orig.fd = unit->fixed.fd = -1;
	if (tree->in_orig[index]) {
		status = build_match_binary(tree, request->compile, index, binary, error);
		if (status == HP_OK)
			status = build_tree_compile(tree, request->compile, index, BUILD_ORIG, path,
					    sizeof(path), error);
		if (status == HP_OK)
			status = build_object_open(&unit->orig, path, tree->sources[index], error);
		unit->has_orig = status == HP_OK;
	}
	if (status == HP_OK)
		status = build_tree_compile(tree, request->compile, index, BUILD_FIXED, path,
					    sizeof(path), error);
	if (status == HP_OK)
		status = build_object_open(&unit->fixed, path, tree->sources[index], error);
	if (status == HP_OK) {
		unit->fate = calloc(unit->fixed.symbol_count, 1);
		if (!unit->fate)
			status = hp_fail(error, HP_FAILED, "out of memory comparing %s",
					 tree->sources[index]);
	}
	/* Layouts first: a grown struct also changes the variables of its type. */
	if (status == HP_OK && unit->has_orig)
		status = build_dwarf_compare_layouts(unit, tree->orig, tree->fixed, error);
	if (status == HP_OK)
		status = build_compare(unit->has_orig ? &unit->orig : NULL, &unit->fixed, unit->fate,
				       error);
	return status;
}

static int compare_tree(const struct hp_build_request *request, struct build_tree *tree,
			struct build_binary *binary, struct build_plan *plan,
			struct hp_error *error)
{
	int status = build_tree_changed_sources(tree, binary, error);

	if (status == HP_OK && tree->source_count == 0) {
		hp_hint(error, "the diff must change C sources (.c) or headers of --source");
		status = hp_fail(error, HP_MISFIT, "the diff changes no source file");
	}
	if (status == HP_OK) {
		plan->units = calloc(tree->source_count, sizeof(*plan->units));
		if (!plan->units)
			status = hp_fail(error, HP_FAILED, "out of memory");
	}
	for (size_t i = 0; status == HP_OK && i < tree->source_count; i++) {
		plan->unit_count++;
		status = compare_source(request, tree, binary, i, &plan->units[i], error);
		if (status == HP_OK && interrupted(request, error))
			status = HP_FAILED;
	}
	return status;
}

int hp_build(const struct hp_build_request *request, struct hp_build_result *result,
	     struct hp_error *error)
{
	struct hp_build_request named = *request;
	const char *fix_ids[HP_BUILD_FIXES_MAX];
	struct build_tree tree = { 0 };
	struct build_binary binary = { 0 };
	struct build_commands commands = { .count = 0 };
	struct build_plan plan = { .result = result };
	char name[HP_PATCH_NAME_MAX];
	int status = check_request(request, error);

	if (status == HP_OK && !request->name) {
		patch_default_name(request->output, name, sizeof(name));
		named.name = name;
	}
	/* Several fixes: their ids are the patch's ids. */
	for (size_t i = 0; status == HP_OK && i < request->fix_count; i++)
		fix_ids[i] = request->fixes[i].id;
	if (status == HP_OK && request->fix_count) {
		named.ids = fix_ids;
		named.id_count = request->fix_count;
	}
	if (status == HP_OK)
		status = build_binary_open(&binary, request->binary, error);
	if (status == HP_OK)
		status = check_object(request, &binary, error);
	if (status == HP_OK && !binary.symbol_table &&
	    build_result_line(result, HP_BUILD_WARNING, "", request->binary,
			      "the binary has no symbol table and no debug file in "
			      "/usr/lib/debug/.build-id: only its exported symbols can be used"))
		status = hp_fail(error, HP_FAILED, "out of memory");
	if (status == HP_OK && request->compile_commands) {
		status = build_commands_load(&commands, request->compile_commands, request->source,
					     error);
		tree.commands = &commands;
		plan.commands = &commands;
	}
	if (status == HP_OK)
		status = build_fixes_prepare(&tree, request, error);
	if (status == HP_OK && interrupted(request, error))
		status = HP_FAILED;
	if (status == HP_OK)
		status = compare_tree(&named, &tree, &binary, &plan, error);
	plan.orig_root = tree.orig;
	plan.fixed_root = tree.fixed;
	plan.compile = request->compile;
	if (status == HP_OK)
		status = build_plan_make(&plan, &binary, error);
	if (status == HP_OK)
		status = build_dwarf_inlines(&plan, error);
	if (status == HP_OK)
		status = build_fixes_tag(&plan, &tree, request, error);
	if (status == HP_OK && interrupted(request, error))
		status = HP_FAILED;
	if (status == HP_OK)
		status = build_emit(&plan, &named, &binary, &tree, error);
	if (status == HP_OK) {
		result->function_count = plan.replace_count + plan.new_count;
		result->reference_count = plan.alias_count;
		hp_copy_string(result->build_id, sizeof(result->build_id), binary.build_id);
	}
	/* Ctrl-C reaches the compiler too: say why it failed. */
	if (status != HP_OK && request->interrupted && *request->interrupted) {
		error->detail[0] = '\0';
		status = hp_fail(error, HP_FAILED, "interrupted; nothing was written");
	}
	build_fixes_release(&plan);
	build_plan_release(&plan);
	build_tree_remove(&tree);
	build_commands_release(&commands);
	build_binary_close(&binary);
	return status;
}
