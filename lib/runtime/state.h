/* runtime/state.h - what is applied, recorded inside the target, and the patch object loaded there. */
#ifndef HOTPATCH_RUNTIME_STATE_H
#define HOTPATCH_RUNTIME_STATE_H

#include "patch/patch.h"
#include "runtime/threads.h"

/* ---- patch_state.c: what is applied, recorded inside the target ---- */
enum hp_state_status {
	HP_STATE_REMOVED = 0,
	HP_STATE_PENDING = 1,	/* recorded, jumps not (all) written */
	HP_STATE_APPLIED = 2,
};

#define HP_STATE_MAX_PAGES 64
/* The largest table of thread ids a gate mapping holds: the kernel's
 * PID_MAX_LIMIT on 64-bit. */
#define HP_GATE_TABLE_MAX (4u << 20)

struct hp_state_function {
	char object[128];
	char function[128];
	uint64_t address, size;
	uint64_t jump_address;
	uint64_t replacement, replacement_size;
	uint64_t trampoline;	/* slot address, 0 for a direct jump */
	uint8_t saved[HP_SAVED_MAX];
	uint8_t written[HP_SAVED_MAX];
	uint32_t length;
	uint32_t reserved;
};

/* What a record knows that an older hotpatch's record does not. */
enum hp_state_known {
	HP_KNOWN_APPLIED = 1u << 0,	/* applied holds the time */
	HP_KNOWN_SHA256 = 1u << 1,	/* sha256 holds the loaded bytes' hash */
	HP_KNOWN_ABSOLUTE_PATH = 1u << 2,	/* path is as resolved, not as typed */
};

/* What a record says of the patch as a whole (version 6 on). */
enum hp_state_flags {
	HP_STATE_CUMULATIVE = 1u << 0,	/* it took over every patch applied before it */
};

struct hp_state_patch {
	uint32_t record_size;
	uint32_t function_count;
	uint32_t status;
	uint32_t page_count;
	uint64_t sequence;	/* 1 for the first patch ever applied to the process */
	uint64_t applied;	/* CLOCK_REALTIME, seconds */
	uint32_t known;		/* enum hp_state_known bits */
	uint32_t reserved;
	uint8_t sha256[32];
	char name[HP_PATCH_NAME_MAX];
	char path[HP_STATE_PATH_MAX];
	char description[HP_DESCRIPTION_MAX];
	char ids[HP_IDS_MAX];
	char load_path[64];
	uint64_t handle;
	uint64_t load_bias;
	uint64_t text_start, text_end;
	uint64_t memfd_inode;
	uint64_t pages[HP_STATE_MAX_PAGES];
	/* Version 6 on (versions 4 and 5 end here): */
	char fixes[HP_FIXES_MAX];	/* the fixes in effect, space separated */
	char excluded[HP_FIXES_MAX];	/* the fixes left out (--exclude) */
	uint64_t pre_revert, post_revert;	/* its revert hooks in the target, 0: none */
	uint32_t flags;		/* enum hp_state_flags bits */
	uint32_t gate_pages;	/* pages[0] maps this many pages: gates and their table */
	struct hp_state_function functions[];
};

/* The command at work on the process, written before it changes anything
 * and cleared when it ends: found set by the next command, it names one
 * that was killed. */
struct hp_state_command {
	uint64_t pid;		/* of the hotpatch that ran it */
	uint64_t started;	/* CLOCK_REALTIME, seconds */
	char name[16];		/* "apply", "revert"; "" when none runs */
};

struct hp_state {
	uint64_t address;	/* of the state mapping in the target, 0 if none */
	uint64_t capacity;
	uint64_t generation;	/* of the header last read or written */
	uint64_t records_offset;	/* of the records in the mapping, 0 if none yet */
	uint32_t layout;	/* the version of what the target holds now */
	uint64_t stub_page;
	uint64_t next_sequence;
	struct hp_state_command running;
	size_t patch_count;
	struct hp_state_patch **patches;	/* oldest first */
};

/* Finds and validates the state mapping; an absent one is an empty state.
 * Needs no lock: a state changed while read is read again (a writer never
 * touches the records the header names, and bumps its generation). */
int patch_state_read(struct hp_memory *memory, const struct hp_maps *maps,
		     struct hp_state *state, struct hp_error *error) HP_MUST_CHECK;
/* A mapping named like the state (this one, or a leftover). */
bool patch_state_is_mapping(const struct hp_mapping *mapping);
/* A mapping named like the state that is not it (a killed command's). */
bool patch_state_is_leftover_mapping(const struct hp_state *state,
				     const struct hp_mapping *mapping);
/* The page at `address` is our stub page: a private anonymous R-X mapping
 * that starts there and holds our stub code. */
bool patch_state_stub_is_ours(struct hp_memory *memory, const struct hp_maps *maps,
			      uint64_t address);
/* Creates the state mapping and stub page through the borrowed thread. */
int patch_state_create(struct hp_state *state, struct hp_remote *remote,
		       struct hp_memory *memory, struct hp_error *error) HP_MUST_CHECK;
/* Writes header and every record (outside the blackout). */
int patch_state_write(struct hp_state *state, struct hp_memory *memory,
		      struct hp_error *error) HP_MUST_CHECK;
/* Writes one record's status word only (inside the blackout). */
int patch_state_write_status(struct hp_state *state, size_t index,
			     struct hp_memory *memory, pid_t stopped_tid,
			     struct hp_error *error) HP_MUST_CHECK;
/* Writes only the header's note of the command at work. */
int patch_state_write_running(struct hp_state *state, struct hp_memory *memory,
			      struct hp_error *error) HP_MUST_CHECK;
struct hp_state_patch *patch_state_new_patch(size_t function_count);
int patch_state_append(struct hp_state *state, struct hp_state_patch *patch,
		       struct hp_error *error) HP_MUST_CHECK;
void patch_state_remove(struct hp_state *state, size_t index);
/* How many bytes the record's page `p` maps: one page, or pages[0] of a
 * patch applied through gates, its gates and their table (bounded). */
uint64_t patch_state_page_length(const struct hp_state_patch *patch, uint32_t p);
/* How many of those bytes are code: one page, or a gate mapping's gates
 * (its table follows them). */
uint64_t patch_state_code_length(const struct hp_state_patch *patch, uint32_t p);
void patch_state_release(struct hp_state *state);
/* The generation the target's state header holds now (0 without a state);
 * false when it cannot be read. */
bool patch_state_generation(struct hp_memory *memory, const struct hp_state *state,
			    uint64_t *generation);
/* The applied record that last replaced the function at `address`, or -1. */
long patch_state_latest_for(const struct hp_state *state, uint64_t address, size_t before);

/* ---- state_text.c: a record's code in the target ---- */
enum hp_text_bytes { HP_TEXT_SAVED, HP_TEXT_WRITTEN };
/* Writes the saved (original) or written (jump) bytes of the first `count`
 * functions of a patch's record. */
int text_write_functions(struct hp_memory *memory, pid_t stopped_tid,
			 const struct hp_state_patch *patch, enum hp_text_bytes which, size_t count,
			 struct hp_error *error) HP_MUST_CHECK;

/* What a function's jump site holds now. */
enum hp_text_site {
	HP_SITE_UNPLANNED,	/* recorded before its jump was planned: nothing to read */
	HP_SITE_JUMP,		/* our jump */
	HP_SITE_ORIGINAL,	/* the bytes the jump replaces */
	HP_SITE_FOREIGN,	/* anything else: someone else changed the code */
};
int text_site_read(struct hp_memory *memory, const struct hp_state_function *function,
		   enum hp_text_site *site, struct hp_error *error) HP_MUST_CHECK;

/* ---- patch_load.c: getting the patch object into the target and out ---- */
struct hp_loaded_patch {
	uint64_t handle;
	uint64_t bias;
	uint64_t text_start, text_end;
	uint64_t inode;
	char load_path[64];
};

/* How /proc/PID/maps names a patch's memfd: "/memfd:hotpatch:NAME (deleted)". */
#define PATCH_MEMFD_PATH "/memfd:hotpatch:"
/* Where the patch object whose memfd has `inode` is mapped: its load bias
 * (the mapping at offset 0) and the span of its code; false if unmapped. */
bool patch_mapped_span(const struct hp_maps *maps, uint64_t inode, uint64_t *bias,
		       uint64_t *text_start, uint64_t *text_end);
int patch_load(struct hp_remote *remote, struct hp_target *target,
	       const struct hp_patch_file *patch, const struct hp_state *state,
	       struct hp_loaded_patch *loaded, struct hp_error *error) HP_MUST_CHECK;
int patch_unload(struct hp_remote *remote, struct hp_target *target, uint64_t handle,
		 struct hp_error *error) HP_MUST_CHECK;

/* ---- base_references.c: the patch joined to the image it patches ---- */
/* Every build-id the patch was built for must be the target's. */
int references_check_pins(struct hp_target *target, const struct hp_patch_file *patch,
			  struct hp_error *error) HP_MUST_CHECK;
/* Finds the address of every symbol of the target the patch uses. */
int references_resolve(struct hp_target *target, struct hp_memory *memory,
		       struct hp_patch_file *patch, struct hp_error *error) HP_MUST_CHECK;
/* Writes those addresses into the patch loaded at `bias`. */
int references_fill(struct hp_memory *memory, pid_t stopped_tid,
		    const struct hp_patch_file *patch, uint64_t bias,
		    struct hp_error *error) HP_MUST_CHECK;

#endif
