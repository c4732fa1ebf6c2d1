/* build_plan.c - what the patch made from a diff keeps, replaces and
 * borrows.  Changed functions that the binary has are replaced; new ones
 * and what they need that the binary may lack (compiler clones, constants,
 * static functions inlined everywhere) are copied; every other function and
 * every variable they use is the binary's own, reached through an alias
 * that the apply side fills in.  Each of those is looked up in the binary
 * now, so a patch that cannot resolve fails here rather than at apply. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "build/build.h"
#include "arch/arch.h"
#include "hotpatch.h"

/* Sections still to look through: (unit, section) pairs. */
struct worklist {
	size_t count, capacity;
	size_t (*items)[2];
};

static int keep(struct build_plan *plan, struct worklist *work, size_t unit, size_t section,
		struct hp_error *error)
{
	struct build_unit *u = &plan->units[unit];

	if (section == 0 || section >= u->fixed.section_count || u->kept[section])
		return HP_OK;
	if (!(u->fixed.sections[section].header.sh_flags & SHF_ALLOC))
		return HP_OK;
	if (work->count == work->capacity) {
		size_t capacity = work->capacity ? 2 * work->capacity : 64;
		size_t (*items)[2] = realloc(work->items, capacity * sizeof(*items));

		if (!items)
			return hp_fail(error, HP_FAILED, "out of memory planning the patch");
		work->items = items;
		work->capacity = capacity;
	}
	u->kept[section] = true;
	work->items[work->count][0] = unit;
	work->items[work->count][1] = section;
	work->count++;
	return HP_OK;
}

static bool is_local(const struct build_symbol *symbol)
{
	return GELF_ST_BIND(symbol->sym.st_info) == STB_LOCAL;
}

/* The binary's symbol for `symbol` of a unit, and the source file to record
 * so that the apply side finds the same one: a file-local symbol by its
 * file; a global among the globals only (a static of another file with
 * that name is not it), by name alone when that is unambiguous, else
 * qualified by our file (which has no local of that name). */
static const struct hp_symbol *resolve(const struct build_binary *binary,
						 const struct build_unit *unit,
						 const struct build_symbol *symbol,
						 const char **file, const char **why)
{
	const struct hp_symbol *found;
	const char *ignored;

	*file = unit->fixed.file;
	if (is_local(symbol))
		return build_binary_find(binary, *file, symbol->name, why);
	found = build_binary_find_global(binary, symbol->name, why);
	if (found && build_binary_find(binary, "", symbol->name, &ignored) == found)
		*file = "";
	return found;
}

static int add_alias(struct build_plan *plan, struct build_unit *unit, size_t symbol,
		     const char *file, const struct hp_symbol *found,
		     struct hp_error *error)
{
	struct build_alias *aliases;

	if (unit->alias[symbol] >= 0)
		return HP_OK;
	for (size_t i = 0; i < plan->alias_count; i++)
		if (!strcmp(plan->aliases[i].file, file) && !strcmp(plan->aliases[i].symbol, found->name)) {
			unit->alias[symbol] = (long)i;
			return HP_OK;
		}
	if (strlen(found->name) >= HOTPATCH_NAME_MAX || strlen(file) >= HOTPATCH_NAME_MAX)
		return hp_fail(error, HP_MISFIT, "the name '%s' is too long for a patch record",
			       found->name);
	aliases = realloc(plan->aliases, (plan->alias_count + 1) * sizeof(*aliases));
	if (!aliases)
		return hp_fail(error, HP_FAILED, "out of memory planning the patch");
	plan->aliases = aliases;
	hp_copy_string(aliases[plan->alias_count].file, HP_TEXT_MAX, file);
	hp_copy_string(aliases[plan->alias_count].symbol, HP_TEXT_MAX, found->name);
	snprintf(aliases[plan->alias_count].alias, sizeof(aliases[0].alias), "__hotpatch_ref_%zu",
		 plan->alias_count);
	unit->alias[symbol] = (long)plan->alias_count++;
	return HP_OK;
}

static bool is_new_variable(const struct build_unit *unit, size_t symbol)
{
	return !unit->has_orig || build_find_variable(&unit->orig, &unit->fixed, symbol) < 0;
}

/* A kept function or variable of another unit that defines `name`. */
static bool defined_elsewhere(struct build_plan *plan, const char *name, size_t *unit,
			      size_t *symbol)
{
	for (size_t u = 0; u < plan->unit_count; u++) {
		const struct build_object *object = &plan->units[u].fixed;

		for (size_t i = 1; i < object->symbol_count; i++) {
			const struct build_symbol *s = &object->symbols[i];

			if (is_local(s) || !build_symbol_defined(s) || strcmp(s->name, name) != 0)
				continue;
			/* Only what the patch carries anyway: changed or new code, new
			 * constants.  The binary's own variables are never copied. */
			if (build_symbol_is_function(s) ? plan->units[u].fate[i] != BUILD_CHANGED &&
								  plan->units[u].fate[i] != BUILD_NEW
							: !is_new_variable(&plan->units[u], i))
				continue;
			*unit = u;
			*symbol = i;
			return true;
		}
	}
	return false;
}

/* A variable the fix adds goes into the patch, initialised as the source
 * says, when the patch is loaded: said once, since its value starts afresh
 * in each process and goes with a revert.  A global of that name in the
 * binary is state the fix moved from another file, not new state. */
static int keep_new_variable(struct build_plan *plan, struct worklist *work,
			     const struct build_binary *binary, size_t unit_index, size_t symbol,
			     struct hp_error *error)
{
	struct build_unit *unit = &plan->units[unit_index];
	const struct build_symbol *variable = &unit->fixed.symbols[symbol];
	size_t section = variable->sym.st_shndx;
	const struct hp_symbol *found = NULL;
	char base[HP_TEXT_MAX], text[2 * HP_TEXT_MAX];
	const char *why;

	if (section < unit->fixed.section_count && unit->kept[section])
		return HP_OK;
	build_base_name(variable->name, base, sizeof(base));
	if (!is_local(variable))
		found = build_binary_find_global(binary, variable->name, &why);
	if (build_section_writable(&unit->fixed.sections[section]) && found &&
	    found->type != STT_FUNC && found->type != STT_GNU_IFUNC) {
		hp_error_function(error, variable->name);
		hp_error_file(error, unit->fixed.source);
		hp_hint(error, "a patch cannot move a variable between files: its state stays "
			       "where the running program has it");
		return hp_fail(error, HP_MISFIT,
			       "the fix defines '%s' in %s, but %s already has a variable '%s': "
			       "moved state, not a new variable",
			       variable->name, unit->fixed.source, binary->path, variable->name);
	}
	if (build_section_writable(&unit->fixed.sections[section])) {
		snprintf(text, sizeof(text),
			 "%.96s (%.96s) is a new variable: the patch holds it, as initialised, from "
			 "when it is applied; its value is lost when the patch is reverted",
			 base, unit->fixed.source);
		if (build_result_line(plan->result, HP_BUILD_WARNING, base, unit->fixed.source, text))
			return hp_fail(error, HP_FAILED, "out of memory planning the patch");
	}
	return keep(plan, work, unit_index, section, error);
}

static int refuse_unresolved(const struct build_binary *binary, const struct build_unit *unit,
			     const struct build_symbol *symbol, const char *why,
			     struct hp_error *error)
{
	hp_error_function(error, symbol->name);
	hp_error_file(error, unit->fixed.source);
	hp_hint(error, "build against the very binary the process runs, with its symbol table "
		       "(or its debug file in /usr/lib/debug/.build-id)");
	return hp_fail(error, HP_MISFIT, "cannot resolve '%s' (%s) in %s: %s", symbol->name,
		       unit->fixed.source, binary->path, why);
}

/* What kept code can reach in the binary through an alias that apply
 * fills: an address (the 64-bit absolute references of -mcmodel=large), a
 * function's start by a direct call or jump (arm64, where -mcmodel=large
 * leaves calls direct: the link makes a PLT entry and its GOT place), or a
 * thread-local variable at its offset from the thread pointer, the same
 * in every thread (a field of local-exec code, recorded for apply by
 * build_rewrite.c; a GOT entry of initial-exec code, made by the link). */
static bool redirectable(const struct build_symbol *symbol, const struct hp_symbol *found,
			 const struct build_reloc *reloc, const struct build_target *target)
{
	bool thread_local = GELF_ST_TYPE(symbol->sym.st_info) == STT_TLS;
	enum hp_relocation_kind kind = relocation_kind(reloc->type);

	if (thread_local != (found->type == STT_TLS))
		return false;
	if (thread_local)
		return kind == HP_RELOCATION_TLS_STATIC_FIELD || kind == HP_RELOCATION_TLS_STATIC_GOT;
	/* A PLT entry leads to its symbol's start, never into it. */
	if (kind == HP_RELOCATION_CALL)
		return target->offset == 0 &&
		       (found->type == STT_FUNC || found->type == STT_GNU_IFUNC);
	return kind == HP_RELOCATION_ABSOLUTE64;
}

/* One reference of kept code: to copy, to borrow from the binary, or to
 * leave to the dynamic linker (a library's symbol). */
static int follow(struct build_plan *plan, struct worklist *work, const struct build_binary *binary,
		  size_t unit_index, const struct build_reloc *reloc, const char *from,
		  struct hp_error *error)
{
	struct build_unit *unit = &plan->units[unit_index];
	const struct build_object *object = &unit->fixed;
	const struct hp_symbol *found = NULL;
	const struct build_symbol *symbol;
	struct build_target target;
	const char *file = "", *why = "";
	size_t other_unit, other_symbol;

	build_object_target(object, reloc->symbol, reloc->addend, &target);
	if (target.symbol < 0)
		return keep(plan, work, unit_index, target.section, error);
	symbol = &object->symbols[target.symbol];
	if (build_symbol_defined(symbol)) {
		bool function = build_symbol_is_function(symbol);
		bool writable = build_section_writable(&object->sections[symbol->sym.st_shndx]);

		if (function && (build_name_is_clone(symbol->name) ||
				 unit->fate[target.symbol] != BUILD_UNCHANGED))
			return keep(plan, work, unit_index, symbol->sym.st_shndx, error);
		if (!function && is_new_variable(unit, (size_t)target.symbol))
			return keep_new_variable(plan, work, binary, unit_index,
						 (size_t)target.symbol, error);
		found = resolve(binary, unit, symbol, &file, &why);
		/* Code and constants the binary lacks (inlined, folded) are copied:
		 * the same bytes do the same thing.  State cannot be. */
		if (!found && (function || !writable))
			return keep(plan, work, unit_index, symbol->sym.st_shndx, error);
		if (!found)
			return refuse_unresolved(binary, unit, symbol, why, error);
	} else {
		if (defined_elsewhere(plan, symbol->name, &other_unit, &other_symbol)) {
			const struct build_symbol *other = &plan->units[other_unit].fixed.symbols[other_symbol];

			if (build_symbol_is_function(other))
				return keep(plan, work, other_unit, other->sym.st_shndx, error);
			return keep_new_variable(plan, work, binary, other_unit, other_symbol, error);
		}
		found = resolve(binary, unit, symbol, &file, &why);
		if (!found)
			return HP_OK;	/* a library's: the dynamic linker binds it */
	}
	if (!redirectable(symbol, found, reloc, &target)) {
		hp_error_function(error, from);
		hp_error_file(error, object->source);
		hp_hint(error, "hotpatch build compiles with -fno-pic " HP_BUILD_CODE_MODEL "; keep flags "
			       "that change how code reaches variables out of --compile");
		return hp_fail(error, HP_MISFIT,
			       "'%s' (%s) refers to '%s' in a way a patch cannot redirect "
			       "(relocation type %u%s)",
			       from, object->source, symbol->name, reloc->type,
			       found->type == STT_TLS ? ", thread-local" : "");
	}
	return add_alias(plan, unit, (size_t)target.symbol, file, found, error);
}

static const char *function_at(const struct build_object *object, size_t section)
{
	for (size_t i = 1; i < object->symbol_count; i++)
		if (object->symbols[i].sym.st_shndx == section &&
		    build_symbol_is_function(&object->symbols[i]))
			return object->symbols[i].name;
	return object->sections[section].name;
}

static int close_over(struct build_plan *plan, struct worklist *work,
		      const struct build_binary *binary, struct hp_error *error)
{
	int status = HP_OK;

	while (status == HP_OK && work->count > 0) {
		size_t unit = work->items[work->count - 1][0];
		size_t section = work->items[work->count - 1][1];
		const struct build_section *s = &plan->units[unit].fixed.sections[section];
		const char *from = function_at(&plan->units[unit].fixed, section);

		work->count--;
		for (size_t r = 0; status == HP_OK && r < s->reloc_count; r++)
			status = follow(plan, work, binary, unit, &s->relocs[r], from, error);
	}
	return status;
}

/* The fixed code is named for the function it replaces, as nm, gdb and
 * apply's busy reports show it: FUNCTION.hotpatch.  Two files' static
 * functions of one name are linked together, so the second is .2. */
static void name_replacement(const struct build_plan *plan, struct build_replace *replace)
{
	unsigned same = 1;

	for (size_t i = 0; i < plan->replace_count; i++)
		same += strcmp(plan->replaces[i].function, replace->function) == 0;
	if (same == 1)
		snprintf(replace->code, sizeof(replace->code), "%s.hotpatch", replace->function);
	else
		snprintf(replace->code, sizeof(replace->code), "%s.hotpatch.%u", replace->function,
			 same);
}

static int add_replace(struct build_plan *plan, size_t unit_index, size_t symbol,
		       const char *file, struct hp_error *error)
{
	const struct build_unit *unit = &plan->units[unit_index];
	struct build_replace *replaces = realloc(plan->replaces,
						 (plan->replace_count + 1) * sizeof(*replaces));
	struct build_replace *r;

	if (!replaces)
		return hp_fail(error, HP_FAILED, "out of memory planning the patch");
	plan->replaces = replaces;
	r = &replaces[plan->replace_count];
	r->object = unit_index;
	r->symbol = symbol;
	hp_copy_string(r->file, sizeof(r->file), file);
	hp_copy_string(r->function, sizeof(r->function), unit->fixed.symbols[symbol].name);
	name_replacement(plan, r);
	hp_copy_string(r->name, sizeof(r->name), r->code);
	r->thunk = false;
	r->returns = BUILD_RETURNS_NOTHING;
	unit->replace[symbol] = (long)plan->replace_count++;
	if (build_result_line(plan->result, HP_BUILD_REPLACE, r->function, unit->fixed.source, ""))
		return hp_fail(error, HP_FAILED, "out of memory planning the patch");
	return HP_OK;
}

/* apply cannot put a jump over fewer bytes: better known now. */
static int warn_short(struct build_plan *plan, const char *function, const char *file,
		      uint64_t size, struct hp_error *error)
{
	char text[2 * HP_TEXT_MAX];

	snprintf(text, sizeof(text),
		 "%.96s (%.96s) is %llu bytes long in the binary, too short for the jump "
		 "hotpatch apply writes; change its callers instead",
		 function, file, (unsigned long long)size);
	if (build_result_line(plan->result, HP_BUILD_WARNING, function, file, text))
		return hp_fail(error, HP_FAILED, "out of memory planning the patch");
	return HP_OK;
}

/* Whether another function of the original compile calls `name`. */
static bool called_in_file(const struct build_unit *unit, const char *name)
{
	const struct build_object *object = &unit->orig;

	for (size_t i = 1; unit->has_orig && i < object->section_count; i++) {
		const struct build_section *section = &object->sections[i];

		if (!(section->header.sh_flags & SHF_EXECINSTR))
			continue;
		for (size_t r = 0; r < section->reloc_count; r++) {
			struct build_target target;

			build_object_target(object, section->relocs[r].symbol, section->relocs[r].addend,
					    &target);
			if (target.symbol >= 0 && strcmp(object->symbols[target.symbol].name, name) == 0 &&
			    object->symbols[target.symbol].sym.st_shndx != i)
				return true;
		}
	}
	return false;
}

/* GCC's -fipa-ra (on from -O1) lets a caller keep values in registers its
 * callee in the same file (any file, with -flto) happens not to touch; the
 * fixed code may touch them.  Unless the old code may change every such
 * register anyway (build_registers.c), the replacement is entered through
 * a thunk that keeps every register but the result's; a signature the
 * thunk cannot forward (arguments on the stack) is refused. */
static int keep_registers(struct build_plan *plan, const struct build_unit *unit, size_t index,
			  const struct build_binary *binary, const struct hp_symbol *old,
			  struct hp_error *error)
{
	struct build_replace *replace = &plan->replaces[index];
	/* With a database, this unit's own flags: -fipa-ra lets only callers
	 * of its own compile (all of them, with -flto) rely on its registers. */
	const char *compile = plan->commands ? build_commands_text(plan->commands, unit->fixed.source)
					     : plan->compile;
	bool left_alone = true;
	int status;

	if (!compile)
		compile = "";
	if (strstr(compile, "-fno-ipa-ra") ||
	    (!strstr(compile, "-flto") && !called_in_file(unit, replace->function)))
		return HP_OK;
	status = build_registers_left_alone(binary, old, &left_alone, error);
	if (status != HP_OK || !left_alone)
		return status;
	if (!build_dwarf_simple_signature(unit, replace->function, &replace->returns)) {
		hp_error_function(error, replace->function);
		hp_error_file(error, unit->fixed.source);
		hp_hint(error, "rebuild the program with -fno-ipa-ra, or change the callers too");
		return hp_fail(error, HP_MISFIT,
			       "callers of '%s' (%s) may keep values in registers it leaves alone "
			       "(-fipa-ra), and its arguments are not all in registers, so hotpatch "
			       "cannot keep them for the fixed code",
			       replace->function, unit->fixed.source);
	}
	replace->thunk = true;
	snprintf(replace->name, sizeof(replace->name), "%s.thunk", replace->code);
	return HP_OK;
}

/* Changed functions the binary has are replaced; the others are kept. */
static int choose(struct build_plan *plan, struct worklist *work, const struct build_binary *binary,
		  size_t unit_index, struct hp_error *error)
{
	struct build_unit *unit = &plan->units[unit_index];
	int status = HP_OK;

	for (size_t i = 1; status == HP_OK && i < unit->fixed.symbol_count; i++) {
		const struct build_symbol *symbol = &unit->fixed.symbols[i];
		const struct hp_symbol *found;
		const char *file, *why;
		char text[2 * HP_TEXT_MAX];

		if (unit->fate[i] != BUILD_CHANGED && unit->fate[i] != BUILD_NEW)
			continue;
		status = keep(plan, work, unit_index, symbol->sym.st_shndx, error);
		if (status != HP_OK)
			break;
		if (unit->fate[i] == BUILD_NEW) {
			plan->new_count++;
			if (build_result_line(plan->result, HP_BUILD_NEW, symbol->name,
					      unit->fixed.source, ""))
				status = hp_fail(error, HP_FAILED, "out of memory planning the patch");
			continue;
		}
		found = resolve(binary, unit, symbol, &file, &why);
		if (found && (found->type == STT_FUNC || found->type == STT_GNU_IFUNC)) {
			status = add_replace(plan, unit_index, i, file, error);
			if (status == HP_OK)
				status = keep_registers(plan, unit, plan->replace_count - 1, binary,
							found, error);
			if (status == HP_OK && found->size && found->size < HP_JUMP_SIZE)
				status = warn_short(plan, symbol->name, unit->fixed.source, found->size,
						    error);
			continue;
		}
		snprintf(text, sizeof(text),
			 "%.96s (%.96s) changed but %.160s has no copy of its own (it is inlined "
			 "there): its callers are replaced instead",
			 symbol->name, unit->fixed.source, binary->path);
		if (build_result_line(plan->result, HP_BUILD_WARNING, symbol->name,
				      unit->fixed.source, text))
			status = hp_fail(error, HP_FAILED, "out of memory planning the patch");
	}
	return status;
}

static int allocate(struct build_unit *unit, struct hp_error *error)
{
	unit->kept = calloc(unit->fixed.section_count, sizeof(*unit->kept));
	unit->alias = malloc(unit->fixed.symbol_count * sizeof(*unit->alias));
	unit->replace = malloc(unit->fixed.symbol_count * sizeof(*unit->replace));
	if (!unit->kept || !unit->alias || !unit->replace)
		return hp_fail(error, HP_FAILED, "out of memory planning the patch");
	for (size_t i = 0; i < unit->fixed.symbol_count; i++)
		unit->alias[i] = unit->replace[i] = -1;
	return HP_OK;
}

/* Nothing to replace: say which changed function the binary lacks, if any. */
static int refuse_nothing(const struct build_plan *plan, const struct build_binary *binary,
			  struct hp_error *error)
{
	const char *changed = NULL;

	for (size_t u = 0; !changed && u < plan->unit_count; u++)
		for (size_t i = 1; !changed && i < plan->units[u].fixed.symbol_count; i++)
			if (plan->units[u].fate[i] == BUILD_CHANGED)
				changed = plan->units[u].fixed.symbols[i].name;
	if (changed && !binary->symbol_table) {
		hp_error_function(error, changed);
		hp_hint(error, "install its debug file (found by build-id in /usr/lib/debug/.build-id) "
			       "or build against the unstripped binary");
		return hp_fail(error, HP_MISFIT, "%s is stripped: the changed function %s is not "
						 "among its exported symbols", binary->path, changed);
	}
	if (changed) {
		hp_error_function(error, changed);
		hp_hint(error, "the binary has no copy of its own of %s (inlined everywhere) and its "
			       "callers did not change", changed);
		return hp_fail(error, HP_MISFIT, "the fix replaces no function of %s", binary->path);
	}
	hp_hint(error, "check that the diff changes code (not only comments) of functions the "
		       "binary has");
	return hp_fail(error, HP_MISFIT, "the fix replaces no function of %s", binary->path);
}

int build_plan_make(struct build_plan *plan, const struct build_binary *binary,
		    struct hp_error *error)
{
	struct worklist work = { 0 };
	int status = HP_OK;

	for (size_t u = 0; status == HP_OK && u < plan->unit_count; u++)
		status = allocate(&plan->units[u], error);
	for (size_t u = 0; status == HP_OK && u < plan->unit_count; u++)
		status = choose(plan, &work, binary, u, error);
	if (status == HP_OK)
		status = close_over(plan, &work, binary, error);
	if (status == HP_OK && plan->replace_count == 0)
		status = refuse_nothing(plan, binary, error);
	free(work.items);
	return status;
}

void build_plan_release(struct build_plan *plan)
{
	for (size_t u = 0; u < plan->unit_count; u++) {
		struct build_unit *unit = &plan->units[u];

		build_object_close(&unit->orig);
		build_object_close(&unit->fixed);
		free(unit->fate);
		free(unit->kept);
		free(unit->alias);
		free(unit->replace);
	}
	free(plan->units);
	free(plan->aliases);
	free(plan->replaces);
	memset(plan, 0, sizeof(*plan));
}
