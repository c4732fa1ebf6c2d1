/* process_select.c - every process whose executable is a file (--exe), or
 * that maps a shared object (--object).  A process is matched by what the
 * kernel says it runs or maps (device and inode, through /proc/PID/exe and
 * /proc/PID/maps), never by following a path inside its mount namespace; a
 * process started from a file that was replaced on disk since (the old
 * inode shows as "PATH (deleted)") matches when the old file's build-id,
 * read through the kernel's own handle on it, is the new one's. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <gelf.h>

#include "machine/machine.h"

/* At most this many processes are chosen; a machine has fewer. */
#define DELETED_SUFFIX " (deleted)"

size_t read_build_id(int fd, unsigned char *id, size_t capacity)
{
	Elf *elf;
	size_t size = 0;

	if (elf_version(EV_CURRENT) == EV_NONE)
		return 0;
	elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	if (elf && elf_kind(elf) == ELF_K_ELF)
		size = elf_build_id(elf, id, capacity);
	elf_end(elf);
	return size;
}

int selected_file_open(const char *path, const char *option, struct hp_selected_file *file,
		       struct hp_error *error)
{
	struct stat info;
	int fd;

	memset(file, 0, sizeof(*file));
	if (!realpath(path, file->path)) {
		hp_hint(error, "name the file the processes run or load");
		return hp_fail_errno(error, HP_USAGE, "%s %s", option, path);
	}
	fd = open(file->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
		if (fd >= 0)
			close(fd);
		hp_hint(error, "name the file the processes run or load");
		return hp_fail(error, HP_USAGE, "%s %s is not a regular file that can be read",
			       option, path);
	}
	file->device = info.st_dev;
	file->inode = info.st_ino;
	file->build_id_size = read_build_id(fd, file->build_id, sizeof(file->build_id));
	close(fd);
	return HP_OK;
}

/* An old copy of the file, open through the kernel's handle `handle`
 * (/proc/PID/exe or /proc/PID/map_files/RANGE), whose link text is
 * "PATH (deleted)": the same program when the build-ids agree. */
static bool replaced_copy_matches(const char *handle, const struct hp_selected_file *file)
{
	char link[HP_PATH_MAX + sizeof(DELETED_SUFFIX)];
	unsigned char id[64];
	ssize_t length = readlink(handle, link, sizeof(link) - 1);
	size_t path_length = strlen(file->path), size;
	int fd;

	if (length <= 0 || file->build_id_size == 0)
		return false;
	link[length] = '\0';
	if ((size_t)length != path_length + strlen(DELETED_SUFFIX) ||
	    strncmp(link, file->path, path_length) != 0 ||
	    strcmp(link + path_length, DELETED_SUFFIX) != 0)
		return false;
	fd = open(handle, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	size = read_build_id(fd, id, sizeof(id));
	close(fd);
	return size == file->build_id_size && memcmp(id, file->build_id, size) == 0;
}

bool process_runs(pid_t pid, const struct hp_selected_file *file)
{
	char handle[64];
	struct stat info;

	snprintf(handle, sizeof(handle), "/proc/%d/exe", (int)pid);
	/* stat follows the magic link to the kernel's file, not a path. */
	if (stat(handle, &info) != 0)
		return false;
	if (info.st_dev == file->device && info.st_ino == file->inode)
		return true;
	return replaced_copy_matches(handle, file);
}

bool process_maps(pid_t pid, const struct hp_selected_file *file)
{
	struct hp_maps maps = { 0 };
	struct hp_error ignored = { 0 };
	bool found = false;

	if (proc_maps_read(pid, &maps, &ignored) != HP_OK)
		return false;
	for (size_t i = 0; i < maps.count && !found; i++) {
		const struct hp_mapping *mapping = &maps.items[i];
		char handle[96];

		if (!mapping->path[0] || mapping->path[0] != '/')
			continue;
		if (mapping->inode == file->inode &&
		    makedev(mapping->dev_major, mapping->dev_minor) == file->device) {
			found = true;
			continue;
		}
		snprintf(handle, sizeof(handle), "/proc/%d/map_files/%" PRIx64 "-%" PRIx64,
			 (int)pid, mapping->start, mapping->end);
		if (strstr(mapping->path, DELETED_SUFFIX))
			found = replaced_copy_matches(handle, file);
	}
	proc_maps_release(&maps);
	return found;
}

static int compare_pids(const void *a, const void *b)
{
	pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;

	return (x > y) - (x < y);
}

/* Appends `pid` unless it is there already. */
static int add_pid(pid_t pid, pid_t **pids, size_t *count, size_t *capacity,
		   struct hp_error *error)
{
	for (size_t i = 0; i < *count; i++)
		if ((*pids)[i] == pid)
			return HP_OK;
	return processes_append(pid, pids, count, capacity, error);
}

static bool runs_file(pid_t pid, const void *file)
{
	return process_runs(pid, file);
}

static bool maps_file(pid_t pid, const void *file)
{
	return process_maps(pid, file);
}

/* Every process (not ourselves) that runs or maps the file `path` names,
 * added to *pids. */
static int add_scanned(const char *path, const char *option, bool (*wanted)(pid_t, const void *),
		       pid_t **pids, size_t *count, size_t *capacity, struct hp_error *error)
{
	struct hp_selected_file file;
	pid_t *found = NULL;
	size_t found_count = 0;
	int status = selected_file_open(path, option, &file, error);

	if (status == HP_OK)
		status = processes_scan(wanted, &file, &found, &found_count, error);
	for (size_t i = 0; status == HP_OK && i < found_count; i++)
		status = add_pid(found[i], pids, count, capacity, error);
	free(found);
	return status;
}

int hp_select_processes(const struct hp_selector *selector, pid_t **pids, size_t *count,
			struct hp_error *error)
{
	size_t capacity = 0;
	int status = HP_OK;

	*pids = NULL;
	*count = 0;
	for (size_t i = 0; status == HP_OK && i < selector->pid_count; i++)
		status = add_pid(selector->pids[i], pids, count, &capacity, error);
	if (status == HP_OK && selector->exe)
		status = add_scanned(selector->exe, "--exe", runs_file, pids, count, &capacity,
				     error);
	if (status == HP_OK && selector->object)
		status = add_scanned(selector->object, "--object", maps_file, pids, count,
				     &capacity, error);
	if (status != HP_OK) {
		free(*pids);
		*pids = NULL;
		*count = 0;
		return status;
	}
	if (*count > 1 && selector->pid_count == 0)
		qsort(*pids, *count, sizeof(**pids), compare_pids);
	return HP_OK;
}
