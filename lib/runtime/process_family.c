/* process_family.c - whether a patch reaches the processes a target's parent
 * forks later: a worker patched while its master (the same program) is not
 * keeps the fix, but workers the master forks afterwards start without it.
 * Reads /proc and the parent's state only; never stops or changes anything. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "runtime/session.h"
#include "common/proc_maps.h"
#include "runtime/state.h"
#include "runtime/target.h"

/* The parent's pid from /proc/PID/stat ("pid (comm) state ppid ..."; comm
 * may hold anything, so the last ')' ends it); 0 when unknown. */
static pid_t parent_of(pid_t pid)
{
	char path[64], text[1024];
	const char *end;
	int parent = 0;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (proc_read_small(path, text, sizeof(text)) <= 0)
		return 0;
	end = strrchr(text, ')');
	if (!end || sscanf(end + 1, " %*c %d", &parent) != 1 || parent <= 1)
		return 0;
	return (pid_t)parent;
}

static bool same_program(pid_t one, pid_t other)
{
	char path[64];
	struct stat first, second;

	snprintf(path, sizeof(path), "/proc/%d/exe", (int)one);
	if (stat(path, &first) != 0)
		return false;
	snprintf(path, sizeof(path), "/proc/%d/exe", (int)other);
	if (stat(path, &second) != 0)
		return false;
	return first.st_dev == second.st_dev && first.st_ino == second.st_ino;
}

static bool state_has(const struct hp_state *state, const char *name)
{
	for (size_t i = 0; i < state->patch_count; i++)
		if (state->patches[i]->status == HP_STATE_APPLIED &&
		    strcmp(state->patches[i]->name, name) == 0)
			return true;
	return false;
}

void family_note_patches(pid_t pid, struct hp_result *result)
{
	pid_t parent = parent_of(pid);
	struct hp_memory memory = { .pid = parent, .mem_fd = -1 };
	struct hp_maps maps = { 0 };
	struct hp_state state = { 0 };
	struct hp_error ignored = { 0 };

	if (!parent || !result->patch_count || !same_program(pid, parent) ||
	    target_memory_open(parent, &memory, &ignored) != HP_OK ||
	    proc_maps_read(parent, &maps, &ignored) != HP_OK ||
	    patch_state_read(&memory, &maps, &state, &ignored) != HP_OK) {
		proc_maps_release(&maps);
		target_memory_close(&memory);
		return;
	}
	for (size_t i = 0; i < result->patch_count; i++) {
		struct hp_patch_report *patch = &result->patches[i];

		size_t used = strlen(patch->warning);

		/* After what is said already (the post-apply hook's failure). */
		if (!state_has(&state, patch->name) && used + 2 < sizeof(patch->warning))
			snprintf(patch->warning + used, sizeof(patch->warning) - used,
				 "%sits parent pid %d, the same program, does not have it: processes "
				 "pid %d forks later start without it (apply it there too)",
				 used ? "; " : "", (int)parent, (int)parent);
	}
	patch_state_release(&state);
	proc_maps_release(&maps);
	target_memory_close(&memory);
}
