/* session.c - what every command does around its own work: one hotpatch at a
 * time per process, the target's maps and state, borrowing a thread for
 * remote calls, and stopping every thread once no stack is in the way. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "runtime/session.h"
#include "arch/arch.h"
#include "common/base.h"
#include "common/proc_maps.h"
#include "runtime/state.h"
#include "runtime/target.h"
#include "runtime/threads.h"

#define SYSCALL_SCAN 256
#define RESTORE_RT_CHUNK (256u << 10)
/* How long busy threads may run alone, the others stopped, to leave the
 * code being replaced before everyone is let go and the check retried. */
#define MOVE_BUDGET 0.010

/* An abstract socket name is a lock that dies with its holder. */
static int take_lock(pid_t pid, struct hp_error *error)
{
	struct sockaddr_un address = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int length;

	if (fd < 0)
		return hp_fail_errno(error, HP_FAILED, "cannot create a lock socket");
	length = snprintf(address.sun_path + 1, sizeof(address.sun_path) - 1, "hotpatch-%d",
			  (int)pid);
	if (bind(fd, (struct sockaddr *)&address,
		 (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)length)) != 0) {
		close(fd);
		if (errno == EADDRINUSE) {
			hp_hint(error, "wait for the other hotpatch command to finish");
			return hp_fail_as(error, HP_KIND_LOCKED, "another hotpatch is working on pid %d",
				       (int)pid);
		}
		return hp_fail_errno(error, HP_FAILED, "cannot take the lock for pid %d", (int)pid);
	}
	return fd;
}

/* Whether some hotpatch holds the lock for `pid`, seen in the socket table
 * (binding the name, even for a moment, could make that command fail). */
bool session_lock_held(pid_t pid)
{
	char wanted[64], line[512];
	FILE *table = fopen("/proc/net/unix", "re");
	bool held = false;
	size_t length;

	snprintf(wanted, sizeof(wanted), " @hotpatch-%d\n", (int)pid);
	length = strlen(wanted);
	if (!table)
		return false;
	while (!held && fgets(line, sizeof(line), table)) {
		size_t size = strlen(line);

		held = size >= length && strcmp(line + size - length, wanted) == 0;
	}
	fclose(table);
	return held;
}

int session_open(struct hp_session *session, const struct hp_request *request,
		 bool needs_ptrace, struct hp_error *error)
{
	return session_open_as(session, request, needs_ptrace, true, error);
}

int session_open_as(struct hp_session *session, const struct hp_request *request,
		    bool needs_ptrace, bool needs_lock, struct hp_error *error)
{
	char path[64];
	int status;

	memset(session, 0, sizeof(*session));
	session->pid = request->pid;
	session->start = hp_now();
	session->deadline = session->start + request->timeout_seconds;
	session->interrupted = request->interrupted;
	session->allow_unreliable = request->allow_unreliable_stacks;
	session->in_process = request->in_process;
	/* In the target itself nothing is stopped nor checked (see
	 * session_stop_when_clear). */
	session->find_suspended = !request->allow_suspended && !request->in_process;
	session->lock_fd = -1;
	session->memory.mem_fd = -1;
	threads_init(&session->threads, request->pid);
	error->pid = request->pid;
	snprintf(path, sizeof(path), "/proc/%d", (int)request->pid);
	if (request->in_process && request->pid != getpid())
		return hp_fail_as(error, HP_KIND_USAGE, "in-process work is on the calling process only");
	needs_ptrace = needs_ptrace && !request->in_process;
	if (request->pid <= 0 || access(path, F_OK) != 0) {
		hp_hint(error, "check the pid");
		return hp_fail_as(error, HP_KIND_NO_PROCESS, "no process %d", (int)request->pid);
	}
	session->seen = true;
	/* A reader takes no lock: the state can be read while a command is at
	 * work (patch_state_read), and list must not make that command fail. */
	session->lock_fd = needs_lock ? take_lock(request->pid, error) : -1;
	if (session->lock_fd < 0 && needs_lock)
		return session->lock_fd;
	status = target_memory_open(request->pid, &session->memory, error);
	if (status != HP_OK) {
		hp_hint(error, "run as root or with CAP_SYS_PTRACE");
		if (error->error_number == EACCES || error->error_number == EPERM)
			hp_error_classify(error, HP_KIND_NOT_PERMITTED);
		else if (error->error_number == ENOENT || error->error_number == ESRCH)
			hp_error_classify(error, HP_KIND_NO_PROCESS);
		return status;
	}
	status = target_map_open(request->pid, &session->target, error);
	if (status == HP_OK)
		status = patch_state_read(&session->memory, &session->target.maps, &session->state,
					  error);
	/* We hold the lock: a command the state says is at work was killed.
	 * A reader must find out for itself (see hp_list). */
	if (status == HP_OK && needs_lock)
		session->previous = session->state.running;
	if (status == HP_OK && needs_ptrace)
		status = stack_checker_create(request->pid, &session->checker, error);
	/* Stacks a killed hotpatch left on their way out through our return
	 * trampolines are unwound through them, from the first unwind on. */
	if (status == HP_OK && session->checker && session->state.stub_page &&
	    patch_state_stub_is_ours(&session->memory, &session->target.maps,
				     session->state.stub_page))
		stack_checker_know_stub_page(session->checker, session->state.stub_page);
	return status;
}

int session_mark_running(struct hp_session *session, struct hp_error *error)
{
	struct hp_state_command *running = &session->state.running;

	if (session->marked || !session->command || !session->state.address)
		return HP_OK;
	memset(running, 0, sizeof(*running));
	running->pid = (uint64_t)getpid();
	running->started = (uint64_t)time(NULL);
	hp_copy_string(running->name, sizeof(running->name), session->command);
	session->marked = true;
	return patch_state_write_running(&session->state, &session->memory, error);
}

/* The command ends, done or rolled back: only a killed one leaves its mark. */
static void clear_mark(struct hp_session *session)
{
	struct hp_error ignored = { 0 };

	if (!session->marked)
		return;
	memset(&session->state.running, 0, sizeof(session->state.running));
	if (patch_state_write_running(&session->state, &session->memory, &ignored) != HP_OK)
		memset(&ignored, 0, sizeof(ignored));
	session->marked = false;
}

void session_close(struct hp_session *session)
{
	clear_mark(session);
	threads_release(&session->threads);
	stack_checker_release(session->checker);
	suspended_scan_release(&session->suspended);
	free(session->blockers);
	session->blockers = NULL;
	patch_state_release(&session->state);
	target_map_release(&session->target);
	target_memory_close(&session->memory);
	if (session->lock_fd >= 0)
		close(session->lock_fd);
	session->lock_fd = -1;
	session->checker = NULL;
}

static int find_libc_syscall(struct hp_session *session, uint64_t *found, struct hp_error *error)
{
	unsigned char code[SYSCALL_SCAN];
	uint64_t function = 0;
	int status = target_find_export(&session->target, "syscall", &function, error);

	if (status == HP_OK)
		status = target_memory_read(&session->memory, function, code, sizeof(code), error);
	if (status == HP_OK && code_find_syscall(code, sizeof(code), function, found) != HP_OK)
		status = hp_fail(error, HP_MISFIT, "no syscall instruction in the libc of pid %d",
				 (int)session->pid);
	return status;
}

/* Where the bytes `code` first occur in `mapping` of the target; 0 if not. */
static uint64_t search_mapping(struct hp_session *session, const struct hp_mapping *mapping,
			      const unsigned char *code, size_t size, unsigned char *chunk)
{
	struct hp_error ignored = { 0 };
	uint64_t found = 0;

	for (uint64_t at = mapping->start; at < mapping->end && !found;
	     at += RESTORE_RT_CHUNK - size) {
		size_t length = mapping->end - at < RESTORE_RT_CHUNK ? (size_t)(mapping->end - at)
								     : RESTORE_RT_CHUNK;
		unsigned char *hit;

		if (target_memory_read(&session->memory, at, chunk, length, &ignored) != HP_OK)
			break;
		hit = memmem(chunk, length, code, size);
		if (hit)
			found = at + (uint64_t)(hit - chunk);
		if (length < RESTORE_RT_CHUNK)
			break;
	}
	return found;
}

/* libc's __restore_rt (rt_sigreturn), found by its bytes in the code
 * around `near`, or else in the vDSO (arm64's glibc has none of its own:
 * the kernel's __kernel_rt_sigreturn is the restorer there), and only if
 * libc's syscall() goes on from its system-call instruction to its return
 * as expected: then a thread that hotpatch abandons in that first system
 * call returns into rt_sigreturn (remote_call.c).  0 when not found. */
static uint64_t find_restore_rt(struct hp_session *session, uint64_t near)
{
	const unsigned char *restore_rt, *after_syscall;
	size_t restore_rt_size = code_signal_return(&restore_rt),
	       after_syscall_size = code_syscall_return(&after_syscall);
	const struct hp_mapping *mapping = proc_maps_find(&session->target.maps, near);
	unsigned char check[32], *chunk = malloc(RESTORE_RT_CHUNK);
	struct hp_error ignored = { 0 };
	uint64_t found = 0;

	if (!chunk || !mapping || after_syscall_size > sizeof(check) ||
	    target_memory_read(&session->memory, near + HP_SYSCALL_INSTRUCTION_SIZE, check,
			       after_syscall_size, &ignored) != HP_OK ||
	    memcmp(check, after_syscall, after_syscall_size) != 0) {
		free(chunk);
		return 0;
	}
	found = search_mapping(session, mapping, restore_rt, restore_rt_size, chunk);
	for (size_t i = 0; i < session->target.maps.count && !found; i++)
		if (strcmp(session->target.maps.items[i].path, "[vdso]") == 0)
			found = search_mapping(session, &session->target.maps.items[i], restore_rt,
					       restore_rt_size, chunk);
	free(chunk);
	return found;
}

/* In the target itself there is no thread to borrow: the caller's is. */
static int borrow_self(struct hp_session *session, struct hp_remote *remote,
		       struct hp_error *error)
{
	int status;

	remote_begin_self(remote);
	status = patch_state_create(&session->state, remote, &session->memory, error);
	if (status == HP_OK)
		status = session_mark_running(session, error);
	return status;
}

int session_borrow_thread(struct hp_session *session, struct hp_remote *remote,
			  struct hp_error *error)
{
	uint64_t libc_syscall = 0;
	pid_t tid;
	int status;

	if (session->in_process)
		return borrow_self(session, remote, error);
	status = find_libc_syscall(session, &libc_syscall, error);
	memset(remote, 0, sizeof(*remote));
	if (status != HP_OK)
		return status;
	status = borrow_choose_thread(session, &tid, error);
	if (status == HP_OK)
		status = remote_begin(remote, session->pid, tid, libc_syscall,
				      session->state.stub_page ? 0 : find_restore_rt(session, libc_syscall),
				      session->deadline, error);
	if (status == HP_OK)
		status = patch_state_create(&session->state, remote, &session->memory, error);
	if (status == HP_OK)
		status = session_mark_running(session, error);
	return status;
}

int session_borrow_thread_bare(struct hp_session *session, struct hp_remote *remote,
			       struct hp_error *error)
{
	uint64_t libc_syscall = 0;
	pid_t tid;
	int status = find_libc_syscall(session, &libc_syscall, error);

	memset(remote, 0, sizeof(*remote));
	if (session->in_process) {
		remote_begin_self(remote);
		return HP_OK;
	}
	if (status == HP_OK)
		status = borrow_choose_thread(session, &tid, error);
	if (status == HP_OK)
		status = remote_begin(remote, session->pid, tid, libc_syscall,
				      find_restore_rt(session, libc_syscall), session->deadline,
				      error);
	return status;
}

int session_return_thread(struct hp_session *session, struct hp_remote *remote, int status,
			  struct hp_error *error)
{
	struct hp_error end_error = { 0 };
	int ended = remote_end(remote, &end_error);

	threads_resume_all(&session->threads);
	return hp_first_failure(status, error, ended, &end_error);
}

/* Room for a blocker per thread, with some to spare for threads born during
 * the stop; zeroed, so its pages are faulted in before the stop. */
static int ensure_blockers(struct hp_session *session, struct hp_error *error)
{
	size_t capacity = session->threads.count + 64;
	struct hp_blocker *larger;

	if (session->threads.count <= session->blocker_capacity && session->blockers)
		return HP_OK;
	larger = realloc(session->blockers, capacity * sizeof(*larger));
	if (!larger)
		return hp_fail(error, HP_FAILED, "out of memory");
	memset(larger, 0, capacity * sizeof(*larger));
	session->blockers = larger;
	session->blocker_capacity = capacity;
	return HP_OK;
}

/* Checks every stopped thread; returns how many are in the way. */
static size_t check_all(struct hp_session *session, struct hp_blocker *blockers)
{
	size_t count = 0;

	stack_checker_new_stop(session->checker);
	for (size_t i = 0; i < session->threads.count; i++) {
		struct hp_thread *thread = &session->threads.items[i], seen;
		struct hp_error ignored = { 0 };
		pid_t tid = thread->tid;

		if (!thread->stopped)
			continue;
		/* One stopped in a gate, not yet in its function, goes back to
		 * the entry, and one running its moved prologue on steps into
		 * it; a thread that cannot is checked as it is. */
		if (gates_rewind(session, tid, &seen, &ignored) != HP_OK)
			hp_error_release(&ignored);
		thread = threads_find(&session->threads, tid);
		if (!thread) {
			i--;	/* exited: the last thread took its place */
			continue;
		}
		if (seen.tid != tid)
			seen = *thread;
		if (!stack_check_thread(session->checker, &seen, session->allow_unreliable,
					&blockers[count]))
			continue;
		/* In the way after all: the blocker as the thread really is, for
		 * the moves to work from. */
		if (memcmp(&seen.regs, &thread->regs, sizeof(seen.regs)) != 0 &&
		    !stack_check_thread(session->checker, thread, session->allow_unreliable,
					&blockers[count]))
			continue;
		count++;
	}
	return count;
}

/* Our stub page, once checked to be ours (its address comes from the state
 * the target holds): the trampolines for moving threads go there.  Checked
 * once a session, before any stop, against fresh maps (the page may have
 * been mapped by this very session).  0 if there is none. */
static uint64_t stub_for_moves(struct hp_session *session)
{
	struct hp_maps maps = { 0 };
	struct hp_error ignored = { 0 };

	if (!session->stub_checked && session->state.stub_page &&
	    proc_maps_read(session->pid, &maps, &ignored) == HP_OK)
		session->stub_ok = patch_state_stub_is_ours(&session->memory, &maps,
							    session->state.stub_page);
	proc_maps_release(&maps);
	session->stub_checked = true;
	return session->stub_ok ? session->state.stub_page : 0;
}

/* Lets each thread in the way alone step out of the replaced code, within a
 * small budget; HP_OK when afterwards no thread is in the way. */
static int move_blockers(struct hp_session *session, const struct hp_blocker *blockers,
			 size_t count, struct hp_error *error)
{
	/* The test build can ask for one attempt only, with all the time there
	 * is, to show that moving alone gets a patch in. */
	double deadline = hp_fault("single-attempt") ? session->deadline : hp_now() + MOVE_BUDGET;
	size_t known = session->threads.count;
	struct hp_blocker again;
	int status = HP_OK;

	if (deadline > session->deadline)
		deadline = session->deadline;
	status = thread_move_out(&session->threads, &session->memory, stub_for_moves(session),
				 blockers, count, stack_checker_watched(session->checker), deadline,
				 error);
	if (status != HP_OK)
		return status;
	/* Threads that exited are out of every function; a process that did
	 * has nothing left to patch. */
	if (session->threads.count == 0) {
		hp_hint(error, "check the pid; the process may have exited");
		return hp_fail_as(error, HP_KIND_TARGET_EXITED, "pid %d exited", (int)session->pid);
	}
	/* A thread was born meanwhile (stopped at birth): check everyone. */
	if (session->threads.count != known) {
		if (threads_collect(&session->threads, session->deadline + 1, error) != HP_OK ||
		    ensure_blockers(session, error) != HP_OK)
			return HP_FAILED;
		return check_all(session, session->blockers) == 0 ? HP_OK : HP_BUSY;
	}
	stack_checker_new_stop(session->checker);
	for (size_t i = 0; i < count; i++) {
		const struct hp_thread *thread = threads_find(&session->threads, blockers[i].tid);

		if (thread && stack_check_thread(session->checker, thread,
						 session->allow_unreliable, &again))
			return HP_BUSY;
	}
	return HP_OK;
}

/* Every thread stopped and out of the ranges: the frames the last scan
 * found suspended in them, still there, are in the way. */
static int check_suspended(struct hp_session *session)
{
	if (!session->find_suspended)
		return HP_OK;
	session->blocker_count = suspended_scan_check(&session->suspended, &session->memory,
						      &session->threads, session->checker,
						      session->blockers, session->blocker_capacity);
	return session->blocker_count == 0 ? HP_OK : HP_BUSY;
}

/* While the target runs, just before a stop: what is suspended now.  A
 * scan may take a quarter of the timeout; one that runs out of it is
 * reported incomplete (a warning), but one that the timeout itself cuts
 * short allows no stop: HP_BUSY.  The first attempt's scan always has its
 * quarter, even past the timeout: a slow start (a loaded machine) still
 * ends in one look at every thread, and an answer that names them. */
static int scan_suspended(struct hp_session *session, bool first, struct hp_error *error)
{
	double until = hp_now() + (session->deadline - session->start) / 4;
	int status;

	if (!session->find_suspended || session->suspended.site_count == 0)
		return HP_OK;
	if (!first && until > session->deadline)
		until = session->deadline;
	status = suspended_scan_run(&session->suspended, &session->threads, &session->memory,
				    until, error);
	if (status == HP_OK && !first && !session->suspended.complete &&
	    hp_remaining(session->deadline) <= 0)
		return HP_BUSY;
	return status;
}

/* The timeout came before a scan could finish, and nothing else was seen
 * in the way. */
static int scan_timed_out(struct hp_session *session, struct hp_error *error)
{
	hp_hint(error, "retry with a longer --timeout, or with --allow-suspended if no coroutine "
		       "can be suspended in the code changed");
	return hp_fail(error, HP_BUSY, "pid %d: the scan for functions suspended on coroutine "
				       "stacks did not finish before the timeout (it read %" PRIu64
				       " MiB)",
		       (int)session->pid, session->suspended.bytes_scanned >> 20);
}

static void note_stop_ended(struct hp_session *session, double stopped_at)
{
	double length = hp_now() - stopped_at;

	if (length > session->longest_stop)
		session->longest_stop = length;
}

/* One attempt: stop everyone, check, move the busy ones out.  HP_OK leaves
 * every thread stopped; HP_BUSY leaves the blockers in session->blockers. */
static int attempt(struct hp_session *session, bool first, double *stopped_at,
		   struct hp_error *error)
{
	int status;

	/* Seizing, listing threads and allocating happen while the target runs. */
	status = threads_seize_all(&session->threads, error);
	if (status != HP_OK)
		return status;
	status = ensure_blockers(session, error);
	if (status == HP_OK)
		status = scan_suspended(session, first, error);	/* HP_BUSY: keeps the last blockers */
	if (status != HP_OK) {
		*stopped_at = hp_now();	/* no stop was made */
		return status;
	}
	stack_checker_reserve(session->checker, session->blocker_capacity);
	/* Its check reads /proc: not in the stop.  The stack check notes which
	 * of its return trampolines threads still hold. */
	if (stub_for_moves(session)) {
		stack_checker_know_stub_page(session->checker, session->state.stub_page);
		stack_checker_watch(session->checker,
				    session->state.stub_page + HP_STUB_TRAMPOLINES,
				    HP_STUB_TRAMPOLINE_COUNT);
	}
	*stopped_at = hp_now();
	status = threads_stop_all(&session->threads, session->deadline + 1, error);
	session->thread_count = (unsigned)session->threads.count;
	if (status == HP_OK)
		status = ensure_blockers(session, error);	/* threads born meanwhile */
	if (status != HP_OK)
		return status;
	session->blocker_count = check_all(session, session->blockers);
	if (session->blocker_count == 0)
		return check_suspended(session);
	status = move_blockers(session, session->blockers, session->blocker_count, error);
	if (status == HP_OK)
		return check_suspended(session);
	if (status == HP_BUSY && (hp_remaining(session->deadline) <= 0 || hp_fault("single-attempt")))
		session->blocker_count = check_all(session, session->blockers);
	return status;
}

int session_stop_when_clear(struct hp_session *session, const struct hp_range *ranges,
			    size_t range_count, unsigned *attempts, double *stopped_at,
			    struct hp_error *error)
{
	unsigned first_attempt = *attempts;
	double pause = 0.001;
	int status;

	/* In the target itself nothing is stopped: the caller vouched that no
	 * other thread runs the code (hp_request.in_process). */
	if (session->in_process) {
		(*attempts)++;
		*stopped_at = hp_now();
		return HP_OK;
	}
	status = stack_checker_set_ranges(session->checker, ranges, range_count, error);
	if (status == HP_OK && session->find_suspended)
		status = suspended_scan_prepare(&session->suspended, &session->memory, ranges,
						range_count, error);

	while (status == HP_OK) {
		if (session_interrupted(session)) {
			status = hp_fail_as(error, HP_KIND_INTERRUPTED, "interrupted; pid %d was left unchanged",
					 (int)session->pid);
			break;
		}
		status = attempt(session, (*attempts)++ == first_attempt, stopped_at, error);
		if (status == HP_OK)
			return HP_OK;
		if (status != HP_BUSY)
			break;
		if (hp_remaining(session->deadline) <= 0 || hp_fault("single-attempt")) {
			if (session->blocker_count)
				session_describe_blockers(session, error);
			else
				status = scan_timed_out(session, error);
			break;
		}
		status = threads_continue_all(&session->threads, error);
		note_stop_ended(session, *stopped_at);
		if (status != HP_OK)
			break;
		threads_run_for(&session->threads, pause < hp_remaining(session->deadline)
							   ? pause
							   : hp_remaining(session->deadline));
		pause = pause * 2 < 0.05 ? pause * 2 : 0.05;
	}
	threads_resume_all(&session->threads);
	note_stop_ended(session, *stopped_at);
	return status;
}

/* The table part of a gate mapping is unmapped only where the target's
 * maps show anonymous memory, never another mapping a damaged
 * record names. */
static bool anonymous_span(pid_t pid, uint64_t start, uint64_t end)
{
	struct hp_maps maps = { 0 };
	struct hp_error ignored = { 0 };
	bool anonymous;

	if (proc_maps_read(pid, &maps, &ignored) != HP_OK) {
		hp_error_release(&ignored);
		return false;
	}
	anonymous = proc_maps_anonymous_span(&maps, start, end);
	proc_maps_release(&maps);
	return anonymous;
}

int session_unload_on(struct hp_session *session, struct hp_remote *remote, uint64_t handle,
		      const struct hp_state_patch *record, struct hp_error *error)
{
	int64_t result;
	int status = HP_OK;

	if (handle)
		status = patch_unload(remote, &session->target, handle, error);
	for (uint32_t p = 0; record && remote->active && p < record->page_count; p++) {
		struct hp_error step_error = { 0 };
		uint64_t length = patch_state_page_length(record, p);
		uint64_t code = patch_state_code_length(record, p);
		int step;

		if (length > code &&
		    !anonymous_span(session->pid, record->pages[p] + code, record->pages[p] + length))
			length = code;
		step = remote_syscall(remote, SYS_munmap, (uint64_t[6]){ record->pages[p], length },
				      &result, &step_error);
		status = hp_first_failure(status, error, step, &step_error);
	}
	return status;
}

int session_unload_patch(struct hp_session *session, uint64_t handle,
			 const struct hp_state_patch *record, struct hp_error *error)
{
	struct hp_remote remote;
	int status = session_borrow_thread(session, &remote, error);

	if (status == HP_OK)
		status = session_unload_on(session, &remote, handle, record, error);
	return session_return_thread(session, &remote, status, error);
}

void session_report_scan(const struct hp_session *session, struct hp_result *result)
{
	const struct hp_suspended_scan *scan = &session->suspended;
	struct hp_patch_report *patch = result->patch_count ? &result->patches[0] : NULL;
	char text[HP_TEXT_MAX];

	result->suspended_scan = (struct hp_scan_report){ .scans = scan->scans,
							  .bytes = scan->bytes_scanned,
							  .bytes_left = scan->bytes_left,
							  .complete = scan->complete,
							  .seconds = scan->seconds };
	if (!patch || scan->scans == 0 || scan->complete)
		return;
	if (scan->too_many)
		snprintf(text, sizeof(text), "the scan for suspended coroutines found more copies of "
					     "return addresses than it keeps: some were not checked");
	else
		snprintf(text, sizeof(text), "the scan for suspended coroutines read %" PRIu64
					     " MiB and stopped at its budget: %" PRIu64
					     " MiB of writable memory were not looked at",
			 scan->bytes_scanned >> 20, (scan->bytes_left + (1u << 20) - 1) >> 20);
	if (patch->warning[0])
		snprintf(patch->warning + strlen(patch->warning),
			 sizeof(patch->warning) - strlen(patch->warning), "; %s", text);
	else
		hp_copy_string(patch->warning, sizeof(patch->warning), text);
}

void session_fill_report(const struct hp_state_patch *patch, struct hp_patch_report *report)
{
	hp_copy_string(report->name, sizeof(report->name), patch->name);
	/* An older hotpatch recorded the path as typed: where it led is unknown. */
	if ((patch->known & HP_KNOWN_ABSOLUTE_PATH) || patch->path[0] == '/')
		hp_copy_string(report->path, sizeof(report->path), patch->path);
	else
		report->path[0] = '\0';
	report->sha256[0] = '\0';
	for (size_t i = 0; (patch->known & HP_KNOWN_SHA256) && i < sizeof(patch->sha256); i++)
		snprintf(report->sha256 + 2 * i, 3, "%02x", patch->sha256[i]);
	report->applied = (patch->known & HP_KNOWN_APPLIED) ? patch->applied : 0;
	hp_copy_string(report->description, sizeof(report->description), patch->description);
	hp_copy_string(report->ids, sizeof(report->ids), patch->ids);
	report->cumulative = (patch->flags & HP_STATE_CUMULATIVE) != 0;
	hp_copy_string(report->fixes, sizeof(report->fixes), patch->fixes);
	hp_copy_string(report->excluded, sizeof(report->excluded), patch->excluded);
	hp_copy_string(report->state, sizeof(report->state),
		       patch->status == HP_STATE_APPLIED ? "applied" : "incomplete");
	report->load_address = patch->load_bias;
	report->sequence = patch->sequence;
	report->function_count = 0;
	for (uint32_t i = 0; report->functions && i < patch->function_count; i++) {
		const struct hp_state_function *from = &patch->functions[i];
		struct hp_function_report *to = &report->functions[report->function_count++];

		hp_copy_string(to->object, sizeof(to->object), from->object);
		hp_copy_string(to->function, sizeof(to->function), from->function);
		to->address = from->address;
		to->jump_address = from->jump_address;
		to->replacement = from->replacement;
		hp_copy_string(to->jump_kind, sizeof(to->jump_kind),
			       !from->trampoline		? "direct"
			       : patch->gate_pages && patch->page_count &&
					       from->trampoline >= patch->pages[0] &&
					       from->trampoline < patch->pages[0] +
								   patch_state_code_length(patch, 0)
				       ? "gate"
			       : from->written[0] == 0xff ? "indirect"
							  : "trampoline");
	}
}

/* Kinds that describe the target as a step saw it: a process being torn
 * down shows an empty memory map, no threads to borrow, a call that never
 * returns, and each of those reads as its own kind of failure. */
static bool kind_may_mean_exit(enum hp_error_kind kind)
{
	switch (kind) {
	case HP_KIND_UNSET:
	case HP_KIND_FAILED:
	case HP_KIND_BUSY:
	case HP_KIND_MISFIT:
	case HP_KIND_BUILD_ID_MISMATCH:
	case HP_KIND_MISSING_OBJECT:
	case HP_KIND_MISSING_SYMBOL:
	case HP_KIND_CANNOT_PATCH:
	case HP_KIND_LOAD_FAILED:
	case HP_KIND_NOT_APPLIED:
		return true;
	default:
		return false;
	}
}

int session_classify_failure(const struct hp_session *session, const char *command, int status,
			     struct hp_error *error)
{
	char cause[sizeof(error->message)];
	pid_t pid = session->pid;

	/* A process never seen is "no process", whatever came after: it may
	 * have died, and its parent reaped it, before the command looked. */
	if (status == HP_OK || status == HP_USAGE || pid <= 0 || !session->seen ||
	    !(kind_may_mean_exit(error->kind) || error->kind == HP_KIND_NO_PROCESS) ||
	    !process_has_exited(pid))
		return status;
	/* What the step saw stays as a detail line, for whoever digs. */
	hp_copy_string(cause, sizeof(cause), error->message);
	hp_error_release(error);
	error->tid = 0;
	error->function[0] = error->file[0] = error->hint[0] = error->detail[0] = '\0';
	hp_detail(error, "the step that failed saw: %s", cause);
	return hp_fail_as(error, HP_KIND_TARGET_EXITED, "pid %d exited during %s", (int)pid,
			  command);
}
