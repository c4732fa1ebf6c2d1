/* state_removal.c - taking our state mapping and stub page out of a process
 * once nothing of ours is left in it, so that the maps of a process whose
 * last patch was reverted read like those of one never patched.  Nothing is
 * unmapped while a thread may run in it or return into it, and a hotpatch
 * killed at any instant leaves what the next command takes over: the state
 * goes first (without it, the stub page is a leftover the next apply or
 * revert takes back), then the stub page, through libc's syscall
 * instruction, since a call through the stub would return into nothing. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>

#include "runtime/session.h"
#include "common/base.h"
#include "common/proc_maps.h"
#include "runtime/state.h"
#include "runtime/target.h"
#include "runtime/threads.h"

/* The least and the most time the look at every thread gets: a thread in
 * the stub page keeps it for a later command, so the look gives up. */
#define REMOVAL_SECONDS 1.0
#define REMOVAL_MOST_SECONDS 3.0

/* Fresh maps for the session (the revert has just unloaded a patch), and
 * whether anything of ours other than the state and its stub is left. */
static int nothing_else_left(struct hp_session *session, bool *empty, struct hp_error *error)
{
	struct hp_maps maps = { 0 };
	struct hp_leftovers found = { 0 };
	int status = proc_maps_read(session->pid, &maps, error);

	*empty = false;
	if (status != HP_OK)
		return status;
	proc_maps_release(&session->target.maps);
	session->target.maps = maps;
	status = leftovers_find(session, &found, error);
	*empty = status == HP_OK && found.count == 0;
	leftovers_release(&found);
	return status;
}

/* Every thread seen once: none runs in the stub page (a remote call, a
 * return trampoline) nor will return into it.  Each is looked at on its
 * own, never all at once: only a hotpatch holding the lock (this one) sends
 * a thread into the page or writes one of its trampolines on a stack, so a
 * thread seen out of it stays out, and one born later never was in.
 * Threads are not moved out (the moves' trampolines are in that very
 * page), and a stack that cannot be unwound keeps the page, whatever
 * --allow-unreliable-stacks says. */
static int stub_is_clear(struct hp_session *session, bool *clear, struct hp_error *error)
{
	const struct hp_range range = { session->state.stub_page,
					session->state.stub_page + HP_PAGE_SIZE,
					"hotpatch's stub page" };
	struct hp_error busy = { .pid = session->pid };
	int status;

	/* In the target itself the caller vouched that no other thread runs
	 * our code (hp_request.in_process). */
	if (session->in_process) {
		*clear = true;
		return HP_OK;
	}
	status = transition_see_each_clear(session, &range, 1, &busy);
	*clear = status == HP_OK;
	if (status == HP_OK || status == HP_BUSY) {
		hp_error_release(&busy);
		return HP_OK;
	}
	*error = busy;
	return status;
}

/* The state mapping as the maps show it now, and the stub page if it is
 * still ours; the other is left alone. */
static void what_to_unmap(struct hp_session *session, uint64_t *state_size, uint64_t *stub)
{
	const struct hp_mapping *mapping = proc_maps_find(&session->target.maps,
							  session->state.address);

	*state_size = mapping && mapping->start == session->state.address &&
				      patch_state_is_mapping(mapping)
			      ? mapping->end - mapping->start
			      : 0;
	*stub = session->state.stub_page &&
			patch_state_stub_is_ours(&session->memory, &session->target.maps,
						 session->state.stub_page)
		? session->state.stub_page
		: 0;
}

static int unmap(struct hp_remote *remote, uint64_t address, uint64_t size,
		 struct hp_error *error)
{
	int64_t ignored = 0;

	return remote_syscall_checked(remote, SYS_munmap, (uint64_t[6]){ address, size }, "munmap",
				      &ignored, error);
}

static int remove_both(struct hp_session *session, struct hp_error *error)
{
	struct hp_remote remote;
	uint64_t state_size = 0, stub = 0;
	bool empty = false, clear = false;
	int status = nothing_else_left(session, &empty, error);

	if (status == HP_OK && empty && session->state.stub_page)
		status = stub_is_clear(session, &clear, error);
	else if (status == HP_OK)
		clear = empty;
	if (status == HP_OK && clear)
		what_to_unmap(session, &state_size, &stub);
	/* A state mapping not where the state says is left alone, stub and all. */
	if (status != HP_OK || !state_size)
		return status;
	status = session_borrow_thread_bare(session, &remote, error);
	if (status == HP_OK)
		status = unmap(&remote, session->state.address, state_size, error);
	if (status == HP_OK) {
		/* Gone with the state: nothing to clear there when we end. */
		session->marked = false;
		session->state.address = 0;
	}
	if (status == HP_OK && hp_fault("kill-in-remove-state"))
		raise(SIGKILL);	/* the test build's way to die between the two */
	if (status == HP_OK && stub)
		status = unmap(&remote, stub, HP_PAGE_SIZE, error);
	if (status == HP_OK)
		session->state.stub_page = 0;
	return session_return_thread(session, &remote, status, error);
}

int state_remove_if_empty(struct hp_session *session, struct hp_error *error)
{
	double deadline = session->deadline, now = hp_now(), left = deadline - now;
	int status;

	if (!session->state.address || session->state.patch_count)
		return HP_OK;
	/* The command's time left, within a budget of its own: at least a
	 * second, for the command's may be spent (a failed apply); up to three
	 * where it has them, for on a busy machine a thread at the lowest
	 * priority took 1.2 s to stop (CI), and the state stayed for nothing. */
	if (left < REMOVAL_SECONDS)
		left = REMOVAL_SECONDS;
	else if (left > REMOVAL_MOST_SECONDS)
		left = REMOVAL_MOST_SECONDS;
	session->deadline = now + left;
	status = remove_both(session, error);
	session->deadline = deadline;
	return status;
}
