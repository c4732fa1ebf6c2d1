/* internal.h - the interfaces between the engine's files.  One concern per
 * file; each section below names the file that owns it.  Nothing here is
 * visible to cmd/, which sees engine.h only. */
#ifndef HOTPATCH_INTERNAL_H
#define HOTPATCH_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/user.h>

#include <gelf.h>

#include "engine.h"

#define HP_MUST_CHECK __attribute__((warn_unused_result))
#define HP_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define HP_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* The jumps we write: e9 + rel32, or ff 25 + disp32 (jmp *disp32(%rip)). */
#define HP_JUMP_SIZE 5
#define HP_INDIRECT_JUMP_SIZE 6
/* Room kept for saved bytes; a jump never needs more than HP_JUMP_SIZE. */
#define HP_SAVED_MAX 8
#define HP_PAGE_SIZE 4096u

/* ---- error.c: filling struct hp_error ---- */
int hp_fail(struct hp_error *error, enum hp_status status, const char *format, ...)
	HP_PRINTF(3, 4);
/* Like hp_fail, appending ": strerror(errno)". */
int hp_fail_errno(struct hp_error *error, enum hp_status status, const char *format, ...)
	HP_PRINTF(3, 4);
void hp_hint(struct hp_error *error, const char *format, ...) HP_PRINTF(2, 3);
void hp_error_function(struct hp_error *error, const char *function);
void hp_error_file(struct hp_error *error, const char *file);
/* Appends one line to error->detail (backtraces and the like). */
void hp_detail(struct hp_error *error, const char *format, ...) HP_PRINTF(2, 3);
/* Folds a clean-up step's outcome into `status`: the step's error (kept
 * apart in `step_error`) becomes the reported one only when nothing failed
 * before it, so a clean-up never hides the failure that caused it. */
int hp_first_failure(int status, struct hp_error *error, int step,
		     const struct hp_error *step_error) HP_MUST_CHECK;
/* Bounded copy that always terminates. */
void hp_copy_string(char *destination, size_t size, const char *source);
/* The last component of a path. */
const char *hp_base_name(const char *path);

/* ---- clock.c: time and deadlines ---- */
double hp_now(void);
/* Seconds left before `deadline`, never negative. */
double hp_remaining(double deadline);
void hp_sleep(double seconds);

/* ---- fault.c: failure points for the rollback tests (test build only) ---- */
/* True when HOTPATCH_FAULT names `step` and this is a test build. */
bool hp_fault(const char *step);
int hp_fault_fail(struct hp_error *error, const char *step);

/* ---- proc_maps.c: /proc/PID/maps ---- */
struct hp_mapping {
	uint64_t start, end, offset;
	bool readable, writable, executable, shared;
	unsigned dev_major, dev_minor;
	uint64_t inode;
	char *path;		/* "" for anonymous mappings; never NULL */
};

struct hp_maps {
	size_t count;
	struct hp_mapping *items;
};

int proc_maps_read(pid_t pid, struct hp_maps *maps, struct hp_error *error) HP_MUST_CHECK;
/* Parses maps text; pure, so unit tests and fuzzers can feed it anything. */
int proc_maps_parse(const char *text, size_t length, struct hp_maps *maps,
		    struct hp_error *error) HP_MUST_CHECK;
/* Reads a small /proc text file whole into `buffer` (NUL-terminated);
 * returns its length, or -1 when it cannot be read. */
ssize_t proc_read_small(const char *path, char *buffer, size_t size);
const struct hp_mapping *proc_maps_find(const struct hp_maps *maps, uint64_t address);
void proc_maps_release(struct hp_maps *maps);

/* ---- elf_symbols.c: one loaded object's ELF facts, read with libelf ---- */
struct hp_symbol {
	char *name;
	uint64_t value;		/* file address (st_value) */
	uint64_t size;
	unsigned char bind, type;
	bool dynamic;		/* from .dynsym */
	bool hidden_version;	/* a non-default symbol version */
	bool absolute;		/* SHN_ABS: not an address in the object */
	uint32_t file;		/* local symbols: 1 + index in files[]; 0 when unknown */
};

struct hp_elf_info {
	uint16_t type;		/* ET_EXEC or ET_DYN */
	uint64_t first_load_vaddr;	/* p_vaddr of the first PT_LOAD, page aligned */
	char *soname;		/* DT_SONAME or NULL */
	unsigned char build_id[64];
	size_t build_id_size;
	bool has_symtab;	/* a full symbol table, file-local symbols included */
	size_t symbol_count;
	struct hp_symbol *symbols;
	size_t file_count;
	char **files;		/* source file names (STT_FILE) */
};

/* Reads an ELF object from an open descriptor; bounded against hostile files. */
int elf_info_read_fd(int fd, const char *label, struct hp_elf_info *info,
		     struct hp_error *error) HP_MUST_CHECK;
int elf_info_read_memory(const void *bytes, size_t size, const char *label,
			 struct hp_elf_info *info, struct hp_error *error) HP_MUST_CHECK;
/* The GNU build-id note's bytes (at most `capacity`) into `id`; its size,
 * or 0 when there is none. */
size_t elf_build_id(Elf *elf, unsigned char *id, size_t capacity);
/* Moves every symbol (and source file name) of `from` into `info`. */
int elf_info_take_symbols(struct hp_elf_info *info, struct hp_elf_info *from,
			  struct hp_error *error) HP_MUST_CHECK;
/* The source file that defines a local symbol, or NULL. */
const char *elf_symbol_file(const struct hp_elf_info *info, const struct hp_symbol *symbol);
/* A global of the program: exported, or made local by the linker. */
bool elf_symbol_is_global(const struct hp_symbol *symbol);
/* Whether `file` (from a symbol table) is the source file `wanted`. */
bool elf_same_source_file(const char *wanted, const char *file);
/* What `name` means, the rule both apply and build follow: with a `file`,
 * a file-local symbol of that source file, else a global (what the name
 * means inside that file); with "", any definition; with NULL, globals
 * only.  Functions only when `functions`.  Returns how many addresses the
 * name has (aliases at one address count once): 1 is an answer, in
 * *chosen (the largest at that address); 0 is none; more is ambiguous. */
size_t elf_symbol_choose(const struct hp_elf_info *info, const char *name, const char *file,
			 bool functions, const struct hp_symbol **chosen);
void elf_info_release(struct hp_elf_info *info);

/* ---- target_map.c: the objects a process has loaded ---- */
struct hp_object {
	char *path;		/* as the target sees it */
	unsigned dev_major, dev_minor;
	uint64_t inode;
	uint64_t base;		/* start of the mapping at file offset 0 */
	uint64_t low, high;	/* all mappings of the object */
	bool is_main;
	bool loaded;		/* `elf` is filled */
	bool debug_file;	/* its symbols include a separate debug file's */
	uint64_t bias;		/* runtime address = bias + file address */
	struct hp_elf_info elf;
};

struct hp_target {
	pid_t pid;
	struct hp_maps maps;
	size_t object_count;
	struct hp_object *objects;
};

int target_map_open(pid_t pid, struct hp_target *target, struct hp_error *error) HP_MUST_CHECK;
void target_map_release(struct hp_target *target);
/* `file_name` is `wanted`, or `wanted` followed by a version ("libfoo.so"
 * matches "libfoo.so.1.2"). */
bool target_file_name_matches(const char *wanted, const char *file_name);
/* "" names the main executable; else a file name or soname ("libfoo.so.1"),
 * or a prefix of a versioned file name ("libfoo.so" for "libfoo.so.1.2"). */
int target_find_object(struct hp_target *target, const char *name,
		       struct hp_object **object, struct hp_error *error) HP_MUST_CHECK;
int target_load_object(struct hp_target *target, struct hp_object *object,
		       struct hp_error *error) HP_MUST_CHECK;

/* ---- target_symbols.c: what names mean in the target's objects ---- */
/* Adds a stripped object's symbols from its trusted debug file, if any. */
void target_load_debug_symbols(struct hp_target *target, struct hp_object *object);
/* The one function of that name in the object (refuses ambiguous names);
 * `file` ("" when not needed) names the source file of a file-local one. */
int target_find_function(struct hp_target *target, struct hp_object *object,
			 const char *name, const char *file, uint64_t *address, uint64_t *size,
			 struct hp_error *error) HP_MUST_CHECK;
/* The address of a variable or function of the object, chosen the same way. */
int target_find_symbol(struct hp_target *target, struct hp_object *object, const char *name,
		       const char *file, uint64_t *address, struct hp_error *error) HP_MUST_CHECK;

/* An exported function of any loaded object, libc first: dlopen and friends. */
int target_find_export(struct hp_target *target, const char *name, uint64_t *address,
		       struct hp_error *error) HP_MUST_CHECK;
/* The object containing `address`, or NULL. */
struct hp_object *target_object_at(struct hp_target *target, uint64_t address);
/* The function containing `address` (NULL when unknown), its object and the
 * offset into it. */
const char *target_function_at(struct hp_target *target, uint64_t address,
			       struct hp_object **object, uint64_t *offset);
/* "function+0xoffset (file)" when known, else the address in hex. */
void target_describe_address(struct hp_target *target, uint64_t address, char *text,
			     size_t size);

/* ---- patch_file.c: the patch shared object, read before anything else ---- */
struct hp_patch_replacement {
	char object[128];
	char function[128];
	char file[128];			/* source file of a file-local function, or "" */
	uint64_t replacement_vaddr;	/* file address in the patch */
	uint64_t replacement_size;	/* 0 when the patch has no symbol for it */
};

/* A place in the patch the dynamic linker left for a symbol of the target:
 * a GOT entry (GLOB_DAT, JUMP_SLOT: the address) or a pointer in code or
 * data (R_X86_64_64: the address plus `addend`). */
struct hp_reference_site {
	uint64_t vaddr;		/* file address in the patch, 8 bytes */
	int64_t addend;
};

/* A variable or function of the target the patch uses (HOTPATCH_SYMBOL). */
struct hp_patch_reference {
	char object[128];
	char file[128];
	char symbol[128];
	char alias[128];	/* the patch's undefined symbol */
	size_t site_count;
	struct hp_reference_site *sites;
	uint64_t address;	/* resolved in the target; 0 until then */
};

/* The build-id an object of the target must have (HOTPATCH_BUILD_ID). */
struct hp_patch_pin {
	char object[128];
	char build_id[136];	/* lower-case hex */
};

#define HP_DESCRIPTION_MAX 224
#define HP_IDS_MAX 256

struct hp_patch_file {
	char path[HP_TEXT_MAX];
	char name[HP_PATCH_NAME_MAX];
	char description[HP_DESCRIPTION_MAX];
	char ids[HP_IDS_MAX];	/* HOTPATCH_ID values, space separated */
	unsigned char *bytes;	/* the exact bytes checked, later loaded */
	size_t size;
	size_t count;
	struct hp_patch_replacement *replacements;
	size_t reference_count;
	struct hp_patch_reference *references;
	size_t pin_count;
	struct hp_patch_pin *pins;
};

/* Parses bytes already in memory; takes ownership of nothing. */
int patch_file_parse(struct hp_patch_file *patch, struct hp_error *error) HP_MUST_CHECK;
void patch_file_release(struct hp_patch_file *patch);
bool patch_name_is_valid(const char *name);
/* The name a patch has when it declares none: its file name without ".so",
 * other characters than letters, digits, '.', '_' and '-' made '_'. */
void patch_default_name(const char *path, char *name, size_t size);
Elf_Scn *patch_find_section(Elf *elf, const char *name, GElf_Shdr *header);
/* [address, address + length) lies in one loaded segment of the patch: an
 * executable one's file bytes when `code`, else any one's memory. */
bool patch_in_segment(Elf *elf, uint64_t address, uint64_t length, bool code);

/* ---- patch_references.c: the target's symbols and build-ids a patch needs ---- */
/* Reads .hotpatch.build_id, .hotpatch.symbols and the relocations that
 * leave a place for each declared symbol. */
int patch_references_read(Elf *elf, struct hp_patch_file *patch,
			  struct hp_error *error) HP_MUST_CHECK;
void patch_references_release(struct hp_patch_file *patch);

/* ---- code_plan.c: where the jump goes, checked with capstone ---- */
struct hp_code_plan {
	uint64_t jump_address;	/* the function start, or just past endbr64 */
	unsigned char saved[HP_SAVED_MAX];	/* bytes the jump may overwrite */
	size_t length;		/* bytes that may be overwritten: 6, or 5 */
};

/* Decides where a jump can go in the function whose bytes are `code`
 * (`size` bytes at `address`); on refusal writes the reason to `why`. */
int code_plan_function(const unsigned char *code, size_t size, uint64_t address,
		       struct hp_code_plan *plan, char *why, size_t why_size) HP_MUST_CHECK;
/* Finds the first syscall instruction in `code` (libc's syscall()). */
int code_find_syscall(const unsigned char *code, size_t size, uint64_t address,
		      uint64_t *found) HP_MUST_CHECK;
/* Encodes `jmp rel32` from `from` to `to`; false when out of reach. */
bool code_encode_jump(uint64_t from, uint64_t to, unsigned char jump[HP_JUMP_SIZE]);
/* Encodes `jmp *disp32(%rip)` reading its target at `pointer`. */
bool code_encode_indirect_jump(uint64_t from, uint64_t pointer,
			       unsigned char jump[HP_INDIRECT_JUMP_SIZE]);
/* Decodes a jmp rel32 at `from`; false when `bytes` are not one. */
bool code_decode_jump(uint64_t from, const unsigned char bytes[HP_JUMP_SIZE], uint64_t *to);

/* ---- target_memory.c: reading and writing the target's memory ---- */
struct hp_memory {
	pid_t pid;
	int mem_fd;		/* /proc/PID/mem, -1 when not open */
};

int target_memory_open(pid_t pid, struct hp_memory *memory, struct hp_error *error) HP_MUST_CHECK;
void target_memory_close(struct hp_memory *memory);
int target_memory_read(struct hp_memory *memory, uint64_t address, void *buffer,
		       size_t length, struct hp_error *error) HP_MUST_CHECK;
/* Writes through /proc/PID/mem (also read-only code); when the kernel forbids
 * that, falls back to PTRACE_POKEDATA through `stopped_tid` if not 0. */
int target_memory_write(struct hp_memory *memory, pid_t stopped_tid, uint64_t address,
			const void *buffer, size_t length, struct hp_error *error) HP_MUST_CHECK;
/* Reads a NUL-terminated string of at most size-1 bytes. */
int target_memory_read_string(struct hp_memory *memory, uint64_t address, char *buffer,
			      size_t size, struct hp_error *error) HP_MUST_CHECK;

/* ---- text_write.c: many pieces of code in few writes ---- */
struct hp_text_piece {
	uint64_t address;
	const unsigned char *bytes;
	size_t length;
};

/* Writes every piece; pieces less than a page apart go in one write of the
 * span between them (read afresh first).  Every thread must be stopped. */
int text_write(struct hp_memory *memory, pid_t stopped_tid, const struct hp_text_piece *pieces,
	       size_t count, struct hp_error *error) HP_MUST_CHECK;

enum hp_text_bytes { HP_TEXT_SAVED, HP_TEXT_WRITTEN };
struct hp_state_patch;
/* Writes the saved (original) or written (jump) bytes of the first `count`
 * functions of a patch's record. */
int text_write_functions(struct hp_memory *memory, pid_t stopped_tid,
			 const struct hp_state_patch *patch, enum hp_text_bytes which, size_t count,
			 struct hp_error *error) HP_MUST_CHECK;

struct hp_state_function;
/* What a function's jump site holds now. */
enum hp_text_site {
	HP_SITE_UNPLANNED,	/* recorded before its jump was planned: nothing to read */
	HP_SITE_JUMP,		/* our jump */
	HP_SITE_ORIGINAL,	/* the bytes the jump replaces */
	HP_SITE_FOREIGN,	/* anything else: someone else changed the code */
};
int text_site_read(struct hp_memory *memory, const struct hp_state_function *function,
		   enum hp_text_site *site, struct hp_error *error) HP_MUST_CHECK;

/* ---- threads.c: seizing, stopping and resuming every thread ---- */
struct hp_thread {
	pid_t tid;
	bool seized;
	bool stopped;		/* held in an interrupt or group stop */
	bool group_stop;	/* held by SIGSTOP & co.: it stays stopped after us */
	struct user_regs_struct regs;	/* read when it stopped */
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
/* Lets every stopped thread run on, still seized. */
int threads_continue_all(struct hp_threads *threads, struct hp_error *error) HP_MUST_CHECK;
/* Waits `seconds` while seized threads run, passing on their signals. */
void threads_run_for(struct hp_threads *threads, double seconds);
/* Waits for every seized thread that runs to be held again. */
int threads_collect(struct hp_threads *threads, double deadline,
		    struct hp_error *error) HP_MUST_CHECK;
/* Detaches every seized thread, which lets it run again. */
void threads_resume_all(struct hp_threads *threads);
/* Sorts a wait status out, noting exits, new threads and held stops. */
enum thread_event threads_classify(struct hp_threads *threads, pid_t tid, int status,
				   struct hp_thread **thread);
/* Waits for the next stop of `tid` (-1: any thread); returns the tid that
 * reported, or a negative status. */
pid_t thread_wait(pid_t tid, double deadline, int *status, struct hp_error *error) HP_MUST_CHECK;
/* Lists /proc/PID/task (bounded); *tids is malloc'd. */
int threads_list(pid_t pid, pid_t **tids, size_t *count, struct hp_error *error) HP_MUST_CHECK;
pid_t threads_first_stopped(const struct hp_threads *threads);
/* The system call a thread is blocked in, from /proc without stopping it;
 * -1 while it runs. */
long thread_blocked_syscall(pid_t pid, pid_t tid);
/* The thread exists and is not a zombie (read from /proc). */
bool thread_is_alive(pid_t pid, pid_t tid);
/* Every thread of the process has exited (a zombie or nothing is left). */
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
bool thread_rewind_call(pid_t pid, pid_t tid, struct user_regs_struct *regs,
			enum thread_resume how);
/* The same on the stopped thread itself: 1 rewound, 0 nothing to do, -1
 * failed. */
int thread_rewind_stopped(pid_t pid, pid_t tid, enum thread_resume how);

/* ---- remote_call.c: system calls and function calls on a borrowed thread ---- */
struct hp_remote {
	pid_t pid, tid;
	bool active;
	bool in_signal_stop;	/* the last stop passes through signal delivery */
	bool signals_blocked;	/* we blocked the thread's signals */
	bool self_restoring;	/* a frame is on its stack; the stub restores it */
	bool faulted;		/* a call faulted: only we can put it back */
	bool at_sync;		/* stopped at the sync point after a call */
	uint64_t frame;		/* where that frame is */
	uint64_t signal_frame;	/* a signal frame for the first system call, or 0 */
	uint64_t libc_restore_rt;	/* libc's rt_sigreturn trampoline, or 0 */
	struct user_regs_struct saved_regs;
	unsigned char *saved_xstate;
	size_t xstate_size;
	uint64_t saved_sigmask;
	uint64_t stub_page;	/* our call/syscall stubs in the target, or 0 */
	uint64_t libc_syscall;	/* a syscall instruction of the target's libc */
	double deadline;
};

/* Layout of the stub page: code at fixed offsets, then scratch data.  Both
 * stubs end at a getpid system call (where a live hotpatch takes the result
 * from %rbx) and go on into the restore code, which puts back the thread's
 * signal mask, extended state, registers, stack and instruction pointer
 * from a frame on its own stack: drawn in remote_call.c. */
#define HP_STUB_CALL 0x00	/* call *%rax, then sync and restore */
#define HP_STUB_SYSCALL 0x20	/* syscall, then sync and restore */
#define HP_STUB_RESTORE 0x40
#define HP_STUB_DATA 0x100	/* strings passed to remote calls */
#define HP_STUB_DATA_SIZE (HP_STUB_TRAMPOLINES - HP_STUB_DATA)
/* Return trampolines for moving busy threads (thread_move.c), and the
 * slots holding where each returns to. */
#define HP_STUB_TRAMPOLINES 0xc00
#define HP_STUB_TRAMPOLINE_SIZE 0x20
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
void remote_stub_bytes(unsigned char page[HP_STUB_DATA]);

/* ---- stack_unwind.c: libunwind with accessors of our own ---- */
#define HP_FRAMES_MAX 512

struct hp_frame {
	uint64_t ip, sp;
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
void unwinder_unwind(struct hp_unwinder *unwinder, const struct user_regs_struct *regs,
		     struct hp_stack *stack);

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
	bool unreliable;		/* the stack could not be unwound to its end */
	uint64_t unknown_ip;		/* where unwind information was missing */
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

/* ---- thread_move.c: letting busy threads alone leave replaced code ---- */
/* Runs the blockers' threads, every other thread staying stopped, each until
 * its outermost frame in replaced code returns (through a trampoline of our
 * stub page, none of those marked in `trampolines_held`) or `deadline`
 * passes.  HP_OK: every one is out (or exited) and stopped again; HP_BUSY:
 * some are not, all are stopped and as they were. */
int thread_move_out(struct hp_threads *threads, struct hp_memory *memory, uint64_t stub_page,
		    const struct hp_blocker *blockers, size_t count, uint32_t trampolines_held,
		    double deadline, struct hp_error *error) HP_MUST_CHECK;
/* The code of return trampoline `trampoline`, jumping on through `slot`. */
void thread_move_encode_trampoline(uint64_t trampoline, uint64_t slot,
				   unsigned char code[HP_STUB_TRAMPOLINE_SIZE]);
/* How many words a thread at `offset` into a return trampoline has pushed
 * (they sit below the SP it returned with); -1 past the trampoline's end. */
int thread_move_pushed_words(uint64_t offset);

/* ---- trampoline.c: near pages for jumps that cannot reach the patch ---- */
/* Finds a free page-aligned gap of `size` bytes whose every byte is within
 * a rel32 jump of every address in [low, high). Pure. */
bool trampoline_find_gap(const struct hp_maps *maps, uint64_t low, uint64_t high,
			 uint64_t size, uint64_t *address);
/* Encodes `jmp *0(%rip); .quad to` into a 16-byte slot. */
void trampoline_encode_slot(uint64_t to, unsigned char slot[16]);
#define HP_TRAMPOLINE_SLOT 16
/* Where in a slot the target address is, for an indirect jump reading it. */
#define HP_TRAMPOLINE_POINTER 6

/* ---- patch_state.c: what is applied, recorded inside the target ---- */
enum hp_state_status {
	HP_STATE_REMOVED = 0,
	HP_STATE_PENDING = 1,	/* recorded, jumps not (all) written */
	HP_STATE_APPLIED = 2,
};

#define HP_STATE_MAX_PAGES 64

struct hp_state_function {
	char object[128];
	char function[128];
	uint64_t address, size;
	uint64_t jump_address;
	uint64_t replacement, replacement_size;
	uint64_t trampoline;	/* slot address, 0 for a direct jump */
	uint8_t saved[HP_SAVED_MAX];
	uint8_t written[HP_SAVED_MAX];
	uint32_t length;
	uint32_t reserved;
};

struct hp_state_patch {
	uint32_t record_size;
	uint32_t function_count;
	uint32_t status;
	uint32_t page_count;
	uint64_t sequence;
	char name[HP_PATCH_NAME_MAX];
	char path[HP_TEXT_MAX];
	char description[HP_DESCRIPTION_MAX];
	char ids[HP_IDS_MAX];
	char load_path[64];
	uint64_t handle;
	uint64_t load_bias;
	uint64_t text_start, text_end;
	uint64_t memfd_inode;
	uint64_t pages[HP_STATE_MAX_PAGES];
	struct hp_state_function functions[];
};

/* The command at work on the process, written before it changes anything
 * and cleared when it ends: found set by the next command, it names one
 * that was killed. */
struct hp_state_command {
	uint64_t pid;		/* of the hotpatch that ran it */
	uint64_t started;	/* CLOCK_REALTIME, seconds */
	char name[16];		/* "apply", "revert"; "" when none runs */
};

struct hp_state {
	uint64_t address;	/* of the state mapping in the target, 0 if none */
	uint64_t capacity;
	uint64_t stub_page;
	uint64_t next_sequence;
	struct hp_state_command running;
	size_t patch_count;
	struct hp_state_patch **patches;	/* oldest first */
};

/* Finds and validates the state mapping; an absent one is an empty state. */
int patch_state_read(struct hp_memory *memory, const struct hp_maps *maps,
		     struct hp_state *state, struct hp_error *error) HP_MUST_CHECK;
/* A mapping named like the state (this one, or a leftover). */
bool patch_state_is_mapping(const struct hp_mapping *mapping);
/* A mapping named like the state that is not it (a killed command's). */
bool patch_state_is_leftover_mapping(const struct hp_state *state,
				     const struct hp_mapping *mapping);
/* The page at `address` is our stub page: a private anonymous R-X mapping
 * that starts there and holds our stub code. */
bool patch_state_stub_is_ours(struct hp_memory *memory, const struct hp_maps *maps,
			      uint64_t address);
/* Creates the state mapping and stub page through the borrowed thread. */
int patch_state_create(struct hp_state *state, struct hp_remote *remote,
		       struct hp_memory *memory, struct hp_error *error) HP_MUST_CHECK;
/* Writes header and every record (outside the blackout). */
int patch_state_write(const struct hp_state *state, struct hp_memory *memory,
		      struct hp_error *error) HP_MUST_CHECK;
/* Writes one record's status word only (inside the blackout). */
int patch_state_write_status(const struct hp_state *state, size_t index,
			     struct hp_memory *memory, pid_t stopped_tid,
			     struct hp_error *error) HP_MUST_CHECK;
/* Writes only the header's note of the command at work. */
int patch_state_write_running(const struct hp_state *state, struct hp_memory *memory,
			      struct hp_error *error) HP_MUST_CHECK;
struct hp_state_patch *patch_state_new_patch(size_t function_count);
int patch_state_append(struct hp_state *state, struct hp_state_patch *patch,
		       struct hp_error *error) HP_MUST_CHECK;
void patch_state_remove(struct hp_state *state, size_t index);
void patch_state_release(struct hp_state *state);
/* The applied record that last replaced the function at `address`, or -1. */
long patch_state_latest_for(const struct hp_state *state, uint64_t address, size_t before);

/* ---- patch_load.c: getting the patch object into the target and out ---- */
struct hp_loaded_patch {
	uint64_t handle;
	uint64_t bias;
	uint64_t text_start, text_end;
	uint64_t inode;
	char load_path[64];
};

/* How /proc/PID/maps names a patch's memfd: "/memfd:hotpatch:NAME (deleted)". */
#define PATCH_MEMFD_PATH "/memfd:hotpatch:"
/* Where the patch object whose memfd has `inode` is mapped: its load bias
 * (the mapping at offset 0) and the span of its code; false if unmapped. */
bool patch_mapped_span(const struct hp_maps *maps, uint64_t inode, uint64_t *bias,
		       uint64_t *text_start, uint64_t *text_end);
int patch_load(struct hp_remote *remote, struct hp_target *target,
	       const struct hp_patch_file *patch, const struct hp_state *state,
	       struct hp_loaded_patch *loaded, struct hp_error *error) HP_MUST_CHECK;
int patch_unload(struct hp_remote *remote, struct hp_target *target, uint64_t handle,
		 struct hp_error *error) HP_MUST_CHECK;

/* ---- base_references.c: the patch joined to the image it patches ---- */
/* Every build-id the patch was built for must be the target's. */
int references_check_pins(struct hp_target *target, const struct hp_patch_file *patch,
			  struct hp_error *error) HP_MUST_CHECK;
/* Finds the address of every symbol of the target the patch uses. */
int references_resolve(struct hp_target *target, struct hp_patch_file *patch,
		       struct hp_error *error) HP_MUST_CHECK;
/* Writes those addresses into the patch loaded at `bias`. */
int references_fill(struct hp_memory *memory, pid_t stopped_tid,
		    const struct hp_patch_file *patch, uint64_t bias,
		    struct hp_error *error) HP_MUST_CHECK;

/* ---- session.c: what every command does around its work ---- */
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
	bool stub_checked, stub_ok;	/* the state's stub page holds our code */
	unsigned thread_count;	/* threads seen at the last stop */
	double longest_stop;	/* seconds, over every attempt */
	size_t blocker_count, blocker_capacity;
	struct hp_blocker *blockers;	/* threads in the way at the last check */
};

int session_open(struct hp_session *session, const struct hp_request *request,
		 bool needs_ptrace, struct hp_error *error) HP_MUST_CHECK;
void session_close(struct hp_session *session);
bool session_interrupted(const struct hp_session *session);
/* ---- state_removal.c: nothing of ours left, no state either ---- */
/* When the state holds no record and nothing of ours is left in the process
 * but the state mapping and the stub page, takes both out (after a short
 * stop shows no thread in or returning into the stub page), so that the
 * process looks never patched.  Keeps them, with HP_OK, when anything is
 * in the way. */
int state_remove_if_empty(struct hp_session *session, struct hp_error *error) HP_MUST_CHECK;

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
 * the deadline.  On HP_OK every thread is left stopped; on HP_BUSY the error
 * names every thread in the way. */
int session_stop_when_clear(struct hp_session *session, const struct hp_range *ranges,
			    size_t range_count, unsigned *attempts, double *stopped_at,
			    struct hp_error *error) HP_MUST_CHECK;
/* Takes a patch object out of the target (dlclose) and unmaps its trampoline
 * pages through a borrowed thread; tries every step, reports the first failure. */
int session_unload_patch(struct hp_session *session, uint64_t handle, const uint64_t *pages,
			 uint32_t page_count, struct hp_error *error) HP_MUST_CHECK;
void session_fill_report(const struct hp_state_patch *patch, struct hp_patch_report *report);

/* Writes into the state that this session's command is at work (once; it
 * creates nothing: without a state there is nothing to mark yet). */
int session_mark_running(struct hp_session *session, struct hp_error *error) HP_MUST_CHECK;

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

/* ---- busy_report.c: the error that names every thread in the way ---- */
void session_describe_blockers(struct hp_session *session, struct hp_error *error);

/* ---- trust_*.c: only authorised patches load ---- */
#define HP_PATH_MAX 4096
#define HP_PATCH_SIZE_MAX (256u << 20)
#define HP_KEY_ID_SIZE 17	/* 16 hex digits and a NUL */
#define HP_CONFIG_DIR "/etc/hotpatch"

/* trust_open.c: files whose bytes we trust, opened so that nobody but root
 * (and the target's owner) can have chosen them. */
struct trust_owners {
	pid_t pid;		/* the target whose owner is accepted, 0 if none */
	size_t count;
	uid_t uids[2];		/* root, then the target's owner */
};

struct trust_directory {
	int fd;			/* O_PATH; -1 when not open (or absent) */
	char path[HP_PATH_MAX];	/* resolved: no link, "." or ".." */
};

struct trust_file {
	int fd;			/* open for reading; -1 when not open (or absent) */
	uint64_t size;
	struct trust_directory directory;	/* the one it is in */
	char path[HP_PATH_MAX];	/* resolved */
};

#define TRUST_FILE_INIT { .fd = -1, .directory = { .fd = -1 } }

/* Writes all of `text`, riding out EINTR; returns how much was written. */
size_t trust_write_all(int fd, const char *text, size_t length);
void trust_owners_root(struct trust_owners *owners);
/* Root, and the owner of `pid` when its real, effective, saved and file
 * system uids are one (not a set-uid process); root only when unknown. */
void trust_owners_of_target(pid_t pid, struct trust_owners *owners);
/* Resolves links in `path`, then opens every directory from / down (each
 * owned by one of `owners`, not writable by group or others unless sticky)
 * and the file in the last one without following links: a regular file
 * owned by one of `owners`, not writable by group or others.  `what` names
 * the file in messages ("patch").  A missing file is HP_USAGE. */
int trust_open(const char *path, const char *what, const struct trust_owners *owners,
	       struct trust_file *file, struct hp_error *error) HP_MUST_CHECK;
/* Opens a directory the same way; when it does not exist, HP_OK with
 * directory->fd == -1. */
int trust_open_directory(const char *path, const char *what, const struct trust_owners *owners,
			 struct trust_directory *directory, struct hp_error *error) HP_MUST_CHECK;
/* Opens `name` in `directory` the same way; when there is no such file,
 * HP_OK with file->fd == -1. */
int trust_open_at(const struct trust_directory *directory, const char *name, const char *what,
		  const struct trust_owners *owners, struct trust_file *file,
		  struct hp_error *error) HP_MUST_CHECK;
/* Reads the open file whole, once, refusing more than `limit` bytes;
 * *bytes is malloc'd (one spare NUL byte after the end). */
int trust_read(const struct trust_file *file, const char *what, size_t limit,
	       unsigned char **bytes, size_t *size, struct hp_error *error) HP_MUST_CHECK;
void trust_close(struct trust_file *file);
void trust_directory_close(struct trust_directory *directory);

/* trust_config.c: the policy's home, /etc/hotpatch (the test build alone
 * lets HOTPATCH_CONFIG_DIR move it). */
const char *trust_config_directory(void);
/* Whether CONFIG/require-signature exists. */
int trust_policy_requires_signature(bool *required, struct hp_error *error) HP_MUST_CHECK;

/* trust_keys.c: Ed25519 key files and the trusted keys in CONFIG/keys. */
struct trust_public_key {
	unsigned char key[32];
	char id[HP_KEY_ID_SIZE];
	char file[HP_PATH_MAX];	/* where it was read */
};

/* libsodium, made ready once. */
int trust_crypto_init(struct hp_error *error) HP_MUST_CHECK;
void trust_key_id(const unsigned char public_key[32], char id[HP_KEY_ID_SIZE]);
/* Every trusted key (the .pub files in CONFIG/keys, owned by root); *keys
 * is malloc'd.  No directory is no key.  `directory` receives its path. */
int trust_keys_load(struct trust_public_key **keys, size_t *count, char *directory,
		    size_t directory_size, struct hp_error *error) HP_MUST_CHECK;
/* Reads a secret key file (PREFIX.key: a regular file of ours, mode 0600). */
int trust_secret_key_read(const char *path, unsigned char secret_key[64],
			  struct hp_error *error) HP_MUST_CHECK;
/* Parses "TAG ed25519 HEX...": one line, besides '#' comments and blank
 * lines, of `count` fields after the tag; false when it is not that. */
bool trust_text_fields(const char *text, size_t size, const char *tag, char fields[][160],
		       size_t count);

/* trust_signature.c: PATCH.sig, checked against the trusted keys. */
/* Checks the signature beside `patch` over `bytes`: a present one must be
 * by a trusted key and match, whether or not one is `required`.  `signer`
 * receives the key id ("" when unsigned). */
int trust_check_signature(const struct trust_file *patch, const unsigned char *bytes,
			  size_t size, const struct trust_owners *owners, const char *required_by,
			  char signer[HP_KEY_ID_SIZE], struct hp_error *error) HP_MUST_CHECK;

/* trust_patch.c: the patch file read, hashed, its signature checked, parsed. */
int patch_file_read(const struct hp_request *request, struct hp_patch_file *patch,
		    struct hp_patch_identity *identity, struct hp_error *error) HP_MUST_CHECK;

/* ---- debug_file.c: a stripped object's symbols from its debug file ---- */
/* Where Debian installs the debug file of the object `info` describes. */
void debug_file_default_path(const struct hp_elf_info *info, char *path, size_t size);
/* Adds its symbols when `info` has no .symtab and a local debug file
 * (--debug-file, --debug-dir, /etc/hotpatch/debug-dirs, /usr/lib/debug) is
 * trusted by `owners` and of the same build-id; `name` is the object's file
 * name for DIR/NAME.debug, or NULL.  True when it did. */
bool debug_file_find(struct hp_elf_info *info, const char *name,
		     const struct trust_owners *owners);
/* The same from the debuginfod servers of DEBUGINFOD_URLS, once per
 * build-id and command, bounded by the command's timeout. */
bool debug_file_fetch(struct hp_elf_info *info, const struct trust_owners *owners);
/* debug_file_find, then debug_file_fetch. */
bool debug_file_take_symbols(struct hp_elf_info *info, const struct trust_owners *owners);
/* Appends to error->detail every place looked at and why each was not used. */
void debug_file_describe_search(const struct hp_elf_info *info, const char *name,
				const struct trust_owners *owners, struct hp_error *error);

#endif /* HOTPATCH_INTERNAL_H */
