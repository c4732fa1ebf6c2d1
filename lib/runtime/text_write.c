/* text_write.c - writing many small pieces of code in few system calls.
 * Pieces less than a page apart are written as one span: the bytes between
 * them are read afresh, in the same stop, and written back unchanged.  Only
 * used while every thread is stopped (or, for prefaulting, with the bytes
 * already there), so nothing runs the span while it is rewritten. */
#include <stdlib.h>
#include <string.h>

#include "runtime/target.h"
#include "runtime/state.h"
#include "common/base.h"

#define SPAN_GAP_MAX HP_PAGE_SIZE
#define SPAN_MAX (256u << 10)

/* Kept from one call to the next: the first call, made before a stop to
 * fault the code pages in, also pays for this buffer (an mmap or a heap
 * that grows, and its pages faulted in), so a write inside the stop
 * allocates nothing of that size. */
static unsigned char *span_buffer;

static int by_address(const void *a, const void *b)
{
	const struct hp_text_piece *left = a, *right = b;

	return left->address < right->address ? -1 : left->address > right->address;
}

/* How many pieces from `first` on share one span, and its end. */
static size_t span_of(const struct hp_text_piece *pieces, size_t count, size_t first,
		      uint64_t *end)
{
	size_t last = first;

	*end = pieces[first].address + pieces[first].length;
	while (last + 1 < count && pieces[last + 1].address >= *end &&
	       pieces[last + 1].address - *end <= SPAN_GAP_MAX &&
	       pieces[last + 1].address + pieces[last + 1].length - pieces[first].address <= SPAN_MAX) {
		last++;
		*end = pieces[last].address + pieces[last].length;
	}
	return last - first + 1;
}

static int write_span(struct hp_memory *memory, pid_t stopped_tid,
		      const struct hp_text_piece *pieces, size_t count, uint64_t end,
		      unsigned char *buffer, struct hp_error *error)
{
	uint64_t start = pieces[0].address;
	int status = HP_OK;

	if (count > 1)
		status = target_memory_read(memory, start, buffer, (size_t)(end - start), error);
	for (size_t i = 0; status == HP_OK && i < count; i++)
		memcpy(buffer + (pieces[i].address - start), pieces[i].bytes, pieces[i].length);
	if (status == HP_OK)
		status = target_memory_write(memory, stopped_tid, start, buffer,
					     (size_t)(end - start), error);
	return status;
}

int text_write(struct hp_memory *memory, pid_t stopped_tid, const struct hp_text_piece *pieces,
	       size_t count, struct hp_error *error)
{
	struct hp_text_piece *sorted = count ? malloc(count * sizeof(*sorted)) : NULL;
	unsigned char *buffer = span_buffer ? span_buffer : (span_buffer = malloc(SPAN_MAX));
	int status = HP_OK;

	if ((count && !sorted) || !buffer) {
		free(sorted);
		return hp_fail(error, HP_FAILED, "out of memory");
	}
	if (count)
		memcpy(sorted, pieces, count * sizeof(*sorted));
	qsort(sorted, count, sizeof(*sorted), by_address);
	for (size_t first = 0; status == HP_OK && first < count;) {
		uint64_t end;
		size_t taken = span_of(sorted, count, first, &end);

		status = write_span(memory, stopped_tid, &sorted[first], taken, end, buffer, error);
		first += taken;
	}
	free(sorted);
	return status;
}

int text_write_functions(struct hp_memory *memory, pid_t stopped_tid,
			 const struct hp_state_patch *patch, enum hp_text_bytes which, size_t count,
			 struct hp_error *error)
{
	struct hp_text_piece *pieces = calloc(count ? count : 1, sizeof(*pieces));
	size_t used = 0;
	int status;

	if (!pieces)
		return hp_fail(error, HP_FAILED, "out of memory");
	for (size_t i = 0; i < count && i < patch->function_count; i++) {
		const struct hp_state_function *function = &patch->functions[i];

		/* A record is written before its jumps are planned: skip the unplanned. */
		if (!function->jump_address || !function->length)
			continue;
		pieces[used++] = (struct hp_text_piece){
			function->jump_address,
			which == HP_TEXT_WRITTEN ? function->written : function->saved,
			function->length,
		};
	}
	status = text_write(memory, stopped_tid, pieces, used, error);
	free(pieces);
	return status;
}

int text_site_read(struct hp_memory *memory, const struct hp_state_function *function,
		   enum hp_text_site *site, struct hp_error *error)
{
	unsigned char current[HP_SAVED_MAX];
	int status;

	*site = HP_SITE_UNPLANNED;
	if (!function->jump_address || !function->length || function->length > HP_SAVED_MAX)
		return HP_OK;	/* recorded before its jump was planned */
	status = target_memory_read(memory, function->jump_address, current, function->length,
				    error);
	if (status != HP_OK)
		return status;
	*site = memcmp(current, function->written, function->length) == 0 ? HP_SITE_JUMP
		: memcmp(current, function->saved, function->length) == 0 ? HP_SITE_ORIGINAL
									 : HP_SITE_FOREIGN;
	return HP_OK;
}
