/* store_scan.c - which running processes an installed patch fits: every
 * object it pins is loaded there with the pinned build-id, read through
 * the kernel's own handle on the file (/proc/PID/exe, /proc/PID/map_files),
 * never through a path inside the process's mount namespace.  It only
 * reads /proc: it never stops or traces a process. */
#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "machine/machine.h"

#define PROCESSES_MAX 65536
#define STATE_MAPPING_PREFIX "/memfd:hotpatch-state"

/* The build-id of the file behind `handle`, in lower-case hex; false when
 * it cannot be read or has none. */
static bool handle_build_id(const char *handle, char *hex, size_t size)
{
	unsigned char id[64];
	size_t length;
	int fd = open(handle, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return false;
	length = read_build_id(fd, id, sizeof(id));
	close(fd);
	if (length == 0 || 2 * length + 1 > size)
		return false;
	for (size_t i = 0; i < length; i++)
		snprintf(hex + 2 * i, 3, "%02x", id[i]);
	return true;
}

/* A mapping's file name without the " (deleted)" the kernel appends. */
static void mapping_file_name(const char *path, char *name, size_t size)
{
	char *deleted;

	hp_copy_string(name, size, hp_base_name(path));
	deleted = strstr(name, " (deleted)");
	if (deleted)
		*deleted = '\0';
}

/* Whether a library named `object` is mapped with build-id `build_id`. */
static bool maps_object(pid_t pid, const struct hp_maps *maps, const char *object,
			const char *build_id)
{
	for (size_t i = 0; i < maps->count; i++) {
		const struct hp_mapping *mapping = &maps->items[i];
		char name[HP_PATH_MAX], handle[96], hex[136];

		if (mapping->path[0] != '/')
			continue;
		mapping_file_name(mapping->path, name, sizeof(name));
		if (!elf_file_name_matches(object, name))
			continue;
		snprintf(handle, sizeof(handle), "/proc/%d/map_files/%" PRIx64 "-%" PRIx64, (int)pid,
			 mapping->start, mapping->end);
		if (handle_build_id(handle, hex, sizeof(hex)) && strcmp(hex, build_id) == 0)
			return true;
	}
	return false;
}

static bool pin_holds(pid_t pid, const struct hp_maps *maps, const struct hp_patch_pin *pin)
{
	char handle[64], hex[136];

	if (pin->object[0])
		return maps_object(pid, maps, pin->object, pin->build_id);
	snprintf(handle, sizeof(handle), "/proc/%d/exe", (int)pid);
	return handle_build_id(handle, hex, sizeof(hex)) && strcmp(hex, pin->build_id) == 0;
}

bool store_patch_fits(pid_t pid, const struct hp_patch_file *patch)
{
	struct hp_maps maps = { 0 };
	struct hp_error ignored = { 0 };
	bool fits = patch->pin_count > 0;

	if (!fits || proc_maps_read(pid, &maps, &ignored) != HP_OK)
		return false;
	for (size_t i = 0; fits && i < patch->pin_count; i++)
		fits = pin_holds(pid, &maps, &patch->pins[i]);
	proc_maps_release(&maps);
	return fits;
}

bool store_has_state(pid_t pid)
{
	struct hp_maps maps = { 0 };
	struct hp_error ignored = { 0 };
	bool found = false;

	if (proc_maps_read(pid, &maps, &ignored) != HP_OK)
		return false;
	for (size_t i = 0; i < maps.count && !found; i++)
		found = strncmp(maps.items[i].path, STATE_MAPPING_PREFIX,
				strlen(STATE_MAPPING_PREFIX)) == 0;
	proc_maps_release(&maps);
	return found;
}

static bool all_digits(const char *name)
{
	if (!name[0])
		return false;
	for (; *name; name++)
		if (!isdigit((unsigned char)*name))
			return false;
	return true;
}

static int append_pid(pid_t pid, pid_t **pids, size_t *count, size_t *capacity,
		      struct hp_error *error)
{
	pid_t *larger;

	if (*count == PROCESSES_MAX)
		return hp_fail(error, HP_FAILED, "more than %d processes match", PROCESSES_MAX);
	if (*count == *capacity) {
		*capacity = *capacity ? 2 * *capacity : 64;
		larger = realloc(*pids, *capacity * sizeof(**pids));
		if (!larger)
			return hp_fail(error, HP_FAILED, "out of memory choosing processes");
		*pids = larger;
	}
	(*pids)[(*count)++] = pid;
	return HP_OK;
}

static int compare_pids(const void *a, const void *b)
{
	pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;

	return (x > y) - (x < y);
}

int store_scan_processes(bool (*wanted)(pid_t pid, const void *context), const void *context,
			 pid_t **pids, size_t *count, struct hp_error *error)
{
	DIR *proc = opendir("/proc");
	struct dirent *entry;
	size_t capacity = 0;
	int status = HP_OK;

	*pids = NULL;
	*count = 0;
	if (!proc)
		return hp_fail_errno(error, HP_FAILED, "cannot list /proc");
	while (status == HP_OK && (entry = readdir(proc)) != NULL) {
		pid_t pid;

		if (!all_digits(entry->d_name))
			continue;
		pid = (pid_t)strtol(entry->d_name, NULL, 10);
		if (pid > 0 && pid != getpid() && wanted(pid, context))
			status = append_pid(pid, pids, count, &capacity, error);
	}
	closedir(proc);
	if (status != HP_OK) {
		free(*pids);
		*pids = NULL;
		*count = 0;
		return status;
	}
	if (*count > 1)
		qsort(*pids, *count, sizeof(**pids), compare_pids);
	return HP_OK;
}
