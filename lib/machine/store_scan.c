/* store_scan.c - which running processes an installed patch fits: every
 * object it pins is loaded there with the pinned build-id, read through
 * the kernel's own handle on the file (/proc/PID/exe, /proc/PID/map_files),
 * never through a path inside the process's mount namespace.  It only
 * reads /proc: it never stops or traces a process. */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "machine/machine.h"

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
