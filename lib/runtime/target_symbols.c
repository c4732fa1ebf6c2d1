/* target_symbols.c - names in a target's objects: the one function or
 * variable a name (and, for file-local names, a source file) means, exported
 * functions for remote calls, the function at an address for backtraces. */
#include <elf.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/target.h"
#include "common/base.h"
#include "common/trusted_files.h"
#include "symbols/symbols.h"

/* A name the stripped object lacks: now debuginfod is worth a wait. */
static bool fetch_debug_symbols(struct hp_target *target, struct hp_object *object)
{
	struct trust_owners owners;

	if (object->elf.has_symtab)
		return false;
	trust_owners_of_target(target->pid, &owners);
	object->debug_file = debug_file_fetch(&object->elf, &owners);
	return object->debug_file;
}

static bool symbol_is_function(const struct hp_symbol *symbol)
{
	return symbol->type == STT_FUNC || symbol->type == STT_GNU_IFUNC;
}

static void list_definitions(const struct hp_object *object, const char *name, bool functions,
			     char *text, size_t size)
{
	size_t used = 0;

	text[0] = '\0';
	for (size_t i = 0; i < object->elf.symbol_count && used + 1 < size; i++) {
		const struct hp_symbol *symbol = &object->elf.symbols[i];
		const char *file = elf_symbol_file(&object->elf, symbol);
		int written;

		if (strcmp(symbol->name, name) != 0 || symbol->dynamic ||
		    (functions && !symbol_is_function(symbol)))
			continue;
		written = snprintf(text + used, size - used, "%s%s", used ? ", " : "",
				   elf_symbol_is_global(symbol) ? "global" : hp_base_name(file));
		if (written < 0)
			break;
		used += (size_t)written;
	}
}

/* The one definition of `name` in `object`.  With `file`, a file-local one
 * of that source file, else a global (what the name means inside that
 * file); without, the only one (aliases at one address count once). */
static int choose_symbol(struct hp_target *target, struct hp_object *object, const char *name,
			 const char *file, bool functions, const struct hp_symbol **chosen,
			 struct hp_error *error)
{
	size_t distinct = elf_symbol_choose(&object->elf, name, file, functions, chosen);
	char where[HP_TEXT_MAX];

	if (!*chosen && fetch_debug_symbols(target, object))
		distinct = elf_symbol_choose(&object->elf, name, file, functions, chosen);
	hp_error_function(error, name);
	hp_error_file(error, object->path);
	if (!*chosen) {
		char debug[HP_PATH_MAX];
		struct trust_owners owners;

		if (!object->elf.has_symtab && object->elf.build_id_size < 2) {
			hp_hint(error, "%s is stripped and has no build-id to match a debug file: run an unstripped build",
				hp_base_name(object->path));
		} else if (!object->elf.has_symtab) {
			debug_file_default_path(&object->elf, debug, sizeof(debug));
			hp_hint(error,
				"%s is stripped: install its debug file (%s) or name it with --debug-file or --debug-dir",
				hp_base_name(object->path), debug);
			trust_owners_of_target(target->pid, &owners);
			debug_file_describe_search(&object->elf, hp_base_name(object->path),
						   &owners, error);
		} else {
			hp_hint(error, "check the name%s", file[0] ? " and the source file" : "");
		}
		return hp_fail_as(error, HP_KIND_MISSING_SYMBOL, "no %s %s%s%s in %s of pid %d",
			       functions ? "function" : "symbol", name, file[0] ? " of " : "", file,
			       object->path, (int)target->pid);
	}
	if (distinct > 1) {
		list_definitions(object, name, functions, where, sizeof(where));
		hp_hint(error, "name the source file that defines it (HOTPATCH_%s_FROM)",
			functions ? "REPLACE" : "SYMBOL");
		return hp_fail(error, HP_MISFIT, "%s is ambiguous in %s: %zu definitions (%s)", name,
			       object->path, distinct, where);
	}
	if ((*chosen)->type == STT_GNU_IFUNC)
		return hp_fail(error, HP_MISFIT,
			       "%s in %s is an indirect function (ifunc); %s the implementation it selects",
			       name, object->path, functions ? "patch" : "use");
	/* Found: the names were for a failure, which later steps must not inherit. */
	error->function[0] = '\0';
	error->file[0] = '\0';
	return HP_OK;
}

/* The object's symbols read (once), then the one `name` (of `file`) means. */
static int load_and_choose(struct hp_target *target, struct hp_object *object, const char *name,
			   const char *file, bool functions, const struct hp_symbol **chosen,
			   struct hp_error *error)
{
	int status = target_load_object(target, object, error);

	return status == HP_OK ? choose_symbol(target, object, name, file, functions, chosen, error)
			       : status;
}

int target_find_function(struct hp_target *target, struct hp_object *object, const char *name,
			 const char *file, uint64_t *address, uint64_t *size,
			 struct hp_error *error)
{
	const struct hp_symbol *chosen = NULL;
	int status = load_and_choose(target, object, name, file, true, &chosen, error);

	if (status != HP_OK)
		return status;
	if (chosen->size == 0)
		return hp_fail(error, HP_MISFIT, "%s in %s has no size in the symbol table", name,
			       object->path);
	*address = object->bias + chosen->value;
	*size = chosen->size;
	return HP_OK;
}

int target_find_symbol(struct hp_target *target, struct hp_object *object, const char *name,
		       const char *file, uint64_t *address, struct hp_error *error)
{
	const struct hp_symbol *chosen = NULL;
	int status = load_and_choose(target, object, name, file, false, &chosen, error);

	if (status != HP_OK)
		return status;
	if (chosen->type == STT_TLS)
		return hp_fail(error, HP_MISFIT,
			       "%s in %s is thread-local: a patch cannot use it by address", name,
			       object->path);
	if (chosen->absolute)
		return hp_fail(error, HP_MISFIT, "%s in %s is an absolute value, not an address",
			       name, object->path);
	*address = object->bias + chosen->value;
	return HP_OK;
}

int target_find_thread_local(struct hp_target *target, struct hp_object *object, const char *name,
			     const char *file, bool *thread_local, uint64_t *offset,
			     struct hp_error *error)
{
	const struct hp_symbol *chosen = NULL;
	int status = load_and_choose(target, object, name, file, false, &chosen, error);

	if (status != HP_OK)
		return status;
	*thread_local = chosen->type == STT_TLS;
	*offset = chosen->value;
	return HP_OK;
}

static bool find_export_in(struct hp_target *target, struct hp_object *object,
			   const char *name, uint64_t *address, struct hp_error *error)
{
	if (target_load_object(target, object, error) != HP_OK)
		return false;
	for (size_t i = 0; i < object->elf.symbol_count; i++) {
		const struct hp_symbol *symbol = &object->elf.symbols[i];

		if (symbol->dynamic && !symbol->hidden_version && symbol->type == STT_FUNC &&
		    symbol->bind != STB_LOCAL && strcmp(symbol->name, name) == 0) {
			*address = object->bias + symbol->value;
			return true;
		}
	}
	return false;
}

int target_find_export(struct hp_target *target, const char *name, uint64_t *address,
		       struct hp_error *error)
{
	static const char *const preferred[] = { "libc.so", "libdl.so" };

	for (size_t p = 0; p < HP_ARRAY_SIZE(preferred); p++)
		for (size_t i = 0; i < target->object_count; i++)
			if (elf_file_name_matches(preferred[p],
						     hp_base_name(target->objects[i].path)) &&
			    find_export_in(target, &target->objects[i], name, address, error))
				return HP_OK;
	for (size_t i = 0; i < target->object_count; i++)
		if (find_export_in(target, &target->objects[i], name, address, error))
			return HP_OK;
	hp_error_function(error, name);
	hp_hint(error, "hotpatch needs a dynamically linked target using glibc");
	return hp_fail(error, HP_MISFIT, "pid %d has no %s (statically linked?)", (int)target->pid,
		       name);
}

const char *target_function_at(struct hp_target *target, uint64_t address,
			       struct hp_object **object, uint64_t *offset)
{
	struct hp_error ignored = { 0 };
	const struct hp_symbol *best = NULL;

	*object = target_object_at(target, address);
	if (!*object || target_load_object(target, *object, &ignored) != HP_OK)
		return NULL;
	for (size_t i = 0; i < (*object)->elf.symbol_count; i++) {
		const struct hp_symbol *symbol = &(*object)->elf.symbols[i];
		uint64_t start = (*object)->bias + symbol->value;

		if ((symbol->type == STT_FUNC || symbol->type == STT_GNU_IFUNC) && address >= start &&
		    address < start + symbol->size)
			best = symbol;
	}
	if (best && offset)
		*offset = address - (*object)->bias - best->value;
	return best ? best->name : NULL;
}

void target_describe_address(struct hp_target *target, uint64_t address, char *text, size_t size)
{
	struct hp_object *object = NULL;
	uint64_t offset = 0;
	const char *name = target_function_at(target, address, &object, &offset);

	if (name)
		snprintf(text, size, "%s+0x%" PRIx64 " (%s)", name, offset, hp_base_name(object->path));
	else if (object)
		snprintf(text, size, "0x%" PRIx64 " (%s)", address, hp_base_name(object->path));
	else
		snprintf(text, size, "0x%" PRIx64, address);
}
