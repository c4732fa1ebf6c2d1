/* build.h - the interfaces between the files of `hotpatch build` (build*.c):
 * the private tree copies and compiles, the object model read with libelf,
 * the comparison, the plan of what the patch keeps and what it borrows from
 * the binary, the rewrite of the objects and the final link. */
#ifndef HOTPATCH_BUILD_H
#define HOTPATCH_BUILD_H

#include <gelf.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/base.h"
#include "common/trusted_files.h"
#include "patch/patch.h"
#include "symbols/symbols.h"

/* ---- build_run.c: running programs, never through a shell ---- */
/* Runs argv[0] (searched in PATH) in `directory`, stdin from /dev/null, its
 * stdout and stderr collected (at most `size` - 1 bytes kept) in `output`.
 * HP_OK when it ran; *exit_status is its status (-1 when killed). */
int build_run(const char *const argv[], const char *directory, char *output, size_t size,
	      int *exit_status, struct hp_error *error) HP_MUST_CHECK;

/* ---- build_commands.c: a compilation database (compile_commands.json) ---- */
struct build_command {
	size_t word_count;
	char **words;			/* "arguments", or "command" split into words */
	char *text;			/* the words joined by spaces */
	char *file_text, *directory_text;	/* as the entry wrote them */
	char *source;			/* the file relative to the tree; NULL outside it */
	char *directory;		/* relative to the tree ("" its top); NULL outside */
	bool rejected;			/* its code is not the binary's (build_match.c) */
};

struct build_commands {
	char path[PATH_MAX];		/* the database, for messages */
	char root[PATH_MAX];		/* --source, resolved: what the entries' paths are in */
	size_t count;
	struct build_command *entries;
};

/* A program to run: argv (NULL-terminated) in `directory`. */
struct build_invocation {
	char directory[2 * PATH_MAX];
	size_t count;
	char **argv;
};

/* Reads the database at `path` (bounded in size and entries), resolving
 * its files against the tree `source`.  Release it even after a failure. */
int build_commands_load(struct build_commands *commands, const char *path, const char *source,
			struct hp_error *error) HP_MUST_CHECK;
void build_commands_release(struct build_commands *commands);
/* The entry of the source `relative` (to the tree) that is not rejected,
 * the first such in the file, or NULL. */
const struct build_command *build_commands_find(const struct build_commands *commands,
						const char *relative);
/* How many entries the database has for `relative`. */
size_t build_commands_count(const struct build_commands *commands, const char *relative);
/* Sets aside the entry build_commands_find gives for `relative`: another
 * build of the file (libtool's PIC and non-PIC ones, say) may be the
 * binary's. */
void build_commands_reject(struct build_commands *commands, const char *relative);
/* Its command joined, or NULL: what build_plan.c looks for flags in. */
const char *build_commands_text(const struct build_commands *commands, const char *relative);
/* The entry's command for `relative`, to run in its directory inside
 * `copy_root`: its own output, -c and source dropped, then `extra` (flags
 * separated by spaces) and -c SOURCE -o `object`.  No entry, or one whose
 * directory is outside the tree, is HP_MISFIT.  Release `run` always. */
int build_commands_invocation(const struct build_commands *commands, const char *relative,
			      const char *copy_root, const char *extra, const char *object,
			      struct build_invocation *run, struct hp_error *error) HP_MUST_CHECK;
void build_invocation_release(struct build_invocation *run);

/* ---- build_tree.c: the two private copies of the tree, the diff, compiles ---- */
struct build_tree {
	char root[PATH_MAX - 64];	/* mode 0700, removed by build_tree_remove */
	char orig[PATH_MAX], fixed[PATH_MAX], objects[PATH_MAX];
	size_t source_count;
	char **sources;		/* .c files to compile, relative to the tree */
	bool *in_orig;		/* the source exists in the original tree */
	struct build_commands *commands;	/* NULL: one --compile for all */
};

/* Copies `source` twice and applies `diff` to the `fixed` copy.  Each copy
 * sits at the tree's own absolute path under root/orig and root/fixed,
 * beside links to everything around the tree, so relative paths that lead
 * out of it (#include "../common/x.h", -I../include) reach the real files. */
int build_tree_prepare(struct build_tree *tree, const char *source, const char *diff,
		       struct hp_error *error) HP_MUST_CHECK;
/* Applies one more diff to the fixed copy (the next fix of several). */
int build_tree_apply_diff(struct build_tree *tree, const char *diff,
			  struct hp_error *error) HP_MUST_CHECK;
/* The .c files that differ; when anything else differs, every .c file of
 * the `binary` (hidden directories such as .git and .pc skipped): with a
 * database, those with an entry; else those whose path ends one of its
 * DWARF source paths; else (no DWARF) whose name its symbol table records.
 * A changed .c file the binary was not built from (no entry, and neither
 * its symbol table nor its DWARF names it) is refused, naming it. */
struct build_binary;
int build_tree_changed_sources(struct build_tree *tree, struct build_binary *binary,
			       struct hp_error *error) HP_MUST_CHECK;
enum build_compile {
	BUILD_ORIG,		/* the original, for the patch's comparison */
	BUILD_FIXED,		/* the fixed copy, for the comparison and the patch */
	BUILD_AS_BUILT,		/* the original as the binary was compiled */
};

/* Compiles tree->sources[index] of the copy `kind` says into `object`:
 * with `compile` in the top directory, or as tree->commands says. */
int build_tree_compile(const struct build_tree *tree, const char *compile, size_t index,
		       enum build_compile kind, char *object, size_t object_size,
		       struct hp_error *error) HP_MUST_CHECK;
/* Accepts a zeroed tree. */
void build_tree_remove(struct build_tree *tree);

/* ---- build_object.c: one relocatable object, read with libelf ---- */
struct build_reloc {
	uint64_t offset;
	uint32_t type;
	uint32_t symbol;
	int64_t addend;
};

/* An offset of a section that code or data refers to by address, or where
 * a symbol of it starts or ends: where one constant may begin. */
struct build_anchor {
	uint64_t offset;
	bool boundary;			/* a symbol's start or end: surely one */
};

struct build_section {
	const char *name;
	GElf_Shdr header;
	const unsigned char *bytes;	/* NULL for NOBITS and empty sections */
	Elf_Data *data;
	size_t rela;			/* index of the RELA section applying to it, 0 if none */
	size_t reloc_count;
	struct build_reloc *relocs;
	size_t anchor_count;		/* sorted by offset, each offset once */
	struct build_anchor *anchors;
};

struct build_symbol {
	const char *name;		/* "" when unnamed */
	GElf_Sym sym;
};

struct build_object {
	char path[PATH_MAX];
	char source[PATH_MAX];		/* relative to the tree */
	char file[HP_TEXT_MAX];		/* the STT_FILE name */
	int fd;
	Elf *elf;
	size_t symtab;			/* section index of .symtab */
	size_t section_count;
	struct build_section *sections;
	size_t symbol_count;
	struct build_symbol *symbols;
};

/* What a relocation points at, by meaning: a named symbol and an offset
 * into it, or an anonymous piece of a section. */
struct build_target {
	long symbol;			/* a named symbol, or -1 */
	size_t section;			/* when anonymous: the section */
	int64_t offset;			/* from the symbol (or section) start */
};

int build_object_open(struct build_object *object, const char *path, const char *source,
		      struct hp_error *error) HP_MUST_CHECK;
void build_object_close(struct build_object *object);
void build_object_target(const struct build_object *object, uint32_t symbol, int64_t addend,
			 struct build_target *target);
/* Whether a relocation's addend is the very offset it refers to (a
 * PC-relative one's also counts the distance to the next instruction). */
bool build_reloc_is_absolute(uint32_t type);
/* The constant of a read-only section that a reference to `offset` reads,
 * [*start, *end), as far as the object tells: from where something refers
 * (or a symbol starts) right after a NUL byte or a symbol's end, to the next
 * such place after `offset` + `reach` (what a PC-relative reference may
 * add to its addend).  Never shorter than the constant; longer when unsure. */
void build_object_piece(const struct build_object *object, size_t section, uint64_t offset,
			uint64_t reach, uint64_t *start, uint64_t *end);
bool build_symbol_defined(const struct build_symbol *symbol);
bool build_symbol_is_function(const struct build_symbol *symbol);
/* A named variable (not a compiler constant such as CSWTCH.12). */
bool build_symbol_is_variable(const struct build_symbol *symbol);
/* Compiler-made copies of functions: foo.isra.0, foo.cold, ... */
bool build_name_is_clone(const char *name);
/* "count.3" is a static local: "count", else the name itself. */
void build_base_name(const char *name, char *base, size_t size);
bool build_section_writable(const struct build_section *section);
bool build_section_is_constructor(const struct build_section *section);

/* ---- build_compare.c: what the fix changes, by meaning ---- */
enum build_fate {
	BUILD_OTHER = 0,	/* not a function, or a compiler clone */
	BUILD_UNCHANGED,
	BUILD_CHANGED,
	BUILD_NEW,
};

/* Fills fate[] (one per symbol of `fixed`) and refuses what a function-level
 * patch cannot do.  `orig` may be NULL (a new source file). */
int build_compare(const struct build_object *orig, const struct build_object *fixed,
		  unsigned char *fate, struct hp_error *error) HP_MUST_CHECK;
/* The variable of `object` that is `symbol` of `from`, or -1. */
long build_find_variable(const struct build_object *object, const struct build_object *from,
			 size_t symbol);
/* Whether two functions are equal by meaning (bytes and relocations). */
bool build_functions_equal(const struct build_object *a, size_t a_symbol,
			   const struct build_object *b, size_t b_symbol);

/* ---- build_binary.c: the binary the process runs ---- */
struct build_binary {
	char path[PATH_MAX];
	char build_id[HP_TEXT_MAX];
	bool symbol_table;	/* a .symtab (its own or its debug file's), not only exports */
	struct hp_elf_info elf;	/* its symbols, with their source files */
	size_t source_count;
	char **sources;		/* its source files' paths, from DWARF (read by
				 * build_tree_changed_sources when needed); may be none */
	bool sources_read;	/* whether `sources` was read */
};

int build_binary_open(struct build_binary *binary, const char *path,
		      struct hp_error *error) HP_MUST_CHECK;
void build_binary_close(struct build_binary *binary);
/* The apply side's rule (elf_symbol_choose): with `file`, a local of that
 * source file, else a unique global; without, the single definition.  A
 * static local (count.0) whose number differs is found by its base name.
 * Returns the symbol, or NULL (`why` says why). */
const struct hp_symbol *build_binary_find(const struct build_binary *binary, const char *file,
					  const char *name, const char **why);
/* The one global definition of `name`, or NULL. */
const struct hp_symbol *build_binary_find_global(const struct build_binary *binary,
						 const char *name, const char **why);

/* ---- build_match.c: --compile checked against the binary ---- */
/* Compiles the original tree->sources[index] with `compile` alone and
 * refuses when its functions' sizes are not the binary's. */
int build_match_binary(const struct build_tree *tree, const char *compile, size_t index,
		       const struct build_binary *binary, struct hp_error *error) HP_MUST_CHECK;

/* ---- build_registers.c: what a function of the binary leaves alone ---- */
/* Whether callers compiled with -fipa-ra could rely on `function` leaving
 * some call-clobbered register alone (true when in doubt). */
int build_registers_left_alone(const struct build_binary *binary,
			       const struct hp_symbol *function, bool *left_alone,
			       struct hp_error *error) HP_MUST_CHECK;

/* ---- build_plan.c: what the patch keeps, replaces and borrows ---- */
/* Where a function's result comes back (SysV x86-64), for simple signatures. */
enum build_return { BUILD_RETURNS_NOTHING, BUILD_RETURNS_INTEGER, BUILD_RETURNS_SSE };

struct build_alias {
	char file[HP_TEXT_MAX];		/* "" for a global */
	char symbol[HP_TEXT_MAX];	/* as the binary names it */
	char alias[64];			/* __hotpatch_ref_N */
};

struct build_replace {
	size_t object;			/* index into the objects */
	size_t symbol;
	char file[HP_TEXT_MAX];		/* "" for a global */
	char function[HP_TEXT_MAX];
	/* FUNCTION.hotpatch (.2, .3 ... for a second one of that name): the
	 * fixed code's own name, which nm, gdb and backtraces show; a dot
	 * keeps it apart from every C name. */
	char code[HP_TEXT_MAX + 24];
	char name[HP_TEXT_MAX + 32];	/* what the record names: `code`, or
					 * CODE.thunk in front of it */
	bool thunk;			/* entered through a register-keeping thunk */
	enum build_return returns;	/* what the thunk must not restore */
};

/* Per fixed object: the comparison and the decisions. */
struct build_unit {
	struct build_object orig, fixed;
	bool has_orig;
	unsigned char *fate;		/* per symbol of `fixed` */
	bool *kept;			/* per section: in the patch */
	long *alias;			/* per symbol: index into plan aliases, or -1 */
	long *replace;			/* per symbol: index into plan replaces, or -1 */
};

/* A replaced or new function and the fixes that changed it (--fix). */
struct build_fix_tag {
	char file[HP_TEXT_MAX];		/* as its record names it */
	char function[HP_TEXT_MAX];
	char source[HP_TEXT_MAX];	/* its unit's source, for the report's lines */
	char fixes[HP_FIXES_MAX];	/* space separated, in the fixes' order */
};

struct build_plan {
	size_t unit_count;
	struct build_unit *units;
	size_t alias_count;
	struct build_alias *aliases;
	size_t replace_count;
	struct build_replace *replaces;
	size_t new_count;
	const char *orig_root, *fixed_root;	/* the two tree copies */
	const char *compile;		/* the user's compile command */
	const struct build_commands *commands;	/* or the database, per unit */
	struct hp_build_result *result;	/* lines are added here */
	size_t fix_tag_count;		/* build_fixes.c's, with several fixes */
	struct build_fix_tag *fix_tags;
};

int build_plan_make(struct build_plan *plan, const struct build_binary *binary,
		    struct hp_error *error) HP_MUST_CHECK;
void build_plan_release(struct build_plan *plan);

/* ---- build_result.c: the lines of the report ---- */
int build_result_line(struct hp_build_result *result, enum hp_build_line_kind kind,
		      const char *function, const char *file, const char *text) HP_MUST_CHECK;

/* ---- build_dwarf.c: inlining and struct layouts, from -g (libdw) ---- */
#define BUILD_SOURCES_MAX 100000u
/* The source files `binary` was compiled from, as its DWARF names them
 * (compile directory and name joined, "." and ".." resolved; found in its
 * debug file too); none without debug information.  *paths is malloc'd. */
int build_dwarf_source_paths(const char *binary, char ***paths, size_t *count,
			     struct hp_error *error) HP_MUST_CHECK;
/* Refuses a struct whose layout differs between the two objects, naming
 * the member and the file (relative to the tree copies' roots) that
 * declares it. */
int build_dwarf_compare_layouts(const struct build_unit *unit, const char *orig_root,
				const char *fixed_root, struct hp_error *error) HP_MUST_CHECK;
/* Names changed functions inlined into replaced callers (on their lines)
 * and warns about those inlined into callers that were not replaced. */
int build_dwarf_inlines(struct build_plan *plan, struct hp_error *error) HP_MUST_CHECK;
/* Whether `function` of the fixed object takes its arguments in registers
 * only (at most 6 integers or pointers and 8 floating-point values, no
 * structures, no varargs) and returns nothing, one integer or pointer, or
 * one float or double: then a thunk can keep every other register. */
bool build_dwarf_simple_signature(const struct build_unit *unit, const char *function,
				  enum build_return *returns);

/* ---- build_source.c: source text, for functions that exist only inlined ---- */
/* Whether the function declared at orig_path:orig_line reads differently
 * at fixed_path:fixed_line (from that line to its closing brace). */
bool build_source_function_changed(const char *orig_path, unsigned orig_line,
				   const char *fixed_path, unsigned fixed_line);

/* ---- build_rewrite.c: a fixed object made ready for the link ---- */
int build_rewrite(const struct build_plan *plan, size_t unit, const char *path,
		  struct hp_error *error) HP_MUST_CHECK;
/* How many fields of kept code the rewrite leaves for apply to fill (a
 * .hotpatch.relocations record each), in every unit. */
size_t build_rewrite_field_count(const struct build_plan *plan);

/* ---- build_linked.c: the linked patch read back as apply reads it ---- */
/* Refuses a linked patch that apply would refuse, or whose records do not
 * name every field the rewrite left (one left empty would be used as is). */
int build_linked_check(const struct build_plan *plan, const char *linked,
		       struct hp_error *error) HP_MUST_CHECK;

/* ---- build_emit.c: the records and the link ---- */
int build_emit(const struct build_plan *plan, const struct hp_build_request *request,
	       const struct build_binary *binary, const struct build_tree *tree,
	       struct hp_error *error) HP_MUST_CHECK;

/* ---- build_fixes.c: one patch from several fixes, each function tagged ---- */
/* The two copies of the tree, with the diff or every fix's diff in order. */
int build_fixes_prepare(struct build_tree *tree, const struct hp_build_request *request,
			struct hp_error *error) HP_MUST_CHECK;
/* With several fixes: plan->fix_tags, the fixes that changed each replaced
 * and each new function (every fix for one that no single fix changed),
 * and the report's lines say so. */
int build_fixes_tag(struct build_plan *plan, const struct build_tree *tree,
		    const struct hp_build_request *request, struct hp_error *error) HP_MUST_CHECK;
/* The HOTPATCH_FIX_RECORD records, through build_emit.c's writer. */
void build_fixes_write(FILE *file, const struct build_plan *plan, const char *object,
		       void (*write_record)(FILE *file, const char *macro,
					    const char *const *values, size_t count));
void build_fixes_release(struct build_plan *plan);

/* ---- build_header.c: the <hotpatch.h> this hotpatch was built with ---- */
extern const char build_header_text[];

#endif /* HOTPATCH_BUILD_H */
