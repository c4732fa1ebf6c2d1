/* machine/machine.h - the machine as a whole: which processes a command
 * works on when it is given an executable or a shared object rather than
 * pids, the store, and the loader that patches processes at start. */
#ifndef HOTPATCH_MACHINE_MACHINE_H
#define HOTPATCH_MACHINE_MACHINE_H

#include "common/base.h"
#include "common/proc_maps.h"
#include "symbols/symbols.h"
#include "patch/patch.h"

/* ---- process_select.c: every process of an executable or an object ---- */
/* The file a selector names, as the kernel knows it, and its build-id for
 * a process that started from an older copy replaced on disk since. */
struct hp_selected_file {
	char path[HP_PATH_MAX];		/* resolved, in our mount namespace */
	dev_t device;
	ino_t inode;
	unsigned char build_id[64];
	size_t build_id_size;
};

/* The build-id of the ELF file open on `fd`; 0 when it has none. */
size_t read_build_id(int fd, unsigned char *id, size_t capacity);
int selected_file_open(const char *path, const char *option, struct hp_selected_file *file,
		       struct hp_error *error) HP_MUST_CHECK;
/* Whether `pid` runs the file (its /proc/PID/exe), or maps it. */
bool process_runs(pid_t pid, const struct hp_selected_file *file);
bool process_maps(pid_t pid, const struct hp_selected_file *file);

/* ---- store_files.c: the store directory and its files ---- */
/* STORE: HOTPATCH_STORE (ignored in secure execution) or /var/lib/hotpatch. */
const char *store_directory(void);
/* STORE/NAME.so, or false when it does not fit `size`. */
bool store_patch_path(const char *name, char *path, size_t size);
/* `bytes` into `path` (in the store) through a temporary name and a rename. */
int store_write(const char *path, const unsigned char *bytes, size_t size,
		struct hp_error *error) HP_MUST_CHECK;

/* ---- store_exclusions.c: the fixes an installed patch leaves out ---- */
/* STORE/NAME.exclude, or false when it does not fit `size`. */
bool store_exclusions_path(const char *name, char *path, size_t size);
/* The fixes installed `name` leaves out, space separated, "" when none;
 * the file must be one `for_pid`'s owner (or root, for 0) can have written. */
int store_exclusions_read(const char *name, pid_t for_pid, char *excluded, size_t size,
			  struct hp_error *error) HP_MUST_CHECK;
/* Writes them ("" removes the file). */
int store_exclusions_write(const char *name, const char *excluded,
			   struct hp_error *error) HP_MUST_CHECK;

/* ---- store_index.c: the store's patches read, and its index ---- */
struct hp_installed_report;
/* The store's patch files (NAME.so), sorted; *names malloc'd, each too.
 * No store: none. */
int store_list(char ***names, size_t *count, struct hp_error *error) HP_MUST_CHECK;
void store_list_release(char **names, size_t count);
/* One store file read as apply reads a patch; `usable` false (and the
 * report saying why) for one that is not a patch, or not this name's. */
void store_read_installed(const char *file_name, struct hp_installed_report *installed,
			  struct hp_patch_file *patch, bool *usable);
/* Rewrites STORE/index, what the loader reads in every process starting:
 * one line per usable patch but `leaving_out` (NULL: none), its name and
 * the build-ids it pins. */
int store_index_write(const char *leaving_out, struct hp_error *error) HP_MUST_CHECK;

/* ---- store_scan.c: the running processes a patch fits ---- */
/* Whether every object `patch` pins is loaded in `pid` with that build-id
 * (read through the kernel's handle on the file: /proc/PID/exe or
 * /proc/PID/map_files); false for a patch that pins nothing. */
bool store_patch_fits(pid_t pid, const struct hp_patch_file *patch);
/* Whether some patch is applied to `pid` (its hotpatch-state mapping). */
bool store_has_state(pid_t pid);

/* ---- loader_outcomes.c: what the loader tried in a process ---- */
struct loader_outcomes;
struct loader_outcome;
/* The table of the loader in `pid`, read without stopping it; false when
 * it has none (the loader applied nothing there) or not a readable one. */
bool loader_outcomes_read(pid_t pid, struct loader_outcomes *table);
/* The outcome for patch `name`, or NULL. */
const struct loader_outcome *loader_outcome_find(const struct loader_outcomes *table,
						 const char *name);

/* ---- startup.c: the loader in ROOT/etc/ld.so.preload ---- */
/* Where `make install` put the loader: PREFIX/lib/hotpatch/libhotpatch-loader.so. */
const char *startup_loader_path(void);
/* Whether the text of an ld.so.preload file lists `loader`, as the dynamic
 * linker reads it: entries separated by white space or ':', '#' comments. */
bool preload_names_loader(const char *text, size_t size, const char *loader);

/* ---- process_scan.c: the processes of the machine ---- */
/* Every process (not ourselves) for which `wanted` is true, by pid; *pids
 * malloc'd. */
/* Appends `pid` to *pids (grown as needed; at most 65536 processes). */
int processes_append(pid_t pid, pid_t **pids, size_t *count, size_t *capacity,
		     struct hp_error *error) HP_MUST_CHECK;
int processes_scan(bool (*wanted)(pid_t pid, const void *context), const void *context,
		   pid_t **pids, size_t *count, struct hp_error *error) HP_MUST_CHECK;

#endif
