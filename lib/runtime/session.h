/* runtime/session.h - what every command about a process does around its work. */
#ifndef HOTPATCH_RUNTIME_SESSION_H
#define HOTPATCH_RUNTIME_SESSION_H

#include "runtime/state.h"

/* ---- session.c: what every command does around its work ---- */
/* A rollback's own budget (apply's undo, the gates' way back): the
 * command's deadline may be spent by then. */
#define HP_ROLLBACK_SECONDS 5.0

struct hp_session {
	pid_t pid;
	double start, deadline;
	int lock_fd;
	struct hp_memory memory;
	struct hp_target target;
	struct hp_threads threads;
	struct hp_state state;
	struct hp_stack_checker *checker;
	volatile const int *interrupted;
	const char *command;	/* "apply", "revert": marked in the state while at work */
	struct hp_state_command previous;	/* a command killed at work, name "" if none */
	bool marked;		/* the state says this command is at work */
	bool allow_unreliable;	/* stacks that cannot be unwound are not in the way */
	bool find_suspended;	/* scan memory for frames suspended off the threads' stacks */
	struct hp_suspended_scan suspended;
	bool in_process;	/* the engine runs inside the target (hp_request) */
	bool seen;		/* the process was there when the command opened it */
	bool stub_checked, stub_ok;	/* the state's stub page holds our code */
	unsigned thread_count;	/* threads seen at the last stop */
	double longest_stop;	/* seconds, over every attempt */
	size_t blocker_count, blocker_capacity;
	struct hp_blocker *blockers;	/* threads in the way at the last check */
};

int session_open(struct hp_session *session, const struct hp_request *request,
		 bool needs_ptrace, struct hp_error *error) HP_MUST_CHECK;
/* The same; a reader (needs_lock false) takes no lock and reads the state as
 * it is, with any command at work on it. */
int session_open_as(struct hp_session *session, const struct hp_request *request,
		    bool needs_ptrace, bool needs_lock, struct hp_error *error) HP_MUST_CHECK;
/* Some hotpatch command holds the lock for `pid` now. */
bool session_lock_held(pid_t pid);
void session_close(struct hp_session *session);
/* Ctrl-C or SIGTERM came.  Inline: borrow_choice.c, under session.c, asks too. */
static inline bool session_interrupted(const struct hp_session *session)
{
	return session->interrupted && *session->interrupted;
}
/* A failure the step that failed could not name (a read that found the
 * process gone, say) becomes "pid N exited during COMMAND", kind
 * target_exited, when the process has ended or is ending; the status. */
int session_classify_failure(const struct hp_session *session, const char *command, int status,
			     struct hp_error *error) HP_MUST_CHECK;

/* ---- borrow_choice.c: which thread runs the remote calls ---- */
/* Stops a thread that can run dlopen without deadlocking: none of its frames
 * in the dynamic loader or the allocator (whose locks it could hold),
 * preferring one blocked in a system call; retries until the deadline. */
int borrow_choose_thread(struct hp_session *session, pid_t *chosen,
			 struct hp_error *error) HP_MUST_CHECK;

/* Borrows the best thread for remote calls: seizes and stops it, begins. */
int session_borrow_thread(struct hp_session *session, struct hp_remote *remote,
			  struct hp_error *error) HP_MUST_CHECK;
/* The same without our stub page: its system calls run through libc's
 * syscall instruction, with a signal frame to return through if we die (as
 * the first call in a process does), and nothing is created in the target.
 * For unmapping the stub page itself. */
int session_borrow_thread_bare(struct hp_session *session, struct hp_remote *remote,
			       struct hp_error *error) HP_MUST_CHECK;
/* Ends the remote work and lets the borrowed thread go; a failure doing so
 * is reported only when `status`, the work's outcome, is HP_OK. */
int session_return_thread(struct hp_session *session, struct hp_remote *remote, int status,
			  struct hp_error *error) HP_MUST_CHECK;
/* Stops every thread and checks their stacks against `ranges`; busy threads
 * are moved out alone, else everyone is resumed and the check retried until
 * the deadline.  Before each stop (find_suspended) the memory is scanned for
 * frames suspended in the ranges off every thread's stack; one still there
 * in the stop is in the way too.  On HP_OK every thread is left stopped; on HP_BUSY the error
 * names every thread in the way. */
int session_stop_when_clear(struct hp_session *session, const struct hp_range *ranges,
			    size_t range_count, unsigned *attempts, double *stopped_at,
			    struct hp_error *error) HP_MUST_CHECK;
/* What the scans for suspended frames read, into the result; an
 * incomplete scan is a warning on the reported patch. */
void session_report_scan(const struct hp_session *session, struct hp_result *result);
/* Takes a patch object out of the target (dlclose) and unmaps the pages
 * `record` names (trampolines, gates; none when NULL) through a borrowed
 * thread; tries every step, reports the first failure. */
int session_unload_patch(struct hp_session *session, uint64_t handle,
			 const struct hp_state_patch *record, struct hp_error *error) HP_MUST_CHECK;
/* The same through a thread borrowed already (several patches, one borrow). */
int session_unload_on(struct hp_session *session, struct hp_remote *remote, uint64_t handle,
		      const struct hp_state_patch *record, struct hp_error *error) HP_MUST_CHECK;
void session_fill_report(const struct hp_state_patch *patch, struct hp_patch_report *report);

/* Writes into the state that this session's command is at work (once; it
 * creates nothing: without a state there is nothing to mark yet). */
int session_mark_running(struct hp_session *session, struct hp_error *error) HP_MUST_CHECK;

/* ---- transition.c: apply without stopping every thread at once ---- */
/* One function's entry: where its jump goes and the aligned block around it. */
struct hp_transition_site {
	uint64_t site;				/* the jump address */
	unsigned char current[HP_SAVED_MAX];	/* the bytes there now */
	size_t length;				/* that may be overwritten */
	size_t displaced;			/* run by the gate instead */
	uint64_t block;				/* the aligned block holding the site */
	unsigned char original[HP_GATE_STORE_SIZE];	/* what it holds now */
	unsigned char gated[HP_GATE_STORE_SIZE];	/* and with the gate's jump */
	bool in_place;				/* the gate's jump is there */
	uint64_t landing;			/* a punned entry's jump lands here, or 0 */
};

/* gate_view.c: hotpatch's own mapping of a gate table, shared with the
 * target; bytes NULL when there is none (bytes then go through
 * /proc/PID/mem, and no thread is moved asleep). */
struct hp_gate_view {
	unsigned char *bytes;
	uint64_t length;
};

void gate_view_open(pid_t pid, struct hp_memory *memory, uint64_t start, uint64_t length,
		    struct hp_gate_view *view);
void gate_view_close(struct hp_gate_view *view);
/* Every byte of the table back to 0 (unseen); false when the kernel
 * refuses (or there is no view). */
bool gate_view_empty(struct hp_gate_view *view);

struct hp_transition {
	bool active;		/* this apply goes through gates */
	bool gated;		/* entries jump to their gates */
	bool moving;		/* threads may have moved to the new code */
	bool stopped_all;	/* the check stopped every thread after all */
	bool keep_page;		/* a rollback could not bring every thread back */
	char why_not[HP_TEXT_MAX];	/* when not active: why */
	uint64_t page;		/* the gate mapping, 0 if none */
	uint64_t code_length;	/* its code, gate_code_length(count); the table follows */
	uint64_t limit;		/* its table's length (thread ids below it) */
	struct hp_gate_view view;	/* the table, mapped in hotpatch too */
	unsigned asleep;	/* threads moved asleep, never stopped */
	struct hp_range new_code;	/* the patch's code, for a rollback's checks */
	size_t count;
	struct hp_transition_site *sites;
};

/* On the borrowed thread: when the no-stop way fits (else HP_OK, inactive,
 * why_not said, nothing left), maps the gate mapping (named in `record`
 * first), writes the gates and sets each function's jump in `record` to
 * its gate. */
int transition_prepare(struct hp_session *session, struct hp_remote *remote,
		       struct hp_state_patch *record, const struct hp_transition_site *sites,
		       size_t count, struct hp_transition *transition,
		       struct hp_error *error) HP_MUST_CHECK;
/* Every entry to its gate, each by one store of the target's own (a
 * borrowed thread); what fails is taken back.  When no code page may be
 * made writable, HP_OK with nothing gated: the jumps go in with every
 * thread stopped instead. */
int transition_gate(struct hp_session *session, struct hp_transition *transition,
		    struct hp_error *error) HP_MUST_CHECK;
/* Every thread moved to the new code alone, once out of `ranges` and the
 * gates (HP_OK, every thread running; commit with transition_decide).
 * Past a share of the timeout, or with frames suspended in `ranges`,
 * every thread is stopped at once instead (session_stop_when_clear, every
 * thread left stopped, stopped_all set). */
int transition_check(struct hp_session *session, struct hp_transition *transition,
		     const struct hp_range *ranges, size_t range_count, unsigned *attempts,
		     double *stopped_at, struct hp_error *error) HP_MUST_CHECK;
/* The commit: every gate sends every thread to the new code. */
int transition_decide(struct hp_session *session, struct hp_transition *transition,
		      struct hp_error *error) HP_MUST_CHECK;
/* The rollback: every thread back to the original code once out of the
 * new, the entries' bytes back, the gates emptied; else keep_page (the
 * patch must stay loaded and recorded). */
int transition_ungate(struct hp_session *session, struct hp_transition *transition,
		      struct hp_error *error) HP_MUST_CHECK;

/* A revert of a patch applied through gates, while every thread runs:
 * the transition as its record and the target say it is (HP_OK, inactive
 * with why_not said, when it cannot be reverted that way). */
int transition_from_record(struct hp_session *session, const struct hp_state_patch *record,
			   struct hp_transition *transition, struct hp_error *error) HP_MUST_CHECK;
/* Every thread moved back to the original code alone, once out of
 * `ranges` (the patch's code) and the gates.  Past a share of the timeout,
 * or with frames suspended in `ranges`, HP_OK with stopped_all set: the
 * rest is for a global stop. */
int transition_move_back(struct hp_session *session, struct hp_transition *transition,
			 const struct hp_range *ranges, size_t range_count, unsigned *attempts,
			 struct hp_error *error) HP_MUST_CHECK;
/* The revert's commit: every gate to the original code, the entries'
 * bytes back (a failure takes back its own half). */
int transition_revert_entries(struct hp_session *session, struct hp_transition *transition,
			      struct hp_error *error) HP_MUST_CHECK;
/* Every thread seen once out of the gates and the patch's code (until the
 * deadline; HP_BUSY then). */
int transition_drain(struct hp_session *session, struct hp_transition *transition,
		     struct hp_error *error) HP_MUST_CHECK;
/* Every thread seen once out of `ranges`, each on its own (asleep, or
 * stopped alone), never all at once: for code that only a hotpatch holding
 * the lock sends a thread into, so that a thread seen out stays out.  Until
 * the session's deadline; HP_BUSY then, the blockers in the session. */
int transition_see_each_clear(struct hp_session *session, const struct hp_range *ranges,
			      size_t range_count, struct hp_error *error) HP_MUST_CHECK;
/* The revert's rollback: each thread moved back returns to the new code
 * once out of `old_code`; then phase 1.  HP_BUSY: a thread stayed, the
 * patch is left incomplete. */
int transition_move_forward(struct hp_session *session, struct hp_transition *transition,
			    const struct hp_range *old_code, size_t old_count,
			    struct hp_error *error) HP_MUST_CHECK;

/* ---- gate_rewind.c: threads in the gates, before their function ---- */
/* A stopped thread in the gates of a recorded patch, before any of its
 * function ran, is put back at the function's entry (its registers
 * written); one running a moved prologue on is stepped into its function.
 * *seen is the thread as a stack check should look at it (from its caller
 * when put back); its tid is 0 when the thread exited meanwhile (the
 * session forgot it: a pointer into the threads may have moved). */
int gates_rewind(struct hp_session *session, pid_t tid, struct hp_thread *seen,
		 struct hp_error *error) HP_MUST_CHECK;
void transition_release(struct hp_transition *transition);

/* ---- leftovers.c: what killed commands left in the target, taken back ---- */
enum hp_leftover_kind {
	HP_LEFTOVER_OBJECT,	/* a patch object loaded and never recorded */
	HP_LEFTOVER_RECORD,	/* a record of a patch half in or out, no jump in place */
	HP_LEFTOVER_INCOMPLETE,	/* a record with jumps in place: revert decides */
	HP_LEFTOVER_DESCRIPTOR,	/* a memfd of ours still open */
	HP_LEFTOVER_STUB,	/* a stub page the state does not name */
	HP_LEFTOVER_STATE,	/* a mapping named like the state that is not it */
};

struct hp_leftover {
	enum hp_leftover_kind kind;
	char name[HP_PATCH_NAME_MAX];	/* the patch concerned, or "" */
	uint64_t address;	/* reported: load bias, page, or descriptor number */
	uint64_t size;		/* pages: bytes mapped */
	uint64_t start, end;	/* code that must be clear of every stack */
	uint64_t bias;		/* objects: where the loader put it */
	long record;		/* index in the state, or -1 */
	int64_t descriptor;
	bool loaded;		/* its object is mapped */
	bool reclaimable, reclaimed;
	char reason[HP_TEXT_MAX];
};

struct hp_leftovers {
	size_t count;
	struct hp_leftover *items;
};

/* Finds what killed commands left (reads only; no thread is stopped). */
int leftovers_find(struct hp_session *session, struct hp_leftovers *found,
		   struct hp_error *error) HP_MUST_CHECK;
/* Takes back what provably nothing uses: a short stop checks every stack,
 * then a borrowed thread unloads, unmaps and closes.  What stays gets its
 * reason; only a failure that concerns the whole process is returned. */
int leftovers_reclaim(struct hp_session *session, struct hp_leftovers *found,
		      struct hp_error *error) HP_MUST_CHECK;
int leftovers_report(const struct hp_session *session, const struct hp_leftovers *found,
		     struct hp_result *result, struct hp_error *error) HP_MUST_CHECK;
void leftovers_release(struct hp_leftovers *found);
/* What every command does first: find, take back when `reclaim` (apply and
 * revert), and report in `result` (list and check only report). */
int leftovers_take_back(struct hp_session *session, bool reclaim, struct hp_result *result,
			struct hp_error *error) HP_MUST_CHECK;

/* ---- process_family.c: whether a parent's later children get a patch ---- */
/* Warns on each reported patch that the target's parent, the same program,
 * does not have (its later children start without it). */
void family_note_patches(pid_t pid, struct hp_result *result);

/* ---- state_removal.c: nothing of ours left, no state either ---- */
/* When the state holds no record and nothing of ours is left in the process
 * but the state mapping and the stub page, takes both out (after a short
 * stop shows no thread in or returning into the stub page), so that the
 * process looks never patched.  Keeps them, with HP_OK, when anything is
 * in the way. */
int state_remove_if_empty(struct hp_session *session, struct hp_error *error) HP_MUST_CHECK;

/* ---- busy_report.c: the error that names every thread in the way ---- */
void session_describe_blockers(struct hp_session *session, struct hp_error *error);

/* ---- hooks.c: the patch author's hooks, run in the target ---- */
/* Calls the hook at `address` on the borrowed thread, within its time
 * limit; *returned is its result.  On a timeout *still_running says the
 * thread is still in it: its patch must not be unloaded. */
int hook_call(struct hp_remote *remote, const char *patch, const char *which, uint64_t address,
	      int *returned, bool *still_running, struct hp_error *error) HP_MUST_CHECK;
/* The same on a thread borrowed for it. */
int hook_run(struct hp_session *session, const char *patch, const char *which, uint64_t address,
	     int *returned, bool *still_running, struct hp_error *error) HP_MUST_CHECK;
/* `address` (from the state) is code of the patch `record` names, mapped. */
bool hook_in_patch(const struct hp_session *session, const struct hp_state_patch *record,
		   uint64_t address);

/* ---- takeover.c: a cumulative patch taking over every older one ---- */
/* A jump site of an older patch, and the bytes to write there. */
struct hp_takeover_site {
	uint64_t address;
	uint32_t length;		/* the longest older jump written there */
	bool shared;			/* the new patch jumps from here too */
	uint8_t current[HP_SAVED_MAX];	/* what it holds now */
	uint8_t original[HP_SAVED_MAX];	/* what it held before any patch */
};

struct hp_takeover {
	size_t older_count;
	long *older;			/* the records taken over, by index in the state */
	char *names;			/* theirs, space separated, for the report */
	size_t site_count;
	struct hp_takeover_site *sites;
};

/* Lays the saved bytes of the records before `before` (not reverted) over
 * `bytes`, what [address, address + length) holds now, from the newest
 * to the oldest: what the code was before any of them. */
void takeover_original_bytes(const struct hp_state *state, size_t before, uint64_t address,
			     unsigned char *bytes, size_t length);
/* Every record not reverted is taken over by the patch that replaces the
 * functions at `addresses`, jumping from `jump_addresses`: their sites,
 * with the bytes each holds now and its original ones. */
int takeover_plan(const struct hp_state *state, struct hp_memory *memory,
		  const uint64_t *addresses, const uint64_t *jump_addresses, size_t count,
		  struct hp_takeover *takeover, struct hp_error *error) HP_MUST_CHECK;
/* Appends the older patches' code and trampoline pages to `ranges`. */
int takeover_ranges(const struct hp_state *state, const struct hp_takeover *takeover,
		    struct hp_range **ranges, size_t *count, struct hp_error *error) HP_MUST_CHECK;
/* Inside the stop: the first `count` jumps of `record` and the older
 * sites' original bytes in one write (without a takeover, the jumps only). */
int takeover_write_jumps(const struct hp_takeover *takeover, struct hp_memory *memory,
			 pid_t stopped_tid, const struct hp_state_patch *record, size_t count,
			 struct hp_error *error) HP_MUST_CHECK;
/* Inside the stop, after a failed write: the older sites as they were. */
void takeover_undo_write(const struct hp_takeover *takeover, struct hp_memory *memory,
			 pid_t stopped_tid);
/* After the commit: the record at *record_index keeps the original bytes,
 * the older ones are marked reverted, unloaded and dropped (*record_index
 * follows). */
int takeover_finish(struct hp_session *session, long *record_index, struct hp_takeover *takeover,
		    struct hp_error *error) HP_MUST_CHECK;
void takeover_release(struct hp_takeover *takeover);

#endif
