/* requests.c - accepts or rejects requests by size and counts rejections by
 * reason.  reject() is the one place that counts; requests_report() prints
 * the counts. */
#include "service.h"

enum reason { REASON_NEGATIVE, REASON_EMPTY, REASON_TOO_LARGE, REASONS };

static long rejected[REASONS];
static int last_rejected;
static long checks;

/* Counts a rejected request of `size` bytes; always -1. */
static __attribute__((noinline)) int reject(int size, enum reason reason)
{
	rejected[reason]++;
	last_rejected = size;
	return -1;
}

/* 1 if `size` bytes can hold a request.  Bug: a request smaller than its
 * header passes (same_name.diff). */
static __attribute__((noinline)) int check(int size)
{
	checks++;
	return size > 0;
}

/* The bytes accepted, or -1 for a rejected request.  Bug: a request larger
 * than REQUEST_MAX is accepted (call_helper.diff). */
int handle_request(int size)
{
	if (size < 0)
		return reject(size, REASON_NEGATIVE);
	if (!check(size))
		return reject(size, REASON_EMPTY);
	return size;
}

/* The largest request the service takes. */
int request_capacity(void)
{
	return REQUEST_MAX;
}

void requests_report(long *empty, long *too_large, long *checked, int *last)
{
	*empty = rejected[REASON_EMPTY];
	*too_large = rejected[REASON_TOO_LARGE];
	*checked = checks;
	*last = last_rejected;
}
