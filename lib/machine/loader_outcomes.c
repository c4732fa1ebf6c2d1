/* loader_outcomes.c - what the preloaded loader tried in a process and
 * what came of it (common/loader_outcomes.h), read from outside for
 * status: the memory file's mapping found in /proc/PID/maps, its pages
 * read through /proc/PID/mem.  Nothing is stopped.  The table is the
 * process's word about itself: bounded, checked, every string cut at its
 * field's end. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/loader_outcomes.h"
#include "machine/machine.h"

#define MEMFD_PREFIX "/memfd:" LOADER_OUTCOMES_NAME

/* Where the table is mapped in `pid`; 0 when nowhere. */
static uint64_t table_address(pid_t pid)
{
	struct hp_maps maps = { 0 };
	struct hp_error ignored = { 0 };
	uint64_t address = 0;

	if (proc_maps_read(pid, &maps, &ignored) == HP_OK)
		for (size_t i = 0; i < maps.count && !address; i++) {
			const struct hp_mapping *mapping = &maps.items[i];

			if (strncmp(mapping->path, MEMFD_PREFIX, strlen(MEMFD_PREFIX)) == 0 &&
			    mapping->offset == 0 && mapping->readable &&
			    mapping->end - mapping->start >= sizeof(struct loader_outcomes))
				address = mapping->start;
		}
	proc_maps_release(&maps);
	hp_error_release(&ignored);
	return address;
}

static bool table_read(pid_t pid, uint64_t address, struct loader_outcomes *table)
{
	char path[64];
	ssize_t got;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/mem", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	got = pread(fd, table, sizeof(*table), (off_t)address);
	close(fd);
	return got == (ssize_t)sizeof(*table);
}

bool loader_outcomes_read(pid_t pid, struct loader_outcomes *table)
{
	uint64_t address = table_address(pid);

	if (!address || !table_read(pid, address, table) ||
	    memcmp(table->magic, LOADER_OUTCOMES_MAGIC, sizeof(LOADER_OUTCOMES_MAGIC)) != 0 ||
	    table->count > LOADER_OUTCOMES_MAX)
		return false;
	for (uint32_t i = 0; i < table->count; i++) {
		table->entries[i].name[sizeof(table->entries[i].name) - 1] = '\0';
		table->entries[i].reason[sizeof(table->entries[i].reason) - 1] = '\0';
	}
	return true;
}

const struct loader_outcome *loader_outcome_find(const struct loader_outcomes *table,
						 const char *name)
{
	for (uint32_t i = 0; i < table->count; i++)
		if (strcmp(table->entries[i].name, name) == 0)
			return &table->entries[i];
	return NULL;
}
