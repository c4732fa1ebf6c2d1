/* busy_report.c - the exit-3 error: every thread that kept the patch out,
 * what it was doing there and a short, symbolized backtrace of each, so an
 * operator can tell a hot loop from a thread that never leaves. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/session.h"
#include "common/base.h"
#include "runtime/target.h"

#define THREADS_IN_MESSAGE 4
#define THREADS_IN_DETAIL 12

/* The prose detail is never cut: every line fits. */
_Static_assert(THREADS_IN_DETAIL * 2 * HP_TEXT_MAX + HP_TEXT_MAX <=
		       sizeof(((struct hp_error *)0)->detail),
	       "the detail holds every backtrace line");

static void describe_one(const struct hp_blocker *blocker, char *text, size_t size)
{
	if (blocker->saved_at)
		snprintf(text, size,
			 "%s is suspended on a coroutine stack or in a saved context at 0x%" PRIx64
			 " (return address 0x%" PRIx64 ")",
			 blocker->range ? blocker->range->label : "the code changed",
			 blocker->saved_at, blocker->return_ip);
	else if (blocker->range)
		snprintf(text, size, "thread %d %s %s (frame #%zu)", (int)blocker->tid,
			 blocker->frame == 0 ? "is running in" : "will return into",
			 blocker->range->label, blocker->frame);
	else if (blocker->unknown_ip)
		snprintf(text, size,
			 "thread %d cannot be unwound past 0x%" PRIx64 " (no unwind information)",
			 (int)blocker->tid, blocker->unknown_ip);
	else
		snprintf(text, size,
			 "thread %d cannot be unwound past frame #%zu (libunwind error %d)",
			 (int)blocker->tid, blocker->frame_count, blocker->unwind_error);
}

/* A frame in one of our return trampolines is named as such: a killed
 * hotpatch left that thread on its way out of a function. */
static void describe_frame(struct hp_session *session, uint64_t address, char *text,
			   size_t size)
{
	uint64_t first = session->state.stub_page + HP_STUB_TRAMPOLINES;

	if (session->state.stub_page && address >= first &&
	    address < first + (uint64_t)HP_STUB_TRAMPOLINE_COUNT * HP_STUB_TRAMPOLINE_SIZE)
		snprintf(text, size, "0x%" PRIx64 " (return trampoline of hotpatch)", address);
	else
		target_describe_address(&session->target, address, text, size);
}

static void describe_backtrace(struct hp_session *session, const struct hp_blocker *blocker,
			       struct hp_error *error)
{
	char line[HP_TEXT_MAX * 2], frame[HP_TEXT_MAX];
	size_t used = blocker->saved_at
			      ? (size_t)snprintf(line, sizeof(line), "suspended at 0x%" PRIx64 ":",
						 blocker->saved_at)
			      : (size_t)snprintf(line, sizeof(line), "thread %d:", (int)blocker->tid);

	for (size_t i = 0; i < blocker->frame_count && i < HP_BACKTRACE_SHORT; i++) {
		describe_frame(session, blocker->frames[i], frame, sizeof(frame));
		if (used < sizeof(line))
			used += (size_t)snprintf(line + used, sizeof(line) - used, " #%zu %s", i,
						 frame);
	}
	if (blocker->frame_count > HP_BACKTRACE_SHORT && used < sizeof(line))
		snprintf(line + used, sizeof(line) - used, " ...");
	hp_detail(error, "%s", line);
}

/* Every blocker, for the JSON array; the prose names only the first few. */
static void report_blockers(struct hp_session *session, struct hp_error *error)
{
	struct hp_blocker_report *reports = calloc(session->blocker_count, sizeof(*reports));

	_Static_assert(HP_BACKTRACE_SHORT <= sizeof(reports->frames) / sizeof(reports->frames[0]),
		       "a report holds every frame a blocker keeps");
	if (!reports)
		return;		/* the prose still names them */
	for (size_t i = 0; i < session->blocker_count; i++) {
		const struct hp_blocker *blocker = &session->blockers[i];
		struct hp_blocker_report *report = &reports[i];

		report->tid = blocker->tid;
		hp_copy_string(report->reason, sizeof(report->reason),
			       blocker->saved_at     ? "suspended"
			       : !blocker->range     ? "unwinding"
			       : blocker->frame == 0 ? "running"
						     : "returning");
		report->saved_at = blocker->saved_at;
		if (blocker->range)
			hp_copy_string(report->function, sizeof(report->function),
				       blocker->range->label);
		report->frame = blocker->frame;
		report->unknown_ip = blocker->unknown_ip;
		report->unwind_error = blocker->unwind_error;
		report->frame_count = blocker->frame_count < HP_BACKTRACE_SHORT ? blocker->frame_count
										 : HP_BACKTRACE_SHORT;
		for (size_t f = 0; f < report->frame_count; f++)
			describe_frame(session, blocker->frames[f], report->frames[f],
				       sizeof(report->frames[f]));
	}
	hp_error_release(error);
	error->blockers = reports;
	error->blocker_count = session->blocker_count;
}

void session_describe_blockers(struct hp_session *session, struct hp_error *error)
{
	const struct hp_blocker *blockers = session->blockers;
	size_t count = session->blocker_count;
	char list[2 * HP_TEXT_MAX] = "", one[HP_TEXT_MAX];
	bool unreliable = false;
	size_t used = 0, suspended = 0;

	if (count == 0)
		return;
	error->detail[0] = '\0';
	for (size_t i = 0; i < count; i++) {
		unreliable |= !blockers[i].range && !blockers[i].saved_at;
		suspended += blockers[i].saved_at != 0;
		if (i < THREADS_IN_DETAIL)
			describe_backtrace(session, &blockers[i], error);
		if (i >= THREADS_IN_MESSAGE)
			continue;
		describe_one(&blockers[i], one, sizeof(one));
		if (used < sizeof(list))
			used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s",
						 i ? "; " : "", one);
	}
	if (count > THREADS_IN_DETAIL)
		hp_detail(error, "(and %zu more %s)", count - THREADS_IN_DETAIL,
			  suspended ? "in the way" : "threads");
	report_blockers(session, error);
	error->tid = blockers[0].tid;
	if (blockers[0].range)
		hp_error_function(error, blockers[0].range->label);
	if (suspended)
		hp_hint(error, "retry once the coroutine has left it, or with a longer --timeout; "
			       "if that memory holds no live coroutine, --allow-suspended");
	else if (unreliable)
		hp_hint(error, "a stack that cannot be unwound is not known to be safe; if you "
			       "know it is, use --allow-unreliable-stacks");
	else
		hp_hint(error, "retry later or with a longer --timeout");
	if (count == 1)
		hp_fail(error, HP_BUSY, "pid %d: %s", (int)session->pid, list);
	else if (count <= THREADS_IN_MESSAGE)
		hp_fail(error, HP_BUSY, "%zu %s of pid %d are in the way: %s", count,
			suspended ? "suspended frames" : "threads", (int)session->pid, list);
	else
		hp_fail(error, HP_BUSY, "%zu %s of pid %d are in the way: %s; and %zu more",
			count, suspended ? "suspended frames" : "threads", (int)session->pid, list,
			count - THREADS_IN_MESSAGE);
}
