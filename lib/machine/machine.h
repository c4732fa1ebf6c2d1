/* machine/machine.h - the machine as a whole: which processes a command
 * works on when it is given an executable or a shared object rather than
 * pids. */
#ifndef HOTPATCH_MACHINE_MACHINE_H
#define HOTPATCH_MACHINE_MACHINE_H

#include "common/base.h"
#include "common/proc_maps.h"
#include "symbols/symbols.h"

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

int selected_file_open(const char *path, const char *option, struct hp_selected_file *file,
		       struct hp_error *error) HP_MUST_CHECK;
/* Whether `pid` runs the file (its /proc/PID/exe), or maps it. */
bool process_runs(pid_t pid, const struct hp_selected_file *file);
bool process_maps(pid_t pid, const struct hp_selected_file *file);

#endif
