/* build_match.c - is --compile the command the binary was built with?  The
 * original sources compiled with it alone must give functions of the very
 * sizes the binary's symbol table records.  Other options (another -O
 * level, another compiler) inline and lay out code differently, and a patch
 * planned on other code than the running one can leave callers running the
 * old code, or expect functions the binary does not have. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "build/build.h"

struct size_match {
	size_t compared, differing;
	char example[HP_TEXT_MAX];
};

static const struct hp_symbol *in_binary(const struct build_binary *binary,
					 const struct build_object *object,
					 const struct build_symbol *symbol)
{
	const char *why;

	if (GELF_ST_BIND(symbol->sym.st_info) == STB_LOCAL)
		return build_binary_find(binary, object->file, symbol->name, &why);
	return build_binary_find_global(binary, symbol->name, &why);
}

static void compare_sizes(const struct build_binary *binary, const struct build_object *object,
			  struct size_match *match)
{
	for (size_t i = 1; i < object->symbol_count; i++) {
		const struct build_symbol *symbol = &object->symbols[i];
		const struct hp_symbol *found;

		if (!build_symbol_is_function(symbol) || !build_symbol_defined(symbol) ||
		    symbol->sym.st_size == 0)
			continue;
		/* Not in the binary (folded, or only exported ones known): no
		 * evidence either way. */
		found = in_binary(binary, object, symbol);
		if (!found || found->size == 0)
			continue;
		match->compared++;
		if (found->size == symbol->sym.st_size)
			continue;
		if (match->differing++ == 0)
			snprintf(match->example, sizeof(match->example),
				 "%s: %" PRIu64 " bytes compiled, %" PRIu64 " in the binary",
				 symbol->name, (uint64_t)symbol->sym.st_size, found->size);
	}
}

/* Compiles the original source as built and compares it with the binary. */
static int match_once(const struct build_tree *tree, const char *compile, size_t index,
		      const struct build_binary *binary, struct size_match *match,
		      struct hp_error *error)
{
	struct build_object object = { .fd = -1 };
	char path[PATH_MAX + 64];
	int status = build_tree_compile(tree, compile, index, BUILD_AS_BUILT, path, sizeof(path),
					error);

	memset(match, 0, sizeof(*match));
	if (status == HP_OK)
		status = build_object_open(&object, path, tree->sources[index], error);
	if (status == HP_OK)
		compare_sizes(binary, &object, match);
	build_object_close(&object);
	return status;
}

int build_match_binary(const struct build_tree *tree, const char *compile, size_t index,
		       const struct build_binary *binary, struct hp_error *error)
{
	const char *source = tree->sources[index];
	struct size_match match, first = { 0 };
	size_t entries = tree->commands ? build_commands_count(tree->commands, source) : 1;
	int status = match_once(tree, compile, index, binary, &match, error);

	/* A database may hold several builds of one file (libtool's PIC and
	 * non-PIC objects, another program's): the binary's is the one whose
	 * code it has; the others are set aside. */
	first = match;
	while (status == HP_OK && match.differing && tree->commands) {
		build_commands_reject(tree->commands, source);
		if (!build_commands_find(tree->commands, source))
			break;
		status = match_once(tree, compile, index, binary, &match, error);
	}
	if (status != HP_OK || match.differing == 0)
		return status;
	hp_error_file(error, source);
	hp_hint(error, "give %s the very command the binary's files were compiled with "
		       "(with -g, `readelf --debug-dump=info BINARY | grep DW_AT_producer` shows "
		       "its options)", tree->commands ? "--compile-commands" : "--compile");
	return hp_fail(error, HP_MISFIT,
		       "%s does not build %s as %s was built: %zu of %zu functions differ "
		       "(%s)%s", tree->commands ? "--compile-commands" : "--compile", source,
		       binary->path, first.differing, first.compared, first.example,
		       entries > 1 ? "; no other entry for it does either" : "");
}
