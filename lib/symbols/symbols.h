/* symbols/symbols.h - an ELF object's symbols and build-id (libelf), and its debug file. */
#ifndef HOTPATCH_SYMBOLS_SYMBOLS_H
#define HOTPATCH_SYMBOLS_SYMBOLS_H

#include <gelf.h>

#include "common/base.h"
#include "common/trusted_files.h"

/* ---- elf_symbols.c: one loaded object's ELF facts, read with libelf ---- */
struct hp_symbol {
	char *name;
	uint64_t value;		/* file address (st_value) */
	uint64_t size;
	unsigned char bind, type;
	bool dynamic;		/* from .dynsym */
	bool hidden_version;	/* a non-default symbol version */
	bool absolute;		/* SHN_ABS: not an address in the object */
	uint32_t file;		/* local symbols: 1 + index in files[]; 0 when unknown */
};

struct hp_elf_info {
	uint16_t type;		/* ET_EXEC or ET_DYN */
	uint64_t first_load_vaddr;	/* p_vaddr of the first PT_LOAD, page aligned */
	char *soname;		/* DT_SONAME or NULL */
	unsigned char build_id[64];
	size_t build_id_size;
	bool has_symtab;	/* a full symbol table, file-local symbols included */
	size_t symbol_count;
	struct hp_symbol *symbols;
	size_t file_count;
	char **files;		/* source file names (STT_FILE) */
};

/* Reads an ELF object from an open descriptor; bounded against hostile files. */
int elf_info_read_fd(int fd, const char *label, struct hp_elf_info *info,
		     struct hp_error *error) HP_MUST_CHECK;
int elf_info_read_memory(const void *bytes, size_t size, const char *label,
			 struct hp_elf_info *info, struct hp_error *error) HP_MUST_CHECK;
/* The GNU build-id note's bytes (at most `capacity`) into `id`; its size,
 * or 0 when there is none. */
size_t elf_build_id(Elf *elf, unsigned char *id, size_t capacity);
/* Moves every symbol (and source file name) of `from` into `info`. */
int elf_info_take_symbols(struct hp_elf_info *info, struct hp_elf_info *from,
			  struct hp_error *error) HP_MUST_CHECK;
/* The source file that defines a local symbol, or NULL. */
const char *elf_symbol_file(const struct hp_elf_info *info, const struct hp_symbol *symbol);
/* A global of the program: exported, or made local by the linker. */
bool elf_symbol_is_global(const struct hp_symbol *symbol);
/* Whether `file` (from a symbol table) is the source file `wanted`. */
bool elf_same_source_file(const char *wanted, const char *file);
/* What `name` means, the rule both apply and build follow: with a `file`,
 * a file-local symbol of that source file, else a global (what the name
 * means inside that file); with "", any definition; with NULL, globals
 * only.  Functions only when `functions`.  Returns how many addresses the
 * name has (aliases at one address count once): 1 is an answer, in
 * *chosen (the largest at that address); 0 is none; more is ambiguous. */
size_t elf_symbol_choose(const struct hp_elf_info *info, const char *name, const char *file,
			 bool functions, const struct hp_symbol **chosen);
void elf_info_release(struct hp_elf_info *info);
/* `file_name` is `wanted`, or `wanted` followed by a version ("libfoo.so"
 * matches "libfoo.so.1.2"). */
bool elf_file_name_matches(const char *wanted, const char *file_name);

/* ---- debug_download.c: a debug file from debuginfod ---- */
/* A descriptor on the debug file of `build_id` downloaded into debuginfod's
 * cache (*path, malloc'd, names it), or -errno: -ENOTSUP where this build
 * never downloads.  `stopped`: the deadline or `interrupted` ended it. */
int debug_download(const unsigned char *build_id, size_t size, double deadline,
		   volatile const int *interrupted, char **path, bool *stopped);

/* ---- debug_file.c: a stripped object's symbols from its debug file ---- */
/* Where Debian installs the debug file of the object `info` describes. */
void debug_file_default_path(const struct hp_elf_info *info, char *path, size_t size);
/* Adds its symbols when `info` has no .symtab and a local debug file
 * (--debug-file, --debug-dir, /etc/hotpatch/debug-dirs, /usr/lib/debug) is
 * trusted by `owners` and of the same build-id; `name` is the object's file
 * name for DIR/NAME.debug, or NULL.  True when it did. */
bool debug_file_find(struct hp_elf_info *info, const char *name,
		     const struct trust_owners *owners);
/* The same from the debuginfod servers of DEBUGINFOD_URLS, once per
 * build-id and command, bounded by the command's timeout. */
bool debug_file_fetch(struct hp_elf_info *info, const struct trust_owners *owners);
/* debug_file_find, then debug_file_fetch. */
bool debug_file_take_symbols(struct hp_elf_info *info, const struct trust_owners *owners);
/* Appends to error->detail every place looked at and why each was not used. */
void debug_file_describe_search(const struct hp_elf_info *info, const char *name,
				const struct trust_owners *owners, struct hp_error *error);

#endif
