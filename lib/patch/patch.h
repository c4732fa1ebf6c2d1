/* patch/patch.h - the patch shared object: its replacements, metadata and references, parsed untrusted. */
#ifndef HOTPATCH_PATCH_PATCH_H
#define HOTPATCH_PATCH_PATCH_H

#include <gelf.h>

#include "common/base.h"
#include "symbols/symbols.h"

/* ---- patch_file.c: the patch shared object, read before anything else ---- */
struct hp_patch_replacement {
	char object[128];
	char function[128];
	char file[128];			/* source file of a file-local function, or "" */
	uint64_t replacement_vaddr;	/* file address in the patch */
	uint64_t replacement_size;	/* 0 when the patch has no symbol for it */
};

/* A place in the patch the dynamic linker left for a symbol of the target:
 * a GOT entry (global data, jump slot: the address) or a pointer in code
 * or data (absolute 64-bit: the address plus `addend`); or a field of code
 * a .hotpatch.relocations record names (a thread-local variable's offset
 * from the thread pointer, plus `addend`). */
struct hp_reference_site {
	uint64_t vaddr;		/* file address in the patch: 8 bytes, or a
				 * field's relocation_field_size */
	int64_t addend;
	/* The relocation type; its kind (arch.h) says what goes there: an
	 * address, or for a thread-local variable its module id, its offset
	 * in the module's block or its offset from the thread pointer. */
	unsigned type;
};

/* The thread-local storage module of an object of the target, as a
 * reference to one of its thread-local variables needs it (target_tls.c). */
struct hp_tls_module {
	uint64_t id;		/* the dynamic linker's module id (l_tls_modid) */
	bool in_static_block;	/* at a fixed offset from every thread's pointer */
	uint64_t static_offset;	/* then: thread pointer - block start (l_tls_offset) */
};

/* A variable or function of the target the patch uses (HOTPATCH_SYMBOL). */
struct hp_patch_reference {
	char object[128];
	char file[128];
	char symbol[128];
	char alias[128];	/* the patch's undefined symbol */
	size_t site_count;
	struct hp_reference_site *sites;
	uint64_t address;	/* resolved in the target; 0 until then */
	bool thread_local;	/* then `address` is its offset in the TLS block */
	struct hp_tls_module module;	/* and these its module's facts */
};

/* The build-id an object of the target must have (HOTPATCH_BUILD_ID). */
struct hp_patch_pin {
	char object[128];
	char build_id[136];	/* lower-case hex */
};

/* A function a fix changed (HOTPATCH_FIX). */
struct hp_patch_fix {
	char object[128];
	char file[128];		/* "" matches any */
	char function[128];
	char fix[64];
};

/* The hooks' kinds are HOTPATCH_HOOK_PRE_APPLY (1) to _POST_REVERT (4). */
#define HP_HOOK_KINDS 5

#define HP_DESCRIPTION_MAX 224
#define HP_IDS_MAX 256

/* A patch's path as resolved, in the file and in its record. */
#define HP_STATE_PATH_MAX 4096

struct hp_patch_file {
	char path[HP_TEXT_MAX];	/* as given */
	char absolute_path[HP_STATE_PATH_MAX];	/* as resolved when opened */
	uint8_t sha256[32];	/* of bytes */
	char name[HP_PATCH_NAME_MAX];
	char description[HP_DESCRIPTION_MAX];
	char ids[HP_IDS_MAX];	/* HOTPATCH_ID values, space separated */
	unsigned char *bytes;	/* the exact bytes checked, later loaded */
	size_t size;
	size_t count;
	struct hp_patch_replacement *replacements;
	size_t reference_count;
	struct hp_patch_reference *references;
	size_t pin_count;
	struct hp_patch_pin *pins;
	bool cumulative;	/* HOTPATCH_CUMULATIVE: takes over every older patch */
	size_t fix_count;
	struct hp_patch_fix *fixes;	/* what each fix changed */
	char fix_ids[HP_FIXES_MAX];	/* every fix tagged, sorted, space separated */
	char in_effect[HP_FIXES_MAX];	/* after patch_fixes_exclude: those kept */
	char excluded[HP_FIXES_MAX];	/* and those left out */
	uint64_t hooks[HP_HOOK_KINDS];	/* file address of each hook (HOTPATCH_HOOK_...), 0: none */
};

/* Parses bytes already in memory; takes ownership of nothing. */
int patch_file_parse(struct hp_patch_file *patch, struct hp_error *error) HP_MUST_CHECK;
void patch_file_release(struct hp_patch_file *patch);
bool patch_name_is_valid(const char *name);
/* The name a patch has when it declares none: its file name without ".so",
 * other characters than letters, digits, '.', '_' and '-' made '_'. */
void patch_default_name(const char *path, char *name, size_t size);

/* ---- patch_fixes.c: which fix changed which function, and exclusions ---- */
/* Reads .hotpatch.fixes (bounded, untrusted). */
int patch_fixes_read(Elf *elf, struct hp_patch_file *patch, struct hp_error *error) HP_MUST_CHECK;
/* Leaves out the replacements that only the `count` fixes of `excluded`
 * changed; refuses a fix the patch does not have, a function that an
 * excluded and a kept fix both changed (naming both and the function), and
 * an exclusion that leaves nothing to replace.  Fills in_effect and
 * excluded (also without exclusions). */
int patch_fixes_exclude(struct hp_patch_file *patch, const char *const *excluded, size_t count,
			struct hp_error *error) HP_MUST_CHECK;
void patch_fixes_release(struct hp_patch_file *patch);
/* A fix id as a record or an option may give it: printable, no space or
 * '=', not empty, shorter than 64. */
bool patch_fix_id_is_valid(const char *id);

/* ---- patch_hooks.c: the patch author's hooks (HOTPATCH_PRE_APPLY ...) ---- */
/* Reads .hotpatch.hooks: at most one hook of each kind, each code of the patch. */
int patch_hooks_read(Elf *elf, struct hp_patch_file *patch, struct hp_error *error) HP_MUST_CHECK;
/* "pre-apply", ... for a kind. */
const char *patch_hook_name(unsigned kind);

/* ---- patch_elf.c: where things lie in the patch object ---- */
Elf_Scn *patch_find_section(Elf *elf, const char *name, GElf_Shdr *header);
/* [address, address + length) lies in one loaded segment of the patch: an
 * executable one's file bytes when `code`, else any one's memory. */
bool patch_in_segment(Elf *elf, uint64_t address, uint64_t length, bool code);
/* The value the dynamic linker will store at `where` (a file address of the
 * patch): a relative relocation's, or an absolute one's against a defined
 * symbol; a pointer in a record. */
bool patch_relocated_value(Elf *elf, uint64_t where, uint64_t *value);

/* ---- patch_references.c: the target's symbols and build-ids a patch needs ---- */
/* Reads .hotpatch.build_id, .hotpatch.symbols and the relocations that
 * leave a place for each declared symbol. */
int patch_references_read(Elf *elf, struct hp_patch_file *patch,
			  struct hp_error *error) HP_MUST_CHECK;
void patch_references_release(struct hp_patch_file *patch);

#endif
