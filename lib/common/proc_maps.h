/* common/proc_maps.h - /proc/PID/maps and small /proc files, parsed without trusting them. */
#ifndef HOTPATCH_COMMON_PROC_MAPS_H
#define HOTPATCH_COMMON_PROC_MAPS_H

#include "common/base.h"

/* ---- proc_maps.c: /proc/PID/maps ---- */
struct hp_mapping {
	uint64_t start, end, offset;
	bool readable, writable, executable, shared;
	unsigned dev_major, dev_minor;
	uint64_t inode;
	char *path;		/* "" for anonymous mappings; never NULL */
};

struct hp_maps {
	size_t count;
	struct hp_mapping *items;
};

int proc_maps_read(pid_t pid, struct hp_maps *maps, struct hp_error *error) HP_MUST_CHECK;
/* Parses maps text; pure, so unit tests and fuzzers can feed it anything. */
int proc_maps_parse(const char *text, size_t length, struct hp_maps *maps,
		    struct hp_error *error) HP_MUST_CHECK;
/* Reads a small /proc text file whole into `buffer` (NUL-terminated);
 * returns its length, or -1 when it cannot be read. */
ssize_t proc_read_small(const char *path, char *buffer, size_t size);
const struct hp_mapping *proc_maps_find(const struct hp_maps *maps, uint64_t address);
/* mmap(MAP_SHARED | MAP_ANONYMOUS) made it. */
bool proc_maps_shared_anonymous(const struct hp_mapping *mapping);
/* [start, end) is wholly anonymous memory (no file), private or shared. */
bool proc_maps_anonymous_span(const struct hp_maps *maps, uint64_t start, uint64_t end);
/* Whether `address` is where the main thread's stack grows: between the
 * highest mapping below "[stack]" and it.  A page mapped there stops that
 * growth, and the thread dies of SIGSEGV at its next deep call. */
bool proc_maps_in_stack_growth(const struct hp_maps *maps, uint64_t address);
void proc_maps_release(struct hp_maps *maps);

#endif
