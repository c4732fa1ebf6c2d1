/* revert.c - hp_revert and hp_list: taking a patch back out, and reading
 * what is applied.  Revert checks stacks against the patch's own code and
 * trampolines, puts the saved bytes back while every thread is stopped, and
 * only then unloads the patch. */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/session.h"
#include "common/base.h"
#include "runtime/state.h"
#include "runtime/target.h"
#include "runtime/threads.h"

/* Threads unwound before the stop, one of each kind (see warm_unwinder). */
#define WARM_KINDS_MAX 8
#define WARM_STOP_SECONDS 0.2

/* By sequence number when one is given (it tells copies of one patch
 * apart), else by name, else the newest. */
static long find_patch(const struct hp_state *state, const char *name, uint64_t sequence)
{
	for (size_t i = state->patch_count; i-- > 0;)
		if (state->patches[i]->status != HP_STATE_REMOVED &&
		    (sequence ? state->patches[i]->sequence == sequence
			      : !name || strcmp(state->patches[i]->name, name) == 0))
			return (long)i;
	return -1;
}

/* A later patch on one of the same functions saved our jump as its
 * "original" bytes; taking ours out first would break it. */
static long later_dependent(const struct hp_state *state, size_t index)
{
	const struct hp_state_patch *patch = state->patches[index];

	for (size_t later = index + 1; later < state->patch_count; later++)
		for (uint32_t f = 0; f < patch->function_count; f++)
			if (state->patches[later]->status != HP_STATE_REMOVED &&
			    patch_state_latest_for(state, patch->functions[f].address, later + 1) ==
				    (long)later)
				return (long)later;
	return -1;
}

static int choose(struct hp_session *session, const struct hp_request *request, size_t *index,
		  struct hp_error *error)
{
	const char *name = request->patch_name;
	long found = find_patch(&session->state, name, request->patch_sequence), dependent;

	if (found < 0) {
		hp_hint(error, "see what is applied with: hotpatch list --pid %d", (int)session->pid);
		if (request->patch_sequence)
			return hp_fail(error, HP_MISFIT,
				       "no patch of sequence number %" PRIu64 " is applied to pid %d",
				       request->patch_sequence, (int)session->pid);
		if (name)
			return hp_fail_as(error, HP_KIND_NOT_APPLIED, "no patch named %s is applied to pid %d", name,
				       (int)session->pid);
		return hp_fail_as(error, HP_KIND_NOT_APPLIED, "no patch is applied to pid %d", (int)session->pid);
	}
	dependent = later_dependent(&session->state, (size_t)found);
	if (dependent >= 0) {
		hp_hint(error, "revert %s first", session->state.patches[dependent]->name);
		return hp_fail_as(error, HP_KIND_DEPENDS, "patch %s cannot be reverted while %s replaces the same function",
			       session->state.patches[found]->name,
			       session->state.patches[dependent]->name);
	}
	*index = (size_t)found;
	return HP_OK;
}

static int build_ranges(const struct hp_state_patch *patch, struct hp_range **ranges,
			size_t *count, struct hp_error *error)
{
	*count = 0;
	*ranges = calloc(1 + patch->page_count, sizeof(**ranges));
	if (!*ranges)
		return hp_fail(error, HP_FAILED, "out of memory");
	(*ranges)[(*count)++] = (struct hp_range){ patch->text_start, patch->text_end, patch->name };
	for (uint32_t p = 0; p < patch->page_count; p++)
		(*ranges)[(*count)++] = (struct hp_range){ patch->pages[p],
							   patch->pages[p] + HP_PAGE_SIZE,
							   patch->name };
	return HP_OK;
}

/* Read while the target runs: only we write its code, under our lock.
 * Then every site is rewritten with the bytes it holds now (a jump, or the
 * original bytes where a half-applied patch never wrote one), as apply's
 * prefault_jump_sites does: whatever a site's first write costs (a page made
 * private, the write buffer's first allocation) is paid here, not while
 * every thread is stopped. */
static int check_bytes_are_ours(struct hp_session *session, size_t index, struct hp_error *error)
{
	const struct hp_state_patch *patch = session->state.patches[index];
	struct hp_text_piece *pieces = calloc(patch->function_count ? patch->function_count : 1,
					      sizeof(*pieces));
	size_t used = 0;
	int status = pieces ? HP_OK : hp_fail(error, HP_FAILED, "out of memory");

	for (uint32_t f = 0; status == HP_OK && f < patch->function_count; f++) {
		const struct hp_state_function *function = &patch->functions[f];
		enum hp_text_site site;

		status = text_site_read(&session->memory, function, &site, error);
		/* A half-applied patch may not have written this one yet. */
		if (status == HP_OK && (site == HP_SITE_JUMP || site == HP_SITE_ORIGINAL))
			pieces[used++] = (struct hp_text_piece){
				function->jump_address,
				site == HP_SITE_JUMP ? function->written : function->saved,
				function->length
			};
		if (status == HP_OK && site == HP_SITE_FOREIGN) {
			hp_error_function(error, function->function);
			status = hp_fail(error, HP_FAILED,
					 "the code of %s in pid %d was changed by something else; not reverting",
					 function->function, (int)session->pid);
		}
	}
	if (status == HP_OK)
		status = text_write(&session->memory, 0, pieces, used, error);
	free(pieces);
	return status;
}

/* The first unwind of a stack costs far more than the next ones: the code's
 * unwind tables are read from the target, the unwinder's cache and
 * libunwind's own state are touched for the first time (each a page fault
 * here).  Apply pays that for one thread while choosing the thread it
 * borrows, before its stop; revert borrows no thread before its stop, so it
 * paid all of it inside, 0.5-1 ms more than apply.  So one thread of each
 * kind (blocked in one system call, or running) is stopped alone, unwound
 * and let go, while the others run.  Only a cost is at stake: whatever goes
 * wrong here is left to the real stop to find. */
static void warm_unwinder(struct hp_session *session)
{
	long kinds[WARM_KINDS_MAX];
	size_t kind_count = 0, count = 0;
	pid_t *tids = NULL;
	struct hp_error ignored = { 0 };

	if (threads_list(session->pid, &tids, &count, &ignored) != HP_OK)
		return;
	stack_checker_reserve(session->checker, count + 64);
	for (size_t i = 0; i < count && kind_count < WARM_KINDS_MAX; i++) {
		long kind = thread_blocked_syscall(session->pid, tids[i]);
		const struct hp_thread *thread;
		size_t k = 0;

		while (k < kind_count && kinds[k] != kind)
			k++;
		if (k < kind_count)
			continue;
		kinds[kind_count++] = kind;
		memset(&ignored, 0, sizeof(ignored));
		if (threads_stop_one(&session->threads, tids[i], hp_now() + WARM_STOP_SECONDS,
				     &ignored) == HP_OK &&
		    (thread = threads_find(&session->threads, tids[i]))) {
			stack_checker_new_stop(session->checker);
			stack_checker_unwind(session->checker, thread);
		}
		threads_resume_all(&session->threads);
	}
	free(tids);
}

static int restore_bytes(struct hp_session *session, size_t index, struct hp_error *error)
{
	struct hp_state_patch *patch = session->state.patches[index];
	pid_t tid = threads_first_stopped(&session->threads);
	int status = text_write_functions(&session->memory, tid, patch, HP_TEXT_SAVED,
					  patch->function_count, error);

	patch->status = HP_STATE_REMOVED;
	if (status == HP_OK)
		status = patch_state_write_status(&session->state, index, &session->memory, tid,
						  error);
	return status;
}

static int fill_one(const struct hp_state_patch *patch, struct hp_patch_report *report,
		    struct hp_error *error)
{
	report->functions = calloc(patch->function_count ? patch->function_count : 1,
				   sizeof(*report->functions));
	if (!report->functions)
		return hp_fail(error, HP_FAILED, "out of memory");
	session_fill_report(patch, report);
	return HP_OK;
}

/* The last patch out, the state and stub page go as well.  Best effort: the
 * revert is done whatever happens here, and what stays is taken over by the
 * next command. */
static void remove_empty_state(struct hp_session *session)
{
	struct hp_error ignored = { .pid = session->pid };

	if (state_remove_if_empty(session, &ignored) != HP_OK)
		hp_error_release(&ignored);
}

int hp_revert(const struct hp_request *request, struct hp_result *result,
	      struct hp_error *error)
{
	struct hp_session session;
	struct hp_range *ranges = NULL;
	size_t index = 0, range_count = 0;
	double stopped_at = 0;
	int status;

	memset(result, 0, sizeof(*result));
	status = session_open(&session, request, true, error);
	if (status == HP_OK) {
		session.command = "revert";
		status = leftovers_take_back(&session, true, result, error);
	}
	/* Nothing applied, nothing left once leftovers are taken back: the
	 * state goes too, and revert then says there is nothing to revert. */
	if (status == HP_OK && find_patch(&session.state, NULL, 0) < 0)
		remove_empty_state(&session);
	if (status == HP_OK)
		status = choose(&session, request, &index, error);
	if (status == HP_OK)
		status = build_ranges(session.state.patches[index], &ranges, &range_count, error);
	if (status == HP_OK)
		status = check_bytes_are_ours(&session, index, error);
	if (status == HP_OK)
		status = session_mark_running(&session, error);
	if (status == HP_OK)
		warm_unwinder(&session);
	if (status == HP_OK)
		status = session_stop_when_clear(&session, ranges, range_count, &result->attempts,
						 &stopped_at, error);
	if (status == HP_OK) {
		status = restore_bytes(&session, index, error);
		threads_resume_all(&session.threads);
		if (status == HP_OK && process_has_exited(session.pid))
			status = hp_fail_as(error, HP_KIND_TARGET_EXITED, "pid %d exited during revert",
					 (int)session.pid);
		result->blackout_seconds = hp_now() - stopped_at;
		if (session.longest_stop > result->blackout_seconds)
			result->blackout_seconds = session.longest_stop;
	}
	if (status == HP_OK) {
		result->patches = calloc(1, sizeof(*result->patches));
		status = result->patches ? fill_one(session.state.patches[index], result->patches, error)
					 : hp_fail(error, HP_FAILED, "out of memory");
		result->patch_count = result->patches ? 1 : 0;
		hp_copy_string(result->patches[0].state, sizeof(result->patches[0].state),
			       "reverted");
	}
	if (status == HP_OK && hp_fault("kill-after-restore"))
		raise(SIGKILL);	/* the test build's way to die between restore and unload */
	if (status == HP_OK)
		status = session_unload_patch(&session, session.state.patches[index]->handle,
					      session.state.patches[index]->pages,
					      session.state.patches[index]->page_count, error);
	if (status == HP_OK) {
		patch_state_remove(&session.state, index);
		status = patch_state_write(&session.state, &session.memory, error);
	}
	if (status == HP_OK) {
		remove_empty_state(&session);
		/* Its check stopped every thread too: the longest stop counts. */
		if (session.longest_stop > result->blackout_seconds)
			result->blackout_seconds = session.longest_stop;
	}
	result->thread_count = session.thread_count;
	result->elapsed_seconds = hp_now() - session.start;
	free(ranges);
	session_close(&session);
	return status;
}

/* A record that leftovers.c counts as a leftover is no applied patch. */
static bool is_leftover_record(const struct hp_leftovers *found, size_t index)
{
	for (size_t i = 0; i < found->count; i++)
		if (found->items[i].kind == HP_LEFTOVER_RECORD && found->items[i].record == (long)index)
			return true;
	return false;
}

/* An incomplete patch (some jumps written by a killed hotpatch, not all)
 * is no state to leave a process in: what puts it right is a revert. */
static void note_next_step(pid_t pid, const struct hp_state_patch *patch,
			   struct hp_patch_report *report)
{
	snprintf(report->next_step, sizeof(report->next_step), "hotpatch revert --pid %d %s",
		 (int)pid, patch->name);
}

/* How often list looks again when a command came and went while it read. */
#define LIST_TRIES 5

/* The records while another command is at work: the state as it was before
 * that command, plus what it has recorded but not finished ("in progress");
 * nothing is taken for a killed command's leftover meanwhile. */
static int list_patches(struct hp_session *session, const struct hp_leftovers *found,
			bool at_work, struct hp_result *result, struct hp_error *error)
{
	const struct hp_state *state = &session->state;
	int status = HP_OK;

	if (state->patch_count) {
		result->patches = calloc(state->patch_count, sizeof(*result->patches));
		if (!result->patches)
			return hp_fail(error, HP_FAILED, "out of memory");
	}
	for (size_t i = state->patch_count; status == HP_OK && i-- > 0;) {
		const struct hp_state_patch *patch = state->patches[i];
		struct hp_patch_report *report;

		if (patch->status == HP_STATE_REMOVED || is_leftover_record(found, i))
			continue;
		report = &result->patches[result->patch_count++];
		status = fill_one(patch, report, error);
		if (at_work && patch->status != HP_STATE_APPLIED)
			hp_copy_string(report->state, sizeof(report->state), "in progress");
		else if (status == HP_OK && patch->status != HP_STATE_APPLIED)
			note_next_step(session->pid, patch, report);
	}
	return status;
}

static void note_at_work(const struct hp_session *session, struct hp_result *result)
{
	const struct hp_state_command *running = &session->state.running;

	result->at_work = true;
	memset(&result->working, 0, sizeof(result->working));
	if (!running->name[0])
		return;
	hp_copy_string(result->working.command, sizeof(result->working.command), running->name);
	result->working.pid = (pid_t)running->pid;
	result->working.started = running->started;
}

/* One look: the state, then (when no command holds the lock) what killed
 * commands left.  *again when a command came and went meanwhile. */
static int list_once(const struct hp_request *request, struct hp_session *session,
		     struct hp_leftovers *found, bool *at_work, bool *again,
		     struct hp_error *error)
{
	bool held = session_lock_held(request->pid);
	uint64_t generation = 0;
	int status = session_open_as(session, request, false, false, error);

	*again = false;
	if (status == HP_OK && !held)
		status = leftovers_find(session, found, error);
	if (status != HP_OK)
		return status;
	*at_work = held || session_lock_held(request->pid);
	if (*at_work)
		return HP_OK;
	if (!patch_state_generation(&session->memory, &session->state, &generation) ||
	    generation != session->state.generation) {
		*again = true;
		return HP_OK;
	}
	/* No command held the lock before or after, and none wrote meanwhile:
	 * a command the state says is at work was killed. */
	session->previous = session->state.running;
	return HP_OK;
}

int hp_list(const struct hp_request *request, struct hp_result *result, struct hp_error *error)
{
	struct hp_session session;
	struct hp_leftovers found = { 0 };
	bool at_work = false, again = true;
	int status = HP_OK;

	memset(result, 0, sizeof(*result));
	memset(&session, 0, sizeof(session));
	session.lock_fd = -1;
	session.memory.mem_fd = -1;
	for (int tries = 0; status == HP_OK && again; tries++) {
		session_close(&session);
		leftovers_release(&found);
		memset(&found, 0, sizeof(found));
		status = list_once(request, &session, &found, &at_work, &again, error);
		/* Commands keep coming: show the last reading as one at work. */
		if (again && tries + 1 >= LIST_TRIES)
			again = false, at_work = true;
	}
	if (status == HP_OK && at_work) {
		leftovers_release(&found);
		memset(&found, 0, sizeof(found));
		note_at_work(&session, result);
	}
	if (status == HP_OK)
		status = leftovers_report(&session, &found, result, error);
	if (status == HP_OK)
		status = list_patches(&session, &found, at_work, result, error);
	if (status == HP_OK)
		family_note_patches(session.pid, result);
	result->elapsed_seconds = hp_now() - session.start;
	leftovers_release(&found);
	session_close(&session);
	return status;
}
