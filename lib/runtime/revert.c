/* revert.c - hp_revert and hp_list: taking a patch back out, and reading
 * what is applied.  Revert checks stacks against the patch's own code and
 * trampolines, puts the saved bytes back while every thread is stopped, and
 * only then unloads the patch.  A patch applied through gates is taken out
 * the same way backwards, while every thread runs (transition.c): each
 * thread moved back to the original code alone, then the entries' bytes,
 * then the gates drained. */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/session.h"
#include "common/base.h"
#include "runtime/state.h"
#include "runtime/steps.h"
#include "runtime/target.h"
#include "runtime/threads.h"

/* Threads unwound before the stop, one of each kind (see warm_unwinder). */
#define WARM_KINDS_MAX 8
#define WARM_STOP_SECONDS 0.2
/* Borrowing a thread for the post-revert hook when the deadline is spent. */
#define HOOK_BUDGET 5.0

struct revert_work {
	const struct hp_request *request;
	struct hp_result *result;
	struct hp_session session;
	size_t index;			/* the patch taken out, in the state */
	struct hp_range *ranges;
	size_t range_count;
	struct hp_text_piece *before;	/* each site's bytes before the restore */
	size_t before_count;
	double stopped_at;
	struct hp_range *old_code;	/* the replaced functions' bodies */
	size_t old_count;
	struct hp_transition transition;	/* the no-stop way, when taken */
	char hook_warning[HP_TEXT_MAX];	/* what the post-revert hook did wrong, or "" */
	bool keep_loaded;		/* its thread is still in the post-revert hook */
};

/* Through the gates with no global stop: every thread was moved back alone. */
static bool without_stop(const struct revert_work *work)
{
	return work->transition.active && !work->transition.stopped_all;
}

/* The record says "incomplete" while threads go back one by one: killed
 * half way, the patch is for a revert to finish (with a global stop). */
static int write_record_status(struct revert_work *work, uint32_t status_word,
			       struct hp_error *error)
{
	struct hp_state_patch *patch = work->session.state.patches[work->index];

	patch->status = status_word;
	return patch_state_write_status(&work->session.state, work->index, &work->session.memory,
					0, error);
}

/* A revert hook the record names, checked to be the patch's own code. */
static int recorded_hook(const struct hp_session *session, const struct hp_state_patch *patch,
			 uint64_t address, const char *which, struct hp_error *error)
{
	if (hook_in_patch(session, patch, address))
		return HP_OK;
	hp_hint(error, "the state in the process is damaged; see hotpatch list --pid %d",
		(int)session->pid);
	return hp_fail(error, HP_FAILED,
		       "the %s hook patch %s records in pid %d is not its code (0x%" PRIx64 ")",
		       which, patch->name, (int)session->pid, address);
}

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
		(*ranges)[(*count)++] = (struct hp_range){
			patch->pages[p], patch->pages[p] + patch_state_code_length(patch, p), patch->name
		};
	return HP_OK;
}

/* Read while the target runs: only we write its code, under our lock.
 * Then every site is rewritten with the bytes it holds now (a jump, or the
 * original bytes where a half-applied patch never wrote one), as apply's
 * prefault_jump_sites does: whatever a site's first write costs (a page made
 * private, the write buffer's first allocation) is paid here, not while
 * every thread is stopped.  Those bytes are kept: a restore that fails half
 * way puts them back. */
static int check_bytes_are_ours(void *data, struct hp_error *error)
{
	struct revert_work *work = data;
	struct hp_session *session = &work->session;
	const struct hp_state_patch *patch = session->state.patches[work->index];
	struct hp_text_piece *pieces = calloc(patch->function_count ? patch->function_count : 1,
					      sizeof(*pieces));
	size_t used = 0;
	int status = pieces ? HP_OK : hp_fail(error, HP_FAILED, "out of memory");

	work->before = pieces;
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
	work->before_count = used;
	if (status == HP_OK)
		status = text_write(&session->memory, 0, pieces, used, error);
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

/* The commit through the gates, every thread already back: the entries'
 * bytes back by the target's own stores, then the record says so (killed
 * in between, the patch is incomplete with its entries restored, and
 * revert finishes it). */
static int restore_through_gates(struct revert_work *work, struct hp_error *error)
{
	struct hp_session *session = &work->session;
	struct hp_error ignored = { 0 };
	int status;

	if (hp_fault("restore"))
		return hp_fault_fail(error, "restore");
	status = transition_revert_entries(session, &work->transition, error);
	if (status == HP_OK && write_record_status(work, HP_STATE_REMOVED, &ignored) != HP_OK)
		hp_error_release(&ignored);	/* the next command finds the entries restored */
	return status;
}

/* The commit, with every thread stopped: a failure half way puts back the
 * bytes each site held before, before the threads are resumed. */
static int restore_bytes(void *data, struct hp_error *error)
{
	struct revert_work *work = data;
	struct hp_session *session = &work->session;
	struct hp_state_patch *patch = session->state.patches[work->index];
	uint32_t status_before = patch->status;
	pid_t tid = threads_first_stopped(&session->threads);
	struct hp_error ignored = { 0 };
	int status;

	if (without_stop(work))
		return restore_through_gates(work, error);
	if (hp_fault("restore")) {
		/* Half the functions, then a failure: the step must undo them. */
		status = text_write_functions(&session->memory, tid, patch, HP_TEXT_SAVED,
					      (patch->function_count + 1) / 2, error);
		status = status == HP_OK ? hp_fault_fail(error, "restore") : status;
	} else {
		status = text_write_functions(&session->memory, tid, patch, HP_TEXT_SAVED,
					      patch->function_count, error);
		patch->status = HP_STATE_REMOVED;
		if (status == HP_OK)
			status = patch_state_write_status(&session->state, work->index,
							  &session->memory, tid, error);
	}
	if (status == HP_OK)
		return HP_OK;
	if (text_write(&session->memory, tid, work->before, work->before_count, &ignored) != HP_OK)
		memset(&ignored, 0, sizeof(ignored));
	patch->status = status_before;
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

static int map_target(void *data, struct hp_error *error)
{
	struct revert_work *work = data;
	int status = session_open(&work->session, work->request, true, error);

	if (status != HP_OK)
		return status;
	work->session.command = "revert";
	status = leftovers_take_back(&work->session, true, work->result, error);
	/* Nothing applied, nothing left once leftovers are taken back: the
	 * state goes too, and revert then says there is nothing to revert. */
	if (status == HP_OK && find_patch(&work->session.state, NULL, 0) < 0)
		remove_empty_state(&work->session);
	return status;
}

static int choose_patch(void *data, struct hp_error *error)
{
	struct revert_work *work = data;

	return choose(&work->session, work->request, &work->index, error);
}

/* The replaced bodies, which a rollback through the gates checks against. */
static int build_old_code(const struct hp_state_patch *patch, struct hp_range **ranges,
			  size_t *count, struct hp_error *error)
{
	*count = 0;
	*ranges = calloc(patch->function_count ? patch->function_count : 1, sizeof(**ranges));
	if (!*ranges)
		return hp_fail(error, HP_FAILED, "out of memory");
	for (uint32_t f = 0; f < patch->function_count; f++)
		(*ranges)[(*count)++] = (struct hp_range){
			patch->functions[f].address,
			patch->functions[f].address + patch->functions[f].size,
			patch->functions[f].function
		};
	return HP_OK;
}

static int plan_ranges(void *data, struct hp_error *error)
{
	struct revert_work *work = data;
	const struct hp_state_patch *patch = work->session.state.patches[work->index];
	int status = build_ranges(patch, &work->ranges, &work->range_count, error);

	if (status == HP_OK)
		status = build_old_code(patch, &work->old_code, &work->old_count, error);
	if (status != HP_OK)
		return status;
	if (work->request->stop_all) {
		hp_copy_string(work->transition.why_not, sizeof(work->transition.why_not),
			       "--stop-all");
		return HP_OK;
	}
	return transition_from_record(&work->session, patch, &work->transition, error);
}

static int mark_running(void *data, struct hp_error *error)
{
	struct revert_work *work = data;

	return session_mark_running(&work->session, error);
}

/* The patch's own check before it goes: a result other than 0 keeps it. */
static int pre_revert_hook(void *data, struct hp_error *error)
{
	struct revert_work *work = data;
	const struct hp_state_patch *patch = work->session.state.patches[work->index];
	bool running = false;
	int returned = 0, status;

	if (!patch->pre_revert)
		return HP_OK;
	status = recorded_hook(&work->session, patch, patch->pre_revert, "pre-revert", error);
	if (status == HP_OK)
		status = hook_run(&work->session, patch->name, "pre-revert", patch->pre_revert,
				  &returned, &running, error);
	if (status != HP_OK || returned == 0)
		return status;
	hp_hint(error, "the patch's own check refused to be taken out now; see its documentation");
	return hp_fail(error, HP_MISFIT,
		       "the pre-revert hook of patch %s returned %d in pid %d; it stays applied",
		       patch->name, returned, (int)work->session.pid);
}

/* Once the original code is back and before the patch is unloaded: the
 * revert is done whatever it does, so what goes wrong is a warning. */
static int post_revert_hook(void *data, struct hp_error *error)
{
	struct revert_work *work = data;
	const struct hp_state_patch *patch = work->session.state.patches[work->index];
	struct hp_error hook_error = { .pid = work->session.pid };
	bool running = false;
	int returned = 0;

	(void)error;
	if (!patch->post_revert)
		return HP_OK;
	if (work->session.deadline < hp_now() + HOOK_BUDGET)
		work->session.deadline = hp_now() + HOOK_BUDGET;
	if (recorded_hook(&work->session, patch, patch->post_revert, "post-revert", &hook_error) !=
		    HP_OK ||
	    hook_run(&work->session, patch->name, "post-revert", patch->post_revert, &returned,
		     &running, &hook_error) != HP_OK)
		hp_copy_string(work->hook_warning, sizeof(work->hook_warning), hook_error.message);
	else if (returned != 0)
		snprintf(work->hook_warning, sizeof(work->hook_warning),
			 "its post-revert hook returned %d", returned);
	/* Its thread is still in the hook: the patch stays loaded, a leftover
	 * the next command takes back once no thread runs in it. */
	work->keep_loaded = running;
	hp_error_release(&hook_error);
	return HP_OK;
}

static int warm_up(void *data, struct hp_error *error)
{
	struct revert_work *work = data;

	(void)error;
	if (!work->transition.active)
		warm_unwinder(&work->session);
	return HP_OK;
}

/* Undo of move_back (and its own when it fails): each thread moved back
 * returns to the new code; the record says "applied" again. */
static int move_forward(void *data, struct hp_error *error)
{
	struct revert_work *work = data;
	int status;

	if (!work->transition.active)
		return HP_OK;
	status = transition_move_forward(&work->session, &work->transition, work->old_code,
					 work->old_count, error);
	if (status == HP_OK)
		status = write_record_status(work, HP_STATE_APPLIED, error);
	return status;
}

static int move_back(void *data, struct hp_error *error)
{
	struct revert_work *work = data;
	int status;

	if (!work->transition.active)
		return HP_OK;
	status = write_record_status(work, HP_STATE_PENDING, error);
	if (status == HP_OK)
		status = transition_move_back(&work->session, &work->transition, work->ranges,
					      work->range_count, &work->result->attempts, error);
	/* Its own half taken back: every thread on the new code again. */
	if (status != HP_OK) {
		struct hp_error ignored = { 0 };

		if (move_forward(work, &ignored) != HP_OK) {
			hp_hint(error, "%s", ignored.message);
			hp_error_release(&ignored);
		}
	}
	return status;
}

static int stop_threads(void *data, struct hp_error *error)
{
	struct revert_work *work = data;

	if (without_stop(work))
		return HP_OK;
	return session_stop_when_clear(&work->session, work->ranges, work->range_count,
				       &work->result->attempts, &work->stopped_at, error);
}

/* Undo of stop_threads, and the end of the blackout after the restore. */
static int resume_threads(void *data, struct hp_error *error)
{
	struct revert_work *work = data;
	struct hp_result *result = work->result;

	(void)error;
	threads_resume_all(&work->session.threads);
	/* Through the gates nothing was held at once: the longest stop was one
	 * thread's own. */
	result->blackout_seconds = without_stop(work) ? 0 : hp_now() - work->stopped_at;
	if (work->session.longest_stop > result->blackout_seconds)
		result->blackout_seconds = work->session.longest_stop;
	return HP_OK;
}

static int resume_after_restore(void *data, struct hp_error *error)
{
	struct revert_work *work = data;
	int status = resume_threads(work, error);

	if (status == HP_OK && process_has_exited(work->session.pid))
		status = hp_fail_as(error, HP_KIND_TARGET_EXITED, "pid %d exited during revert",
				    (int)work->session.pid);
	return status;
}

/* A thread may still be in a gate it entered before the entries went
 * back: the gates and the patch stay until every thread was seen out of
 * them once (else the next command takes them back, as leftovers). */
static int drain_gates(void *data, struct hp_error *error)
{
	struct revert_work *work = data;
	struct hp_error ignored = { 0 };

	(void)error;
	if (!without_stop(work))
		return HP_OK;
	if (transition_drain(&work->session, &work->transition, &ignored) != HP_OK) {
		hp_error_release(&ignored);
		work->keep_loaded = true;
	}
	return HP_OK;
}

static int report_reverted(void *data, struct hp_error *error)
{
	struct revert_work *work = data;
	struct hp_result *result = work->result;
	int status;

	result->patches = calloc(1, sizeof(*result->patches));
	if (!result->patches)
		return hp_fail(error, HP_FAILED, "out of memory");
	result->patch_count = 1;
	status = fill_one(work->session.state.patches[work->index], result->patches, error);
	hp_copy_string(result->patches[0].state, sizeof(result->patches[0].state), "reverted");
	hp_copy_string(result->patches[0].warning, sizeof(result->patches[0].warning),
		       work->hook_warning);
	return status;
}

static int unload_patch(void *data, struct hp_error *error)
{
	struct revert_work *work = data;
	const struct hp_state_patch *patch = work->session.state.patches[work->index];

	if (work->keep_loaded)
		return HP_OK;
	return session_unload_patch(&work->session, patch->handle, patch, error);
}

static int forget_patch(void *data, struct hp_error *error)
{
	struct revert_work *work = data;

	/* Still loaded: the reverted record names it for the next command. */
	if (work->keep_loaded)
		return HP_OK;
	patch_state_remove(&work->session.state, work->index);
	return patch_state_write(&work->session.state, &work->session.memory, error);
}

/* The last patch out, nothing of ours is left: the state and stub page go. */
static int remove_state(void *data, struct hp_error *error)
{
	struct revert_work *work = data;

	(void)error;
	remove_empty_state(&work->session);
	/* Its check stopped every thread too: the longest stop counts. */
	if (work->session.longest_stop > work->result->blackout_seconds)
		work->result->blackout_seconds = work->session.longest_stop;
	return HP_OK;
}

/* The story of revert, one step a line (docs/ARCHITECTURE.md tells it too):
 * check while the target runs that the code is as we left it; stop every
 * thread only to check the stacks and restore the bytes; only then unload. */
static const struct hp_step revert_step_table[] = {
	{ "map-target", map_target, NULL, false },
	{ "choose", choose_patch, NULL, false },
	{ "plan", plan_ranges, NULL, false },
	{ "check-bytes", check_bytes_are_ours, NULL, false },
	{ "mark-running", mark_running, NULL, false },
	{ "pre-revert-hook", pre_revert_hook, NULL, false },
	{ "warm-unwinder", warm_up, NULL, false },
	{ "move-back", move_back, move_forward, false },
	{ "stop-threads", stop_threads, resume_threads, false },
	{ "restore", restore_bytes, NULL, true },
	{ "resume-threads", resume_after_restore, NULL, false },
	{ "drain-gates", drain_gates, NULL, false },
	{ "post-revert-hook", post_revert_hook, NULL, false },
	{ "report", report_reverted, NULL, false },
	{ "unload", unload_patch, NULL, false },
	{ "forget", forget_patch, NULL, false },
	{ "remove-state", remove_state, NULL, false },
};

static const struct hp_steps revert_steps = { "revert", revert_step_table,
					      HP_ARRAY_SIZE(revert_step_table) };

int hp_revert(const struct hp_request *request, struct hp_result *result,
	      struct hp_error *error)
{
	/* Never-opened descriptors are -1, so the release below is the one path. */
	struct revert_work work = { .request = request,
				    .result = result,
				    .session = { .lock_fd = -1, .memory = { .mem_fd = -1 } } };
	int status;

	memset(result, 0, sizeof(*result));
	status = steps_run(&revert_steps, &work, request->pid, request->interrupted, error);
	status = session_classify_failure(&work.session, "revert", status, error);
	if (work.ranges) {
		hp_copy_string(result->stop_mode, sizeof(result->stop_mode),
			       without_stop(&work) ? "gates" : "stop-all");
		hp_copy_string(result->stop_all_reason, sizeof(result->stop_all_reason),
			       work.transition.stopped_all ? "threads in the way or suspended frames"
							   : work.transition.why_not);
		result->threads_asleep = work.transition.active ? work.transition.asleep : 0;
	}
	result->thread_count = work.session.thread_count;
	session_report_scan(&work.session, result);
	result->elapsed_seconds = hp_now() - work.session.start;
	free(work.before);
	free(work.ranges);
	free(work.old_code);
	transition_release(&work.transition);
	session_close(&work.session);
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
