/* apply.c - hp_apply and hp_check: the story of a patch going in.  Read and
 * plan while the target runs; load the patch on one borrowed thread; stop
 * every thread only to check stacks and write the jumps; on any failure undo
 * each completed step in reverse, so the target is left as it was. */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>

#include "runtime/session.h"
#include "hotpatch.h"
#include "arch/arch.h"
#include "common/base.h"
#include "common/proc_maps.h"
#include "patch/patch.h"
#include "runtime/state.h"
#include "runtime/steps.h"
#include "runtime/target.h"
#include "runtime/threads.h"
#include "trust/trust.h"

#define FUNCTION_READ_MAX (64u << 10)

struct planned {
	const struct hp_patch_replacement *replacement;
	uint64_t address, size;
	struct hp_code_plan plan;
	unsigned char current[HP_SAVED_MAX];	/* bytes now at the jump site */
	long previous;				/* state record already patching it */
};

struct apply_work {
	const struct hp_request *request;
	struct hp_result *result;
	bool only_check;
	struct hp_session session;
	struct hp_patch_file patch;
	struct planned *planned;
	struct hp_range *ranges;
	size_t range_count;
	struct hp_state_patch *record;	/* owned by the state once appended */
	long record_index;
	bool borrowed, jumps_started;
	struct hp_remote remote;	/* the borrowed thread, while borrowed */
	struct hp_loaded_patch loaded_patch;
	struct hp_takeover takeover;	/* a cumulative patch: the older ones it takes over */
	struct hp_transition transition;	/* the no-stop way (transition.c), when taken */
	bool hook_running;		/* a hook outlived its limit: keep the patch loaded */
	char hook_warning[HP_TEXT_MAX];	/* what the post-apply hook did wrong, or "" */
	unsigned attempts;
	double stopped_at, blackout;
};

/* This apply's record: its own until appended, then the state's. */
static struct hp_state_patch *own_record(struct apply_work *work)
{
	return work->record_index >= 0 ? work->session.state.patches[work->record_index]
				       : work->record;
}

static int plan_one(struct apply_work *work, size_t index, struct hp_error *error)
{
	struct hp_session *session = &work->session;
	struct planned *entry = &work->planned[index];
	const struct hp_patch_replacement *replacement = &work->patch.replacements[index];
	struct hp_object *object = NULL;
	unsigned char *code = NULL;
	char why[300];
	size_t length;
	int status;

	entry->replacement = replacement;
	status = target_find_object(&session->target, replacement->object, &object, error);
	if (status == HP_OK)
		status = target_find_function(&session->target, object, replacement->function,
					      replacement->file, &entry->address, &entry->size, error);
	if (status != HP_OK)
		return status;
	length = entry->size < FUNCTION_READ_MAX ? entry->size : FUNCTION_READ_MAX;
	code = malloc(length);
	if (!code)
		return hp_fail(error, HP_FAILED, "out of memory");
	status = target_memory_read(&session->memory, entry->address, code, length, error);
	entry->previous = patch_state_latest_for(&session->state, entry->address,
						 session->state.patch_count);
	/* Already patched: plan on the original bytes. */
	if (status == HP_OK && entry->previous >= 0)
		takeover_original_bytes(&session->state, session->state.patch_count, entry->address,
					code, length);
	if (status == HP_OK) {
		status = code_plan_function(code, length, entry->address, &entry->plan, why,
					    sizeof(why));
		if (status != HP_OK) {
			hp_error_function(error, replacement->function);
			hp_error_file(error, object->path);
			status = hp_fail(error, status, "cannot patch %s in %s: %s",
					 replacement->function, object->path, why);
			hp_error_classify(error, HP_KIND_CANNOT_PATCH);
		}
	}
	if (status == HP_OK)
		status = target_memory_read(&session->memory, entry->plan.jump_address,
					    entry->current, entry->plan.length, error);
	free(code);
	return status;
}

/* Functions being replaced, and the replacement code that runs for them now. */
static int build_ranges(struct apply_work *work, struct hp_error *error)
{
	size_t count = work->patch.count;

	work->ranges = calloc(count * 2, sizeof(*work->ranges));
	if (!work->ranges)
		return hp_fail(error, HP_FAILED, "out of memory");
	for (size_t i = 0; i < count; i++) {
		const struct planned *entry = &work->planned[i];

		work->ranges[work->range_count++] = (struct hp_range){
			entry->address, entry->address + entry->size, entry->replacement->function
		};
		if (entry->previous >= 0) {
			const struct hp_state_patch *previous =
				work->session.state.patches[entry->previous];

			work->ranges[work->range_count++] = (struct hp_range){
				previous->text_start, previous->text_end, entry->replacement->function
			};
		}
	}
	return HP_OK;
}

/* A cumulative patch: every older patch it takes over, and their code
 * added to what must be clear of every stack. */
static int plan_takeover(struct apply_work *work, struct hp_error *error)
{
	size_t count = work->patch.count;
	uint64_t *addresses = calloc(2 * count + 1, sizeof(*addresses));
	int status;

	if (!addresses)
		return hp_fail(error, HP_FAILED, "out of memory");
	for (size_t i = 0; i < count; i++) {
		addresses[i] = work->planned[i].address;
		addresses[count + i] = work->planned[i].plan.jump_address;
	}
	status = takeover_plan(&work->session.state, &work->session.memory, addresses,
			       addresses + count, count, &work->takeover, error);
	free(addresses);
	if (status == HP_OK)
		status = takeover_ranges(&work->session.state, &work->takeover, &work->ranges,
					 &work->range_count, error);
	return status;
}

static int plan_all(struct apply_work *work, struct hp_error *error)
{
	int status = HP_OK;

	work->planned = calloc(work->patch.count, sizeof(*work->planned));
	if (!work->planned)
		return hp_fail(error, HP_FAILED, "out of memory");
	status = references_check_pins(&work->session.target, &work->patch, error);
	for (size_t i = 0; status == HP_OK && i < work->patch.count; i++)
		status = plan_one(work, i, error);
	if (status == HP_OK)
		status = references_resolve(&work->session.target, &work->session.memory,
					    &work->patch, error);
	if (status == HP_OK)
		status = build_ranges(work, error);
	if (status == HP_OK && work->patch.cumulative)
		status = plan_takeover(work, error);
	return status;
}

/* The page is named in the recorded state before it is mapped, so that a
 * hotpatch killed in between leaves nothing that the next command cannot
 * find (leftovers.c checks that a named page is really ours). */
static int map_trampoline_page(struct apply_work *work, struct hp_remote *remote,
			       uint64_t near, struct hp_error *error)
{
	struct hp_state_patch *record = own_record(work);
	struct hp_maps maps = { 0 };
	int64_t mapped = 0;
	uint64_t candidate = 0;
	int status = proc_maps_read(work->session.pid, &maps, error);

	/* A process that died meanwhile has no maps left: no room anywhere. */
	if (status == HP_OK && !trampoline_find_gap(&maps, near, near + 1, HP_PAGE_SIZE, &candidate))
		status = process_has_exited(work->session.pid)
				 ? hp_fail_as(error, HP_KIND_TARGET_EXITED, "pid %d exited during apply",
					      (int)work->session.pid)
				 : hp_fail_as(error, HP_KIND_CANNOT_PATCH,
					      "no free address space within 2 GiB of 0x%" PRIx64
					      " in pid %d for a trampoline",
					      near, (int)work->session.pid);
	proc_maps_release(&maps);
	if (status != HP_OK)
		return status;
	record->pages[record->page_count++] = candidate;
	status = patch_state_write(&work->session.state, &work->session.memory, error);
	if (status == HP_OK)
		status = remote_syscall(remote, SYS_mmap,
					(uint64_t[6]){ candidate, HP_PAGE_SIZE, PROT_READ | PROT_EXEC,
						       MAP_PRIVATE | MAP_ANONYMOUS |
							       MAP_FIXED_NOREPLACE,
						       (uint64_t)-1, 0 },
					&mapped, error);
	if (status == HP_OK && (uint64_t)mapped != candidate) {
		if (mapped > 0)
			status = remote_syscall(remote, SYS_munmap,
						(uint64_t[6]){ (uint64_t)mapped, HP_PAGE_SIZE },
						&mapped, error);
		status = hp_fail(error, HP_FAILED, "cannot map a trampoline page in pid %d",
				 (int)work->session.pid);
	}
	if (status != HP_OK)
		record->page_count--;	/* not ours: never to be unmapped by us */
	else if (hp_fault("kill-after-trampoline"))
		raise(SIGKILL);	/* the test build's way to die with a page mapped */
	return status;
}

/* A slot in one of this patch's pages that every jump can reach. */
static int trampoline_slot(struct apply_work *work, struct hp_remote *remote, uint64_t from,
			   uint64_t *slot, struct hp_error *error)
{
	struct hp_state_patch *record = own_record(work);
	unsigned char probe[HP_JUMP_SIZE];
	int status;

	for (uint32_t p = 0; p < record->page_count; p++) {
		uint64_t used = 0;

		for (uint32_t f = 0; f < record->function_count; f++)
			if (record->functions[f].trampoline >= record->pages[p] &&
			    record->functions[f].trampoline < record->pages[p] + HP_PAGE_SIZE)
				used++;
		*slot = record->pages[p] + used * HP_TRAMPOLINE_SLOT;
		if (used < HP_PAGE_SIZE / HP_TRAMPOLINE_SLOT && code_encode_jump(from, *slot, probe))
			return HP_OK;
	}
	if (record->page_count == HP_STATE_MAX_PAGES)
		return hp_fail_as(error, HP_KIND_CANNOT_PATCH, "the patch needs more than %d trampoline pages",
			       HP_STATE_MAX_PAGES);
	status = map_trampoline_page(work, remote, from, error);
	if (status != HP_OK)
		return status;
	*slot = record->pages[record->page_count - 1];
	return HP_OK;
}

/* What the record says of one function, whichever jump it gets. */
static void describe_function(struct apply_work *work, size_t index)
{
	const struct planned *entry = &work->planned[index];
	struct hp_state_function *function = &own_record(work)->functions[index];

	hp_copy_string(function->object, sizeof(function->object), entry->replacement->object);
	hp_copy_string(function->function, sizeof(function->function),
		       entry->replacement->function);
	function->address = entry->address;
	function->size = entry->size;
	function->jump_address = entry->plan.jump_address;
	function->replacement = work->loaded_patch.bias + entry->replacement->replacement_vaddr;
	function->replacement_size = entry->replacement->replacement_size;
	memcpy(function->saved, entry->current, entry->plan.length);
	function->length = HP_JUMP_SIZE;
}

/* The jump for one function, cheapest first: a direct jmp rel32 when the
 * replacement is within reach; else an indirect jmp reading the address
 * from a near slot (still one jump); else, when only five bytes may be
 * overwritten, a jmp rel32 to the slot, which jumps on (two jumps).
 *
 *   function:  jmp rel32 -> replacement                        (direct)
 *   function:  jmp *disp32(%rip) --reads--> slot+6: .quad replacement
 *   function:  jmp rel32 -> slot: jmp *0(%rip); .quad replacement
 */
static int prepare_jump(struct apply_work *work, struct hp_remote *remote, size_t index,
			struct hp_error *error)
{
	const struct planned *entry = &work->planned[index];
	struct hp_state_function *function = &own_record(work)->functions[index];
	uint64_t target = work->loaded_patch.bias + entry->replacement->replacement_vaddr;
	unsigned char slot[HP_TRAMPOLINE_SLOT];
	int status = HP_OK;

	describe_function(work, index);
	if (code_encode_jump(function->jump_address, target, function->written))
		return HP_OK;
	status = trampoline_slot(work, remote, function->jump_address, &function->trampoline, error);
	if (status != HP_OK)
		return status;
	trampoline_encode_slot(target, slot);
	status = target_memory_write(&work->session.memory, remote->tid, function->trampoline, slot,
				     sizeof(slot), error);
	if (status != HP_OK)
		return status;
	if (entry->plan.length >= HP_INDIRECT_JUMP_SIZE &&
	    code_encode_indirect_jump(function->jump_address,
				      function->trampoline + HP_TRAMPOLINE_POINTER,
				      function->written)) {
		function->length = HP_INDIRECT_JUMP_SIZE;
		return HP_OK;
	}
	if (!code_encode_jump(function->jump_address, function->trampoline, function->written))
		return hp_fail(error, HP_FAILED, "trampoline out of reach");
	return HP_OK;
}

static int record_patch(struct apply_work *work, struct hp_error *error)
{
	struct hp_state_patch *record = work->record;
	struct hp_state *state = &work->session.state;
	int status;

	hp_copy_string(record->name, sizeof(record->name), work->patch.name);
	hp_copy_string(record->path, sizeof(record->path), work->patch.absolute_path);
	memcpy(record->sha256, work->patch.sha256, sizeof(record->sha256));
	record->applied = (uint64_t)time(NULL);
	record->known = HP_KNOWN_APPLIED | HP_KNOWN_SHA256 | HP_KNOWN_ABSOLUTE_PATH;
	hp_copy_string(record->description, sizeof(record->description),
		       work->patch.description);
	hp_copy_string(record->ids, sizeof(record->ids), work->patch.ids);
	hp_copy_string(record->load_path, sizeof(record->load_path),
		       work->loaded_patch.load_path);
	record->status = HP_STATE_PENDING;
	record->handle = work->loaded_patch.handle;
	record->load_bias = work->loaded_patch.bias;
	record->text_start = work->loaded_patch.text_start;
	record->text_end = work->loaded_patch.text_end;
	record->memfd_inode = work->loaded_patch.inode;
	record->flags = work->patch.cumulative ? HP_STATE_CUMULATIVE : 0;
	/* Revert calls these from the record: the patch file is long gone. */
	if (work->patch.hooks[HOTPATCH_HOOK_PRE_REVERT])
		record->pre_revert = record->load_bias + work->patch.hooks[HOTPATCH_HOOK_PRE_REVERT];
	if (work->patch.hooks[HOTPATCH_HOOK_POST_REVERT])
		record->post_revert = record->load_bias + work->patch.hooks[HOTPATCH_HOOK_POST_REVERT];
	hp_copy_string(record->fixes, sizeof(record->fixes), work->patch.in_effect);
	hp_copy_string(record->excluded, sizeof(record->excluded), work->patch.excluded);
	status = patch_state_append(state, record, error);
	if (status != HP_OK)
		return status;
	work->record_index = (long)state->patch_count - 1;
	work->record = NULL;
	return patch_state_write(state, &work->session.memory, error);
}

/* The steps below run on one borrowed thread, from borrow_thread to
 * return_thread.  The record goes into the target as soon as the object is
 * loaded, before any page is mapped for it, and again once every jump is
 * planned: a hotpatch killed at any point leaves a record of all it added. */
static int borrow_thread(void *data, struct hp_error *error)
{
	struct apply_work *work = data;
	int status = session_borrow_thread(&work->session, &work->remote, error);

	if (status != HP_OK)
		return session_return_thread(&work->session, &work->remote, status, error);
	work->borrowed = true;
	return HP_OK;
}

/* Also the undo of borrow_thread, and the first thing unload_patch does. */
static int return_thread(void *data, struct hp_error *error)
{
	struct apply_work *work = data;

	if (!work->borrowed)
		return HP_OK;
	work->borrowed = false;
	return session_return_thread(&work->session, &work->remote, HP_OK, error);
}

static int load_patch(void *data, struct hp_error *error)
{
	struct apply_work *work = data;

	return patch_load(&work->remote, &work->session.target, &work->patch,
			  &work->session.state, &work->loaded_patch, error);
}

/* Undo of load: unload, unmap trampolines, and only then drop the record
 * that names them, so that a hotpatch killed in between leaves them found.
 * Unloading borrows a thread of its own: the borrowed one goes back first. */
static int unload_patch(void *data, struct hp_error *error)
{
	struct apply_work *work = data;
	struct hp_session *session = &work->session;
	const struct hp_state_patch *record = own_record(work);
	struct hp_error step_error = { 0 };
	int status = return_thread(work, error), step;

	/* Its thread is still in a hook of the patch: unloading would pull the
	 * code from under it.  Left loaded, unrecorded, the patch is taken back
	 * by the next command once no thread runs in it. */
	if (work->hook_running && work->record_index < 0)
		return status;
	/* A thread stayed in the new code when the gates were rolled back: the
	 * patch stays loaded and recorded, incomplete, for revert. */
	if (work->transition.keep_page)
		return status;

	/* The command's own deadline may be spent (exit 3): rolling back gets a
	 * budget of its own, since leaving the patch loaded is worse. */
	session->deadline = hp_now() + HP_ROLLBACK_SECONDS;
	step = session_unload_patch(session, work->loaded_patch.handle, record, &step_error);
	status = hp_first_failure(status, error, step, &step_error);
	if (work->record_index >= 0) {
		patch_state_remove(&session->state, (size_t)work->record_index);
		work->record_index = -1;
		memset(&step_error, 0, sizeof(step_error));
		step = patch_state_write(&session->state, &session->memory, &step_error);
		status = hp_first_failure(status, error, step, &step_error);
	}
	return status;
}

/* Before any jump: the patch must not run with its references empty. */
static int fill_references(void *data, struct hp_error *error)
{
	struct apply_work *work = data;

	return references_fill(&work->session.memory, work->remote.tid, &work->patch,
			       work->loaded_patch.bias, error);
}

/* The patch's own check, loaded and filled, before anything is recorded: a
 * result other than 0 cancels the apply (load's undo unloads the patch). */
static int pre_apply_hook(void *data, struct hp_error *error)
{
	struct apply_work *work = data;
	uint64_t hook = work->patch.hooks[HOTPATCH_HOOK_PRE_APPLY];
	int returned = 0, status;

	if (!hook)
		return HP_OK;
	status = hook_call(&work->remote, work->patch.name, "pre-apply",
			   work->loaded_patch.bias + hook, &returned, &work->hook_running, error);
	if (status != HP_OK || returned == 0)
		return status;
	hp_hint(error, "the patch's own check refused this process; see its documentation");
	return hp_fail(error, HP_MISFIT,
		       "the pre-apply hook of patch %s returned %d in pid %d; nothing was changed",
		       work->patch.name, returned, (int)work->session.pid);
}

/* No undo of its own: load's undo drops the record after what it names. */
static int record_pending(void *data, struct hp_error *error)
{
	struct apply_work *work = data;

	work->record = patch_state_new_patch(work->patch.count);
	if (!work->record)
		return hp_fail(error, HP_FAILED, "out of memory");
	return record_patch(work, error);
}

/* Why this apply cannot go through gates before anything is tried, or NULL. */
static const char *gates_refused(const struct apply_work *work)
{
	if (work->request->stop_all)
		return "--stop-all";
	if (work->session.in_process)
		return "in process";
	if (work->patch.cumulative)
		return "a cumulative patch";
	for (size_t i = 0; i < work->patch.count; i++)
		if (work->planned[i].previous >= 0)
			return "a function patched already";
	return NULL;
}

/* The no-stop way (transition.c), where it fits: gates and their jumps. */
static int prepare_gates(struct apply_work *work, struct hp_error *error)
{
	struct hp_transition_site *sites = calloc(work->patch.count, sizeof(*sites));
	int status;

	if (!sites)
		return hp_fail(error, HP_FAILED, "out of memory");
	status = HP_OK;
	for (size_t i = 0; status == HP_OK && i < work->patch.count; i++) {
		const struct planned *entry = &work->planned[i];
		uint64_t end = entry->address + entry->size;

		describe_function(work, i);
		sites[i].site = entry->plan.jump_address;
		/* The gate runs the whole instructions the jump covers: read
		 * past the jump's bytes, within the function. */
		sites[i].length = end - sites[i].site < sizeof(sites[i].current)
					  ? (size_t)(end - sites[i].site)
					  : sizeof(sites[i].current);
		status = target_memory_read(&work->session.memory, sites[i].site, sites[i].current,
					    sites[i].length, error);
	}
	if (status == HP_OK)
		status = transition_prepare(&work->session, &work->remote, own_record(work), sites,
					    work->patch.count, &work->transition, error);
	free(sites);
	return status;
}

/* No undo of its own: the pages (and the gates) are named in the record,
 * and load's undo unmaps them. */
static int prepare_jumps(void *data, struct hp_error *error)
{
	struct apply_work *work = data;
	const char *refused = gates_refused(work);
	int status = HP_OK;

	if (refused)
		hp_copy_string(work->transition.why_not, sizeof(work->transition.why_not), refused);
	else
		status = prepare_gates(work, error);
	if (status != HP_OK || work->transition.active)
		return status;
	for (size_t i = 0; status == HP_OK && i < work->patch.count; i++)
		status = prepare_jump(work, &work->remote, i, error);
	return status;
}

/* Through gates: each entry's jump to its gate, written while every
 * thread runs.  Undone by ungate_entries. */
static int gate_entries(void *data, struct hp_error *error)
{
	struct apply_work *work = data;

	if (!work->transition.active)
		return HP_OK;
	return transition_gate(&work->session, &work->transition, error);
}

static int ungate_entries(void *data, struct hp_error *error)
{
	struct apply_work *work = data;

	if (!work->transition.gated)
		return HP_OK;
	return transition_ungate(&work->session, &work->transition, error);
}

static int record_state(void *data, struct hp_error *error)
{
	struct apply_work *work = data;

	return patch_state_write(&work->session.state, &work->session.memory, error);
}

/* Rewriting bytes with their own values makes the code pages private now,
 * so that cost stays out of the blackout. */
static int prefault_jump_sites(void *data, struct hp_error *error)
{
	struct apply_work *work = data;
	const struct hp_state_patch *record = work->session.state.patches[work->record_index];

	return text_write_functions(&work->session.memory, 0, record, HP_TEXT_SAVED,
				    record->function_count, error);
}

/* Through gates: each thread alone; else every thread at once, left stopped. */
static int stop_threads(void *data, struct hp_error *error)
{
	struct apply_work *work = data;

	if (work->transition.gated)
		return transition_check(&work->session, &work->transition, work->ranges,
					work->range_count, &work->attempts, &work->stopped_at,
					error);
	return session_stop_when_clear(&work->session, work->ranges, work->range_count,
				       &work->attempts, &work->stopped_at, error);
}

/* Undo of stop_threads, and the end of the blackout after the write. */
static int resume_threads(void *data, struct hp_error *error)
{
	struct apply_work *work = data;

	(void)error;
	threads_resume_all(&work->session.threads);
	work->blackout = hp_now() - work->stopped_at;
	if (work->session.longest_stop > work->blackout)
		work->blackout = work->session.longest_stop;
	return HP_OK;
}

/* Called with every thread stopped after a failure while writing. */
static void restore_written(struct apply_work *work, pid_t tid)
{
	struct hp_state_patch *record = work->session.state.patches[work->record_index];
	struct hp_error ignored = { 0 };

	if (text_write_functions(&work->session.memory, tid, record, HP_TEXT_SAVED,
				 record->function_count, &ignored) != HP_OK)
		memset(&ignored, 0, sizeof(ignored));
	takeover_undo_write(&work->takeover, &work->session.memory, tid);
	record->status = HP_STATE_PENDING;
}

/* The commit, with every thread stopped: a failure half way puts the saved
 * bytes back before the threads are resumed. */
/* The commit through gates: one byte sends every gate's callers to the new
 * code; the record says so after (killed in between, it is an incomplete
 * patch with its jumps in place, which revert takes out). */
static int decide_gates(struct apply_work *work, struct hp_error *error)
{
	struct hp_state_patch *record = work->session.state.patches[work->record_index];
	struct hp_error ignored = { 0 };
	int status;

	if (hp_fault("write-jumps"))
		return hp_fault_fail(error, "write-jumps");
	status = transition_decide(&work->session, &work->transition, error);
	if (status != HP_OK)
		return status;
	if (hp_fault("kill-in-write"))
		raise(SIGKILL);	/* the test build's way to leave a patch incomplete */
	record->status = HP_STATE_APPLIED;
	/* Done: a record that could not say so stays incomplete, for revert. */
	if (patch_state_write_status(&work->session.state, (size_t)work->record_index,
				     &work->session.memory, 0, &ignored) != HP_OK)
		hp_error_release(&ignored);
	return HP_OK;
}

static int write_jumps(void *data, struct hp_error *error)
{
	struct apply_work *work = data;
	struct hp_state_patch *record = work->session.state.patches[work->record_index];
	pid_t tid = threads_first_stopped(&work->session.threads);
	int status;

	if (work->transition.gated)
		return decide_gates(work, error);
	/* Gates whose jumps go in under this stop: decided before any runs. */
	if (work->transition.active &&
	    (status = transition_decide(&work->session, &work->transition, error)) != HP_OK)
		return status;
	work->jumps_started = true;
	if (hp_fault("write-jumps") || hp_fault("kill-in-write")) {
		/* Half the jumps, then a failure: the rollback must undo them. */
		status = takeover_write_jumps(&work->takeover, &work->session.memory, tid, record,
					      (record->function_count + 1) / 2, error);
		if (status == HP_OK && hp_fault("kill-in-write"))
			raise(SIGKILL);	/* the test build's way to leave a patch incomplete */
		status = status == HP_OK ? hp_fault_fail(error, "write-jumps") : status;
	} else {
		status = takeover_write_jumps(&work->takeover, &work->session.memory, tid, record,
					      record->function_count, error);
		record->status = HP_STATE_APPLIED;
		if (status == HP_OK)
			status = patch_state_write_status(&work->session.state,
							  (size_t)work->record_index,
							  &work->session.memory, tid, error);
	}
	if (status != HP_OK)
		restore_written(work, tid);
	return status;
}

static int resume_after_write(void *data, struct hp_error *error)
{
	struct apply_work *work = data;
	int status = resume_threads(work, error);

	/* Through gates nothing was held at once: the longest stop was one
	 * thread's own. */
	if (work->transition.gated && !work->transition.stopped_all)
		work->blackout = work->session.longest_stop;

	/* Writing into a process that was killed meanwhile may still succeed. */
	if (status == HP_OK && process_has_exited(work->session.pid))
		status = hp_fail_as(error, HP_KIND_TARGET_EXITED, "pid %d exited during apply",
				    (int)work->session.pid);
	return status;
}

/* The patch's post-apply hook, once every jump is in: the apply is done
 * whatever it does, so what goes wrong is a warning. */
static int post_apply_hook(void *data, struct hp_error *error)
{
	struct apply_work *work = data;
	uint64_t hook = work->patch.hooks[HOTPATCH_HOOK_POST_APPLY];
	struct hp_error hook_error = { .pid = work->session.pid };
	bool running = false;
	int returned = 0;

	(void)error;
	if (!hook)
		return HP_OK;
	/* The command's own deadline may be spent waiting for busy threads. */
	if (work->session.deadline < hp_now() + HP_ROLLBACK_SECONDS)
		work->session.deadline = hp_now() + HP_ROLLBACK_SECONDS;
	if (hook_run(&work->session, work->patch.name, "post-apply", work->loaded_patch.bias + hook,
		     &returned, &running, &hook_error) != HP_OK)
		hp_copy_string(work->hook_warning, sizeof(work->hook_warning), hook_error.message);
	else if (returned != 0)
		snprintf(work->hook_warning, sizeof(work->hook_warning),
			 "its post-apply hook returned %d", returned);
	hp_error_release(&hook_error);
	return HP_OK;
}

/* A cumulative patch, once its jumps are in: the older patches it took
 * over are unloaded and forgotten, as revert does it. */
static int take_over(void *data, struct hp_error *error)
{
	struct apply_work *work = data;

	return takeover_finish(&work->session, &work->record_index, &work->takeover, error);
}

/* check's stop: every stack checked, nothing written. */
static int check_stacks(void *data, struct hp_error *error)
{
	struct apply_work *work = data;
	int status = stop_threads(work, error);

	threads_resume_all(&work->session.threads);
	return status;
}

/* check loads nothing, so it predicts: dlopen maps the patch near the other
 * shared objects (libc), so code within rel32 reach of libc gets a direct
 * jump and code farther away (a PIE executable, usually) an indirect one,
 * or a trampoline when only five bytes may be overwritten. */
static const char *predicted_jump(uint64_t libc_function, const struct hp_code_plan *plan)
{
	unsigned char probe[HP_JUMP_SIZE];

	if (libc_function && code_encode_jump(plan->jump_address, libc_function, probe))
		return "direct";
	return plan->length >= HP_INDIRECT_JUMP_SIZE ? "indirect" : "trampoline";
}

static void report_references(const struct hp_patch_file *file, struct hp_patch_report *patch)
{
	for (size_t i = 0; i < file->reference_count; i++) {
		const struct hp_patch_reference *from = &file->references[i];
		struct hp_reference_report *to = &patch->references[patch->reference_count++];

		hp_copy_string(to->object, sizeof(to->object), from->object);
		hp_copy_string(to->file, sizeof(to->file), from->file);
		hp_copy_string(to->symbol, sizeof(to->symbol), from->symbol);
		to->address = from->address;
	}
}

/* A function another applied patch already replaces: its fix goes, unless
 * this patch carries it too, so the operator is told whose. */
static void report_takeovers(const struct apply_work *work, struct hp_patch_report *patch)
{
	/* Nothing was planned for a patch found applied already. */
	for (size_t i = 0; work->planned && i < work->patch.count && i < patch->function_count; i++)
		if (work->planned[i].previous >= 0)
			hp_copy_string(patch->functions[i].over, sizeof(patch->functions[i].over),
				       work->session.state.patches[work->planned[i].previous]->name);
}

static int report(struct apply_work *work, struct hp_result *result, struct hp_error *error)
{
	struct hp_patch_report *patch = calloc(1, sizeof(*patch));
	struct hp_error ignored = { 0 };
	uint64_t libc_function = 0;

	if (!patch || !(patch->functions = calloc(work->patch.count, sizeof(*patch->functions))) ||
	    !(patch->references = calloc(work->patch.reference_count + 1,
					 sizeof(*patch->references)))) {
		if (patch)
			free(patch->functions);
		free(patch);
		return hp_fail(error, HP_FAILED, "out of memory");
	}
	result->patches = patch;
	result->patch_count = 1;
	if (work->planned)	/* resolved: planned and loaded, or checked */
		report_references(&work->patch, patch);
	if (work->takeover.names && !(patch->replaced = strdup(work->takeover.names)))
		return hp_fail(error, HP_FAILED, "out of memory");
	if (work->record_index >= 0) {
		session_fill_report(work->session.state.patches[work->record_index], patch);
		report_takeovers(work, patch);
		hp_copy_string(patch->warning, sizeof(patch->warning), work->hook_warning);
		return HP_OK;
	}
	/* check: what apply would do, without load addresses. */
	hp_copy_string(patch->name, sizeof(patch->name), work->patch.name);
	hp_copy_string(patch->path, sizeof(patch->path), work->patch.absolute_path);
	hp_copy_string(patch->sha256, sizeof(patch->sha256), result->patch_file.sha256);
	hp_copy_string(patch->description, sizeof(patch->description), work->patch.description);
	hp_copy_string(patch->ids, sizeof(patch->ids), work->patch.ids);
	hp_copy_string(patch->state, sizeof(patch->state), "checked");
	patch->cumulative = work->patch.cumulative;
	hp_copy_string(patch->fixes, sizeof(patch->fixes), work->patch.in_effect);
	hp_copy_string(patch->excluded, sizeof(patch->excluded), work->patch.excluded);
	if (target_find_export(&work->session.target, "dlopen", &libc_function, &ignored) != HP_OK)
		libc_function = 0;
	for (size_t i = 0; i < work->patch.count; i++) {
		struct hp_function_report *function = &patch->functions[patch->function_count++];

		hp_copy_string(function->object, sizeof(function->object),
			       work->planned[i].replacement->object);
		hp_copy_string(function->function, sizeof(function->function),
			       work->planned[i].replacement->function);
		function->address = work->planned[i].address;
		function->jump_address = work->planned[i].plan.jump_address;
		hp_copy_string(function->jump_kind, sizeof(function->jump_kind),
			       predicted_jump(libc_function, &work->planned[i].plan));
	}
	report_takeovers(work, patch);
	return HP_OK;
}

static int open_patch(void *data, struct hp_error *error)
{
	struct apply_work *work = data;
	int status = patch_file_read(work->request, &work->patch, &work->result->patch_file, error);

	/* --exclude: the fixes left out are no part of the patch from here on. */
	if (status == HP_OK && work->request->exclude_count)
		status = patch_fixes_exclude(&work->patch, work->request->excludes,
					     work->request->exclude_count, error);
	return status;
}

static int map_target(void *data, struct hp_error *error)
{
	struct apply_work *work = data;
	int status = session_open(&work->session, work->request, true, error);

	if (status != HP_OK)
		return status;
	work->session.command = work->only_check ? NULL : "apply";
	/* Taking back needs a stop, which a process cannot do to itself. */
	return leftovers_take_back(&work->session, !work->only_check && !work->session.in_process,
				   work->result, error);
}

static int plan_patch(void *data, struct hp_error *error)
{
	return plan_all(data, error);
}

static int report_patch(void *data, struct hp_error *error)
{
	struct apply_work *work = data;
	int status = report(work, work->result, error);

	if (status == HP_OK && !work->only_check && !work->session.in_process)
		family_note_patches(work->session.pid, work->result);
	return status;
}

/* The story of apply, one step a line (docs/ARCHITECTURE.md tells it too):
 * read and plan while the target runs; load on one borrowed thread; stop
 * every thread only to check the stacks and write the jumps. */
/* The same patch again is done already: a success that changes nothing,
 * so that a runbook (or install) may apply it as often as it likes.  Another
 * patch under the same name is refused, naming both. */
static int check_not_applied(void *data, struct hp_error *error)
{
	struct apply_work *work = data;
	const struct hp_state *state = &work->session.state;
	const struct hp_patch_identity *identity = &work->result->patch_file;

	for (size_t i = 0; i < state->patch_count; i++) {
		const struct hp_state_patch *record = state->patches[i];
		char sha256[65] = "";
		int status;

		if (record->status != HP_STATE_APPLIED ||
		    strncmp(record->name, work->patch.name, sizeof(record->name)) != 0)
			continue;
		if (record->known & HP_KNOWN_SHA256)
			for (size_t b = 0; b < sizeof(record->sha256); b++)
				snprintf(sha256 + 2 * b, 3, "%02x", record->sha256[b]);
		/* The same bytes with other fixes left out is another patch. */
		if (sha256[0] && strcmp(sha256, identity->sha256) == 0 &&
		    strcmp(record->excluded, work->patch.excluded) == 0) {
			work->record_index = (long)i;
			status = report(work, work->result, error);
			if (status != HP_OK)
				return status;
			hp_copy_string(work->result->patches[0].state,
				       sizeof(work->result->patches[0].state), "already applied");
			return HP_STEPS_DONE;
		}
		hp_hint(error, "revert it first (hotpatch revert --pid %d %s), or give the new "
			       "patch another name", (int)work->session.pid, record->name);
		if (sha256[0] && strcmp(sha256, identity->sha256) == 0)
			return hp_fail_as(error, HP_KIND_NAME_CONFLICT,
					  "pid %d has patch %s applied with fixes excluded: %s; now: %s",
					  (int)work->session.pid, record->name,
					  record->excluded[0] ? record->excluded : "none",
					  work->patch.excluded[0] ? work->patch.excluded : "none");
		return hp_fail_as(error, HP_KIND_NAME_CONFLICT,
				  "pid %d has another patch named %s applied (sequence %" PRIu64
				  ", sha256 %s) than %s (sha256 %s)",
				  (int)work->session.pid, record->name, record->sequence,
				  sha256[0] ? sha256 : "unknown", work->patch.path, identity->sha256);
	}
	return HP_OK;
}

static const struct hp_step apply_step_table[] = {
	{ "open-patch", open_patch, NULL, false },
	{ "map-target", map_target, NULL, false },
	{ "check-applied", check_not_applied, NULL, false },
	{ "plan", plan_patch, NULL, false },
	{ "borrow-thread", borrow_thread, return_thread, false },
	{ "load", load_patch, unload_patch, false },
	{ "fill-references", fill_references, NULL, false },
	{ "pre-apply-hook", pre_apply_hook, NULL, false },
	{ "record", record_pending, NULL, false },
	{ "prepare-jumps", prepare_jumps, NULL, false },
	{ "record-state", record_state, NULL, false },
	{ "return-thread", return_thread, NULL, false },
	{ "prefault", prefault_jump_sites, NULL, false },
	{ "gate-entries", gate_entries, ungate_entries, false },
	{ "stop-threads", stop_threads, resume_threads, false },
	{ "write-jumps", write_jumps, NULL, true },
	{ "resume-threads", resume_after_write, NULL, false },
	{ "post-apply-hook", post_apply_hook, NULL, false },
	{ "report", report_patch, NULL, false },
	{ "take-over", take_over, NULL, false },
};

/* check: apply short of changing the process. */
static const struct hp_step check_step_table[] = {
	{ "open-patch", open_patch, NULL, false },
	{ "map-target", map_target, NULL, false },
	{ "plan", plan_patch, NULL, false },
	{ "check-stacks", check_stacks, NULL, false },
	{ "report", report_patch, NULL, false },
};

static const struct hp_steps apply_steps = { "apply", apply_step_table,
					     HP_ARRAY_SIZE(apply_step_table) };
static const struct hp_steps check_steps = { "check", check_step_table,
					     HP_ARRAY_SIZE(check_step_table) };

static int run(const struct hp_request *request, struct hp_result *result,
	       struct hp_error *error, const struct hp_steps *steps)
{
	/* Never-opened descriptors are -1, so the release below is the one path. */
	struct apply_work work = { .request = request,
				   .result = result,
				   .only_check = steps == &check_steps,
				   .record_index = -1,
				   .session = { .lock_fd = -1, .memory = { .mem_fd = -1 } } };
	int status;

	memset(result, 0, sizeof(*result));
	status = steps_run(steps, &work, request->pid, request->interrupted, error);
	status = session_classify_failure(&work.session, steps->command, status, error);
	/* A failed apply leaves the process as it was: in one never patched,
	 * that is without our state and stub page.  Best effort, as the
	 * rollback is. */
	if (status != HP_OK && !work.only_check && work.session.state.address &&
	    work.session.memory.mem_fd >= 0) {
		struct hp_error ignored = { .pid = work.session.pid };

		if (state_remove_if_empty(&work.session, &ignored) != HP_OK)
			hp_error_release(&ignored);
	}
	if (!work.only_check && work.planned) {
		hp_copy_string(result->stop_mode, sizeof(result->stop_mode),
			       work.transition.gated ? "gates" : "stop-all");
		hp_copy_string(result->stop_all_reason, sizeof(result->stop_all_reason),
			       work.transition.stopped_all ? "threads in the way or suspended frames"
			       : work.transition.active && !work.transition.gated
				       ? "code pages may not be made writable"
				       : work.transition.why_not);
		result->threads_asleep = work.transition.gated ? work.transition.asleep : 0;
	}
	result->attempts = work.attempts;
	result->blackout_seconds = work.blackout;
	result->thread_count = work.session.thread_count;
	session_report_scan(&work.session, result);
	result->elapsed_seconds = hp_now() - work.session.start;
	free(work.record);
	takeover_release(&work.takeover);
	transition_release(&work.transition);
	free(work.ranges);
	free(work.planned);
	session_close(&work.session);
	patch_file_release(&work.patch);
	return status;
}

int hp_apply(const struct hp_request *request, struct hp_result *result, struct hp_error *error)
{
	return run(request, result, error, &apply_steps);
}

int hp_check(const struct hp_request *request, struct hp_result *result, struct hp_error *error)
{
	return run(request, result, error, &check_steps);
}

void hp_result_release(struct hp_result *result)
{
	free(result->leftovers);
	for (size_t i = 0; i < result->patch_count; i++) {
		free(result->patches[i].functions);
		free(result->patches[i].references);
		free(result->patches[i].replaced);
	}
	free(result->patches);
	memset(result, 0, sizeof(*result));
}
