/* transition.c - apply without stopping every thread at once: each thread
 * moves from the old code to the new one by itself, as kernel livepatch's
 * tasks do, at a moment hotpatch has seen it out of every old body.  It
 * owns the gate mapping and the per-thread checks; apply.c's steps call it,
 * and it never decides what is patched.
 *
 * Each entry jumps to a gate (arch/x86_64/gate.c), which sends the thread
 * to the old code or to the new by the thread's own byte in a table of the
 * mapping (indexed by its thread id), or by the phase byte when that says
 * "every thread".  Why it is safe at every instant:
 *
 *  1. prepare (the borrowed thread): the gate mapping near the functions,
 *     named in the record (page and length) before it is mapped; phase 0:
 *     a thread seen for the first time is written in as "original".
 *  2. gate: each entry's first whole instructions are replaced by a jump to
 *     its gate in ONE locked 16-byte store made by a borrowed thread of the
 *     target itself (the page writable around it): a thread fetching those
 *     bytes meanwhile sees the old block or the new, never a mix (what a
 *     write through /proc/PID/mem cannot promise).  The jump replaces one
 *     whole instruction, so no thread can be inside what it covers; or,
 *     where the first instruction is shorter, only its first byte becomes
 *     the jump's opcode and the next four, the function's own, are its
 *     displacement (punned: a thread past that first instruction runs on
 *     through bytes that never changed).  Such a jump lands where those
 *     bytes say, on a landing page mapped there (named in the record
 *     first) whose landing jumps on to the gate.  Every thread still runs
 *     the old code, through the gates or as before.
 *  3. every thread there is gets the byte "original" (one may be in an old
 *     body, entered before the gates were there); then phase 3, then one
 *     listing of the threads: a thread born after it meets its first gate
 *     with no byte and is written in as "new": it was born after the gates,
 *     so it can have entered old code only through one, which would have
 *     written it in as "original".  Each listed thread is stopped alone, its stack
 *     checked against the old bodies and the gate page, and, found clear,
 *     given its byte "new" before it is let go.  A thread in the way is
 *     looked at again later; the others run on, each already in its own
 *     universe: a thread never runs old code after new, and is held only
 *     for its own check.
 *  4. commit: phase 1, every thread new; the record says APPLIED.
 *
 * Killed at any instant, hotpatch leaves each thread in one universe, for
 * good: the record, with its jumps in place, is an incomplete patch that
 * `hotpatch revert` takes out (with a global stop).  No gate ever waits,
 * and nothing is decided by a timer.  A rollback runs the same way
 * backwards (phase 0; each thread with a byte not "original" checked
 * against the new code and the gates, then given "original"; phase 2;
 * the entries back; the gate page emptied), and when a thread stays in the
 * new code the patch is left loaded and incomplete rather than pulled from
 * under it.  Threads that stay in an old body past a quarter of the
 * timeout are left to the global stop, which moves them out as --stop-all
 * does; it commits with every thread stopped.
 *
 * A revert of a patch applied this way runs it all backwards, from the
 * record (transition_from_record): with phase 1 no gate reads the table,
 * so it is emptied; phase 3 until every thread there is is pinned "new";
 * phase 0, and each thread moved back to "original" once out of the
 * patch's code and the gates (asleep: through "held new", byte 4, which a
 * gate turns back into "new"); phase 2; the entries back; the gates
 * drained.  Its rollback is the apply's move again (phase 3, each thread
 * to "new" once out of the old bodies, phase 1).
 *
 * Where it cannot be used the apply stops every thread as before
 * (--stop-all): more functions than one gate mapping holds (1024), a prologue that
 * cannot run elsewhere or whose jump would not fit one aligned block, a
 * punned jump that would land on memory in use, outside user space, across
 * a page or on another landing, more landing pages than a record holds, a
 * cumulative patch or a function patched already, a target in another pid
 * namespace, /proc/PID/mem not writable, a page that cannot be made
 * writable (W^X policies), or frames suspended on coroutine stacks.
 *
 * Left as risks: a thread id reused within one transition (a thread that
 * ends and a new one given its id before hotpatch's listing) inherits the
 * old thread's byte; a process forked during the transition keeps gates
 * no hotpatch completes (each of its threads in one universe). */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
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

/* The share of the timeout spent checking threads one at a time before
 * stopping them all (which can move busy threads out). */
#define ALONE_SHARE 0.25

static bool same_pid_namespace(pid_t pid)
{
	char path[64];
	struct stat ours, theirs;

	snprintf(path, sizeof(path), "/proc/%d/ns/pid", (int)pid);
	return stat("/proc/self/ns/pid", &ours) == 0 && stat(path, &theirs) == 0 &&
	       ours.st_ino == theirs.st_ino && ours.st_dev == theirs.st_dev;
}

/* /proc/PID/mem takes writes without a stopped thread (the phase is
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

/* One byte for every thread id the kernel may give: pid_max, bounded. */
static uint64_t thread_id_limit(void)
{
	char text[32];
	unsigned long long limit = 0;

	if (proc_read_small("/proc/sys/kernel/pid_max", text, sizeof(text)) <= 0 ||
	    sscanf(text, "%llu", &limit) != 1 || limit == 0 || limit > HP_GATE_TABLE_MAX)
		limit = HP_GATE_TABLE_MAX;
	return (limit + HP_PAGE_SIZE - 1) & ~(uint64_t)(HP_PAGE_SIZE - 1);
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
	if (!HP_HAVE_GATES) {
		not_used(transition, "no gates on this processor yet");
		return false;
	}
	if (count > HP_GATE_FUNCTIONS_MAX) {
		not_used(transition, "more functions than one gate mapping holds");
		return false;
	}
	for (size_t i = 0; i < count; i++) {
		size_t displaced = 0;
		uint64_t landing = 0;

		if (!gate_entry_whole(sites[i].current, sites[i].length, sites[i].site)) {
			/* Punned: only the first byte is written (gate_pun). */
			if (!gate_pun(sites[i].current, sites[i].length, sites[i].site, &displaced,
				      &landing)) {
				not_used(transition, "a function's first instruction is shorter than "
						      "the jump, and its bytes lead nowhere a "
						      "landing can be");
				return false;
			}
		} else if (!gate_displaceable(sites[i].current, sites[i].length, sites[i].site,
					      &displaced)) {
			not_used(transition, "a prologue cannot run in a gate");
			return false;
		}
		transition->sites[i].displaced = displaced;
		transition->sites[i].landing = landing;
		/* One block, one entry: each is swapped from the bytes read before. */
		for (size_t j = 0; j < i; j++)
			if ((sites[j].site ^ sites[i].site) < HP_GATE_STORE_SIZE) {
				not_used(transition, "two entries share one aligned block");
				return false;
			}
	}
	/* The gates know a thread by the id the target's kernel gives it. */
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

/* mmap through the borrowed thread, at `address` exactly. */
static int map_at(struct hp_session *session, struct hp_remote *remote, uint64_t address,
		  uint64_t length, int protection, int sharing, struct hp_error *error)
{
	int64_t mapped = 0;
	int status = remote_syscall(remote, SYS_mmap,
				    (uint64_t[6]){ address, length, (uint64_t)protection,
						   (uint64_t)(sharing | MAP_ANONYMOUS |
							      MAP_FIXED_NOREPLACE),
						   (uint64_t)-1, 0 },
				    &mapped, error);

	if (status == HP_OK && (uint64_t)mapped != address) {
		if (mapped > 0 && remote_syscall(remote, SYS_munmap,
						 (uint64_t[6]){ (uint64_t)mapped, length }, &mapped,
						 error) != HP_OK)
			memset(error, 0, sizeof(*error));
		status = hp_fail(error, HP_FAILED, "cannot map the gates in pid %d",
				 (int)session->pid);
	}
	return status;
}

static uint64_t page_of(uint64_t address)
{
	return address & ~(uint64_t)(HP_PAGE_SIZE - 1);
}

/* Whether one of the first `count` sites' landings is on `page`. */
static bool landing_page_before(const struct hp_transition *transition, size_t count,
				uint64_t page)
{
	for (size_t j = 0; j < count; j++)
		if (transition->sites[j].landing && page_of(transition->sites[j].landing) == page)
			return true;
	return false;
}

/* The landings' pages, each once, in site order; how many. */
static size_t landing_pages(const struct hp_transition *transition,
			    uint64_t pages[HP_STATE_MAX_PAGES])
{
	size_t count = 0;

	for (size_t i = 0; i < transition->count && count < HP_STATE_MAX_PAGES; i++) {
		uint64_t page = page_of(transition->sites[i].landing);

		if (transition->sites[i].landing && !landing_page_before(transition, i, page))
			pages[count++] = page;
	}
	return count;
}

/* Every landing where nothing is mapped nor the stack grows, none over
 * another, and a page of the record for each of their pages beside the
 * gates'. */
static int landings_fit(struct hp_session *session, struct hp_transition *transition,
			bool *fit, struct hp_error *error)
{
	struct hp_maps maps = { 0 };
	uint64_t pages[HP_STATE_MAX_PAGES];
	size_t page_count = landing_pages(transition, pages);
	int status;

	*fit = true;
	if (page_count == 0)
		return HP_OK;	/* no entry punned */
	status = proc_maps_read(session->pid, &maps, error);
	*fit = status == HP_OK;
	for (size_t i = 0; *fit && i < transition->count; i++) {
		uint64_t landing = transition->sites[i].landing;

		if (!landing)
			continue;
		if (proc_maps_find(&maps, landing) || proc_maps_in_stack_growth(&maps, landing)) {
			not_used(transition, "a punned jump lands on memory in use or where the "
					      "stack grows");
			*fit = false;
		}
		for (size_t j = 0; *fit && j < i; j++)
			if (transition->sites[j].landing &&
			    transition->sites[j].landing < landing + HP_LANDING_SIZE &&
			    landing < transition->sites[j].landing + HP_LANDING_SIZE) {
				not_used(transition, "two punned jumps land on one another");
				*fit = false;
			}
	}
	proc_maps_release(&maps);
	/* Every page of the record's own but the gates' (pages[0]). */
	if (*fit && page_count >= HP_STATE_MAX_PAGES) {
		not_used(transition, "more landing pages than a record holds");
		*fit = false;
	}
	return status;
}

/* The gate mapping near the functions: its code page (read and run), then
 * the table (read and written by the threads). */
static int map_gates(struct hp_session *session, struct hp_remote *remote,
		     struct hp_state_patch *record, struct hp_transition *transition,
		     struct hp_error *error)
{
	struct hp_maps maps = { 0 };
	uint64_t low = UINT64_MAX, high = 0, candidate = 0;
	uint64_t code_length = gate_code_length(transition->count);
	uint64_t length = code_length + transition->limit;
	int status = proc_maps_read(session->pid, &maps, error);

	for (size_t i = 0; i < transition->count; i++) {
		low = transition->sites[i].site < low ? transition->sites[i].site : low;
		high = transition->sites[i].site + 1 > high ? transition->sites[i].site + 1 : high;
	}
	if (status == HP_OK && !trampoline_find_gap(&maps, low, high, length, &candidate))
		status = HP_MISFIT;
	proc_maps_release(&maps);
	/* A process that died meanwhile has no maps left: no room anywhere. */
	if (status == HP_MISFIT && process_has_exited(session->pid))
		return hp_fail_as(error, HP_KIND_TARGET_EXITED, "pid %d exited during apply",
				  (int)session->pid);
	if (status == HP_MISFIT || record->page_count != 0) {
		not_used(transition, "no room for the gates near the functions");
		return HP_OK;
	}
	if (status != HP_OK)
		return status;
	for (size_t i = 0; i < transition->count; i++)
		if (transition->sites[i].landing >= candidate &&
		    transition->sites[i].landing < candidate + length) {
			not_used(transition, "the gates would cover a punned jump's landing");
			return HP_OK;
		}
	/* Every moved prologue must reach what it pointed to from there. */
	for (size_t i = 0; i < transition->count; i++) {
		unsigned char gate[HP_GATE_SIZE];

		if (!gate_encode(candidate, gate_address(candidate, i),
				 record->functions[i].replacement, transition->sites[i].current,
				 transition->sites[i].displaced, transition->sites[i].site, gate)) {
			not_used(transition, "a moved prologue would be out of reach");
			return HP_OK;
		}
	}
	/* Named before it is mapped: a hotpatch killed in between leaves it
	 * found.  The code pages first: alone, they are empty pages of ours. */
	record->pages[record->page_count++] = candidate;
	record->gate_pages = (uint32_t)(length / HP_PAGE_SIZE);
	status = patch_state_write(&session->state, &session->memory, error);
	if (status == HP_OK)
		status = map_at(session, remote, candidate, code_length, PROT_READ | PROT_EXEC,
				MAP_PRIVATE, error);
	if (status != HP_OK) {
		record->page_count--;	/* not ours: never to be unmapped by us */
		record->gate_pages = 0;
		return status;
	}
	transition->page = candidate;
	transition->code_length = code_length;
	/* Shared, so that hotpatch can map it too (gate_view.c). */
	status = map_at(session, remote, candidate + code_length, transition->limit,
			PROT_READ | PROT_WRITE, MAP_SHARED, error);
	if (status == HP_OK)
		gate_view_open(session->pid, &session->memory, candidate + code_length,
			       transition->limit, &transition->view);
	return status;
}

/* One landing page's code: int3, and the landings on it. */
static void landing_page_code(const struct hp_transition *transition, uint64_t page,
			      unsigned char code[HP_PAGE_SIZE])
{
	memset(code, 0xcc, HP_PAGE_SIZE);
	for (size_t i = 0; i < transition->count; i++)
		if (transition->sites[i].landing && page_of(transition->sites[i].landing) == page)
			gate_landing_encode(gate_address(transition->page, i),
					    code + (transition->sites[i].landing - page));
}

/* The landings of punned entries, each page named in the record before it
 * is mapped, as the gates are; mapped read and run, their code written. */
static int map_landings(struct hp_session *session, struct hp_remote *remote,
			struct hp_state_patch *record, const struct hp_transition *transition,
			struct hp_error *error)
{
	uint64_t pages[HP_STATE_MAX_PAGES];
	unsigned char code[HP_PAGE_SIZE];
	size_t count = landing_pages(transition, pages), mapped = 0;
	uint32_t first = record->page_count;
	int status = HP_OK;

	if (count == 0)
		return HP_OK;
	if (first + count > HP_STATE_MAX_PAGES)
		return hp_fail(error, HP_FAILED, "more landing pages than a record holds");
	memcpy(record->pages + first, pages, count * sizeof(*pages));
	record->page_count = first + (uint32_t)count;
	status = patch_state_write(&session->state, &session->memory, error);
	for (; status == HP_OK && mapped < count; mapped++) {
		status = map_at(session, remote, pages[mapped], HP_PAGE_SIZE, PROT_READ | PROT_EXEC,
				MAP_PRIVATE, error);
		if (status != HP_OK)
			break;
		landing_page_code(transition, pages[mapped], code);
		status = target_memory_write(&session->memory, remote->tid, pages[mapped], code,
					     sizeof(code), error);
	}
	/* A page not mapped is not ours: never to be unmapped by us.  (One
	 * mapped whose code could not be written is left: nothing jumps there,
	 * and without landings it does not look like ours.) */
	if (status != HP_OK)
		record->page_count = first + (uint32_t)(mapped < count ? mapped : count);
	return status;
}

/* The aligned HP_GATE_STORE_SIZE bytes holding `site` (*block; `current`,
 * what they hold now) with `length` bytes at `site` replaced by `bytes`
 * (into `replacement`): what the gate mapping's store_many routine swaps in. */
static void store_words(uint64_t site, const unsigned char *current, const unsigned char *bytes,
			size_t length, uint64_t *block, unsigned char *replacement)
{
	size_t offset = (size_t)(site & (HP_GATE_STORE_SIZE - 1));

	*block = site & ~(uint64_t)(HP_GATE_STORE_SIZE - 1);
	memcpy(replacement, current, HP_GATE_STORE_SIZE);
	memcpy(replacement + offset, bytes, length);
}

/* The pages' code, each function's gate, and the record's jumps to them. */
static int fill_gate_page(struct hp_session *session, struct hp_remote *remote,
			  struct hp_state_patch *record, struct hp_transition *transition,
			  struct hp_error *error)
{
	unsigned char *code = malloc(transition->code_length);
	int status = HP_OK;

	if (!code)
		return hp_fail(error, HP_FAILED, "out of memory");
	memset(code, 0xcc, transition->code_length);
	gate_page_code(transition->code_length, transition->limit, code);
	for (size_t i = 0; status == HP_OK && i < transition->count; i++) {
		struct hp_transition_site *site = &transition->sites[i];
		struct hp_state_function *function = &record->functions[i];
		uint64_t gate = gate_address(transition->page, i);

		if (!gate_encode(transition->page, gate, function->replacement, site->current,
				 site->displaced, site->site,
				 code + HP_GATE_FIRST + i * HP_GATE_SIZE) ||
		    !code_encode_jump(site->site, site->landing ? site->landing : gate,
				      function->written)) {
			status = hp_fail(error, HP_FAILED, "cannot build the gate of %s",
					 function->function);
			break;
		}
		/* Punned: the jump's first byte alone is ours, the rest is the
		 * function's own (code_encode_jump wrote them as they are). */
		function->length = site->landing ? 1 : HP_JUMP_SIZE;
		function->trampoline = gate;
		store_words(site->site, site->original, function->written, function->length,
			    &site->block, site->gated);
	}
	if (status == HP_OK)
		status = target_memory_write(&session->memory, remote->tid, transition->page, code,
					     transition->code_length, error);
	free(code);
	return status;
}

int transition_prepare(struct hp_session *session, struct hp_remote *remote,
		       struct hp_state_patch *record, const struct hp_transition_site *sites,
		       size_t count, struct hp_transition *transition, struct hp_error *error)
{
	int status = HP_OK;
	bool fit = false;

	transition->count = count;
	transition->sites = calloc(count ? count : 1, sizeof(*transition->sites));
	if (!transition->sites)
		return hp_fail(error, HP_FAILED, "out of memory");
	memcpy(transition->sites, sites, count * sizeof(*sites));
	if (!eligible(session, sites, count, transition))
		return HP_OK;
	for (size_t i = 0; status == HP_OK && i < count; i++) {
		struct hp_transition_site *site = &transition->sites[i];

		status = target_memory_read(&session->memory,
					    site->site & ~(uint64_t)(HP_GATE_STORE_SIZE - 1),
					    site->original, sizeof(site->original), error);
	}
	transition->limit = thread_id_limit();
	if (status == HP_OK)
		status = landings_fit(session, transition, &fit, error);
	if (status == HP_OK && fit)
		status = map_gates(session, remote, record, transition, error);
	if (status == HP_OK && transition->page)
		status = map_landings(session, remote, record, transition, error);
	if (status == HP_OK && transition->page)
		status = fill_gate_page(session, remote, record, transition, error);
	if (status == HP_OK && transition->page)
		transition->active = true;
	transition->new_code = (struct hp_range){ record->text_start, record->text_end, "the patch" };
	return status;
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

/* Site indexes in the order of their blocks' addresses (qsort_r). */
static int compare_blocks(const void *a, const void *b, void *sites_data)
{
	const struct hp_transition_site *sites = sites_data;
	uint64_t left = sites[*(const size_t *)a].block;
	uint64_t right = sites[*(const size_t *)b].block;

	return (left > right) - (left < right);
}

/* The entries of the sites `order[0..count)` that change, for store_many:
 * each block's address, what it holds, what it gets. */
static void fill_store_list(const struct hp_transition *transition, const size_t *order,
			    size_t count, bool gate, uint64_t *list)
{
	for (size_t i = 0; i < count; i++) {
		const struct hp_transition_site *site = &transition->sites[order[i]];
		uint64_t *item = list + i * (HP_GATE_STORE_ITEM / sizeof(uint64_t));

		item[0] = site->block;
		memcpy(item + 1, gate ? site->original : site->gated, HP_GATE_STORE_SIZE);
		memcpy(item + 3, gate ? site->gated : site->original, HP_GATE_STORE_SIZE);
	}
}

/* The `count` entries from list entry `first` on, all in `page`, by the
 * target's own locked stores; the page made writable around them.
 * *stored: how many went in. */
static int store_page(struct hp_session *session, struct hp_remote *remote,
		      const struct hp_maps *maps, const struct hp_transition *transition,
		      uint64_t page, size_t first, size_t count, uint64_t *stored, bool *refused,
		      struct hp_error *error)
{
	uint64_t list = gate_store_list(transition->page, transition->count) +
			first * HP_GATE_STORE_ITEM;
	int protection = page_protection(maps, page);
	int64_t result = 0;
	int status;

	*stored = 0;
	if (protection < 0 || !(protection & PROT_EXEC))
		return hp_fail(error, HP_FAILED, "pid %d: 0x%" PRIx64 " is not code any more",
			       (int)session->pid, page);
	status = remote_syscall_checked(remote, SYS_mprotect,
					(uint64_t[6]){ page, HP_PAGE_SIZE,
						       (uint64_t)(protection | PROT_WRITE) },
					"mprotect", &result, error);
	if (status != HP_OK) {
		*refused = true;
		return status;
	}
	status = remote_call(remote, transition->page + HP_GATE_STORE_MANY,
			     (uint64_t[6]){ list, count }, stored, error);
	if (remote_syscall_checked(remote, SYS_mprotect,
				   (uint64_t[6]){ page, HP_PAGE_SIZE, (uint64_t)protection },
				   "mprotect", &result, status == HP_OK ? error : &(struct hp_error){ 0 }) !=
		    HP_OK &&
	    status == HP_OK)
		status = HP_FAILED;
	return status;
}

/* The sites that change, in block order, each page's at once: *count of
 * them in `order` (the caller frees it), their entries written to the
 * gate mapping's store list. */
static int plan_stores(struct hp_session *session, const struct hp_remote *remote,
		       struct hp_transition *transition, bool gate, size_t **order,
		       size_t *count, struct hp_error *error)
{
	uint64_t *list = NULL;
	int status;

	*count = 0;
	*order = calloc(transition->count ? transition->count : 1, sizeof(**order));
	list = calloc(transition->count ? transition->count : 1, HP_GATE_STORE_ITEM);
	if (!*order || !list) {
		free(list);
		return hp_fail(error, HP_FAILED, "out of memory");
	}
	for (size_t i = 0; i < transition->count; i++)
		if (transition->sites[i].in_place != gate)
			(*order)[(*count)++] = i;
	qsort_r(*order, *count, sizeof(**order), compare_blocks, transition->sites);
	fill_store_list(transition, *order, *count, gate, list);
	status = *count == 0 ? HP_OK
			     : target_memory_write(&session->memory, remote->tid,
						   gate_store_list(transition->page,
								   transition->count),
						   list, *count * HP_GATE_STORE_ITEM, error);
	free(list);
	return status;
}

/* Every site from its original bytes to its gate's jump (`gate`) or back:
 * one call of the gate mapping's store_many a page of entries, so that the
 * borrowed thread is held for a few calls, not three a function. */
static int store_all(struct hp_session *session, struct hp_transition *transition, bool gate,
		     bool *refused, struct hp_error *error)
{
	struct hp_remote remote;
	struct hp_maps maps = { 0 };
	size_t *order = NULL, count = 0, run;
	int status = session_borrow_thread(session, &remote, error);

	if (status == HP_OK)
		status = proc_maps_read(session->pid, &maps, error);
	if (status == HP_OK)
		status = plan_stores(session, &remote, transition, gate, &order, &count, error);
	for (size_t i = 0; status == HP_OK && i < count; i += run) {
		uint64_t page = page_of(transition->sites[order[i]].block), stored = 0;

		for (run = 1; i + run < count && page_of(transition->sites[order[i + run]].block) == page;
		     run++)
			;
		status = store_page(session, &remote, &maps, transition, page, i, run, &stored,
				    refused, error);
		for (size_t k = 0; status == HP_OK && k < stored && k < run; k++)
			transition->sites[order[i + k]].in_place = gate;
		if (status == HP_OK && stored != run)
			status = hp_fail(error, HP_FAILED,
					 "pid %d: the code at 0x%" PRIx64 " changed while hotpatch worked",
					 (int)session->pid,
					 transition->sites[order[i + (stored < run ? stored : 0)]].block);
	}
	free(order);
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
	transition->gated = any;
	if (transition_ungate(session, transition, &ignored) != HP_OK)
		hp_error_release(&ignored);
	return status;
}

static int write_phase(struct hp_session *session, const struct hp_transition *transition,
		       enum hp_gate_phase phase, struct hp_error *error)
{
	unsigned char byte = (unsigned char)phase;

	return target_memory_write(&session->memory, 0, gate_phase(transition->page), &byte, 1,
				   error);
}

/* What one pass of checks moves each thread to, and what is in its way. */
struct universe_move {
	struct hp_transition *transition;
	enum hp_gate_universe to;	/* the byte a clear thread gets; UNSEEN: none */
	bool allow_unreliable;
	bool rollback;		/* runs to its end: SIGTERM is what started it, often */
};

static int compare_tids(const void *a, const void *b)
{
	pid_t left = *(const pid_t *)a, right = *(const pid_t *)b;

	return (left > right) - (left < right);
}

static uint64_t table_slot(const struct hp_transition *transition, pid_t tid)
{
	return gate_table(transition->page, transition->code_length) + (uint64_t)tid;
}

/* A thread's byte (its id below the limit), through the view if there is one. */
static bool table_read(struct hp_session *session, const struct hp_transition *transition,
		       pid_t tid, unsigned char *byte)
{
	struct hp_error ignored = { 0 };

	if (transition->view.bytes) {
		*byte = __atomic_load_n(&transition->view.bytes[tid], __ATOMIC_SEQ_CST);
		return true;
	}
	return target_memory_read(&session->memory, table_slot(transition, tid), byte, 1,
				  &ignored) == HP_OK;
}

static int table_write(struct hp_session *session, const struct hp_transition *transition,
		       pid_t tid, const unsigned char *bytes, size_t count, struct hp_error *error)
{
	if (!transition->view.bytes)
		return target_memory_write(&session->memory, 0, table_slot(transition, tid), bytes,
					   count, error);
	for (size_t i = 0; i < count; i++)
		__atomic_store_n(&transition->view.bytes[(size_t)tid + i], bytes[i],
				 __ATOMIC_SEQ_CST);
	return HP_OK;
}

/* One byte from `from` to `to`, if it holds `from` (the view only): the
 * gates change bytes by the same locked exchange. */
static bool table_exchange(const struct hp_transition *transition, pid_t tid, unsigned char from,
			   unsigned char to)
{
	return __atomic_compare_exchange_n(&transition->view.bytes[tid], &from, to, false,
					   __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}

/* A thread whose byte says it is where the move goes already: it got there
 * checked, or was born into it. */
static bool already_moved(struct hp_session *session, const struct universe_move *move,
			  pid_t tid)
{
	unsigned char byte = 0;

	return move->to != HP_GATE_UNSEEN && (uint64_t)tid < move->transition->limit &&
	       table_read(session, move->transition, tid, &byte) && byte == (unsigned char)move->to;
}

/* Its stack, from where it sleeps, clear of every range set: seen at one
 * instant at which it did not run. */
static bool clear_asleep(struct hp_session *session, pid_t tid)
{
	struct hp_thread thread = { .tid = tid, .pc_sp_only = true };
	struct hp_blocker blocker;
	struct hp_asleep seen;
	bool clear;

	if (!thread_asleep_look(session->pid, tid, &seen))
		return false;
	registers_set_pc(&thread.regs, seen.pc);
	registers_set_sp(&thread.regs, seen.sp);
	stack_checker_new_stop(session->checker);
	clear = !stack_check_thread(session->checker, &thread, false, &blocker) &&
		thread_asleep_still(&seen);
	thread_asleep_end(&seen);
	return clear;
}

/* A thread asleep in the kernel, moved without a stop.  Its byte is held
 * first, its stack checked where it sleeps, and the byte exchanged for the
 * universe it moves to only if no gate ran for it since: a gate's own
 * exchange turns "held" back into the universe it came from.  Whatever the
 * thread did after the check, it started out of every body it leaves and
 * every gate, and only a gate leads into such a body: so it is in none
 * when the exchange succeeds.  Draining the gates (no byte) needs the
 * check alone.  False: not moved, nothing changed but a held byte turned
 * back, and it is stopped instead. */
static bool moved_asleep(struct hp_session *session, const struct universe_move *move, pid_t tid)
{
	struct hp_transition *transition = move->transition;
	unsigned char was = 0, held = move->to == HP_GATE_NEW ? HP_GATE_HELD : HP_GATE_HELD_NEW;
	bool moved;

	/* A look alone needs no byte, hence neither the view nor a table. */
	if (move->to == HP_GATE_UNSEEN)
		return clear_asleep(session, tid);
	if (!transition->view.bytes || (uint64_t)tid >= transition->limit)
		return false;
	if (!table_read(session, transition, tid, &was))
		return false;
	/* Back to the original code: an unseen thread was not listed when
	 * every thread was pinned (rollback: original; revert: new, once the
	 * table was emptied), and passed no gate since: it never entered the
	 * new code, and its next gate would make it original anyway. */
	if (move->to == HP_GATE_ORIGINAL && was == HP_GATE_UNSEEN)
		return table_exchange(transition, tid, was, HP_GATE_ORIGINAL);
	if (move->to == HP_GATE_NEW ? (was != HP_GATE_ORIGINAL && was != HP_GATE_UNSEEN)
				    : was != HP_GATE_NEW)
		return false;
	if (!table_exchange(transition, tid, was, held))
		return false;
	moved = clear_asleep(session, tid) &&
		table_exchange(transition, tid, held, (unsigned char)move->to);
	if (!moved)
		table_exchange(transition, tid, held, was);
	transition->asleep += moved;
	return moved;
}

/* Every thread there is now gets the byte `universe` before the phase lets
 * threads it has never seen go to the other code: apply pins "original"
 * (one may be in an old body, entered before the gates were there), a
 * revert "new" (each may be in the patch's code). */
static int pin_threads(struct hp_session *session, const struct hp_transition *transition,
		       enum hp_gate_universe universe, struct hp_error *error)
{
	unsigned char bytes[256];
	pid_t *tids = NULL;
	size_t count = 0, run;
	int status = threads_list(session->pid, &tids, &count, error);

	memset(bytes, universe, sizeof(bytes));
	if (status == HP_OK)
		qsort(tids, count, sizeof(*tids), compare_tids);
	/* Neighbouring ids in one write. */
	for (size_t i = 0; status == HP_OK && i < count; i += run) {
		if ((uint64_t)tids[i] >= transition->limit) {
			status = hp_fail(error, HP_FAILED, "thread %d of pid %d is past the gates' table",
					 (int)tids[i], (int)session->pid);
			break;
		}
		for (run = 1; i + run < count && run < sizeof(bytes) &&
			      tids[i + run] == tids[i] + (pid_t)run &&
			      (uint64_t)tids[i + run] < transition->limit;
		     run++)
			;
		status = table_write(session, transition, tids[i], bytes, run, error);
	}
	free(tids);
	return status;
}

/* Stops `tid` alone, checks it against the ranges set, gives it its byte
 * when clear, lets it go.  *clear: moved (or gone). */
static int check_alone(struct hp_session *session, const struct universe_move *move, pid_t tid,
		       bool *clear, struct hp_blocker *blocker, struct hp_error *error)
{
	unsigned char byte = (unsigned char)move->to;
	struct hp_thread seen;
	double stopped = hp_now(), length;
	int status = threads_stop_one(&session->threads, tid, session->deadline + 1, error);

	*clear = false;
	if (move->to != HP_GATE_UNSEEN && (uint64_t)tid >= move->transition->limit)
		return hp_fail(error, HP_FAILED, "thread %d of pid %d is past the gates' table",
			       (int)tid, (int)session->pid);
	if (status != HP_OK) {
		if (thread_is_alive(session->pid, tid))
			return status;
		memset(error, 0, sizeof(*error));	/* exited: out of every function */
		*clear = true;
		return HP_OK;
	}
	memset(blocker, 0, sizeof(*blocker));
	/* Each stop is a new one: what was read of the stacks may be stale. */
	stack_checker_new_stop(session->checker);
	blocker->tid = tid;
	status = gates_rewind(session, tid, &seen, error);
	/* Exited meanwhile (seen.tid 0): out of every function, no byte. */
	*clear = status == HP_OK && (!seen.tid || !stack_check_thread(session->checker, &seen,
								      move->allow_unreliable, blocker));
	if (*clear && seen.tid && move->to != HP_GATE_UNSEEN)
		status = table_write(session, move->transition, tid, &byte, 1, error);
	if (threads_detach_one(&session->threads, tid, status == HP_OK ? error : &(struct hp_error){ 0 }) !=
		    HP_OK &&
	    status == HP_OK)
		status = HP_FAILED;
	length = hp_now() - stopped;
	if (length > session->longest_stop)
		session->longest_stop = length;
	return status;
}

static int grow_blockers(struct hp_session *session, size_t count, struct hp_error *error)
{
	struct hp_blocker *blockers;

	if (session->blocker_capacity >= count)
		return HP_OK;
	blockers = realloc(session->blockers, count * sizeof(*blockers));
	if (!blockers)
		return hp_fail(error, HP_FAILED, "out of memory");
	session->blockers = blockers;
	session->blocker_capacity = count;
	return HP_OK;
}

/* The test build's points half way through, half the threads moved to
 * the new code and the others not yet: killed there, or stopped to be
 * caught at it. */
static void in_transition_fault(void)
{
	if (hp_fault("kill-in-transition"))
		raise(SIGKILL);
	if (hp_fault("stop-in-transition"))
		raise(SIGSTOP);
}

/* A thread found awake on the first pass is looked at again on the next
 * one, after a pause, when this much time is left before the deadline. */
#define LOOK_AGAIN_SECONDS 0.05

/* Every thread listed now, checked alone until each was once clear, or
 * `until`: threads born after the listing need nothing (the phase gives
 * them the universe moved to).  HP_BUSY leaves the last blockers in the
 * session. */
static int move_every_thread(struct hp_session *session, const struct universe_move *move,
			     double until, unsigned *passes, struct hp_error *error)
{
	pid_t *tids = NULL;
	size_t count = 0, left, moved = 0;
	double pause = 0.0005;
	bool first_pass = true;
	int status = threads_list(session->pid, &tids, &count, error);

	if (status == HP_OK)
		status = grow_blockers(session, count, error);
	session->thread_count = (unsigned)count;
	left = status == HP_OK ? count : 0;
	while (status == HP_OK && left > 0) {
		size_t busy = 0;

		(*passes)++;
		/* The threads still in the way stay at the front of tids. */
		for (size_t i = 0; status == HP_OK && i < left; i++) {
			bool clear = false;

			if (!move->rollback && session_interrupted(session))
				status = hp_fail_as(error, HP_KIND_INTERRUPTED,
						    "interrupted; pid %d was left unchanged",
						    (int)session->pid);
			else if (already_moved(session, move, tids[i]) ||
				 moved_asleep(session, move, tids[i]))
				clear = true;
			else if (first_pass && hp_now() + LOOK_AGAIN_SECONDS < until &&
				 !hp_fault("single-attempt"))
				/* Caught awake: most threads sleep far more than they
				 * run, and a look later costs them nothing where a stop
				 * now would cost them a stop. */
				session->blockers[busy] = (struct hp_blocker){ .tid = tids[i] };
			else
				status = check_alone(session, move, tids[i], &clear,
						     &session->blockers[busy], error);
			if (status == HP_OK && !clear)
				tids[busy++] = tids[i];
			else if (status == HP_OK && move->to != HP_GATE_UNSEEN && !move->rollback &&
				 ++moved == (count + 1) / 2)
				in_transition_fault();
		}
		left = busy;
		session->blocker_count = busy;
		first_pass = false;
		if (status != HP_OK || left == 0)
			break;
		if (hp_now() + pause > until || hp_fault("single-attempt")) {
			status = HP_BUSY;
			break;
		}
		usleep((useconds_t)(pause * 1e6));
		pause = pause * 2 < 0.05 ? pause * 2 : 0.05;
	}
	free(tids);
	return status;
}

/* `ranges` and the gate page: what a thread must be out of to move, in a
 * new array (the caller frees it). */
static struct hp_range *with_gates(const struct hp_transition *transition,
				   const struct hp_range *ranges, size_t range_count,
				   size_t *count, struct hp_error *error)
{
	struct hp_range *all = calloc(range_count + 1 + transition->count, sizeof(*all));

	*count = 0;
	if (!all) {
		hp_fail(error, HP_FAILED, "out of memory");
		return NULL;
	}
	if (range_count)
		memcpy(all, ranges, range_count * sizeof(*ranges));
	*count = range_count;
	all[(*count)++] = (struct hp_range){ transition->page,
					     transition->page + transition->code_length, "a gate" };
	/* A thread on a landing is on its way to a gate. */
	for (size_t i = 0; i < transition->count; i++)
		if (transition->sites[i].landing)
			all[(*count)++] = (struct hp_range){
				transition->sites[i].landing,
				transition->sites[i].landing + HP_LANDING_SIZE, "a gate's landing"
			};
	return all;
}

static int set_ranges_with_gates(struct hp_session *session, const struct hp_transition *transition,
				 const struct hp_range *ranges, size_t range_count,
				 struct hp_error *error)
{
	size_t count = 0;
	struct hp_range *all = with_gates(transition, ranges, range_count, &count, error);
	int status = all ? stack_checker_set_ranges(session->checker, all, count, error)
			 : HP_FAILED;

	free(all);
	return status;
}

/* Every thread stopped at once, out of `ranges` and the gates (moved out
 * where they can be), left stopped. */
static int stop_all_when_clear(struct hp_session *session, const struct hp_transition *transition,
			       const struct hp_range *ranges, size_t range_count,
			       unsigned *attempts, double *stopped_at, struct hp_error *error)
{
	size_t count = 0;
	struct hp_range *all = with_gates(transition, ranges, range_count, &count, error);
	int status = all ? session_stop_when_clear(session, all, count, attempts, stopped_at, error)
			 : HP_FAILED;

	free(all);
	return status;
}

/* Frames suspended in `ranges` (coroutines) can be resumed by any thread,
 * whatever its byte: only a global stop sees them gone.  *clear: none. */
static int no_suspended_frames(struct hp_session *session, const struct hp_range *ranges,
			       size_t range_count, double until, bool *clear, struct hp_error *error)
{
	int status = HP_OK;

	*clear = true;
	if (!session->find_suspended)
		return HP_OK;
	status = suspended_scan_prepare(&session->suspended, &session->memory, ranges, range_count,
					error);
	if (status == HP_OK && session->suspended.site_count)
		status = suspended_scan_run(&session->suspended, &session->threads,
					    &session->memory, until, error);
	*clear = session->suspended.site_count == 0 ||
		 (session->suspended.complete && session->suspended.hit_count == 0);
	return status;
}

int transition_check(struct hp_session *session, struct hp_transition *transition,
		     const struct hp_range *ranges, size_t range_count, unsigned *attempts,
		     double *stopped_at, struct hp_error *error)
{
	double until = hp_now() + (session->deadline - hp_now()) * ALONE_SHARE;
	struct universe_move move = { transition, HP_GATE_NEW, session->allow_unreliable, false };
	bool clear = false;
	int status = no_suspended_frames(session, ranges, range_count, until, &clear, error);

	if (status == HP_OK)
		status = set_ranges_with_gates(session, transition, ranges, range_count, error);
	if (status != HP_OK)
		return status;
	/* Frames suspended in the old code can be resumed by any thread: only
	 * a global stop sees them gone.  So can busy threads be moved out. */
	if (clear) {
		stack_checker_reserve(session->checker, 1);
		*stopped_at = hp_now();
		status = pin_threads(session, transition, HP_GATE_ORIGINAL, error);
		if (status == HP_OK)
			status = write_phase(session, transition, HP_GATE_UNSEEN_NEW, error);
		transition->moving = true;
		if (status == HP_OK)
			status = move_every_thread(session, &move, until, attempts, error);
		if (status != HP_BUSY)
			return status;
		memset(error, 0, sizeof(*error));
	}
	/* The rest under a global stop, which commits with every thread
	 * stopped: out of the old code and of the gates, each sees only the
	 * new code once resumed.  The blockers seen alone point into ranges
	 * the stop replaces: none is kept. */
	session->blocker_count = 0;
	transition->stopped_all = true;
	*attempts = 0;	/* the global stop's, as with --stop-all */
	return stop_all_when_clear(session, transition, ranges, range_count, attempts, stopped_at,
				   error);
}

int transition_decide(struct hp_session *session, struct hp_transition *transition,
		      struct hp_error *error)
{
	return write_phase(session, transition, HP_GATE_ALL_NEW, error);
}

/* A rollback's moves, while every thread runs: the phase sends a thread
 * not seen since to `move->to` (`unseen`), each thread moved the other way
 * goes back once out of `ranges`, then every thread goes there (`all`).
 * Within the session's deadline; HP_BUSY leaves the blockers. */
static int roll_every_thread(struct hp_session *session, const struct universe_move *move,
			     enum hp_gate_phase unseen, enum hp_gate_phase all,
			     const struct hp_range *ranges, size_t range_count,
			     struct hp_error *error)
{
	struct hp_transition *transition = move->transition;
	unsigned passes = 0;
	int status = write_phase(session, transition, unseen, error);

	if (status == HP_OK && transition->moving)
		status = set_ranges_with_gates(session, transition, ranges, range_count, error);
	if (status == HP_OK && transition->moving)
		status = move_every_thread(session, move, session->deadline, &passes, error);
	if (status == HP_OK)
		status = write_phase(session, transition, all, error);
	return status;
}

/* A rollback that a thread outstayed: the patch is left incomplete, for
 * `hotpatch revert` (`again`: " again" for a revert's own rollback). */
static int left_incomplete(const struct hp_session *session, const char *where_when,
			   const char *again, struct hp_error *error)
{
	return hp_fail(error, HP_BUSY,
		       "pid %d: thread %d stayed in %s rolled back; the patch is left incomplete: "
		       "run hotpatch revert%s",
		       (int)session->pid, session->blocker_count ? (int)session->blockers[0].tid : 0,
		       where_when, again);
}

/* The rollback, while every thread runs: each thread back to the original
 * code once out of the new, then the entries, then the gate page emptied. */
int transition_ungate(struct hp_session *session, struct hp_transition *transition,
		      struct hp_error *error)
{
	struct universe_move back = { transition, HP_GATE_ORIGINAL, false, true };
	/* A gate calls nothing but its own routine: a thread can be in one only
	 * in its innermost frames, which every stack shows even where the rest
	 * cannot be unwound. */
	struct universe_move drain = { transition, HP_GATE_UNSEEN, true, true };
	double deadline = session->deadline;
	unsigned passes = 0;
	int status;

	if (!transition->page)
		return HP_OK;
	session->deadline = hp_now() + HP_ROLLBACK_SECONDS;
	status = roll_every_thread(session, &back, HP_GATE_UNSEEN_ORIGINAL, HP_GATE_ALL_ORIGINAL,
				   &transition->new_code, 1, error);
	if (status == HP_OK)
		status = store_all(session, transition, false, &(bool){ false }, error);
	if (status == HP_OK)
		status = set_ranges_with_gates(session, transition, NULL, 0, error);
	if (status == HP_OK)
		status = move_every_thread(session, &drain, session->deadline, &passes, error);
	session->deadline = deadline;
	/* A thread still in the new code or the gates: nothing is pulled from
	 * under it; the patch stays, incomplete, for revert. */
	transition->keep_page = status != HP_OK;
	if (status == HP_BUSY)
		status = left_incomplete(session, "the patch's code while apply", "", error);
	if (status == HP_OK)
		transition->gated = false;
	return status;
}

/* ---- A revert through the gates: the same moves, the other way ---- */

/* The gate mapping at `page`, its table after `code_length` bytes and
 * `limit` long, as its header says: the code of this hotpatch's gates,
 * every thread sent to the new code (phase 1). */
static bool gate_page_applied(struct hp_session *session, uint64_t page, uint64_t code_length,
			      uint64_t limit)
{
	unsigned char seen[HP_GATE_FIRST], expected[HP_GATE_FIRST];
	struct hp_error ignored = { 0 };

	if (target_memory_read(&session->memory, page, seen, sizeof(seen), &ignored) != HP_OK) {
		hp_error_release(&ignored);
		return false;
	}
	gate_page_code(code_length, limit, expected);
	return seen[0] == HP_GATE_ALL_NEW && memcmp(seen + 1, expected + 1, sizeof(seen) - 1) == 0;
}

/* A punned entry (its jump's first byte alone written): where the jump
 * lands, read from the function's own bytes after it, holding the landing
 * of the function's gate. */
static bool landing_from_record(struct hp_session *session,
				const struct hp_state_function *function,
				struct hp_transition_site *site)
{
	unsigned char jump[HP_JUMP_SIZE], landing[HP_LANDING_SIZE], expected[HP_LANDING_SIZE];
	struct hp_error ignored = { 0 };
	uint64_t to = 0;

	if (function->length != 1 ||
	    target_memory_read(&session->memory, site->site, jump, sizeof(jump), &ignored) !=
		    HP_OK ||
	    !code_decode_jump(site->site, jump, &to) ||
	    target_memory_read(&session->memory, to, landing, sizeof(landing), &ignored) !=
		    HP_OK) {
		hp_error_release(&ignored);
		return false;
	}
	gate_landing_encode(function->trampoline, expected);
	site->landing = to;
	return memcmp(landing, expected, sizeof(expected)) == 0;
}

/* One function's entry as the record left it: its gate's jump in place. */
static bool site_from_record(struct hp_session *session, const struct hp_state_function *function,
			     struct hp_transition_site *site)
{
	struct hp_error ignored = { 0 };
	size_t offset = (size_t)(function->jump_address & (HP_GATE_STORE_SIZE - 1));

	if (function->length == 0 || function->length > sizeof(function->written) ||
	    offset + function->length > HP_GATE_STORE_SIZE)
		return false;
	site->site = function->jump_address;
	site->block = function->jump_address & ~(uint64_t)(HP_GATE_STORE_SIZE - 1);
	if (target_memory_read(&session->memory, site->block, site->gated, sizeof(site->gated),
			       &ignored) != HP_OK) {
		hp_error_release(&ignored);
		return false;
	}
	if (memcmp(site->gated + offset, function->written, function->length) != 0)
		return false;
	memcpy(site->original, site->gated, sizeof(site->original));
	memcpy(site->original + offset, function->saved, function->length);
	site->in_place = true;
	return function->length == HP_JUMP_SIZE || landing_from_record(session, function, site);
}

int transition_from_record(struct hp_session *session, const struct hp_state_patch *record,
			   struct hp_transition *transition, struct hp_error *error)
{
	uint64_t page = record->page_count ? record->pages[0] : 0;

	memset(transition, 0, sizeof(*transition));
	if (!HP_HAVE_GATES || !record->gate_pages || !page) {
		not_used(transition, "the patch was applied with every thread stopped");
		return HP_OK;
	}
	if (record->status != HP_STATE_APPLIED || (record->flags & HP_STATE_CUMULATIVE) ||
	    record->gate_pages < 2) {
		not_used(transition, "the patch is incomplete or cumulative");
		return HP_OK;
	}
	transition->code_length = patch_state_code_length(record, 0);
	if (patch_state_page_length(record, 0) <= transition->code_length ||
	    record->function_count > HP_GATE_FUNCTIONS_MAX) {
		not_used(transition, "its gate mapping is not as this hotpatch makes them");
		return HP_OK;
	}
	transition->limit = patch_state_page_length(record, 0) - transition->code_length;
	if (!gate_page_applied(session, page, transition->code_length, transition->limit)) {
		not_used(transition, "its gates are not as this hotpatch writes them");
		return HP_OK;
	}
	if (!same_pid_namespace(session->pid)) {
		not_used(transition, "the target is in another pid namespace");
		return HP_OK;
	}
	transition->sites = calloc(record->function_count ? record->function_count : 1,
				   sizeof(*transition->sites));
	if (!transition->sites)
		return hp_fail(error, HP_FAILED, "out of memory");
	transition->count = record->function_count;
	for (size_t i = 0; i < transition->count; i++)
		if (!site_from_record(session, &record->functions[i], &transition->sites[i])) {
			not_used(transition, "an entry does not jump to its gate");
			return HP_OK;
		}
	transition->page = page;
	/* Threads asleep are moved by exchanges on the table, and the table is
	 * emptied by the view: without it, every thread is stopped at once. */
	gate_view_open(session->pid, &session->memory, page + transition->code_length,
		       transition->limit, &transition->view);
	if (!transition->view.bytes) {
		transition->page = 0;
		not_used(transition, "hotpatch cannot map the gates' table (it needs CAP_SYS_ADMIN)");
		return HP_OK;
	}
	transition->new_code = (struct hp_range){ record->text_start, record->text_end, "the patch" };
	transition->active = transition->gated = true;
	return HP_OK;
}

int transition_move_back(struct hp_session *session, struct hp_transition *transition,
			 const struct hp_range *ranges, size_t range_count, unsigned *attempts,
			 struct hp_error *error)
{
	double until = hp_now() + (session->deadline - hp_now()) * ALONE_SHARE;
	struct universe_move back = { transition, HP_GATE_ORIGINAL, session->allow_unreliable,
				      false };
	bool clear = false;
	/* Only the patch's code: no coroutine is ever suspended in a gate,
	 * while every thread that passed one during the apply left copies of
	 * choose's return address in its stack's dead part. */
	int status = no_suspended_frames(session, &transition->new_code, 1, until, &clear, error);

	if (status == HP_OK)
		status = set_ranges_with_gates(session, transition, ranges, range_count, error);
	if (status != HP_OK || !clear) {
		transition->stopped_all = status == HP_OK;
		return status;
	}
	stack_checker_reserve(session->checker, 1);
	/* Every gate sends every thread to the new code (phase 1) and reads no
	 * byte: bytes left from the apply are cleared.  Then a thread it has
	 * not seen is written in as new (phase 3) until every thread there is
	 * is pinned to it, and from then on as original (phase 0): one born
	 * later can have entered the patch's code only through a gate, which
	 * wrote it in as new. */
	if (!gate_view_empty(&transition->view))
		return hp_fail_errno(error, HP_FAILED, "cannot clear the gates' table of pid %d",
				     (int)session->pid);
	status = write_phase(session, transition, HP_GATE_UNSEEN_NEW, error);
	if (status == HP_OK)
		status = pin_threads(session, transition, HP_GATE_NEW, error);
	if (status == HP_OK)
		status = write_phase(session, transition, HP_GATE_UNSEEN_ORIGINAL, error);
	transition->moving = true;
	if (status == HP_OK)
		status = move_every_thread(session, &back, until, attempts, error);
	if (status != HP_BUSY)
		return status;
	/* The rest under a global stop, as with --stop-all: the blockers seen
	 * alone are not kept. */
	memset(error, 0, sizeof(*error));
	session->blocker_count = 0;
	transition->stopped_all = true;
	*attempts = 0;	/* the global stop's, as with --stop-all */
	return HP_OK;
}

int transition_revert_entries(struct hp_session *session, struct hp_transition *transition,
			      struct hp_error *error)
{
	struct hp_error ignored = { 0 };
	int status = write_phase(session, transition, HP_GATE_ALL_ORIGINAL, error);

	if (status == HP_OK)
		status = store_all(session, transition, false, &(bool){ false }, error);
	if (status == HP_OK) {
		transition->gated = false;
		return HP_OK;
	}
	/* Its own half taken back: each thread still runs as its byte says. */
	if (store_all(session, transition, true, &(bool){ false }, &ignored) != HP_OK ||
	    write_phase(session, transition, HP_GATE_UNSEEN_ORIGINAL, &ignored) != HP_OK)
		hp_error_release(&ignored);
	return status;
}

int transition_drain(struct hp_session *session, struct hp_transition *transition,
		     struct hp_error *error)
{
	/* Out of the gates, and (for safety's sake, the bytes say so already)
	 * of the patch's code: then both can go. */
	struct universe_move drain = { transition, HP_GATE_UNSEEN, session->allow_unreliable, true };
	unsigned passes = 0;
	int status = set_ranges_with_gates(session, transition, &transition->new_code, 1, error);

	if (status == HP_OK)
		status = move_every_thread(session, &drain, session->deadline, &passes, error);
	return status;
}

int transition_see_each_clear(struct hp_session *session, const struct hp_range *ranges,
			      size_t range_count, struct hp_error *error)
{
	/* No transition: a look, no byte (already_moved, moved_asleep and
	 * check_alone touch the table only to write one). */
	struct universe_move look = { NULL, HP_GATE_UNSEEN, false, true };
	unsigned passes = 0;
	int status = stack_checker_set_ranges(session->checker, ranges, range_count, error);

	if (status == HP_OK)
		status = move_every_thread(session, &look, session->deadline, &passes, error);
	return status;
}

int transition_move_forward(struct hp_session *session, struct hp_transition *transition,
			    const struct hp_range *old_code, size_t old_count, struct hp_error *error)
{
	/* The revert's rollback, while every thread runs: the phase sends a
	 * thread it has not seen to the new code again (one not seen since the
	 * table was cleared is in neither body), and each thread that went
	 * back to the original code returns to the new one once out of the
	 * old bodies. */
	struct universe_move forward = { transition, HP_GATE_NEW, session->allow_unreliable, true };
	double deadline = session->deadline;
	int status;

	if (!transition->moving)
		return write_phase(session, transition, HP_GATE_ALL_NEW, error);
	session->deadline = hp_now() + HP_ROLLBACK_SECONDS;
	status = roll_every_thread(session, &forward, HP_GATE_UNSEEN_NEW, HP_GATE_ALL_NEW, old_code,
				   old_count, error);
	session->deadline = deadline;
	if (status == HP_OK)
		transition->moving = false;
	if (status == HP_BUSY)
		status = left_incomplete(session, "the original code while revert", " again", error);
	return status;
}

void transition_release(struct hp_transition *transition)
{
	gate_view_close(&transition->view);
	free(transition->sites);
	transition->sites = NULL;
}
