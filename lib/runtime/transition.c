/* transition.c - apply without stopping every thread at once: entries held
 * at gates, each thread checked alone while the others run, one byte that
 * switches every gate.  It owns the gate page and the per-thread checks;
 * apply.c's steps call it, and it never decides what is patched.
 *
 * Why it is safe at every instant, with or without hotpatch alive:
 *
 *  1. prepare (the borrowed thread): a gate page near the functions, named
 *     in the record before it is mapped, holding one gate per function
 *     (arch/x86_64/gate.c draws it) and hotpatch's pidfd, opened in the
 *     target.  Nothing jumps there yet.
 *  2. gate: each entry's first whole instructions (5 bytes or more) are
 *     replaced by a jump to its gate, in ONE aligned 8-byte store made by a
 *     borrowed thread of the target itself (`lock cmpxchg`, the page made
 *     writable around it): a thread fetching those bytes meanwhile sees the
 *     old word or the new one, never a mix (what a write through
 *     /proc/PID/mem cannot promise: the kernel copies with `rep movsb`).
 *     A thread that calls a function from now on waits at its gate, before
 *     any of its code; one already inside runs on in the old body.
 *  3. check: each thread is stopped alone, its stack checked against the
 *     old bodies, and let go; a thread in the way is looked at again
 *     later.  A thread found clear can only enter an old body through a
 *     gate, where it waits: once every thread was seen clear, none is in an
 *     old body and none can get there.
 *  4. decide (the commit): the decision byte, which only hotpatch writes,
 *     becomes 1; every gate sends its callers to the new code from then on.
 *     No thread ran new code before, none runs old code after: the
 *     guarantee of the global stop, without one.
 *
 * A gate that waits asks the kernel each millisecond whether hotpatch is
 * still alive (poll and pidfd_send_signal on the pidfd).  Killed before the
 * decision, hotpatch leaves the byte 0: every gate then runs the displaced
 * instructions and goes on into the original body, and the record, with
 * our jumps in place, is an incomplete patch that `hotpatch revert` takes
 * out (with a global stop).  Killed after it, the byte says new code.  No
 * timer decides anything: a gate decides by the byte alone, and only once
 * hotpatch can no longer change it.  A rollback sets the byte to 2 (the
 * original code), puts each entry back with the same one-store write, and
 * waits until no thread is in the gate page before it is unmapped.
 *
 * Where it cannot be used the apply stops every thread as before
 * (--stop-all): more functions than one gate page holds, a prologue that
 * cannot run elsewhere or whose jump would not fit one aligned word, a
 * cumulative patch or a function patched already, a target in another pid
 * namespace, /proc/PID/mem not writable, a page that cannot be made
 * writable (W^X policies), frames suspended on coroutine stacks, or
 * threads that stay in the way (which the global stop moves out). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "runtime/session.h"
#include "arch/arch.h"
#include "common/base.h"
#include "common/proc_maps.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

#define DECISION_NEW 1
#define DECISION_ORIGINAL 2
/* The share of the timeout spent checking threads one at a time before
 * stopping them all (which can move busy threads out). */
#define ALONE_SHARE 0.25
#define DRAIN_SECONDS 5.0

static bool same_pid_namespace(pid_t pid)
{
	char path[64];
	struct stat ours, theirs;

	snprintf(path, sizeof(path), "/proc/%d/ns/pid", (int)pid);
	return stat("/proc/self/ns/pid", &ours) == 0 && stat(path, &theirs) == 0 &&
	       ours.st_ino == theirs.st_ino && ours.st_dev == theirs.st_dev;
}

/* /proc/PID/mem takes writes without a stopped thread (the decision is
 * written while every thread runs): rewrite one byte of the state. */
static bool memory_writable(struct hp_session *session)
{
	struct hp_error ignored = { 0 };
	unsigned char byte;

	return session->state.address &&
	       target_memory_read(&session->memory, session->state.address, &byte, 1, &ignored) ==
		       HP_OK &&
	       target_memory_write(&session->memory, 0, session->state.address, &byte, 1,
				   &ignored) == HP_OK;
}

static void not_used(struct hp_transition *transition, const char *why)
{
	transition->active = false;
	hp_copy_string(transition->why_not, sizeof(transition->why_not), why);
}

/* Everything that can be known before the target is changed. */
static bool eligible(struct hp_session *session, const struct hp_transition_site *sites,
		     size_t count, struct hp_transition *transition)
{
	if (count > (HP_PAGE_SIZE - HP_GATE_FIRST) / HP_GATE_SIZE) {
		not_used(transition, "more functions than one gate page holds");
		return false;
	}
	for (size_t i = 0; i < count; i++) {
		size_t displaced = 0;

		if (!gate_displaceable(sites[i].current, sites[i].length, sites[i].site,
				       &displaced)) {
			not_used(transition, "a prologue cannot run in a gate");
			return false;
		}
		transition->sites[i].displaced = displaced;
		/* One block, one entry: each is swapped from the bytes read before. */
		for (size_t j = 0; j < i; j++)
			if ((sites[j].site ^ sites[i].site) < HP_GATE_STORE_SIZE) {
				not_used(transition, "two entries share one aligned block");
				return false;
			}
	}
	if (!same_pid_namespace(session->pid)) {
		not_used(transition, "the target is in another pid namespace");
		return false;
	}
	if (!memory_writable(session)) {
		not_used(transition, "/proc/PID/mem does not take writes");
		return false;
	}
	return true;
}

static int map_gate_page(struct hp_session *session, struct hp_remote *remote,
			 struct hp_state_patch *record, struct hp_transition *transition,
			 struct hp_error *error)
{
	struct hp_maps maps = { 0 };
	uint64_t low = UINT64_MAX, high = 0, candidate = 0;
	int64_t mapped = 0;
	int status = proc_maps_read(session->pid, &maps, error);

	for (size_t i = 0; i < transition->count; i++) {
		low = transition->sites[i].site < low ? transition->sites[i].site : low;
		high = transition->sites[i].site + 1 > high ? transition->sites[i].site + 1 : high;
	}
	if (status == HP_OK && !trampoline_find_gap(&maps, low, high, HP_PAGE_SIZE, &candidate))
		status = HP_MISFIT;
	proc_maps_release(&maps);
	if (status == HP_MISFIT || record->page_count == HP_STATE_MAX_PAGES) {
		not_used(transition, "no room for a gate page near the functions");
		return HP_OK;
	}
	if (status != HP_OK)
		return status;
	/* Every moved prologue must reach what it pointed to from there. */
	for (size_t i = 0; i < transition->count; i++) {
		unsigned char gate[HP_GATE_SIZE];

		if (!gate_encode(candidate, candidate + HP_GATE_FIRST + i * HP_GATE_SIZE,
				 record->functions[i].replacement, transition->sites[i].current,
				 transition->sites[i].displaced, transition->sites[i].site, gate)) {
			not_used(transition, "a moved prologue would be out of reach");
			return HP_OK;
		}
	}
	/* Named before it is mapped: a hotpatch killed in between leaves it found. */
	record->pages[record->page_count++] = candidate;
	status = patch_state_write(&session->state, &session->memory, error);
	if (status == HP_OK)
		status = remote_syscall(remote, SYS_mmap,
					(uint64_t[6]){ candidate, HP_PAGE_SIZE, PROT_READ | PROT_EXEC,
						       MAP_PRIVATE | MAP_ANONYMOUS |
							       MAP_FIXED_NOREPLACE,
						       (uint64_t)-1, 0 },
					&mapped, error);
	if (status == HP_OK && (uint64_t)mapped != candidate) {
		if (mapped > 0 && remote_syscall(remote, SYS_munmap,
						 (uint64_t[6]){ (uint64_t)mapped, HP_PAGE_SIZE },
						 &mapped, error) != HP_OK)
			memset(error, 0, sizeof(*error));
		status = hp_fail(error, HP_FAILED, "cannot map a gate page in pid %d",
				 (int)session->pid);
	}
	if (status != HP_OK) {
		record->page_count--;	/* not ours: never to be unmapped by us */
		return status;
	}
	transition->page = candidate;
	return HP_OK;
}

/* The page's code, each function's gate, and the record's jumps to them. */
static int fill_gate_page(struct hp_session *session, struct hp_remote *remote,
			  struct hp_state_patch *record, struct hp_transition *transition,
			  struct hp_error *error)
{
	unsigned char page[HP_PAGE_SIZE];
	int32_t pidfd = (int32_t)transition->pidfd;

	memset(page, 0xcc, sizeof(page));
	gate_page_code(transition->page, page);
	memcpy(page + (gate_pidfd(transition->page) - transition->page), &pidfd, sizeof(pidfd));
	for (size_t i = 0; i < transition->count; i++) {
		struct hp_transition_site *site = &transition->sites[i];
		struct hp_state_function *function = &record->functions[i];
		uint64_t gate = transition->page + HP_GATE_FIRST + i * HP_GATE_SIZE;

		if (!gate_encode(transition->page, gate, function->replacement, site->current,
				 site->displaced, site->site + site->displaced,
				 page + HP_GATE_FIRST + i * HP_GATE_SIZE) ||
		    !code_encode_jump(site->site, gate, function->written))
			return hp_fail(error, HP_FAILED, "cannot build the gate of %s",
				       function->function);
		function->length = HP_JUMP_SIZE;
		function->trampoline = gate;
		gate_store_words(site->site, site->original, function->written, HP_JUMP_SIZE,
				 &site->block, site->gated);
	}
	return target_memory_write(&session->memory, remote->tid, transition->page, page,
				   sizeof(page), error);
}

int transition_prepare(struct hp_session *session, struct hp_remote *remote,
		       struct hp_state_patch *record, const struct hp_transition_site *sites,
		       size_t count, struct hp_transition *transition, struct hp_error *error)
{
	int64_t pidfd = -1;
	int status;

	transition->pidfd = -1;
	transition->count = count;
	transition->sites = calloc(count ? count : 1, sizeof(*transition->sites));
	if (!transition->sites)
		return hp_fail(error, HP_FAILED, "out of memory");
	memcpy(transition->sites, sites, count * sizeof(*sites));
	if (!eligible(session, sites, count, transition))
		return HP_OK;
	for (size_t i = 0; i < count; i++) {
		struct hp_transition_site *site = &transition->sites[i];

		status = target_memory_read(&session->memory,
					    site->site & ~(uint64_t)(HP_GATE_STORE_SIZE - 1),
					    site->original, sizeof(site->original), error);
		if (status != HP_OK)
			return status;
	}
	/* A pidfd of ourselves in the target: a waiting gate's sign of our death. */
	if (remote_syscall(remote, SYS_pidfd_open, (uint64_t[6]){ (uint64_t)getpid(), 0 }, &pidfd,
			   error) != HP_OK ||
	    pidfd < 0) {
		memset(error, 0, sizeof(*error));
		not_used(transition, "the target cannot open a pidfd of hotpatch");
		return HP_OK;
	}
	transition->pidfd = pidfd;
	status = map_gate_page(session, remote, record, transition, error);
	if (status == HP_OK && transition->page)
		status = fill_gate_page(session, remote, record, transition, error);
	if (status == HP_OK && transition->page)
		transition->active = true;
	else if (transition_close_pidfd_on(remote, transition) != HP_OK)
		memset(error, 0, sizeof(*error));
	return status;
}

int transition_close_pidfd_on(struct hp_remote *remote, struct hp_transition *transition)
{
	struct hp_error ignored = { 0 };
	int64_t result = 0;
	int status;

	if (transition->pidfd < 0)
		return HP_OK;
	status = remote_syscall(remote, SYS_close, (uint64_t[6]){ (uint64_t)transition->pidfd },
				&result, &ignored);
	if (status == HP_OK)
		transition->pidfd = -1;
	return status;
}

int transition_close_pidfd(struct hp_session *session, struct hp_transition *transition,
			   struct hp_error *error)
{
	struct hp_remote remote;
	int status;

	if (transition->pidfd < 0)
		return HP_OK;
	status = session_borrow_thread(session, &remote, error);
	if (status == HP_OK)
		status = transition_close_pidfd_on(&remote, transition);
	return session_return_thread(session, &remote, status, error);
}

/* The protection of the page holding `address`, as maps says. */
static int page_protection(const struct hp_maps *maps, uint64_t address)
{
	const struct hp_mapping *mapping = proc_maps_find(maps, address);

	if (!mapping)
		return -1;
	return (mapping->readable ? PROT_READ : 0) | (mapping->writable ? PROT_WRITE : 0) |
	       (mapping->executable ? PROT_EXEC : 0);
}

/* One site's block, from `from` to `to`, by the target's own locked store;
 * the page is made writable around it. */
static int store_block(struct hp_session *session, struct hp_remote *remote,
		       const struct hp_maps *maps, const struct hp_transition *transition,
		       uint64_t block, const unsigned char *from, const unsigned char *to,
		       bool *refused, struct hp_error *error)
{
	uint64_t page = block & ~(uint64_t)(HP_PAGE_SIZE - 1), stored = 0, words[4];
	int protection = page_protection(maps, block);
	int64_t result = 0;
	int status;

	if (protection < 0 || !(protection & PROT_EXEC))
		return hp_fail(error, HP_FAILED, "pid %d: 0x%" PRIx64 " is not code any more",
			       (int)session->pid, block);
	memcpy(words, from, 16);
	memcpy(words + 2, to, 16);
	status = remote_syscall_checked(remote, SYS_mprotect,
					(uint64_t[6]){ page, HP_PAGE_SIZE,
						       (uint64_t)(protection | PROT_WRITE) },
					"mprotect", &result, error);
	if (status != HP_OK) {
		*refused = true;
		return status;
	}
	status = remote_call(remote, transition->page + HP_GATE_STORE,
			     (uint64_t[6]){ block, words[0], words[1], words[2], words[3] }, &stored,
			     error);
	if (remote_syscall_checked(remote, SYS_mprotect,
				   (uint64_t[6]){ page, HP_PAGE_SIZE, (uint64_t)protection },
				   "mprotect", &result, status == HP_OK ? error : &(struct hp_error){ 0 }) !=
		    HP_OK &&
	    status == HP_OK)
		status = HP_FAILED;
	if (status == HP_OK && (stored & 0xff) != 1)
		status = hp_fail(error, HP_FAILED,
				 "pid %d: the code at 0x%" PRIx64 " changed while hotpatch worked",
				 (int)session->pid, block);
	return status;
}

/* Every site from its original bytes to its gate's jump (`gate`) or back. */
static int store_all(struct hp_session *session, struct hp_transition *transition, bool gate,
		     bool *refused, struct hp_error *error)
{
	struct hp_remote remote;
	struct hp_maps maps = { 0 };
	int status = session_borrow_thread(session, &remote, error);

	if (status == HP_OK)
		status = proc_maps_read(session->pid, &maps, error);
	for (size_t i = 0; status == HP_OK && i < transition->count; i++) {
		struct hp_transition_site *site = &transition->sites[i];

		if (site->in_place == gate)
			continue;
		status = store_block(session, &remote, &maps, transition, site->block,
				     gate ? site->original : site->gated,
				     gate ? site->gated : site->original, refused, error);
		if (status == HP_OK)
			site->in_place = gate;
	}
	proc_maps_release(&maps);
	return session_return_thread(session, &remote, status, error);
}

int transition_gate(struct hp_session *session, struct hp_transition *transition,
		    struct hp_error *error)
{
	bool refused = false, any = false;
	int status = store_all(session, transition, true, &refused, error);
	struct hp_error ignored = { 0 };

	for (size_t i = 0; i < transition->count; i++)
		any = any || transition->sites[i].in_place;
	if (status == HP_OK) {
		transition->gated = true;
		return HP_OK;
	}
	/* Code may not be made writable here (W^X policies): the gates' jumps
	 * go in under a global stop instead. */
	if (refused && !any) {
		hp_error_release(error);
		memset(error, 0, sizeof(*error));
		return HP_OK;
	}
	if (transition_ungate(session, transition, &ignored) != HP_OK)
		hp_error_release(&ignored);
	return status;
}

/* A copy of a stopped thread as a stack check should see it: one waiting
 * at a gate is in no function yet, so it is looked at from its caller. */
static bool thread_as_seen(struct hp_session *session, const struct hp_transition *transition,
			   const struct hp_thread *thread, struct hp_thread *seen)
{
	uint64_t pc = registers_pc(&thread->regs), return_ip = 0, sp;
	size_t pushed = 0;
	struct hp_error ignored = { 0 };

	*seen = *thread;
	switch (gate_position(transition->page, pc, &pushed)) {
	case HP_GATE_OUTSIDE:
		return true;
	case HP_GATE_WAITING:
		sp = registers_sp(&thread->regs) + pushed * 8;
		if (target_memory_read(&session->memory, sp, &return_ip, sizeof(return_ip),
				       &ignored) != HP_OK)
			return false;
		registers_set_pc(&seen->regs, return_ip);
		registers_set_sp(&seen->regs, sp + 8);
		return true;
	default:
		return false;
	}
}

/* Stops `tid` alone, checks it, lets it go.  *clear: it is out of the
 * ranges (or gone). */
static int check_alone(struct hp_session *session, struct hp_transition *transition, pid_t tid,
		       bool drain, bool *clear, struct hp_blocker *blocker, struct hp_error *error)
{
	struct hp_thread *thread;
	struct hp_thread seen;
	double stopped = hp_now(), length;
	int status = threads_stop_one(&session->threads, tid, session->deadline + 1, error);

	*clear = false;
	if (status != HP_OK) {
		if (thread_is_alive(session->pid, tid))
			return status;
		memset(error, 0, sizeof(*error));	/* exited: out of every function */
		*clear = true;
		return HP_OK;
	}
	thread = threads_find(&session->threads, tid);
	memset(blocker, 0, sizeof(*blocker));
	/* Each stop is a new one: what was read of the stacks may be stale. */
	stack_checker_new_stop(session->checker);
	blocker->tid = tid;
	if (thread && drain)
		*clear = gate_position(transition->page, registers_pc(&thread->regs),
				       &(size_t){ 0 }) == HP_GATE_OUTSIDE &&
			 !stack_check_thread(session->checker, thread, true, blocker);
	else if (thread && thread_as_seen(session, transition, thread, &seen))
		*clear = !stack_check_thread(session->checker, &seen, session->allow_unreliable,
					     blocker);
	status = threads_detach_one(&session->threads, tid, error);
	length = hp_now() - stopped;
	if (length > session->longest_stop)
		session->longest_stop = length;
	return status;
}

static int compare_tids(const void *a, const void *b)
{
	pid_t left = *(const pid_t *)a, right = *(const pid_t *)b;

	return (left > right) - (left < right);
}

/* Checks every thread alone until each was seen clear once (threads born
 * meanwhile too), or `until`.  HP_BUSY leaves the last blockers in the
 * session. */
static int check_every_thread(struct hp_session *session, struct hp_transition *transition,
			      bool drain, double until, unsigned *passes, struct hp_error *error)
{
	pid_t *clear = NULL, *tids = NULL;
	size_t clear_count = 0, count = 0;
	double pause = 0.0005;
	int status = HP_OK;

	for (;;) {
		size_t busy = 0, added = 0;
		pid_t *larger;

		free(tids);
		tids = NULL;
		(*passes)++;
		status = threads_list(session->pid, &tids, &count, error);
		if (status != HP_OK)
			break;
		larger = realloc(clear, (clear_count + count + 1) * sizeof(*clear));
		status = larger ? HP_OK : hp_fail(error, HP_FAILED, "out of memory");
		if (status == HP_OK && session->blocker_capacity < count) {
			struct hp_blocker *blockers =
				realloc(session->blockers, count * sizeof(*blockers));

			if (blockers) {
				session->blockers = blockers;
				session->blocker_capacity = count;
			} else {
				status = hp_fail(error, HP_FAILED, "out of memory");
			}
		}
		if (status != HP_OK) {
			free(larger);
			clear = NULL;
			break;
		}
		clear = larger;
		for (size_t i = 0; status == HP_OK && i < count; i++) {
			bool is_clear = false;

			if (bsearch(&tids[i], clear, clear_count, sizeof(*clear), compare_tids))
				continue;
			if (session_interrupted(session))
				status = hp_fail_as(error, HP_KIND_INTERRUPTED,
						    "interrupted; pid %d was left unchanged",
						    (int)session->pid);
			else
				status = check_alone(session, transition, tids[i], drain, &is_clear,
						     &session->blockers[busy], error);
			if (status == HP_OK && is_clear)
				clear[clear_count + added++] = tids[i];
			else if (status == HP_OK)
				busy++;
		}
		clear_count += added;
		qsort(clear, clear_count, sizeof(*clear), compare_tids);
		session->blocker_count = busy;
		session->thread_count = (unsigned)count;
		if (status != HP_OK || (busy == 0 && added == 0))
			break;
		if (busy == 0)
			continue;	/* one more pass: threads born meanwhile */
		if (hp_now() + pause > until || hp_fault("single-attempt")) {
			status = HP_BUSY;
			break;
		}
		usleep((useconds_t)(pause * 1e6));
		pause = pause * 2 < 0.05 ? pause * 2 : 0.05;
	}
	free(tids);
	free(clear);
	return status;
}

int transition_check(struct hp_session *session, struct hp_transition *transition,
		     const struct hp_range *ranges, size_t range_count, unsigned *attempts,
		     double *stopped_at, struct hp_error *error)
{
	double until = hp_now() + (session->deadline - hp_now()) * ALONE_SHARE;
	int status = stack_checker_set_ranges(session->checker, ranges, range_count, error);

	if (status == HP_OK && session->find_suspended)
		status = suspended_scan_prepare(&session->suspended, &session->memory, ranges,
						range_count, error);
	if (status == HP_OK && session->find_suspended && session->suspended.site_count)
		status = suspended_scan_run(&session->suspended, &session->threads,
					    &session->memory, session->deadline, error);
	if (status != HP_OK)
		return status;
	/* Frames suspended in the old code can be resumed by any thread: only
	 * a global stop sees them gone.  So can busy threads be moved out. */
	if (!session->find_suspended || session->suspended.site_count == 0 ||
	    (session->suspended.complete && session->suspended.hit_count == 0)) {
		stack_checker_reserve(session->checker, 1);
		*stopped_at = hp_now();
		status = check_every_thread(session, transition, false, until, attempts, error);
		if (status != HP_BUSY)
			return status;
		memset(error, 0, sizeof(*error));
	}
	/* The gates go (a thread waiting there cannot be unwound by a global
	 * check), and their jumps come back under the global stop. */
	status = transition_ungate(session, transition, error);
	if (status != HP_OK)
		return status;
	transition->gated = false;
	transition->stopped_all = true;
	*attempts = 0;	/* the global stop's, as with --stop-all */
	return session_stop_when_clear(session, ranges, range_count, attempts, stopped_at, error);
}

/* The gates' pidfd is still ours: a program that closed it and opened
 * something else under its number would make the gates think us dead. */
static bool pidfd_still_ours(const struct hp_session *session,
			     const struct hp_transition *transition)
{
	char path[96], text[1024], expected[32];
	ssize_t length;

	snprintf(path, sizeof(path), "/proc/%d/fdinfo/%d", (int)session->pid,
		 (int)transition->pidfd);
	length = proc_read_small(path, text, sizeof(text));
	snprintf(expected, sizeof(expected), "\nPid:\t%d\n", (int)getpid());
	return length > 0 && strstr(text, expected);
}

int transition_decide(struct hp_session *session, struct hp_transition *transition,
		      struct hp_error *error)
{
	unsigned char decision = DECISION_NEW;

	if (transition->pidfd >= 0 && !pidfd_still_ours(session, transition))
		return hp_fail(error, HP_FAILED,
			       "pid %d closed the descriptor hotpatch's gates watch; retry, or use "
			       "--stop-all",
			       (int)session->pid);

	return target_memory_write(&session->memory, 0, gate_decision(transition->page), &decision,
				   1, error);
}

int transition_ungate(struct hp_session *session, struct hp_transition *transition,
		      struct hp_error *error)
{
	unsigned char decision = DECISION_ORIGINAL;
	struct hp_range gate = { transition->page, transition->page + HP_PAGE_SIZE, "a gate" };
	double deadline = session->deadline;
	int status;

	if (!transition->page)
		return HP_OK;
	/* Waiting threads go on into the original code: then no gate is
	 * entered any more, and the page empties. */
	status = target_memory_write(&session->memory, 0, gate_decision(transition->page),
				     &decision, 1, error);
	if (status == HP_OK)
		status = store_all(session, transition, false, &(bool){ false }, error);
	session->deadline = hp_now() + DRAIN_SECONDS;
	if (status == HP_OK)
		status = stack_checker_set_ranges(session->checker, &gate, 1, error);
	if (status == HP_OK)
		status = check_every_thread(session, transition, true, session->deadline,
					    &(unsigned){ 0 }, error);
	session->deadline = deadline;
	/* Left in place (a jump or a thread still there): never unmapped. */
	transition->keep_page = status != HP_OK;
	return status;
}

void transition_release(struct hp_transition *transition)
{
	free(transition->sites);
	transition->sites = NULL;
}
