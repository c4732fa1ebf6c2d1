/* runtime/target.h - the target process: its objects and their symbols, its memory, its code written. */
#ifndef HOTPATCH_RUNTIME_TARGET_H
#define HOTPATCH_RUNTIME_TARGET_H

#include "common/proc_maps.h"
#include "symbols/symbols.h"
#include "arch/arch.h"
#include "patch/patch.h"

/* ---- target_map.c: the objects a process has loaded ---- */
struct hp_object {
	char *path;		/* as the target sees it */
	unsigned dev_major, dev_minor;
	uint64_t inode;
	uint64_t base;		/* start of the mapping at file offset 0 */
	uint64_t low, high;	/* all mappings of the object */
	bool is_main;
	bool loaded;		/* `elf` is filled */
	bool debug_file;	/* its symbols include a separate debug file's */
	uint64_t bias;		/* runtime address = bias + file address */
	struct hp_elf_info elf;
};

struct hp_target {
	pid_t pid;
	struct hp_maps maps;
	size_t object_count;
	struct hp_object *objects;
};

int target_map_open(pid_t pid, struct hp_target *target, struct hp_error *error) HP_MUST_CHECK;
void target_map_release(struct hp_target *target);
/* "" names the main executable; else a file name or soname ("libfoo.so.1"),
 * or a prefix of a versioned file name ("libfoo.so" for "libfoo.so.1.2"). */
int target_find_object(struct hp_target *target, const char *name,
		       struct hp_object **object, struct hp_error *error) HP_MUST_CHECK;
int target_load_object(struct hp_target *target, struct hp_object *object,
		       struct hp_error *error) HP_MUST_CHECK;

/* ---- target_symbols.c: what names mean in the target's objects ---- */
/* The one function of that name in the object (refuses ambiguous names);
 * `file` ("" when not needed) names the source file of a file-local one. */
int target_find_function(struct hp_target *target, struct hp_object *object,
			 const char *name, const char *file, uint64_t *address, uint64_t *size,
			 struct hp_error *error) HP_MUST_CHECK;
/* The address of a variable or function of the object, chosen the same way. */
int target_find_symbol(struct hp_target *target, struct hp_object *object, const char *name,
		       const char *file, uint64_t *address, struct hp_error *error) HP_MUST_CHECK;

/* Whether that variable is thread-local and, if so, its offset in the
 * object's TLS block (st_value): what target_find_symbol refuses. */
int target_find_thread_local(struct hp_target *target, struct hp_object *object, const char *name,
			     const char *file, bool *thread_local, uint64_t *offset,
			     struct hp_error *error) HP_MUST_CHECK;

/* ---- target_tls.c: the thread-local storage of an object of the target ---- */
/* struct hp_tls_module: patch/patch.h, where a reference keeps it. */
/* Reads the object's module id and static TLS offset from the target's
 * link_map (the fields' offsets from libc's _thread_db descriptors, as
 * libthread_db reads them).  HP_MISFIT when the object has no TLS. */
struct hp_memory;
int target_tls_module(struct hp_target *target, struct hp_memory *memory,
		      struct hp_object *object, struct hp_tls_module *module,
		      struct hp_error *error) HP_MUST_CHECK;

/* An exported function of any loaded object, libc first: dlopen and friends. */
int target_find_export(struct hp_target *target, const char *name, uint64_t *address,
		       struct hp_error *error) HP_MUST_CHECK;
/* The object containing `address`, or NULL. */
struct hp_object *target_object_at(struct hp_target *target, uint64_t address);
/* The function containing `address` (NULL when unknown), its object and the
 * offset into it. */
const char *target_function_at(struct hp_target *target, uint64_t address,
			       struct hp_object **object, uint64_t *offset);
/* "function+0xoffset (file)" when known, else the address in hex. */
void target_describe_address(struct hp_target *target, uint64_t address, char *text,
			     size_t size);

/* ---- target_memory.c: reading and writing the target's memory ---- */
struct hp_memory {
	pid_t pid;
	int mem_fd;		/* /proc/PID/mem, -1 when not open */
};

int target_memory_open(pid_t pid, struct hp_memory *memory, struct hp_error *error) HP_MUST_CHECK;
void target_memory_close(struct hp_memory *memory);
int target_memory_read(struct hp_memory *memory, uint64_t address, void *buffer,
		       size_t length, struct hp_error *error) HP_MUST_CHECK;
/* Writes through /proc/PID/mem (also read-only code); when the kernel forbids
 * that, falls back to PTRACE_POKEDATA through `stopped_tid` if not 0. */
int target_memory_write(struct hp_memory *memory, pid_t stopped_tid, uint64_t address,
			const void *buffer, size_t length, struct hp_error *error) HP_MUST_CHECK;
/* Reads a NUL-terminated string of at most size-1 bytes. */
int target_memory_read_string(struct hp_memory *memory, uint64_t address, char *buffer,
			      size_t size, struct hp_error *error) HP_MUST_CHECK;

/* ---- text_write.c: many pieces of code in few writes ---- */
struct hp_text_piece {
	uint64_t address;
	const unsigned char *bytes;
	size_t length;
};

/* Writes every piece; pieces less than a page apart go in one write of the
 * span between them (read afresh first).  Every thread must be stopped. */
int text_write(struct hp_memory *memory, pid_t stopped_tid, const struct hp_text_piece *pieces,
	       size_t count, struct hp_error *error) HP_MUST_CHECK;

#endif
