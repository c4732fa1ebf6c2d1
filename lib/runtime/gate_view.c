/* gate_view.c - hotpatch's own mapping of a gate table (transition.c).  The
 * target maps its table shared, and hotpatch maps the same pages through
 * /proc/PID/map_files: a thread's byte is then exchanged atomically against
 * the target's own locked instructions, which a write through
 * /proc/PID/mem cannot be, and that is what lets a sleeping thread be moved
 * without a stop.  map_files takes CAP_SYS_ADMIN (or CAP_CHECKPOINT_RESTORE);
 * without it there is no view, and every thread is stopped for its move.
 *
 * The file behind map_files is the kernel's own object for that mapping,
 * reached without a path in the target's mount namespace.  It is checked
 * to be a shared anonymous mapping of the table's size, and one byte
 * written through the view is read back through /proc/PID/mem. */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/session.h"
#include "common/proc_maps.h"

/* A mapping the kernel made for mmap(MAP_SHARED | MAP_ANONYMOUS). */
static bool shared_anonymous(pid_t pid, uint64_t start, uint64_t length)
{
	struct hp_maps maps = { 0 };
	struct hp_error ignored = { 0 };
	const struct hp_mapping *mapping;
	bool found;

	if (proc_maps_read(pid, &maps, &ignored) != HP_OK) {
		hp_error_release(&ignored);
		return false;
	}
	mapping = proc_maps_find(&maps, start);
	found = mapping && mapping->start == start && mapping->end == start + length &&
		mapping->writable && proc_maps_shared_anonymous(mapping);
	proc_maps_release(&maps);
	return found;
}

static unsigned char *map_through_proc(pid_t pid, uint64_t start, uint64_t length)
{
	char path[96];
	struct stat status;
	void *view = MAP_FAILED;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/map_files/%" PRIx64 "-%" PRIx64, (int)pid, start,
		 start + length);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	if (fstat(fd, &status) == 0 && S_ISREG(status.st_mode) && status.st_nlink == 0 &&
	    (uint64_t)status.st_size == length)
		view = mmap(NULL, length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	return view == MAP_FAILED ? NULL : view;
}

/* Slot 0 (no thread has id 0) holds a byte through the view that
 * /proc/PID/mem reads back at the table: the same memory. */
static bool same_memory(struct hp_memory *memory, uint64_t start, unsigned char *view)
{
	struct hp_error ignored = { 0 };
	unsigned char seen = 0;
	bool same;

	__atomic_store_n(&view[0], 0x5a, __ATOMIC_SEQ_CST);
	same = target_memory_read(memory, start, &seen, 1, &ignored) == HP_OK && seen == 0x5a;
	hp_error_release(&ignored);
	__atomic_store_n(&view[0], 0, __ATOMIC_SEQ_CST);
	return same;
}

void gate_view_open(pid_t pid, struct hp_memory *memory, uint64_t start, uint64_t length,
		    struct hp_gate_view *view)
{
	unsigned char *bytes = NULL;

	memset(view, 0, sizeof(*view));
	if (!shared_anonymous(pid, start, length))
		return;
	bytes = map_through_proc(pid, start, length);
	if (bytes && !same_memory(memory, start, bytes)) {
		munmap(bytes, length);
		bytes = NULL;
	}
	view->bytes = bytes;
	view->length = bytes ? length : 0;
}

void gate_view_close(struct hp_gate_view *view)
{
	if (view->bytes)
		munmap(view->bytes, view->length);
	memset(view, 0, sizeof(*view));
}

bool gate_view_empty(struct hp_gate_view *view)
{
	/* The pages themselves are given back (a hole punched in the shared
	 * object): every byte reads 0 again, in the target too, and a table
	 * of millions of thread ids costs nothing to clear. */
	return view->bytes && madvise(view->bytes, view->length, MADV_REMOVE) == 0;
}
