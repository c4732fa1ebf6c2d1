/* runtime/threads.h - the target's threads: stopped, borrowed for calls, unwound, checked, moved. */
#ifndef HOTPATCH_RUNTIME_THREADS_H
#define HOTPATCH_RUNTIME_THREADS_H

#include "runtime/target.h"

/* ---- threads.c: seizing, stopping and resuming every thread ---- */
struct hp_thread {
	pid_t tid;
	bool seized;
	bool stopped;		/* held in an interrupt or group stop */
	bool group_stop;	/* held by SIGSTOP & co.: it stays stopped after us */
	struct hp_registers regs;	/* read when it stopped */
	bool pc_sp_only;	/* looked at asleep: no other register is known */
};

struct hp_threads {
	pid_t pid;
	bool leader_is_zombie;	/* the main thread exited; it cannot stop */
	size_t count, capacity;
	struct hp_thread *items;
};

/* What a wait status means for the thread that reported it. */
enum thread_event {
	THREAD_HELD,		/* stopped for us (interrupt, group stop, new thread) */
	THREAD_SIGNAL,		/* a signal for the program: deliver it */
	THREAD_OTHER,		/* another ptrace stop (clone, step, syscall) */
	THREAD_GONE,		/* exited */
};

/* Installs the SIGCHLD handling the waits rely on; undone by threads_release. */
void threads_init(struct hp_threads *threads, pid_t pid);
void threads_release(struct hp_threads *threads);
/* Seizes every thread without stopping it, re-reading the thread list until
 * a pass finds no new one; threads created later are seized at birth. */
int threads_seize_all(struct hp_threads *threads, struct hp_error *error) HP_MUST_CHECK;
/* Seizes what is new, then stops every thread: one interrupt and one wait
 * each, their registers read. */
int threads_stop_all(struct hp_threads *threads, double deadline,
		     struct hp_error *error) HP_MUST_CHECK;
/* Seizes and stops one thread. */
int threads_stop_one(struct hp_threads *threads, pid_t tid, double deadline,
		     struct hp_error *error) HP_MUST_CHECK;
/* Lets one stopped thread go (detached, so it runs on untraced, or stays
 * in its group stop) and forgets it. */
int threads_detach_one(struct hp_threads *threads, pid_t tid, struct hp_error *error) HP_MUST_CHECK;
/* Lets every stopped thread run on, still seized. */
int threads_continue_all(struct hp_threads *threads, struct hp_error *error) HP_MUST_CHECK;
/* Waits `seconds` while seized threads run, passing on their signals. */
void threads_run_for(struct hp_threads *threads, double seconds);
/* The same without waiting: what seized threads reported so far. */
void threads_serve(struct hp_threads *threads);
/* Waits for every seized thread that runs to be held again. */
int threads_collect(struct hp_threads *threads, double deadline,
		    struct hp_error *error) HP_MUST_CHECK;
/* Detaches every seized thread, which lets it run again. */
void threads_resume_all(struct hp_threads *threads);
/* Answers a stop we did not ask for so the thread runs on: a signal for
 * the program is delivered, anything else continued. */
int threads_pass_on(struct hp_thread *thread, enum thread_event event, int status,
		    struct hp_error *error) HP_MUST_CHECK;
/* Waits for the next stop of `tid`: 1, its status in *status; 0, it is a
 * zombie that will report nothing (forgotten); -1, failed. */
int threads_wait_or_gone(struct hp_threads *threads, pid_t tid, double deadline, int *status,
			 struct hp_error *error) HP_MUST_CHECK;
/* Sorts a wait status out, noting exits, new threads and held stops. */
enum thread_event threads_classify(struct hp_threads *threads, pid_t tid, int status,
				   struct hp_thread **thread);
/* Waits for the next stop of `tid` (-1: any thread); returns the tid that
 * reported, or a negative status. */
pid_t thread_wait(pid_t tid, double deadline, int *status, struct hp_error *error) HP_MUST_CHECK;
/* Runs a held thread one instruction at a time until its pc leaves
 * [start, end), at most `most` instructions (code of ours that makes no
 * system call).  A signal on the way is delivered and the thread held
 * again where it then is.  HP_OK: the thread is held, its registers read,
 * wherever it is, or it exited (and is forgotten). */
int thread_step_out(struct hp_threads *threads, pid_t tid, uint64_t start, uint64_t end,
		    unsigned most, double deadline, struct hp_error *error) HP_MUST_CHECK;
/* Lists /proc/PID/task (bounded); *tids is malloc'd. */
int threads_list(pid_t pid, pid_t **tids, size_t *count, struct hp_error *error) HP_MUST_CHECK;
pid_t threads_first_stopped(const struct hp_threads *threads);
/* The system call a thread is blocked in, from /proc without stopping it;
 * -1 while it runs. */
long thread_blocked_syscall(pid_t pid, pid_t tid);
/* The thread exists and is not a zombie (read from /proc). */
bool thread_is_alive(pid_t pid, pid_t tid);
/* Every thread of the process has exited or is on its way out (a zombie,
 * inside exit, or killed): nothing of it will run its own code again. */
bool process_has_exited(pid_t pid);
struct hp_thread *threads_find(struct hp_threads *threads, pid_t tid);
/* How a stopped thread will get back to its own code. */
enum thread_resume {
	THREAD_RESUME_SIGNAL_PATH,	/* from an interrupt stop, through signal handling */
	THREAD_RESUME_DIRECT,		/* from a system-call stop, or registers we restore */
};
/* Puts a system call that our stop cut short (EINTR from epoll_wait & co.;
 * with THREAD_RESUME_DIRECT also an ERESTART* code) back to run again, in
 * *regs only; returns whether they changed. */
bool thread_rewind_call(pid_t pid, pid_t tid, struct hp_registers *regs,
			enum thread_resume how);
/* The same on the stopped thread itself: 1 rewound, 0 nothing to do, -1
 * failed. */
int thread_rewind_stopped(pid_t pid, pid_t tid, enum thread_resume how);

/* ---- remote_call.c: system calls and function calls on a borrowed thread ---- */
struct hp_remote {
	pid_t pid, tid;
	bool active;
	bool in_process;	/* the caller is the target: calls are plain calls */
	bool in_signal_stop;	/* the last stop passes through signal delivery */
	bool signals_blocked;	/* we blocked the thread's signals */
	bool self_restoring;	/* a frame is on its stack; the stub restores it */
	bool faulted;		/* a call faulted: only we can put it back */
	bool at_sync;		/* stopped at the sync point after a call */
	uint64_t frame;		/* where that frame is */
	uint64_t signal_frame;	/* a signal frame for the first system call, or 0 */
	uint64_t libc_restore_rt;	/* libc's rt_sigreturn trampoline, or 0 */
	struct hp_registers saved_regs;
	struct hp_extended_state saved_extended;
	uint64_t saved_sigmask;
	uint64_t stub_page;	/* our call/syscall stubs in the target, or 0 */
	uint64_t libc_syscall;	/* a syscall instruction of the target's libc */
	double deadline;
	double call_deadline;	/* when set, a call's own bound instead of the deadline's grace */
};

/* Layout of the stub page: code (arch.h's HP_STUB_CALL, HP_STUB_SYSCALL,
 * HP_STUB_RESTORE: drawn in arch/ARCH/stub.c), then scratch data.  Both
 * stubs end at the sync system call (where a live hotpatch takes the
 * result) and go on into the restore code, which puts back the thread's
 * signal mask, extended state, registers, stack and instruction pointer
 * from a frame on its own stack. */
#define HP_STUB_DATA HP_STUB_CODE_SIZE	/* strings passed to remote calls */
#define HP_STUB_DATA_SIZE (HP_STUB_TRAMPOLINES - HP_STUB_DATA)
/* Return trampolines for moving busy threads (thread_move.c), and the
 * slots holding where each returns to. */
#define HP_STUB_TRAMPOLINES 0xc00
#define HP_STUB_TRAMPOLINE_SIZE 0x20
_Static_assert(HP_RETURN_TRAMPOLINE_LENGTH <= HP_STUB_TRAMPOLINE_SIZE,
	       "a return trampoline fits its place");
#define HP_STUB_TRAMPOLINE_COUNT 16
#define HP_STUB_SLOTS (HP_STUB_TRAMPOLINES + HP_STUB_TRAMPOLINE_COUNT * HP_STUB_TRAMPOLINE_SIZE)
#define HP_STUB_NEXT_TRAMPOLINE (HP_STUB_SLOTS + HP_STUB_TRAMPOLINE_COUNT * 8)

int remote_begin(struct hp_remote *remote, pid_t pid, pid_t tid, uint64_t libc_syscall,
		 uint64_t libc_restore_rt, double deadline, struct hp_error *error) HP_MUST_CHECK;
int remote_syscall(struct hp_remote *remote, long number, const uint64_t arguments[6],
		   int64_t *result, struct hp_error *error) HP_MUST_CHECK;
/* Like remote_syscall, turning a -errno result into a failure naming `what`. */
int remote_syscall_checked(struct hp_remote *remote, long number, const uint64_t arguments[6],
			   const char *what, int64_t *result, struct hp_error *error) HP_MUST_CHECK;
int remote_call(struct hp_remote *remote, uint64_t function, const uint64_t arguments[6],
		uint64_t *result, struct hp_error *error) HP_MUST_CHECK;
/* Puts back registers, extended state and signal mask; the thread stays
 * stopped (the caller detaches it).  Safe to call when not begun. */
int remote_end(struct hp_remote *remote, struct hp_error *error);

/* ---- remote_self.c: the same calls when the target is the caller ---- */
/* Begins "remote" work in the calling process (the preloaded loader): the
 * system calls and function calls of remote_call.c become plain ones. */
void remote_begin_self(struct hp_remote *remote);
int remote_self_syscall(long number, const uint64_t arguments[6], int64_t *result);
int remote_self_call(uint64_t function, const uint64_t arguments[6], uint64_t *result);

/* ---- stack_unwind.c: libunwind with accessors of our own ---- */
#define HP_FRAMES_MAX 512

struct hp_frame {
	uint64_t ip, sp;
	/* Where the return address `ip` is stored in memory, as the unwind
	 * information of the frame below says (x86-64: sp - 8; arm64: where
	 * the callee saved x30, if it did); 0 when it is in a register or
	 * unknown. */
	uint64_t return_slot;
};

struct hp_stack {
	size_t count;
	bool complete;		/* reached the outermost frame, every frame known */
	int error_code;		/* libunwind's, when not complete */
	uint64_t unknown_ip;	/* the first frame without unwind information */
	struct hp_frame frames[HP_FRAMES_MAX];
};

struct hp_unwinder;
int unwinder_create(pid_t pid, struct hp_unwinder **unwinder,
		    struct hp_error *error) HP_MUST_CHECK;
void unwinder_release(struct hp_unwinder *unwinder);
/* Our stub page (checked to be ours), whose return trampolines a stack may
 * pass through: unwinding goes on at the return address each stands for. */
void unwinder_know_stub_page(struct hp_unwinder *unwinder, uint64_t stub_page);
/* Forgets memory that can change (stacks, data): at every new stop. */
void unwinder_forget_volatile(struct hp_unwinder *unwinder);
/* Makes room for the stacks of `threads` threads before a stop, so that
 * no memory is faulted in while the target is stopped. */
void unwinder_reserve(struct hp_unwinder *unwinder, size_t threads);
/* pc_sp_only: the other registers are unknown, and a stack that needs one
 * is not unwound to its end. */
void unwinder_unwind(struct hp_unwinder *unwinder, const struct hp_registers *regs,
		     bool pc_sp_only, struct hp_stack *stack);

/* ---- thread_asleep.c: a sleeping thread seen without a stop ---- */
/* How much a thread has run: schedstat's time and times on a processor,
 * or (from_status) its voluntary and involuntary context switches. */
struct hp_run_count {
	uint64_t first, second;
};

struct hp_asleep {
	uint64_t pc, sp;	/* where it returns to user space */
	struct hp_run_count count;	/* how much it had run */
	bool from_status;	/* counted by status, not schedstat */
	int count_fd, syscall_fd;	/* its /proc files, read again by _still */
};

/* False when the thread runs (or may), is gone, or cannot be read; true
 * leaves its files open until thread_asleep_end. */
bool thread_asleep_look(pid_t pid, pid_t tid, struct hp_asleep *seen);
/* True only if it did not run since thread_asleep_look saw it: asleep at
 * the same place, switched out no more. */
bool thread_asleep_still(const struct hp_asleep *seen);
void thread_asleep_end(struct hp_asleep *seen);

/* ---- stack_check.c: is any thread in (or returning into) these ranges? ---- */
struct hp_range {
	uint64_t start, end;
	const char *label;
};

#define HP_BACKTRACE_SHORT 8

/* A thread in the way, and what is known about where it is. */
struct hp_blocker {
	pid_t tid;
	const struct hp_range *range;	/* replaced code it runs in; NULL if none */
	size_t frame;			/* the innermost frame in `range` */
	uint64_t return_ip;		/* where the outermost such frame returns to */
	uint64_t return_sp;		/* and the SP it returns with; 0 if unknown */
	uint64_t return_slot;		/* where return_ip is stored; 0 if unknown */
	bool unreliable;		/* the stack could not be unwound to its end */
	uint64_t unknown_ip;		/* where unwind information was missing */
	uint64_t saved_at;		/* suspended (no thread): where the return
					 * address return_ip is stored; else 0 */
	int unwind_error;
	size_t frame_count;
	uint64_t frames[HP_BACKTRACE_SHORT];
};

struct hp_stack_checker;
int stack_checker_create(pid_t pid, struct hp_stack_checker **checker,
			 struct hp_error *error) HP_MUST_CHECK;
void stack_checker_release(struct hp_stack_checker *checker);
/* The ranges every later check looks for (copied, sorted, merged). */
int stack_checker_set_ranges(struct hp_stack_checker *checker, const struct hp_range *ranges,
			     size_t count, struct hp_error *error) HP_MUST_CHECK;
/* Notes, over the checks of one stop, which of `count` return trampolines
 * from `start` some thread runs in or will return through. */
void stack_checker_watch(struct hp_stack_checker *checker, uint64_t start, uint32_t count);
uint32_t stack_checker_watched(const struct hp_stack_checker *checker);
/* Our stub page, checked to be ours: see unwinder_know_stub_page. */
void stack_checker_know_stub_page(struct hp_stack_checker *checker, uint64_t stub_page);
/* Call once per stop, before checking: stacks may have changed. */
void stack_checker_new_stop(struct hp_stack_checker *checker);
/* Before a stop: memory for unwinding `threads` threads. */
void stack_checker_reserve(struct hp_stack_checker *checker, size_t threads);
/* The range containing `address`, or NULL. */
const struct hp_range *stack_checker_range_at(const struct hp_stack_checker *checker,
					      uint64_t address);
/* Unwinds one stopped thread; the stack stays valid until the next unwind. */
const struct hp_stack *stack_checker_unwind(struct hp_stack_checker *checker,
					    const struct hp_thread *thread);
/* Unwinds one stopped thread; true, with `blocker` filled, when it is in
 * the way.  An unreliable stack is in the way unless `allow_unreliable`. */
bool stack_check_thread(struct hp_stack_checker *checker, const struct hp_thread *thread,
			bool allow_unreliable, struct hp_blocker *blocker);

/* ---- suspended_scan.c: frames suspended off every thread's stack ---- */
struct hp_suspended_hit {
	uint64_t address, value;	/* a copy of a return site, and where */
};

/* A context getcontext/swapcontext saved, with a stack of its own. */
struct hp_suspended_context {
	uint64_t address;		/* of the ucontext_t */
	uint64_t stack, end;		/* the stack makecontext gave it */
};

struct hp_suspended_scan {
	size_t site_count;
	uint64_t *sites;		/* return sites of the code changed: sorted, unique */
	size_t hit_count, hit_capacity;
	struct hp_suspended_hit *hits;	/* found by the last scan */
	size_t context_count, context_capacity;
	struct hp_suspended_context *contexts;	/* found by the last scan: sorted
						 * by stack, no two stacks overlapping */
	struct hp_maps maps;		/* as the last scan read them */
	uint64_t bytes_scanned;		/* the last scan: resident bytes read */
	uint64_t bytes_left;		/* and bytes of address space not read (budget) */
	bool too_many;			/* more copies than are kept */
	bool complete;			/* the last scan looked at everything */
	unsigned scans;
	double seconds;			/* every scan together */
};

/* The return sites of `ranges`: where a frame suspended in them returns.
 * A range that cannot be read holds none. */
int suspended_scan_prepare(struct hp_suspended_scan *scan, struct hp_memory *memory,
			   const struct hp_range *ranges, size_t count,
			   struct hp_error *error) HP_MUST_CHECK;
/* While the target runs: finds every aligned word equal to a return site in
 * the private writable memory (resident pages), until `deadline` or the
 * byte budget (then scan->complete is false).  What seized `threads`
 * report meanwhile (signals, new threads) is passed on as it comes. */
int suspended_scan_run(struct hp_suspended_scan *scan, struct hp_threads *threads,
		       struct hp_memory *memory, double deadline,
		       struct hp_error *error) HP_MUST_CHECK;
/* Every thread stopped: the copies found that are still there, outside the
 * stack of a thread running on it, as blockers (at most `capacity`). */
size_t suspended_scan_check(struct hp_suspended_scan *scan, struct hp_memory *memory,
			    const struct hp_threads *threads, const struct hp_stack_checker *checker,
			    struct hp_blocker *blockers, size_t capacity);
void suspended_scan_release(struct hp_suspended_scan *scan);

/* ---- suspended_stacks.c: which copies the scan found are dead ---- */
/* During a scan: the saved context at `address`, its first HP_CONTEXT_HEAD
 * bytes `head` (kept when it has a stack of its own). */
void suspended_note_context(struct hp_suspended_scan *scan, const unsigned char *head,
			    uint64_t address);
/* After a scan: the contexts sorted, those on overlapping stacks left out. */
void suspended_sort_contexts(struct hp_suspended_scan *scan);

/* Every thread stopped: the stacks threads run on, where every copy is dead
 * or was checked by unwinding, and the stacks of suspended contexts, dead
 * below the stack pointer each resumes with. */
struct hp_dead_memory {
	const struct hp_suspended_scan *scan;
	struct hp_memory *memory;
	size_t running_count;
	struct hp_range *running;	/* sorted, not overlapping */
	size_t cached;			/* the context read last, SIZE_MAX if none */
	uint64_t cached_sp;		/* its stack pointer now, 0 if not known */
};

/* HP_FAILED when out of memory: then nothing is known dead. */
int dead_memory_open(struct hp_dead_memory *dead, const struct hp_suspended_scan *scan,
		     struct hp_memory *memory, const struct hp_threads *threads) HP_MUST_CHECK;
/* Whether a copy at `address` is dead; ask in increasing addresses. */
bool dead_memory_holds(struct hp_dead_memory *dead, uint64_t address);
void dead_memory_close(struct hp_dead_memory *dead);

/* ---- thread_move.c: letting busy threads alone leave replaced code ---- */
/* Runs the blockers' threads, every other thread staying stopped, each until
 * its outermost frame in replaced code returns (through a trampoline of our
 * stub page, none of those marked in `trampolines_held`) or `deadline`
 * passes.  HP_OK: every one is out (or exited) and stopped again; HP_BUSY:
 * some are not, all are stopped and as they were. */
int thread_move_out(struct hp_threads *threads, struct hp_memory *memory, uint64_t stub_page,
		    const struct hp_blocker *blockers, size_t count, uint32_t trampolines_held,
		    double deadline, struct hp_error *error) HP_MUST_CHECK;

#endif
