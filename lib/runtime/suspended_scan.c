/* suspended_scan.c - frames suspended off every thread's stack.  A coroutine
 * (makecontext/swapcontext, a coroutine library's own stacks) parked inside
 * a function holds a return address into it on a stack no thread runs on,
 * and a saved context (ucontext_t) holds one too: the stack check, which
 * unwinds threads, never sees them.  Before each stop, while the target
 * runs, its private writable memory is read (resident pages only, within a
 * byte and a time budget) for aligned words equal to a return site of the
 * code being changed, noting the saved contexts it passes; in the stop, each
 * such word that is still there and not dead (suspended_stacks.c) is in the
 * way.  Never writes to the target. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "runtime/threads.h"
#include "arch/arch.h"
#include "common/base.h"
#include "common/proc_maps.h"
#include "runtime/target.h"

/* Bytes read per scan: beyond it the rest is not looked at (and said). */
#define SCAN_BYTES_MAX (256ull << 20)
#define SCAN_CHUNK (1u << 20)
#define PAGEMAP_ENTRIES 4096u
#define PAGE_PRESENT (1ull << 63)
#define PAGE_SWAPPED (1ull << 62)
/* Copies of return addresses kept from one scan: more means far more
 * frames in the way than a report could name. */
#define HITS_MAX 16384u
/* Code read per range for its return sites. */
#define CODE_READ_MAX (1u << 20)
#define REREAD_BATCH 512u	/* under IOV_MAX */

static int by_value(const void *a, const void *b)
{
	uint64_t left = *(const uint64_t *)a, right = *(const uint64_t *)b;

	return left < right ? -1 : left > right;
}

static int add_range_sites(struct hp_suspended_scan *scan, struct hp_memory *memory,
			   const struct hp_range *range, struct hp_error *error)
{
	size_t length = range->end - range->start, capacity, found;
	struct hp_error ignored = { 0 };
	unsigned char *code;
	uint64_t *larger;

	if (range->end <= range->start)
		return HP_OK;
	if (length > CODE_READ_MAX)
		length = CODE_READ_MAX;
	capacity = length / 2 + 1;
	code = malloc(length);
	larger = realloc(scan->sites, (scan->site_count + capacity) * sizeof(*larger));
	if (!code || !larger) {
		free(code);
		if (larger)
			scan->sites = larger;
		return hp_fail(error, HP_FAILED, "out of memory");
	}
	scan->sites = larger;
	/* Code that cannot be read cannot be run either: nothing returns into it. */
	if (target_memory_read(memory, range->start, code, length, &ignored) == HP_OK) {
		found = code_return_sites(code, length, range->start,
					  scan->sites + scan->site_count, capacity);
		scan->site_count += found;
	}
	free(code);
	return HP_OK;
}

int suspended_scan_prepare(struct hp_suspended_scan *scan, struct hp_memory *memory,
			   const struct hp_range *ranges, size_t count, struct hp_error *error)
{
	size_t unique = 0;
	int status = HP_OK;

	free(scan->sites);
	scan->sites = NULL;
	scan->site_count = 0;
	scan->hit_count = 0;
	for (size_t i = 0; status == HP_OK && i < count; i++)
		status = add_range_sites(scan, memory, &ranges[i], error);
	if (status != HP_OK || scan->site_count == 0)
		return status;
	qsort(scan->sites, scan->site_count, sizeof(*scan->sites), by_value);
	for (size_t i = 0; i < scan->site_count; i++)
		if (unique == 0 || scan->sites[i] != scan->sites[unique - 1])
			scan->sites[unique++] = scan->sites[i];
	scan->site_count = unique;
	return HP_OK;
}

static bool is_site(const struct hp_suspended_scan *scan, uint64_t value)
{
	size_t low = 0, high = scan->site_count;

	while (low < high) {
		size_t middle = low + (high - low) / 2;

		if (scan->sites[middle] == value)
			return true;
		if (scan->sites[middle] < value)
			low = middle + 1;
		else
			high = middle;
	}
	return false;
}

static void add_hit(struct hp_suspended_scan *scan, uint64_t address, uint64_t value)
{
	if (scan->hit_count == scan->hit_capacity) {
		size_t capacity = scan->hit_capacity ? scan->hit_capacity * 2 : 64;
		struct hp_suspended_hit *larger;

		if (capacity > HITS_MAX)
			capacity = HITS_MAX;
		larger = capacity > scan->hit_capacity
				 ? realloc(scan->hits, capacity * sizeof(*larger))
				 : NULL;
		if (!larger) {
			scan->too_many = true;	/* or out of memory: either way, not all kept */
			return;
		}
		scan->hits = larger;
		scan->hit_capacity = capacity;
	}
	scan->hits[scan->hit_count++] = (struct hp_suspended_hit){ address, value };
}

/* A word that looks like a saved context's mark (arch.h) may mark one:
 * its head is read from the buffer, or from the target
 * when it began before the buffer. */
static void note_context(struct hp_suspended_scan *scan, struct hp_memory *memory,
			 const uint64_t *words, size_t index, uint64_t address)
{
	uint64_t mark = address + index * sizeof(uint64_t), context = mark - HP_CONTEXT_MARK;
	unsigned char head[HP_CONTEXT_HEAD];
	struct hp_error ignored = { 0 };

	if (index * sizeof(uint64_t) >= HP_CONTEXT_MARK)
		suspended_note_context(scan, (const unsigned char *)&words[index] - HP_CONTEXT_MARK,
				       context);
	else if (target_memory_read(memory, context, head, sizeof(head), &ignored) == HP_OK)
		suspended_note_context(scan, head, context);
}

static void scan_words(struct hp_suspended_scan *scan, struct hp_memory *memory,
		       const uint64_t *words, size_t count, uint64_t address)
{
	/* One comparison rejects nearly every word: sites span a little code. */
	uint64_t low = scan->sites[0], span = scan->sites[scan->site_count - 1] - low;

	for (size_t i = 0; i < count; i++) {
		uint64_t at = address + i * sizeof(uint64_t);

		if (words[i] - low <= span && is_site(scan, words[i]))
			add_hit(scan, at, words[i]);
		else if (saved_context_is_mark(words[i], at))
			note_context(scan, memory, words, i, address);
	}
}

struct scan_walk {
	struct hp_suspended_scan *scan;
	struct hp_threads *threads;
	struct hp_memory *memory;
	int pagemap;		/* /proc/PID/pagemap, or -1: every page counts as resident */
	uint64_t *entries;
	unsigned char *buffer;
	double deadline;
};

/* Reads and scans [start, end), a run of resident pages; a piece that
 * cannot be read (unmapped meanwhile) is read page by page, and what still
 * fails is gone, holding nothing. */
static void scan_run(struct scan_walk *walk, uint64_t start, uint64_t end)
{
	struct hp_suspended_scan *scan = walk->scan;
	struct hp_memory *memory = walk->memory;
	unsigned char *buffer = walk->buffer;

	for (uint64_t at = start; at < end;) {
		size_t length = end - at < SCAN_CHUNK ? (size_t)(end - at) : SCAN_CHUNK;
		struct hp_error ignored = { 0 };

		/* A seized thread that gets a signal or starts one waits for us:
		 * not for as long as the scan takes. */
		threads_serve(walk->threads);
		if (target_memory_read(memory, at, buffer, length, &ignored) == HP_OK) {
			scan_words(scan, memory, (const uint64_t *)buffer, length / sizeof(uint64_t),
				   at);
		} else {
			for (size_t page = 0; page < length; page += HP_PAGE_SIZE)
				if (target_memory_read(memory, at + page, buffer, HP_PAGE_SIZE,
						       &ignored) == HP_OK)
					scan_words(scan, memory, (const uint64_t *)buffer,
						   HP_PAGE_SIZE / sizeof(uint64_t), at + page);
		}
		scan->bytes_scanned += length;
		at += length;
	}
}

static bool over_budget(const struct scan_walk *walk)
{
	return walk->scan->bytes_scanned >= SCAN_BYTES_MAX || hp_now() > walk->deadline;
}

/* Scans one mapping's resident pages; false when the budget ran out (the
 * rest of it is counted as not read). */
static bool scan_mapping(struct scan_walk *walk, const struct hp_mapping *mapping)
{
	for (uint64_t page = mapping->start; page < mapping->end;) {
		size_t count = (size_t)((mapping->end - page) / HP_PAGE_SIZE);
		ssize_t got = -1;
		uint64_t run = 0;

		threads_serve(walk->threads);
		if (over_budget(walk)) {
			walk->scan->bytes_left += mapping->end - page;
			return false;
		}
		if (count > PAGEMAP_ENTRIES)
			count = PAGEMAP_ENTRIES;
		if (walk->pagemap >= 0)
			got = pread(walk->pagemap, walk->entries, count * sizeof(uint64_t),
				    (off_t)(page / HP_PAGE_SIZE * sizeof(uint64_t)));
		for (size_t i = 0; i <= count; i++) {
			bool resident = i < count && (got < 0 || (size_t)got < (i + 1) * sizeof(uint64_t) ||
						      (walk->entries[i] & (PAGE_PRESENT | PAGE_SWAPPED)));
			uint64_t address = page + i * HP_PAGE_SIZE;

			if (resident && !run)
				run = address;
			if (!resident && run) {
				scan_run(walk, run, address);
				run = 0;
			}
		}
		page += count * HP_PAGE_SIZE;
	}
	return true;
}

/* Memory a suspended frame can be in: a private writable mapping (heap,
 * anonymous, a program's data; stacks are mapped so). */
static bool scannable(const struct hp_mapping *mapping)
{
	return mapping->readable && mapping->writable && !mapping->shared;
}

int suspended_scan_run(struct hp_suspended_scan *scan, struct hp_threads *threads,
		       struct hp_memory *memory, double deadline, struct hp_error *error)
{
	struct scan_walk walk = { .scan = scan, .threads = threads, .memory = memory,
				  .pagemap = -1, .deadline = deadline };
	pid_t pid = threads->pid;
	double started = hp_now();
	char path[64];
	bool within = true;
	int status;

	scan->hit_count = 0;
	scan->context_count = 0;
	scan->bytes_scanned = scan->bytes_left = 0;
	scan->too_many = false;
	proc_maps_release(&scan->maps);
	status = proc_maps_read(pid, &scan->maps, error);
	if (status != HP_OK || scan->site_count == 0)
		return status;
	walk.entries = malloc(PAGEMAP_ENTRIES * sizeof(*walk.entries));
	walk.buffer = malloc(SCAN_CHUNK);
	if (!walk.entries || !walk.buffer) {
		free(walk.entries);
		free(walk.buffer);
		return hp_fail(error, HP_FAILED, "out of memory");
	}
	/* Which pages are resident (or swapped out); without it every page is
	 * read, and untouched ones cost the budget. */
	snprintf(path, sizeof(path), "/proc/%d/pagemap", (int)pid);
	walk.pagemap = open(path, O_RDONLY | O_CLOEXEC);
	for (size_t i = 0; i < scan->maps.count; i++) {
		const struct hp_mapping *mapping = &scan->maps.items[i];

		if (!scannable(mapping))
			continue;
		if (!within)
			scan->bytes_left += mapping->end - mapping->start;
		else
			within = scan_mapping(&walk, mapping);
	}
	if (walk.pagemap >= 0)
		close(walk.pagemap);
	free(walk.entries);
	free(walk.buffer);
	suspended_sort_contexts(scan);
	scan->scans++;
	scan->seconds += hp_now() - started;
	scan->complete = within && !scan->too_many;
	return HP_OK;
}

/* Reads the words of hits[which[0..count)] again in one system call; a word
 * that cannot be read (its memory is gone) reads as 0. */
static void reread(pid_t pid, struct hp_memory *memory, const struct hp_suspended_hit *hits,
		   const size_t *which, size_t count, uint64_t *values)
{
	struct iovec local[REREAD_BATCH], remote[REREAD_BATCH];

	for (size_t i = 0; i < count; i++) {
		local[i] = (struct iovec){ &values[i], sizeof(uint64_t) };
		remote[i] = (struct iovec){ (void *)(uintptr_t)hits[which[i]].address,
					    sizeof(uint64_t) };
	}
	for (size_t done = 0; done < count;) {
		ssize_t got = process_vm_readv(pid, local + done, count - done, remote + done,
					       count - done, 0);

		done += got > 0 ? (size_t)got / sizeof(uint64_t) : 0;
		/* The call stops at the first word it cannot read: that one alone. */
		if (done < count) {
			struct hp_error ignored = { 0 };

			if (target_memory_read(memory, hits[which[done]].address, &values[done],
					       sizeof(uint64_t), &ignored) != HP_OK)
				values[done] = 0;
			done++;
		}
	}
}

static void fill_blocker(const struct hp_stack_checker *checker, const struct hp_suspended_hit *hit,
			 struct hp_blocker *blocker)
{
	memset(blocker, 0, sizeof(*blocker));
	blocker->range = stack_checker_range_at(checker, hit->value - 1);
	blocker->saved_at = hit->address;
	blocker->return_ip = hit->value;
	blocker->frame_count = 1;
	blocker->frames[0] = hit->value;
}

size_t suspended_scan_check(struct hp_suspended_scan *scan, struct hp_memory *memory,
			    const struct hp_threads *threads, const struct hp_stack_checker *checker,
			    struct hp_blocker *blockers, size_t capacity)
{
	struct hp_dead_memory dead;
	size_t which[REREAD_BATCH], found = 0;
	uint64_t values[REREAD_BATCH];
	bool known;

	/* The usual case, and the stop's cost stays as it was. */
	if (scan->hit_count == 0)
		return 0;
	/* Out of memory, nothing is known dead: every copy still there counts. */
	known = dead_memory_open(&dead, scan, memory, threads) == HP_OK;

	/* A batch at a time, until enough are found to say who is in the way. */
	for (size_t i = 0; i < scan->hit_count && found < capacity;) {
		size_t batch = 0;

		for (; i < scan->hit_count && batch < REREAD_BATCH; i++)
			if (!known || !dead_memory_holds(&dead, scan->hits[i].address))
				which[batch++] = i;
		reread(threads->pid, memory, scan->hits, which, batch, values);
		for (size_t b = 0; b < batch && found < capacity; b++)
			if (values[b] == scan->hits[which[b]].value)
				fill_blocker(checker, &scan->hits[which[b]], &blockers[found++]);
	}
	dead_memory_close(&dead);
	return found;
}

void suspended_scan_release(struct hp_suspended_scan *scan)
{
	free(scan->sites);
	free(scan->hits);
	free(scan->contexts);
	proc_maps_release(&scan->maps);
	scan->sites = NULL;
	scan->hits = NULL;
	scan->contexts = NULL;
	scan->site_count = scan->hit_count = scan->hit_capacity = 0;
	scan->context_count = scan->context_capacity = 0;
}
