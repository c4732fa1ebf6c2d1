/* engine.h - the interface between the command-line front end (cmd/) and the
 * engine (lib/).  The engine never prints, never parses options and never
 * exits: it returns a status and fills an error record and a result. */
#ifndef HOTPATCH_ENGINE_H
#define HOTPATCH_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Engine statuses; the front end maps -status to the process exit code. */
enum hp_status {
	HP_OK = 0,
	HP_FAILED = -1,		/* cannot attach, target died, I/O error */
	HP_USAGE = -2,		/* the request itself is wrong */
	HP_BUSY = -3,		/* a function stayed on a stack until the timeout */
	HP_MISFIT = -4,		/* the patch does not fit this target */
};

#define HP_TEXT_MAX 256
#define HP_PATCH_NAME_MAX 64
/* The ids of a patch's fixes together, space separated, with the NUL. */
#define HP_FIXES_MAX 512

/* Why a command failed, for scripts: each kind belongs to one exit code
 * (hp_error_kind_status).  HP_KIND_UNSET means "the status says it all":
 * the kind is then "failed", "usage", "busy" or "misfit".  Documented, one
 * by one, in hotpatch(1); append new kinds, never renumber or rename. */
enum hp_error_kind {
	HP_KIND_UNSET = 0,
	HP_KIND_FAILED,			/* 1: anything below not more precise */
	HP_KIND_NO_PROCESS,		/* 1: no such pid */
	HP_KIND_NOT_PERMITTED,		/* 1: ptrace or /proc/PID/mem refused */
	HP_KIND_LOCKED,			/* 1: another hotpatch works on the pid */
	HP_KIND_INTERRUPTED,		/* 1: SIGINT/SIGTERM/SIGHUP to hotpatch */
	HP_KIND_TARGET_EXITED,		/* 1: the process ended during the command */
	HP_KIND_OUTPUT,			/* 1: stdout could not be written */
	HP_KIND_USAGE,			/* 2 */
	HP_KIND_BUSY,			/* 3 */
	HP_KIND_MISFIT,			/* 4: the patch does not fit, other reasons */
	HP_KIND_UNTRUSTED,		/* 4: owner, mode, signature of the file */
	HP_KIND_BAD_PATCH,		/* 4: not a well-formed patch object */
	HP_KIND_BUILD_ID_MISMATCH,	/* 4: pinned build-id differs */
	HP_KIND_MISSING_OBJECT,		/* 4: a library the patch needs is not loaded */
	HP_KIND_MISSING_SYMBOL,		/* 4: a function or variable is not there */
	HP_KIND_CANNOT_PATCH,		/* 4: a function cannot hold a jump */
	HP_KIND_LOAD_FAILED,		/* 4: the target's dlopen refused the patch */
	HP_KIND_NOT_APPLIED,		/* 4: revert: no such patch applied */
	HP_KIND_DEPENDS,		/* 4: revert: a later patch depends on it */
	HP_KIND_NAME_CONFLICT,		/* 4: apply, install: another patch has that name */
	HP_KIND_UNPINNED,		/* 4: install: an object patched without a pinned build-id */
	HP_KIND_NOT_INSTALLED,		/* 4: uninstall: no such patch in the store */
	HP_KIND_COUNT
};

const char *hp_error_kind_name(enum hp_error_kind kind);
enum hp_status hp_error_kind_status(enum hp_error_kind kind);

/* A thread that kept a patch out (exit 3), for the structured report. */
struct hp_blocker_report {
	pid_t tid;			/* 0 when suspended: no thread holds it */
	char reason[16];		/* "running", "returning", "unwinding" or "suspended" */
	char function[HP_TEXT_MAX];	/* the replaced function; "" when unwinding */
	size_t frame;			/* its innermost frame there */
	uint64_t saved_at;		/* suspended: where its return address is stored */
	uint64_t unknown_ip;		/* unwinding: where unwind information was missing */
	int unwind_error;		/* unwinding: libunwind's error, or 0 */
	size_t frame_count;
	char frames[8][HP_TEXT_MAX];	/* the innermost frames, symbolized */
};

/* What went wrong, for one line of prose or one JSON object.  Empty strings
 * and zero ids mean "not concerned".  The blockers are allocated: release
 * a filled error with hp_error_release. */
struct hp_error {
	enum hp_status status;
	enum hp_error_kind kind;
	int error_number;		/* errno of the failed system call, or 0 */
	pid_t pid;
	pid_t tid;
	char function[HP_TEXT_MAX];
	char file[HP_TEXT_MAX];
	char message[2 * HP_TEXT_MAX];	/* lower case, no trailing period */
	char hint[HP_TEXT_MAX];		/* what to do next, may be empty */
	char detail[32 * HP_TEXT_MAX];	/* more lines (backtraces), may be empty */
	size_t blocker_count;
	struct hp_blocker_report *blockers;
};

/* The kind's name ("no_process", ...), from the status when none was set. */
const char *hp_error_kind_of(const struct hp_error *error);
/* Accepts a zeroed error. */
void hp_error_release(struct hp_error *error);

struct hp_request {
	pid_t pid;
	const char *patch_path;		/* apply, check */
	const char *patch_name;		/* revert: NULL means the newest */
	uint64_t patch_sequence;	/* revert: the patch of this sequence number, 0: by name */
	double timeout_seconds;		/* bounds the whole command */
	bool allow_unreliable_stacks;	/* a stack that cannot be unwound is not in the way */
	bool allow_suspended;		/* no scan for frames suspended off the threads' stacks */
	bool stop_all;			/* apply, revert: stop every thread at once, never one at a time */
	bool require_signature;		/* apply, check: only a patch signed by a trusted key */
	const char *const *excludes;	/* apply, check, install: fixes left out (--exclude) */
	size_t exclude_count;
	volatile const int *interrupted;	/* set by the front end on SIGINT/SIGTERM */
	/* apply inside the calling process itself (the preloaded loader): pid
	 * is getpid(); no thread is traced, stopped or checked, so the caller
	 * must know that no other thread can be running the functions replaced
	 * (none exist yet, or they are in a library that has just been loaded). */
	bool in_process;
};

/* Which processes a command works on: the pids given, every process whose
 * executable is `exe` (also one started from an older copy of it, replaced
 * on disk since, with the same build-id), and every process that maps
 * `object`; NULL for none.  *pids (malloc'd) is in the order given, then by
 * pid; ourselves never. */
struct hp_selector {
	const pid_t *pids;
	size_t pid_count;
	const char *exe;
	const char *object;
};

int hp_select_processes(const struct hp_selector *selector, pid_t **pids, size_t *count,
			struct hp_error *error) __attribute__((warn_unused_result));

/* Where apply, check and build look for the debug file of a stripped
 * object besides /etc/hotpatch/debug-dirs and /usr/lib/debug, and how long
 * a debuginfod download (DEBUGINFOD_URLS) may take.  The front end sets it
 * once, before the command; the strings must outlive the command. */
struct hp_debug_search {
	const char *const *directories;	/* laid out like /usr/lib/debug */
	size_t directory_count;
	const char *const *files;	/* each used for the object of its build-id */
	size_t file_count;
	double timeout_seconds;		/* 0: debuginfod's own (DEBUGINFOD_TIMEOUT) */
	volatile const int *interrupted;
};

void hp_debug_search_set(const struct hp_debug_search *search);

/* One replaced function, as applied or as planned. */
struct hp_function_report {
	char object[HP_TEXT_MAX];	/* "" for the main executable */
	char function[HP_TEXT_MAX];
	uint64_t address;		/* where the function starts in the target */
	uint64_t jump_address;		/* where the jump is written */
	uint64_t replacement;		/* the replacement's address, 0 if not loaded */
	char jump_kind[16];		/* "direct", "indirect", "trampoline" or "gate" */
	char over[HP_PATCH_NAME_MAX];	/* apply, check: the applied patch whose
					 * replacement this one takes over from */
};

/* A variable or function of the target a patch uses (apply, check). */
struct hp_reference_report {
	char object[HP_TEXT_MAX];	/* "" for the main executable */
	char file[HP_TEXT_MAX];		/* source file of a file-local one, or "" */
	char symbol[HP_TEXT_MAX];
	uint64_t address;		/* where it is in the target */
};

struct hp_patch_report {
	char name[HP_PATCH_NAME_MAX];
	char state[16];			/* "applied" or "incomplete" */
	char warning[HP_TEXT_MAX];	/* list, apply: what the operator should know, or "" */
	char next_step[HP_TEXT_MAX];	/* list: the command to run, for an incomplete
					 * patch; "" when there is nothing to do */
	char path[4096];		/* the file it was applied from, absolute as
					 * hotpatch resolved it; "" when unknown */
	char sha256[65];		/* hex, of the bytes loaded; "" when unknown */
	uint64_t applied;		/* seconds since the epoch; 0 when unknown */
	char description[HP_TEXT_MAX];	/* HOTPATCH_DESCRIPTION, may be empty */
	char ids[HP_TEXT_MAX];		/* HOTPATCH_ID values, space separated */
	bool cumulative;		/* it takes over every patch applied before it */
	char fixes[HP_FIXES_MAX];	/* the fixes in effect (HOTPATCH_FIX), space separated */
	char excluded[HP_FIXES_MAX];	/* the fixes left out (--exclude) */
	char *replaced;			/* apply, check: the patches it takes (took) over,
					 * space separated (malloc'd), or NULL */
	uint64_t load_address;
	uint64_t sequence;		/* 1 for the first patch ever applied */
	size_t function_count;
	struct hp_function_report *functions;
	size_t reference_count;		/* apply and check only; list does not know */
	struct hp_reference_report *references;
};

/* The patch file that apply or check read: filled as soon as it is read,
 * so also when the command fails later (for the audit record). */
struct hp_patch_identity {
	char name[HP_PATCH_NAME_MAX];	/* "" until the file is parsed */
	char sha256[65];		/* hex, of the very bytes checked and loaded */
	char signer[17];		/* id of the trusted key that signed it, or "" */
};

/* Something a killed hotpatch left in the target: taken back by apply and
 * revert when nothing uses it, shown by list and check. */
struct hp_leftover_report {
	char kind[16];			/* "object", "record", "incomplete", "descriptor",
					 * "stub page", "state mapping" */
	char name[HP_PATCH_NAME_MAX];	/* the patch concerned, or "" */
	uint64_t address;		/* where it is mapped; the descriptor's number */
	bool reclaimed;
	char reason[HP_TEXT_MAX];	/* what left it, or why it stays */
};

/* A command that was killed while at work on the process, or command "". */
struct hp_interrupted_command {
	char command[16];
	pid_t pid;			/* of the hotpatch that ran it */
	uint64_t started;		/* seconds since the epoch */
};

/* The scan for frames suspended off the threads' stacks (coroutines, saved
 * contexts) that apply, check and revert make before each stop. */
struct hp_scan_report {
	unsigned scans;			/* 0: none was needed (or --allow-suspended) */
	uint64_t bytes;			/* the last scan: resident bytes read */
	uint64_t bytes_left;		/* and bytes not read for its budget */
	bool complete;			/* the last scan looked at everything */
	double seconds;			/* every scan together */
};

struct hp_result {
	struct hp_patch_identity patch_file;	/* apply, check */
	size_t patch_count;		/* list: newest first; apply/revert/check: one */
	struct hp_patch_report *patches;
	unsigned attempts;		/* stack checks made */
	double blackout_seconds;	/* longest time every thread was stopped (apply through
					 * gates: the longest stop of any one thread) */
	/* apply, revert: "gates" (each thread checked alone, entries held at
	 * gates), "stop-all" (every thread stopped at once), "" for other commands;
	 * why the gates were not used, or "" */
	char stop_mode[16];
	char stop_all_reason[HP_TEXT_MAX];
	unsigned threads_asleep;	/* through gates: threads moved asleep, never stopped */
	double elapsed_seconds;
	unsigned thread_count;
	struct hp_interrupted_command interrupted;
	/* list: another command at work on the process now (what its note in
	 * the state says; command "" when it wrote none yet), else at_work false */
	bool at_work;
	struct hp_interrupted_command working;
	size_t leftover_count;
	struct hp_leftover_report *leftovers;
	struct hp_scan_report suspended_scan;	/* apply, check, revert */
};

int hp_apply(const struct hp_request *request, struct hp_result *result,
	     struct hp_error *error) __attribute__((warn_unused_result));
int hp_check(const struct hp_request *request, struct hp_result *result,
	     struct hp_error *error) __attribute__((warn_unused_result));
int hp_revert(const struct hp_request *request, struct hp_result *result,
	      struct hp_error *error) __attribute__((warn_unused_result));
int hp_list(const struct hp_request *request, struct hp_result *result,
	    struct hp_error *error) __attribute__((warn_unused_result));

/* Accepts a zeroed result that was never filled. */
void hp_result_release(struct hp_result *result);

/* The store (store.c, store_scan.c, store_status.c): installed patches,
 * STORE/NAME.so, in /var/lib/hotpatch or HOTPATCH_STORE.  One installed
 * patch, as install copied it or status read it. */
struct hp_installed_report {
	char name[HP_PATCH_NAME_MAX];
	char ids[HP_TEXT_MAX];		/* HOTPATCH_ID values, space separated */
	char sha256[65];
	char path[4096];		/* STORE/NAME.so */
	bool unchanged;			/* install: the same bytes were installed already */
	bool cumulative;		/* install: it takes over every older patch */
	char excluded[HP_FIXES_MAX];	/* the fixes every apply of it leaves out
					 * (install --exclude), space separated */
	char replaced[HP_TEXT_MAX];	/* install: the installed patches it replaced,
					 * removed from the store, space separated */
	bool unreadable;		/* status: the file is not a patch that can be used */
	char problem[2 * HP_TEXT_MAX];	/* status: why, when unreadable */
	char problem_kind[32];
};

/* The store: HOTPATCH_STORE (ignored in secure execution) or /var/lib/hotpatch. */
const char *hp_store_directory(void);

/* install: checks the patch as apply does, refuses one that does not pin
 * every object it patches, copies it into the store; *pids (malloc'd)
 * are the running processes it fits. */
int hp_install(const struct hp_request *request, struct hp_installed_report *installed,
	       pid_t **pids, size_t *count, struct hp_error *error)
	__attribute__((warn_unused_result));
/* install of a cumulative patch, once it is applied wherever it fits:
 * every other installed patch it replaces (one that pins every object the
 * new one pins, so every process that one fits, the new one fits and took
 * it over in) is removed from the store, named in installed->replaced. */
int hp_install_replace(struct hp_installed_report *installed, struct hp_error *error)
	__attribute__((warn_unused_result));
/* The fixes the installed patch at `patch_path` (STORE/NAME.so) leaves
 * out, as install --exclude recorded them: "" when none.  The loader's
 * apply in a process started later leaves out the same. */
int hp_installed_exclusions(const char *patch_path, char *excluded, size_t size,
			    struct hp_error *error) __attribute__((warn_unused_result));
/* uninstall, before the reverts: the installed patch `name` and *pids
 * (malloc'd), every process its installed copy (that name, those bytes)
 * is applied to.  From then on no process starting gets it (the index). */
int hp_uninstall_prepare(const char *name, struct hp_installed_report *installed, pid_t **pids,
			 size_t *count, struct hp_error *error) __attribute__((warn_unused_result));
/* uninstall, after the reverts: STORE/NAME.so removed. */
int hp_uninstall_finish(const char *name, struct hp_error *error)
	__attribute__((warn_unused_result));
/* uninstall, when some revert failed: the patch stays installed, and
 * processes starting get it again. */
int hp_uninstall_keep(struct hp_error *error) __attribute__((warn_unused_result));

/* One patch of a process as status sees it. */
struct hp_process_patch {
	char name[HP_PATCH_NAME_MAX];
	char state[16];			/* "applied", "not applied", "failed" (the loader
					 * tried it when the process started), "incomplete" */
	char reason[HP_TEXT_MAX];	/* failed: why, as the loader said */
	bool installed;
	char fixes[HP_FIXES_MAX];	/* applied: the fixes in effect, space separated */
	char excluded[HP_FIXES_MAX];	/* applied: the fixes left out */
};

struct hp_process_status {
	pid_t pid;
	char exe[HP_TEXT_MAX];
	char problem[2 * HP_TEXT_MAX];	/* why its patches could not be read, or "" */
	size_t patch_count;
	struct hp_process_patch *patches;
};

struct hp_status_result {
	size_t installed_count;
	struct hp_installed_report *installed;
	size_t process_count;
	struct hp_process_status *processes;
	bool as_installed;		/* every fitting process has every installed
					 * patch, and every store file is readable */
};

/* status: read-only, stops nothing and takes no lock. */
int hp_machine_status(struct hp_status_result *result, struct hp_error *error)
	__attribute__((warn_unused_result));
/* Accepts a zeroed result that was never filled. */
void hp_machine_status_release(struct hp_status_result *result);

/* startup (startup.c): the loader that gives every process started later
 * the installed patches, preloaded through ROOT/etc/ld.so.preload. */
enum hp_startup_action {
	HP_STARTUP_STATUS,
	HP_STARTUP_ENABLE,		/* add the loader, once */
	HP_STARTUP_DISABLE,		/* take it out; a file left empty is removed */
};

struct hp_startup_request {
	enum hp_startup_action action;
	const char *root;		/* NULL: "/"; else the top of an image's tree */
	const char *loader;		/* NULL: PREFIX/lib/hotpatch/libhotpatch-loader.so */
};

struct hp_startup_result {
	bool enabled;			/* the file lists the loader, after the command */
	bool changed;			/* enable, disable: the file was rewritten or removed */
	bool removed;			/* disable: the file was left empty, so removed */
	char file[4096];		/* ROOT/etc/ld.so.preload */
	char loader[HP_TEXT_MAX];	/* the path the file lists, as processes see it */
	char backup[4096];		/* ROOT/etc/ld.so.preload.hotpatch-backup, when
					 * there is one; else "" */
};

/* enable checks the loader (ROOT/LOADER: there, a shared object, root's
 * alone) before anything; enable and disable rewrite the file atomically,
 * keeping every other entry, after saving its text to the backup the first
 * time.  status only reads. */
int hp_startup(const struct hp_startup_request *request, struct hp_startup_result *result,
	       struct hp_error *error) __attribute__((warn_unused_result));

/* keygen and sign: Ed25519 keys and detached patch signatures (trust_keys.c,
 * trust_signature.c).  Paths longer than HP_TEXT_MAX are refused. */
struct hp_signing {
	char key_id[17];		/* the first 8 bytes of the public key, in hex */
	char secret_key[HP_TEXT_MAX];	/* keygen: PREFIX.key */
	char public_key[HP_TEXT_MAX];	/* keygen: PREFIX.pub */
	char signature[HP_TEXT_MAX];	/* sign: PATCH.so.sig */
	struct hp_patch_identity patch;	/* sign: what was signed */
};

int hp_keygen(const char *prefix, struct hp_signing *result, struct hp_error *error)
	__attribute__((warn_unused_result));
int hp_sign(const char *key_path, const char *patch_path, struct hp_signing *result,
	    struct hp_error *error) __attribute__((warn_unused_result));

/* One fix of several (build --fix ID=FILE.diff): its diff, applied after
 * the ones before it. */
struct hp_build_fix {
	const char *id;
	const char *diff;
};

#define HP_BUILD_FIXES_MAX 32

/* build: a patch object from the source tree a binary was built from and a
 * unified diff of the fix (build*.c).  Never touches a process. */
struct hp_build_request {
	const char *source;		/* the tree the binary was built from (read only) */
	const char *diff;		/* unified diff, applied with patch -p1 (or -p0) */
	const struct hp_build_fix *fixes;	/* or several fixes, in order; each
						 * function is tagged with the fixes
						 * that changed it */
	size_t fix_count;
	const char *compile;		/* the compile command, run by /bin/sh -c */
	const char *compile_commands;	/* or a compile_commands.json: one of the two */
	const char *binary;		/* the executable (or library) the process runs */
	const char *output;		/* the patch object to write */
	const char *object;		/* "" for the main executable, else a library name */
	const char *name;		/* NULL: the output's file name without .so */
	const char *description;	/* NULL: none */
	const char *const *ids;		/* HOTPATCH_ID values */
	size_t id_count;
	bool cumulative;		/* HOTPATCH_CUMULATIVE: takes over every older patch */
	volatile const int *interrupted;
};

enum hp_build_line_kind { HP_BUILD_REPLACE, HP_BUILD_NEW, HP_BUILD_WARNING };

/* One thing to tell the operator, in the order found. */
struct hp_build_line {
	enum hp_build_line_kind kind;
	char function[HP_TEXT_MAX];	/* replace, new */
	char file[HP_TEXT_MAX];		/* the source file, relative to the tree */
	char text[2 * HP_TEXT_MAX];	/* replace: "clamp, limit" (what it inlines);
					 * warning: the whole message */
	char fixes[HP_FIXES_MAX];	/* replace, new: the fixes that changed it (--fix) */
};

struct hp_build_result {
	size_t line_count;
	struct hp_build_line *lines;
	size_t function_count;		/* replaced and new functions */
	size_t reference_count;		/* symbols of the binary the patch uses */
	char build_id[HP_TEXT_MAX];	/* of the binary, hex; "" when it has none */
};

int hp_build(const struct hp_build_request *request, struct hp_build_result *result,
	     struct hp_error *error) __attribute__((warn_unused_result));
/* Accepts a zeroed result that was never filled. */
void hp_build_result_release(struct hp_build_result *result);

#endif /* HOTPATCH_ENGINE_H */
