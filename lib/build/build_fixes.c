/* build_fixes.c - `hotpatch build --fix ID=FILE.diff ...`: one patch from
 * several fixes, applied in order, and every function it replaces or adds
 * tagged with the fixes that changed it.  A fix changed a function when the
 * function's code (by meaning, as build_compare.c compares) differs between
 * the tree with the fixes before it and the tree with it too; those middle
 * trees are one more private copy, the diffs applied one by one and the
 * changed sources compiled after each.  It plans nothing and never touches
 * a process. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "build/build.h"
#include "hotpatch.h"

int build_fixes_prepare(struct build_tree *tree, const struct hp_build_request *request,
			struct hp_error *error)
{
	int status;

	if (!request->fix_count)
		return build_tree_prepare(tree, request->source, request->diff, error);
	status = build_tree_prepare(tree, request->source, request->fixes[0].diff, error);
	for (size_t i = 1; status == HP_OK && i < request->fix_count; i++)
		status = build_tree_apply_diff(tree, request->fixes[i].diff, error);
	return status;
}

/* One function to tag: its unit and its name in the fixed object. */
struct subject {
	size_t unit;
	const char *name;
};

static int add_tag(struct build_plan *plan, struct subject **subjects, size_t unit,
		   size_t symbol, const char *file, struct hp_error *error)
{
	struct build_fix_tag *tags = realloc(plan->fix_tags,
					     (plan->fix_tag_count + 1) * sizeof(*tags));
	struct subject *larger = tags ? realloc(*subjects, (plan->fix_tag_count + 1) *
								   sizeof(*larger))
				      : NULL;
	const char *name = plan->units[unit].fixed.symbols[symbol].name;
	struct build_fix_tag *tag;

	if (tags)
		plan->fix_tags = tags;
	if (!larger)
		return hp_fail(error, HP_FAILED, "out of memory tagging the fixes");
	*subjects = larger;
	larger[plan->fix_tag_count] = (struct subject){ unit, name };
	tag = &tags[plan->fix_tag_count++];
	memset(tag, 0, sizeof(*tag));
	hp_copy_string(tag->file, sizeof(tag->file), file);
	hp_copy_string(tag->function, sizeof(tag->function), name);
	hp_copy_string(tag->source, sizeof(tag->source), plan->units[unit].fixed.source);
	return HP_OK;
}

/* Every replaced and every new function, in the plan's order. */
static int list_subjects(struct build_plan *plan, struct subject **subjects,
			 struct hp_error *error)
{
	int status = HP_OK;

	for (size_t r = 0; status == HP_OK && r < plan->replace_count; r++)
		status = add_tag(plan, subjects, plan->replaces[r].object, plan->replaces[r].symbol,
				 plan->replaces[r].file, error);
	for (size_t u = 0; u < plan->unit_count; u++)
		for (size_t i = 1; status == HP_OK && i < plan->units[u].fixed.symbol_count; i++)
			if (plan->units[u].fate[i] == BUILD_NEW &&
			    build_symbol_is_function(&plan->units[u].fixed.symbols[i]))
				status = add_tag(plan, subjects, u, i, plan->units[u].fixed.source,
						 error);
	return status;
}

static long find_function(const struct build_object *object, const char *name)
{
	for (size_t i = 1; object && i < object->symbol_count; i++)
		if (build_symbol_is_function(&object->symbols[i]) &&
		    build_symbol_defined(&object->symbols[i]) &&
		    strcmp(object->symbols[i].name, name) == 0)
			return (long)i;
	return -1;
}

/* Whether `name` is another function in `after` than in `before` (either
 * may be NULL: the source is not there yet). */
static bool differs(const struct build_object *before, const struct build_object *after,
		    const char *name)
{
	long one = find_function(before, name), two = find_function(after, name);

	if (one < 0 || two < 0)
		return one != two;
	return !build_functions_equal(before, (size_t)one, after, (size_t)two);
}

/* The tree of the fixes before `level`, its sources compiled: one object a
 * unit (NULL where the source does not exist yet). */
struct level {
	struct build_tree tree;
	struct build_object *objects;
	bool *present;
};

static int compile_level(struct level *level, const struct build_plan *plan, size_t number,
			 const char *compile, struct hp_error *error)
{
	int status = HP_OK;

	for (size_t u = 0; u < plan->unit_count; u++) {
		if (level->present[u])
			build_object_close(&level->objects[u]);
		level->present[u] = false;
	}
	for (size_t u = 0; status == HP_OK && u < plan->unit_count; u++) {
		char source[2 * PATH_MAX], object[PATH_MAX + 64], kept[PATH_MAX + 64];

		snprintf(source, sizeof(source), "%s/%s", level->tree.fixed, level->tree.sources[u]);
		if (access(source, F_OK) != 0)
			continue;
		status = build_tree_compile(&level->tree, compile, u, BUILD_FIXED, object,
					    sizeof(object), error);
		/* The next level compiles to the same name: this one moves aside. */
		snprintf(kept, sizeof(kept), "%s/level-%zu-%zu.o", level->tree.objects, number, u);
		if (status == HP_OK && rename(object, kept) != 0)
			status = hp_fail_errno(error, HP_FAILED, "cannot rename %s", object);
		if (status == HP_OK)
			status = build_object_open(&level->objects[u], kept, level->tree.sources[u],
						   error);
		level->present[u] = status == HP_OK;
	}
	return status;
}

/* Appends `id` to every tag whose function differs between two levels. */
static void tag_changes(struct build_plan *plan, const struct subject *subjects,
			const struct build_object *const *before,
			const struct build_object *const *after, const char *id)
{
	for (size_t t = 0; t < plan->fix_tag_count; t++) {
		struct build_fix_tag *tag = &plan->fix_tags[t];
		size_t unit = subjects[t].unit, used = strlen(tag->fixes);

		if (differs(before[unit], after[unit], subjects[t].name) &&
		    used + strlen(id) + 2 < sizeof(tag->fixes))
			snprintf(tag->fixes + used, sizeof(tag->fixes) - used, "%s%s",
				 used ? " " : "", id);
	}
}

/* Walks the fixes in order: level 0 is the original objects, the last the
 * fixed ones; the middle ones are compiled in `level`. */
static int walk_levels(struct build_plan *plan, const struct subject *subjects,
		       const struct build_tree *tree, const struct hp_build_request *request,
		       struct level *level, struct hp_error *error)
{
	size_t units = plan->unit_count;
	const struct build_object **before = calloc(units + 1, sizeof(*before));
	const struct build_object **after = calloc(units + 1, sizeof(*after));
	int status = before && after ? HP_OK : hp_fail(error, HP_FAILED, "out of memory");

	for (size_t u = 0; status == HP_OK && u < units; u++)
		before[u] = plan->units[u].has_orig ? &plan->units[u].orig : NULL;
	for (size_t k = 1; status == HP_OK && k <= request->fix_count; k++) {
		if (k == request->fix_count) {
			for (size_t u = 0; u < units; u++)
				after[u] = &plan->units[u].fixed;
		} else {
			status = k == 1 ? build_tree_prepare(&level->tree, request->source,
							     request->fixes[0].diff, error)
					: build_tree_apply_diff(&level->tree,
								request->fixes[k - 1].diff, error);
			/* The main tree's list of sources: the same units. */
			level->tree.sources = tree->sources;
			level->tree.source_count = tree->source_count;
			level->tree.commands = tree->commands;
			if (status == HP_OK)
				status = compile_level(level, plan, k, request->compile, error);
			for (size_t u = 0; u < units; u++)
				after[u] = level->present[u] ? &level->objects[u] : NULL;
		}
		if (status == HP_OK)
			tag_changes(plan, subjects, before, after, request->fixes[k - 1].id);
		/* The level's objects stay open until the next compile replaces them. */
		memcpy(before, after, units * sizeof(*before));
		if (status == HP_OK && request->interrupted && *request->interrupted)
			status = hp_fail(error, HP_FAILED, "interrupted; nothing was written");
	}
	free(before);
	free(after);
	return status;
}

/* What build printed for a function gets its fixes too. */
static void note_lines(struct build_plan *plan)
{
	for (size_t t = 0; t < plan->fix_tag_count; t++)
		for (size_t i = 0; i < plan->result->line_count; i++) {
			struct hp_build_line *line = &plan->result->lines[i];

			if (line->kind != HP_BUILD_WARNING &&
			    strcmp(line->function, plan->fix_tags[t].function) == 0 &&
			    strcmp(line->file, plan->fix_tags[t].source) == 0)
				hp_copy_string(line->fixes, sizeof(line->fixes), plan->fix_tags[t].fixes);
		}
}

int build_fixes_tag(struct build_plan *plan, const struct build_tree *tree,
		    const struct hp_build_request *request, struct hp_error *error)
{
	struct level level = { .tree = { .sources = NULL } };
	struct subject *subjects = NULL;
	int status;

	if (!request->fix_count)
		return HP_OK;
	level.objects = calloc(plan->unit_count + 1, sizeof(*level.objects));
	level.present = calloc(plan->unit_count + 1, sizeof(*level.present));
	status = level.objects && level.present ? list_subjects(plan, &subjects, error)
						: hp_fail(error, HP_FAILED, "out of memory");
	if (status == HP_OK)
		status = walk_levels(plan, subjects, tree, request, &level, error);
	/* A function no single fix changed (two fixes together did): every
	 * fix, so that none can be left out without it. */
	for (size_t t = 0; status == HP_OK && t < plan->fix_tag_count; t++)
		for (size_t k = 0; !plan->fix_tags[t].fixes[0] && k < request->fix_count; k++) {
			size_t used = strlen(plan->fix_tags[t].fixes);

			snprintf(plan->fix_tags[t].fixes + used, sizeof(plan->fix_tags[t].fixes) - used,
				 "%s%s", k ? " " : "", request->fixes[k].id);
		}
	if (status == HP_OK)
		note_lines(plan);
	for (size_t u = 0; level.present && u < plan->unit_count; u++)
		if (level.present[u])
			build_object_close(&level.objects[u]);
	/* The sources are the main tree's, to be freed there. */
	level.tree.sources = NULL;
	level.tree.source_count = 0;
	build_tree_remove(&level.tree);
	free(level.objects);
	free(level.present);
	free(subjects);
	return status;
}

void build_fixes_write(FILE *file, const struct build_plan *plan, const char *object,
		       void (*write_record)(FILE *file, const char *macro,
					    const char *const *values, size_t count))
{
	for (size_t t = 0; t < plan->fix_tag_count; t++) {
		const struct build_fix_tag *tag = &plan->fix_tags[t];
		char fixes[HP_FIXES_MAX], *saved = NULL;

		hp_copy_string(fixes, sizeof(fixes), tag->fixes);
		for (char *id = strtok_r(fixes, " ", &saved); id; id = strtok_r(NULL, " ", &saved)) {
			const char *values[] = { object, tag->file, tag->function, id };

			write_record(file, "HOTPATCH_FIX_RECORD", values, 4);
		}
	}
}

void build_fixes_release(struct build_plan *plan)
{
	free(plan->fix_tags);
	plan->fix_tags = NULL;
	plan->fix_tag_count = 0;
}
