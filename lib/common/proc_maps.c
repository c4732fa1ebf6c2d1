/* proc_maps.c - reading and parsing /proc/PID/maps.  The text comes from the
 * kernel but describes a process we do not trust (paths are chosen by it), so
 * every size is bounded and every line is checked; nothing here follows a
 * path. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/proc_maps.h"
#include "common/base.h"

#define MAPS_TEXT_MAX (64u << 20)
#define MAPS_COUNT_MAX (1u << 20)

static int read_whole_file(const char *path, char **text, size_t *length,
			   struct hp_error *error)
{
	size_t capacity = 1 << 16, used = 0;
	char *buffer = malloc(capacity);
	int fd = -1, status = HP_OK;

	if (!buffer)
		return hp_fail(error, HP_FAILED, "out of memory reading %s", path);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		status = hp_fail_errno(error, HP_FAILED, "cannot read %s", path);
		goto out;
	}
	for (;;) {
		ssize_t got;

		if (used + 1 >= capacity) {
			char *larger;

			if (capacity >= MAPS_TEXT_MAX) {
				status = hp_fail(error, HP_FAILED, "%s is larger than %u bytes", path,
						 MAPS_TEXT_MAX);
				goto out;
			}
			larger = realloc(buffer, capacity * 2);
			if (!larger) {
				status = hp_fail(error, HP_FAILED, "out of memory reading %s", path);
				goto out;
			}
			buffer = larger;
			capacity *= 2;
		}
		got = read(fd, buffer + used, capacity - used - 1);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			status = hp_fail_errno(error, HP_FAILED, "cannot read %s", path);
			goto out;
		}
		if (got == 0)
			break;
		used += (size_t)got;
	}
	buffer[used] = '\0';
	*text = buffer;
	*length = used;
	buffer = NULL;
out:
	if (fd >= 0)
		close(fd);
	free(buffer);
	return status;
}

/* One line: "start-end perms offset major:minor inode [path]". */
static bool parse_line(char *line, struct hp_mapping *mapping)
{
	char perms[5] = "";
	int path_at = -1;
	unsigned long long start, end, offset, inode;

	if (sscanf(line, "%llx-%llx %4s %llx %x:%x %llu %n", &start, &end, perms, &offset,
		   &mapping->dev_major, &mapping->dev_minor, &inode, &path_at) != 7)
		return false;
	if (path_at < 0 || end <= start || strlen(perms) != 4)
		return false;
	mapping->start = start;
	mapping->end = end;
	mapping->offset = offset;
	mapping->inode = inode;
	mapping->readable = perms[0] == 'r';
	mapping->writable = perms[1] == 'w';
	mapping->executable = perms[2] == 'x';
	mapping->shared = perms[3] == 's';
	mapping->path = strdup(line + path_at);
	return mapping->path != NULL;
}

int proc_maps_parse(const char *text, size_t length, struct hp_maps *maps,
		    struct hp_error *error)
{
	const char *cursor = text, *end = text + length;
	size_t capacity = 0;
	int status = HP_OK;

	maps->count = 0;
	maps->items = NULL;
	while (cursor < end) {
		const char *newline = memchr(cursor, '\n', (size_t)(end - cursor));
		size_t line_length = newline ? (size_t)(newline - cursor) : (size_t)(end - cursor);
		struct hp_mapping mapping = { 0 };
		char *line;

		if (line_length > 0) {
			if (maps->count >= MAPS_COUNT_MAX) {
				status = hp_fail(error, HP_FAILED, "more than %u mappings",
						 MAPS_COUNT_MAX);
				break;
			}
			line = strndup(cursor, line_length);
			if (!line) {
				status = hp_fail(error, HP_FAILED, "out of memory parsing maps");
				break;
			}
			if (!parse_line(line, &mapping)) {
				free(line);
				free(mapping.path);
				status = hp_fail(error, HP_FAILED, "unreadable line in maps");
				break;
			}
			free(line);
			if (maps->count == capacity) {
				size_t larger_capacity = capacity ? capacity * 2 : 64;
				struct hp_mapping *larger =
					realloc(maps->items, larger_capacity * sizeof(*larger));

				if (!larger) {
					free(mapping.path);
					status = hp_fail(error, HP_FAILED, "out of memory parsing maps");
					break;
				}
				maps->items = larger;
				capacity = larger_capacity;
			}
			maps->items[maps->count++] = mapping;
		}
		if (!newline)
			break;
		cursor = newline + 1;
	}
	if (status != HP_OK)
		proc_maps_release(maps);
	return status;
}

int proc_maps_read(pid_t pid, struct hp_maps *maps, struct hp_error *error)
{
	char path[64], *text = NULL;
	size_t length = 0;
	int status;

	maps->count = 0;
	maps->items = NULL;
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	status = read_whole_file(path, &text, &length, error);
	if (status == HP_OK)
		status = proc_maps_parse(text, length, maps, error);
	free(text);
	return status;
}

ssize_t proc_read_small(const char *path, char *buffer, size_t size)
{
	ssize_t length;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || size == 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	do
		length = read(fd, buffer, size - 1);
	while (length < 0 && errno == EINTR);
	close(fd);
	if (length < 0)
		return -1;
	buffer[length] = '\0';
	return length;
}

const struct hp_mapping *proc_maps_find(const struct hp_maps *maps, uint64_t address)
{
	for (size_t i = 0; i < maps->count; i++)
		if (address >= maps->items[i].start && address < maps->items[i].end)
			return &maps->items[i];
	return NULL;
}

void proc_maps_release(struct hp_maps *maps)
{
	for (size_t i = 0; i < maps->count; i++)
		free(maps->items[i].path);
	free(maps->items);
	maps->items = NULL;
	maps->count = 0;
}

bool proc_maps_shared_anonymous(const struct hp_mapping *mapping)
{
	/* The kernel backs it with its own /dev/zero, deleted. */
	return mapping->shared && strcmp(mapping->path, "/dev/zero (deleted)") == 0;
}

bool proc_maps_anonymous_span(const struct hp_maps *maps, uint64_t start, uint64_t end)
{
	uint64_t at = start;

	while (at < end) {
		const struct hp_mapping *mapping = proc_maps_find(maps, at);

		if (!mapping || (mapping->path[0] && !proc_maps_shared_anonymous(mapping)))
			return false;
		at = mapping->end;
	}
	return true;
}

bool proc_maps_in_stack_growth(const struct hp_maps *maps, uint64_t address)
{
	uint64_t stack = 0, below = 0;

	for (size_t i = 0; i < maps->count; i++)
		if (strcmp(maps->items[i].path, "[stack]") == 0)
			stack = maps->items[i].start;
	for (size_t i = 0; stack && i < maps->count; i++)
		if (maps->items[i].end <= stack && maps->items[i].end > below)
			below = maps->items[i].end;
	return stack && address >= below && address < stack;
}
