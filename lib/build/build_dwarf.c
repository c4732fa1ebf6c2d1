/* build_dwarf.c - what the -g debug information of the two compiles tells
 * `hotpatch build` that the code alone does not: where a changed function
 * was inlined (its old copy lives on in callers that are not replaced) and
 * whether a struct's layout changed (the process's data keeps the old one).
 * Relocatable objects need their DWARF relocated first: libdwfl does that. */
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "build/build.h"

#define DIE_DEPTH_MAX 64

static const Dwfl_Callbacks offline_callbacks = {
	.find_debuginfo = dwfl_standard_find_debuginfo,
	.section_address = dwfl_offline_section_address,
};

static Dwarf *open_dwarf(const char *path, Dwfl **dwfl)
{
	Dwfl_Module *module;
	Dwarf_Addr bias;

	*dwfl = dwfl_begin(&offline_callbacks);
	if (!*dwfl)
		return NULL;
	module = dwfl_report_offline(*dwfl, path, path, -1);
	if (dwfl_report_end(*dwfl, NULL, NULL) != 0 || !module)
		return NULL;
	return dwfl_module_getdwarf(module, &bias);
}

/* Calls `visit` with each compilation unit of the object at `path`, while
 * it returns HP_OK; returns what stopped it (a status, or a positive "found"),
 * or HP_OK.  An object without debug information has no unit. */
typedef int (*unit_visitor)(Dwarf_Die *unit, void *context);

static int each_unit(const char *path, unit_visitor visit, void *context)
{
	Dwfl *dwfl = NULL;
	Dwarf *dwarf = open_dwarf(path, &dwfl);
	Dwarf_Off offset = 0, next;
	size_t header_size;
	int status = HP_OK;

	while (dwarf && status == HP_OK &&
	       dwarf_nextcu(dwarf, offset, &next, &header_size, NULL, NULL, NULL) == 0) {
		Dwarf_Die unit;

		if (dwarf_offdie(dwarf, offset + header_size, &unit))
			status = visit(&unit, context);
		offset = next;
	}
	if (dwfl)
		dwfl_end(dwfl);
	return status;
}

static const char *name_of(Dwarf_Die *die)
{
	Dwarf_Attribute attribute;
	const char *name = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_name, &attribute));

	return name ? name : "";
}

/* ---- struct layouts ---- */
/* A member as the layout sees it: where it is and how large.  Its type
 * may change freely as long as neither does. */
struct member {
	char name[HP_TEXT_MAX];		/* "(unnamed N)" for an anonymous one */
	unsigned long offset;		/* bytes, or bits with a bit size */
	long size;			/* bytes of its type, -1 if unknown */
	int bits;			/* bit-field width, -1 if none */
	int line;			/* where it is declared, 0 if unknown */
};

struct layout {
	char name[HP_TEXT_MAX];		/* "struct slot", or a typedef's name */
	char file[PATH_MAX];		/* where it is declared, as DWARF says */
	int line;
	long size;
	size_t member_count;
	struct member *members;
};

struct layouts {
	size_t count;
	struct layout *items;
};

static int add_member(struct layout *layout, Dwarf_Die *die)
{
	struct member *members = realloc(layout->members,
					 (layout->member_count + 1) * sizeof(*members));
	struct member *member;
	Dwarf_Attribute attribute;
	Dwarf_Word value = 0;
	Dwarf_Die type;

	if (!members)
		return HP_FAILED;
	layout->members = members;
	member = &members[layout->member_count++];
	if (*name_of(die))
		hp_copy_string(member->name, sizeof(member->name), name_of(die));
	else
		snprintf(member->name, sizeof(member->name), "(unnamed %zu)", layout->member_count);
	if (dwarf_formudata(dwarf_attr(die, DW_AT_data_member_location, &attribute), &value) != 0)
		dwarf_formudata(dwarf_attr(die, DW_AT_data_bit_offset, &attribute), &value);
	member->offset = (unsigned long)value;
	member->bits = dwarf_bitsize(die);
	member->size = -1;
	if (dwarf_formref_die(dwarf_attr_integrate(die, DW_AT_type, &attribute), &type)) {
		Dwarf_Word size;

		if (dwarf_aggregate_size(&type, &size) == 0)
			member->size = (long)size;
	}
	member->line = 0;
	dwarf_decl_line(die, &member->line);
	return HP_OK;
}

/* A struct or union once per name: `name` is its tag ("struct slot") or,
 * for an anonymous one, the typedef that names it. */
static int add_layout(struct layouts *layouts, Dwarf_Die *die, const char *name)
{
	struct layout *items, *layout;
	const char *file = dwarf_decl_file(die);
	Dwarf_Die member;
	int status = HP_OK;

	if (dwarf_hasattr(die, DW_AT_declaration))
		return HP_OK;
	for (size_t i = 0; i < layouts->count; i++)
		if (strcmp(layouts->items[i].name, name) == 0)
			return HP_OK;
	items = realloc(layouts->items, (layouts->count + 1) * sizeof(*items));
	if (!items)
		return HP_FAILED;
	layouts->items = items;
	layout = &items[layouts->count++];
	memset(layout, 0, sizeof(*layout));
	hp_copy_string(layout->name, sizeof(layout->name), name);
	hp_copy_string(layout->file, sizeof(layout->file), file);
	dwarf_decl_line(die, &layout->line);
	layout->size = dwarf_bytesize(die);
	if (dwarf_child(die, &member) != 0)
		return HP_OK;
	do {
		if (dwarf_tag(&member) == DW_TAG_member)
			status = add_member(layout, &member);
	} while (status == HP_OK && dwarf_siblingof(&member, &member) == 0);
	return status;
}

static bool is_aggregate(int tag)
{
	return tag == DW_TAG_structure_type || tag == DW_TAG_union_type;
}

/* typedef struct { ... } name_t: the struct is known by the typedef. */
static int add_typedef_layout(struct layouts *layouts, Dwarf_Die *die)
{
	Dwarf_Attribute attribute;
	Dwarf_Die type;

	if (!*name_of(die) || !dwarf_formref_die(dwarf_attr(die, DW_AT_type, &attribute), &type) ||
	    !is_aggregate(dwarf_tag(&type)) || *name_of(&type))
		return HP_OK;
	return add_layout(layouts, &type, name_of(die));
}

static int collect_layouts(Dwarf_Die *die, unsigned depth, struct layouts *layouts)
{
	Dwarf_Die child;
	int status = HP_OK;

	if (depth > DIE_DEPTH_MAX || dwarf_child(die, &child) != 0)
		return HP_OK;
	do {
		int tag = dwarf_tag(&child);
		char name[HP_TEXT_MAX];

		if (is_aggregate(tag) && *name_of(&child)) {
			snprintf(name, sizeof(name), "%s %s",
				 tag == DW_TAG_union_type ? "union" : "struct", name_of(&child));
			status = add_layout(layouts, &child, name);
		} else if (tag == DW_TAG_typedef) {
			status = add_typedef_layout(layouts, &child);
		}
		if (status == HP_OK)
			status = collect_layouts(&child, depth + 1, layouts);
	} while (status == HP_OK && dwarf_siblingof(&child, &child) == 0);
	return status;
}

static int layouts_of_unit(Dwarf_Die *unit, void *layouts)
{
	return collect_layouts(unit, 0, layouts);
}

static int read_layouts(const char *path, struct layouts *layouts)
{
	return each_unit(path, layouts_of_unit, layouts);
}

static void release_layouts(struct layouts *layouts)
{
	for (size_t i = 0; i < layouts->count; i++)
		free(layouts->items[i].members);
	free(layouts->items);
}

static const struct member *find_member(const struct layout *layout, const char *name)
{
	for (size_t i = 0; i < layout->member_count; i++)
		if (strcmp(layout->members[i].name, name) == 0)
			return &layout->members[i];
	return NULL;
}

/* " (shared.h:12)", or "" when DWARF did not say. */
static void place(char *text, size_t size, const char *file, int line)
{
	if (*file && line > 0)
		snprintf(text, size, " (%.200s:%d)", file, line);
	else
		text[0] = '\0';
}

/* A member's " (line 14)" of the struct's file. */
static void member_line(char *text, size_t size, int line)
{
	if (line > 0)
		snprintf(text, size, " (line %d)", line);
	else
		text[0] = '\0';
}

/* The change an operator looks for first, in words: a member added or
 * removed (which moves the later ones), else resized, else moved, else
 * the size of the whole.  Empty when the layouts are the same. */
static void describe_change(const struct layout *before, const struct layout *after,
			    char *text, size_t size)
{
	char where[256];

	text[0] = '\0';
	for (size_t i = 0; i < after->member_count; i++) {
		const struct member *new = &after->members[i];

		if (find_member(before, new->name))
			continue;
		member_line(where, sizeof(where), new->line);
		snprintf(text, size, "member %s added at offset %lu%s", new->name, new->offset, where);
		return;
	}
	for (size_t i = 0; i < before->member_count; i++)
		if (!find_member(after, before->members[i].name)) {
			snprintf(text, size, "member %s removed (it was at offset %lu)",
				 before->members[i].name, before->members[i].offset);
			return;
		}
	for (size_t i = 0; i < after->member_count; i++) {
		const struct member *new = &after->members[i], *old = find_member(before, new->name);

		member_line(where, sizeof(where), new->line);
		if (old->bits != new->bits)
			snprintf(text, size, "member %s resized from %d to %d bits%s", new->name,
				 old->bits < 0 ? (int)(8 * old->size) : old->bits,
				 new->bits < 0 ? (int)(8 * new->size) : new->bits, where);
		else if (old->size != new->size)
			snprintf(text, size, "member %s resized from %ld to %ld bytes%s", new->name,
				 old->size, new->size, where);
		if (text[0])
			return;
	}
	for (size_t i = 0; i < after->member_count; i++) {
		const struct member *new = &after->members[i], *old = find_member(before, new->name);

		if (old->offset == new->offset)
			continue;
		member_line(where, sizeof(where), new->line);
		snprintf(text, size, "member %s moved from offset %lu to %lu%s", new->name,
			 old->offset, new->offset, where);
		return;
	}
	if (before->size != after->size)
		snprintf(text, size, "its size changed from %ld to %ld bytes", before->size,
			 after->size);
}

/* DWARF's declaration file, a path in the copy, as relative to the tree. */
static const char *in_tree(const char *file, const char *orig_root, const char *fixed_root)
{
	const char *roots[] = { fixed_root, orig_root };

	for (size_t i = 0; i < HP_ARRAY_SIZE(roots); i++) {
		size_t length = roots[i] ? strlen(roots[i]) : 0;

		if (length && strncmp(file, roots[i], length) == 0 && file[length] == '/')
			return file + length + 1;
	}
	return file;
}

int build_dwarf_compare_layouts(const struct build_unit *unit, const char *orig_root,
				const char *fixed_root, struct hp_error *error)
{
	struct layouts before = { 0 }, after = { 0 };
	int status = read_layouts(unit->orig.path, &before);

	if (status == HP_OK)
		status = read_layouts(unit->fixed.path, &after);
	if (status != HP_OK)
		status = hp_fail(error, HP_FAILED, "out of memory reading debug information");
	for (size_t i = 0; status == HP_OK && i < after.count; i++)
		for (size_t j = 0; status == HP_OK && j < before.count; j++) {
			const struct layout *new = &after.items[i], *old = &before.items[j];
			const char *file = in_tree(new->file, orig_root, fixed_root);
			char change[HP_TEXT_MAX + 512], where[256];

			if (strcmp(new->name, old->name) != 0)
				continue;
			describe_change(old, new, change, sizeof(change));
			if (!change[0])
				continue;
			/* The header that declares it, not the first file that
			 * happened to be compiled with it. */
			place(where, sizeof(where), file, new->line);
			hp_error_function(error, new->name);
			hp_error_file(error, *file ? file : unit->fixed.source);
			hp_hint(error, "the process's data keeps the old layout; a patch cannot change "
				       "it (restart the program)");
			if (*where)
				status = hp_fail(error, HP_MISFIT, "the layout of %s%s changed: %s",
						 new->name, where, change);
			else
				status = hp_fail(error, HP_MISFIT,
						 "the layout of %s (seen compiling %s) changed: %s",
						 new->name, unit->fixed.source, change);
		}
	release_layouts(&before);
	release_layouts(&after);
	return status;
}

/* ---- inlining ---- */
struct inline_pair {
	char caller[HP_TEXT_MAX];
	char callee[HP_TEXT_MAX];
};

/* Where a function is declared: its text is compared from there. */
struct declaration {
	char name[HP_TEXT_MAX];
	char path[PATH_MAX];
	unsigned line;
};

struct inlines {
	size_t count;
	struct inline_pair *items;
	size_t declaration_count;
	struct declaration *declarations;
	const char *root;		/* relative source names are from here */
};

static int add_pair(struct inlines *inlines, const char *caller, const char *callee)
{
	struct inline_pair *items;

	for (size_t i = 0; i < inlines->count; i++)
		if (!strcmp(inlines->items[i].caller, caller) && !strcmp(inlines->items[i].callee, callee))
			return HP_OK;
	items = realloc(inlines->items, (inlines->count + 1) * sizeof(*items));
	if (!items)
		return HP_FAILED;
	inlines->items = items;
	hp_copy_string(items[inlines->count].caller, HP_TEXT_MAX, caller);
	hp_copy_string(items[inlines->count].callee, HP_TEXT_MAX, callee);
	inlines->count++;
	return HP_OK;
}

static const struct declaration *find_declaration(const struct inlines *inlines, const char *name)
{
	for (size_t i = 0; i < inlines->declaration_count; i++)
		if (strcmp(inlines->declarations[i].name, name) == 0)
			return &inlines->declarations[i];
	return NULL;
}

/* A function's name, file and line, once, from its first DIE that has them. */
static int add_declaration(struct inlines *inlines, Dwarf_Die *die)
{
	const char *name = name_of(die), *file = dwarf_decl_file(die);
	struct declaration *items, *added;
	int line = 0;

	if (!*name || !file || dwarf_decl_line(die, &line) != 0 || line <= 0 ||
	    find_declaration(inlines, name))
		return HP_OK;
	items = realloc(inlines->declarations, (inlines->declaration_count + 1) * sizeof(*items));
	if (!items)
		return HP_FAILED;
	inlines->declarations = items;
	added = &items[inlines->declaration_count++];
	hp_copy_string(added->name, sizeof(added->name), name);
	if (file[0] == '/')
		hp_copy_string(added->path, sizeof(added->path), file);
	else
		snprintf(added->path, sizeof(added->path), "%.2000s/%.2000s", inlines->root, file);
	added->line = (unsigned)line;
	return HP_OK;
}

/* Every function inlined anywhere below `die`, named for `caller`. */
static int collect_inlined(Dwarf_Die *die, const char *caller, unsigned depth,
			   struct inlines *inlines)
{
	Dwarf_Die child;
	int status = HP_OK;

	if (depth > DIE_DEPTH_MAX || dwarf_child(die, &child) != 0)
		return HP_OK;
	do {
		/* A function inlined into itself (recursion, a split part put
		 * back) says nothing about other callers. */
		if (dwarf_tag(&child) == DW_TAG_inlined_subroutine && *name_of(&child) &&
		    strcmp(name_of(&child), caller) != 0)
			status = add_pair(inlines, caller, name_of(&child));
		if (status == HP_OK)
			status = collect_inlined(&child, caller, depth + 1, inlines);
	} while (status == HP_OK && dwarf_siblingof(&child, &child) == 0);
	return status;
}

/* Only concrete functions (with code) have inlined copies in them. */
static int collect_callers(Dwarf_Die *die, unsigned depth, struct inlines *inlines)
{
	Dwarf_Die child;
	int status = HP_OK;

	if (depth > DIE_DEPTH_MAX || dwarf_child(die, &child) != 0)
		return HP_OK;
	do {
		if (dwarf_tag(&child) == DW_TAG_subprogram)
			status = add_declaration(inlines, &child);
		if (status == HP_OK && dwarf_tag(&child) == DW_TAG_subprogram &&
		    (dwarf_hasattr(&child, DW_AT_low_pc) || dwarf_hasattr(&child, DW_AT_ranges)))
			status = collect_inlined(&child, name_of(&child), 0, inlines);
		else if (status == HP_OK && dwarf_tag(&child) == DW_TAG_namespace)
			status = collect_callers(&child, depth + 1, inlines);
	} while (status == HP_OK && dwarf_siblingof(&child, &child) == 0);
	return status;
}

static int callers_of_unit(Dwarf_Die *unit, void *inlines)
{
	return collect_callers(unit, 0, inlines);
}

static int read_inlines(const char *path, struct inlines *inlines)
{
	return each_unit(path, callers_of_unit, inlines);
}

static void release_inlines(struct inlines *inlines)
{
	free(inlines->items);
	free(inlines->declarations);
}

static long symbol_named(const struct build_object *object, const char *name)
{
	for (size_t i = 1; i < object->symbol_count; i++)
		if (build_symbol_is_function(&object->symbols[i]) &&
		    build_symbol_defined(&object->symbols[i]) && !strcmp(object->symbols[i].name, name))
			return (long)i;
	return -1;
}

/* A function with code of its own changed when its code did; one that
 * exists only inlined, when its source text did. */
static bool callee_changed(const struct build_unit *unit, const struct inlines *before,
			   const struct inlines *after, const char *name)
{
	long symbol = symbol_named(&unit->fixed, name);
	const struct declaration *old, *new;

	if (symbol >= 0)
		return unit->fate[symbol] == BUILD_CHANGED;
	old = find_declaration(before, name);
	new = find_declaration(after, name);
	return old && new && build_source_function_changed(old->path, old->line, new->path, new->line);
}

/* "[inlines a, b]" on the caller's replace line. */
static void note_inlined(struct hp_build_result *result, const char *caller, const char *file,
			 const char *callee)
{
	for (size_t i = 0; i < result->line_count; i++) {
		struct hp_build_line *line = &result->lines[i];
		size_t used = strlen(line->text);

		if (line->kind != HP_BUILD_REPLACE || strcmp(line->function, caller) != 0 ||
		    strcmp(line->file, file) != 0)
			continue;
		snprintf(line->text + used, sizeof(line->text) - used, "%s%s", used ? ", " : "",
			 callee);
		return;
	}
}

static int report_unit(struct build_plan *plan, const struct build_unit *unit,
		       const struct inlines *before, const struct inlines *after)
{
	const struct build_object *object = &unit->fixed;
	int status = HP_OK;

	for (size_t i = 0; status == HP_OK && i < before->count; i++) {
		const struct inline_pair *pair = &before->items[i];
		long caller = symbol_named(object, pair->caller);
		char text[4 * HP_TEXT_MAX];

		if (caller < 0 || !callee_changed(unit, before, after, pair->callee))
			continue;
		if (unit->replace[caller] >= 0) {
			note_inlined(plan->result, pair->caller, object->source, pair->callee);
			continue;
		}
		if (unit->fate[caller] == BUILD_CHANGED)
			continue;	/* inlined itself: its own callers are replaced */
		snprintf(text, sizeof(text),
			 "%.64s is inlined into %.64s (%.96s), which did not change: the old %.64s "
			 "stays there; change %.64s too, or keep %.64s out of line (noinline)",
			 pair->callee, pair->caller, object->source, pair->callee, pair->caller,
			 pair->callee);
		status = build_result_line(plan->result, HP_BUILD_WARNING, pair->callee,
					   object->source, text);
	}
	return status;
}

int build_dwarf_inlines(struct build_plan *plan, struct hp_error *error)
{
	int status = HP_OK;

	for (size_t u = 0; status == HP_OK && u < plan->unit_count; u++) {
		const struct build_unit *unit = &plan->units[u];
		struct inlines before = { .root = plan->orig_root }, after = { .root = plan->fixed_root };

		/* Where the binary has the old code inlined: the original compile. */
		if (unit->has_orig)
			status = read_inlines(unit->orig.path, &before);
		if (status == HP_OK && unit->has_orig)
			status = read_inlines(unit->fixed.path, &after);
		if (status == HP_OK)
			status = report_unit(plan, unit, &before, &after);
		release_inlines(&before);
		release_inlines(&after);
	}
	if (status != HP_OK)
		return hp_fail(error, HP_FAILED, "out of memory reading debug information");
	return HP_OK;
}

/* ---- signatures, for register-keeping thunks ---- */
enum argument_class { CLASS_INTEGER, CLASS_SSE, CLASS_OTHER };

static enum argument_class class_of(Dwarf_Die *type_die)
{
	Dwarf_Die peeled;
	Dwarf_Word encoding = 0;
	Dwarf_Attribute attribute;
	int size;

	if (dwarf_peel_type(type_die, &peeled) != 0)
		return CLASS_OTHER;
	size = dwarf_bytesize(&peeled);
	switch (dwarf_tag(&peeled)) {
	case DW_TAG_pointer_type:
	case DW_TAG_reference_type:
	case DW_TAG_rvalue_reference_type:
		return CLASS_INTEGER;
	case DW_TAG_enumeration_type:
		return size > 0 && size <= 8 ? CLASS_INTEGER : CLASS_OTHER;
	case DW_TAG_base_type:
		if (dwarf_formudata(dwarf_attr(&peeled, DW_AT_encoding, &attribute), &encoding) != 0)
			return CLASS_OTHER;
		if (encoding == DW_ATE_float)
			return size == 4 || size == 8 ? CLASS_SSE : CLASS_OTHER;
		if (encoding == DW_ATE_complex_float || encoding == DW_ATE_decimal_float)
			return CLASS_OTHER;
		return size > 0 && size <= 8 ? CLASS_INTEGER : CLASS_OTHER;
	default:
		return CLASS_OTHER;
	}
}

static bool classify(Dwarf_Die *function, enum build_return *returns)
{
	Dwarf_Attribute attribute;
	Dwarf_Die type, child;
	unsigned integers = 0, floats = 0;
	enum argument_class result = CLASS_INTEGER;

	*returns = BUILD_RETURNS_NOTHING;
	if (dwarf_attr_integrate(function, DW_AT_type, &attribute)) {
		if (!dwarf_formref_die(&attribute, &type))
			return false;
		result = class_of(&type);
		if (result == CLASS_OTHER)
			return false;
		*returns = result == CLASS_SSE ? BUILD_RETURNS_SSE : BUILD_RETURNS_INTEGER;
	}
	if (dwarf_child(function, &child) != 0)
		return true;
	do {
		if (dwarf_tag(&child) == DW_TAG_unspecified_parameters)
			return false;
		if (dwarf_tag(&child) != DW_TAG_formal_parameter)
			continue;
		if (!dwarf_attr_integrate(&child, DW_AT_type, &attribute) ||
		    !dwarf_formref_die(&attribute, &type))
			return false;
		switch (class_of(&type)) {
		case CLASS_INTEGER: integers++; break;
		case CLASS_SSE: floats++; break;
		default: return false;
		}
	} while (dwarf_siblingof(&child, &child) == 0);
	return integers <= 6 && floats <= 8;
}

/* The first DIE of `name` that lists its parameters (the abstract instance
 * of an inlined function, else the function itself). */
static bool find_function(Dwarf_Die *die, const char *name, unsigned depth, Dwarf_Die *found)
{
	Dwarf_Die child;
	Dwarf_Attribute attribute;

	if (depth > DIE_DEPTH_MAX || dwarf_child(die, &child) != 0)
		return false;
	do {
		const char *own = dwarf_formstring(dwarf_attr(&child, DW_AT_name, &attribute));

		if (dwarf_tag(&child) == DW_TAG_subprogram && own && strcmp(own, name) == 0) {
			*found = child;
			return true;
		}
		if (dwarf_tag(&child) == DW_TAG_namespace &&
		    find_function(&child, name, depth + 1, found))
			return true;
	} while (dwarf_siblingof(&child, &child) == 0);
	return false;
}

struct signature_search {
	const char *function;
	enum build_return *returns;
	bool simple;
};

static int signature_in_unit(Dwarf_Die *unit, void *context)
{
	struct signature_search *search = context;
	Dwarf_Die die;

	if (!find_function(unit, search->function, 0, &die))
		return HP_OK;
	search->simple = classify(&die, search->returns);
	return 1;
}

bool build_dwarf_simple_signature(const struct build_unit *unit, const char *function,
				  enum build_return *returns)
{
	struct signature_search search = { function, returns, false };

	each_unit(unit->fixed.path, signature_in_unit, &search);
	return search.simple;
}

/* "/a/b/../c/./d.c" as "/a/c/d.c", in place. */
static void normalize_path(char *path)
{
	char *parts[PATH_MAX / 2], copy[PATH_MAX];
	size_t count = 0, used = 0;
	bool absolute = path[0] == '/';

	hp_copy_string(copy, sizeof(copy), path);
	for (char *save = NULL, *part = strtok_r(copy, "/", &save); part;
	     part = strtok_r(NULL, "/", &save)) {
		if (!strcmp(part, "."))
			continue;
		if (!strcmp(part, "..") && count > 0 && strcmp(parts[count - 1], "..") != 0)
			count--;
		else if (count < HP_ARRAY_SIZE(parts))
			parts[count++] = part;
	}
	path[0] = '\0';
	for (size_t i = 0; i < count && used < PATH_MAX; i++)
		used += (size_t)snprintf(path + used, PATH_MAX - used, "%s%s",
					 i || absolute ? "/" : "", parts[i]);
}

struct source_paths {
	size_t count;
	char **paths;
};

static int source_of_unit(Dwarf_Die *unit, void *context)
{
	struct source_paths *sources = context;
	Dwarf_Attribute attribute;
	const char *name = dwarf_formstring(dwarf_attr(unit, DW_AT_name, &attribute));
	const char *directory = dwarf_formstring(dwarf_attr(unit, DW_AT_comp_dir, &attribute));
	char path[PATH_MAX], **larger;

	if (!name || sources->count >= BUILD_SOURCES_MAX)
		return HP_OK;
	if (name[0] == '/' || !directory)
		hp_copy_string(path, sizeof(path), name);
	else if ((size_t)snprintf(path, sizeof(path), "%s/%s", directory, name) >= sizeof(path))
		return HP_OK;
	normalize_path(path);
	larger = realloc(sources->paths, (sources->count + 1) * sizeof(*larger));
	if (!larger)
		return HP_FAILED;
	sources->paths = larger;
	if (!(larger[sources->count] = strdup(path)))
		return HP_FAILED;
	sources->count++;
	return HP_OK;
}

int build_dwarf_source_paths(const char *binary, char ***paths, size_t *count,
			     struct hp_error *error)
{
	struct source_paths sources = { 0, NULL };
	int status = each_unit(binary, source_of_unit, &sources);

	*paths = sources.paths;
	*count = sources.count;
	if (status != HP_OK)
		return hp_fail(error, HP_FAILED, "out of memory reading the sources of %s", binary);
	return HP_OK;
}

