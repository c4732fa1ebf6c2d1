/* takeover.c - a cumulative patch taking over every patch applied before it
 * (kernel livepatch's "atomic replace").  In apply's one stop its jumps go
 * over the older jumps (a function both fix never runs its original code)
 * and the functions only older patches replace get their original bytes
 * back; afterwards the older records are marked reverted, their objects
 * unloaded and their records dropped, through the calls revert makes.  It
 * plans and writes; the stop and the steps are apply's. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/session.h"
#include "common/base.h"
#include "runtime/state.h"
#include "runtime/target.h"
#include "runtime/threads.h"

/* Unloading the older patches after the commit gets a budget of its own:
 * the command's deadline may be spent, and leaving them loaded only costs
 * memory (the next command takes them back), so it is short. */
#define UNLOAD_SECONDS 5.0

void takeover_original_bytes(const struct hp_state *state, size_t before, uint64_t address,
			     unsigned char *bytes, size_t length)
{
	/* Each record saved what was there before it: laid over one another
	 * from the newest to the oldest, they leave the original. */
	for (size_t i = before < state->patch_count ? before : state->patch_count; i-- > 0;) {
		const struct hp_state_patch *patch = state->patches[i];

		if (patch->status == HP_STATE_REMOVED)
			continue;
		for (uint32_t f = 0; f < patch->function_count; f++) {
			const struct hp_state_function *function = &patch->functions[f];
			uint64_t start = function->jump_address, end = start + function->length;

			if (!function->jump_address || !function->length ||
			    function->length > HP_SAVED_MAX || end <= address ||
			    start >= address + length)
				continue;
			if (start < address)
				start = address;
			if (end > address + length)
				end = address + length;
			memcpy(bytes + (start - address),
			       function->saved + (start - function->jump_address), end - start);
		}
	}
}

/* The new patch's function at `address`, or -1. */
static long replaced_at(const uint64_t *addresses, size_t count, uint64_t address)
{
	for (size_t i = 0; i < count; i++)
		if (addresses[i] == address)
			return (long)i;
	return -1;
}

static struct hp_takeover_site *find_site(struct hp_takeover *takeover, uint64_t address)
{
	for (size_t i = 0; i < takeover->site_count; i++)
		if (takeover->sites[i].address == address)
			return &takeover->sites[i];
	return NULL;
}

/* A jump site of an older record, as long as the longest jump written
 * there: the bytes it holds now (for the rollback) and its original bytes
 * (for the commit).  `shared`: the new patch jumps from there too. */
static int add_site(struct hp_takeover *takeover, const struct hp_state_function *function,
		    bool shared, struct hp_error *error)
{
	struct hp_takeover_site *site = find_site(takeover, function->jump_address), *larger;

	if (!site) {
		larger = realloc(takeover->sites, (takeover->site_count + 1) * sizeof(*larger));
		if (!larger)
			return hp_fail(error, HP_FAILED, "out of memory");
		takeover->sites = larger;
		site = &takeover->sites[takeover->site_count++];
		memset(site, 0, sizeof(*site));
		site->address = function->jump_address;
		site->shared = shared;
	}
	if (function->length > site->length)
		site->length = function->length;
	return HP_OK;
}

static int note_older(struct hp_takeover *takeover, const struct hp_state *state, size_t index,
		      struct hp_error *error)
{
	const char *name = state->patches[index]->name;
	size_t used = takeover->names ? strlen(takeover->names) : 0;
	long *larger = realloc(takeover->older, (takeover->older_count + 1) * sizeof(*larger));
	char *names;

	if (larger)
		takeover->older = larger;
	names = larger ? realloc(takeover->names, used + strlen(name) + 2) : NULL;
	if (!names)
		return hp_fail(error, HP_FAILED, "out of memory");
	takeover->names = names;
	takeover->older[takeover->older_count++] = (long)index;
	snprintf(names + used, strlen(name) + 2, "%s%s", used ? " " : "", name);
	return HP_OK;
}

/* One function of an older record: a site to restore, or one the new
 * patch's jump goes over, which must be the very same site. */
static int plan_function(struct hp_takeover *takeover, const struct hp_state_patch *patch,
			 const struct hp_state_function *function, const uint64_t *addresses,
			 const uint64_t *jump_addresses, size_t count, struct hp_error *error)
{
	long replaced = replaced_at(addresses, count, function->address);

	/* Recorded before its jump was planned: it never jumped. */
	if (!function->jump_address || !function->length || function->length > HP_SAVED_MAX)
		return HP_OK;
	if (replaced >= 0 && jump_addresses[replaced] != function->jump_address) {
		hp_error_function(error, function->function);
		hp_hint(error, "revert %s first", patch->name);
		return hp_fail_as(error, HP_KIND_CANNOT_PATCH,
				  "patch %s jumps from 0x%llx in %s, this one would from 0x%llx: "
				  "it cannot take %s over in one write",
				  patch->name, (unsigned long long)function->jump_address,
				  function->function, (unsigned long long)jump_addresses[replaced],
				  patch->name);
	}
	return add_site(takeover, function, replaced >= 0, error);
}

int takeover_plan(const struct hp_state *state, struct hp_memory *memory,
		  const uint64_t *addresses, const uint64_t *jump_addresses, size_t count,
		  struct hp_takeover *takeover, struct hp_error *error)
{
	int status = HP_OK;

	for (size_t i = 0; status == HP_OK && i < state->patch_count; i++) {
		const struct hp_state_patch *patch = state->patches[i];

		if (patch->status == HP_STATE_REMOVED)
			continue;
		status = note_older(takeover, state, i, error);
		for (uint32_t f = 0; status == HP_OK && f < patch->function_count; f++)
			status = plan_function(takeover, patch, &patch->functions[f], addresses,
					       jump_addresses, count, error);
	}
	/* Read while the process runs: only we write its code, under our lock. */
	for (size_t i = 0; status == HP_OK && i < takeover->site_count; i++) {
		struct hp_takeover_site *site = &takeover->sites[i];

		status = target_memory_read(memory, site->address, site->current, site->length,
					    error);
		memcpy(site->original, site->current, site->length);
		takeover_original_bytes(state, state->patch_count, site->address, site->original,
					site->length);
	}
	return status;
}

/* Every older patch's code and trampolines: no thread may run in them at
 * the stop, since they are unloaded afterwards without another one. */
int takeover_ranges(const struct hp_state *state, const struct hp_takeover *takeover,
		    struct hp_range **ranges, size_t *count, struct hp_error *error)
{
	size_t needed = *count;
	struct hp_range *larger;

	for (size_t i = 0; i < takeover->older_count; i++)
		needed += 1 + state->patches[takeover->older[i]]->page_count;
	if (needed == *count)
		return HP_OK;
	larger = realloc(*ranges, needed * sizeof(*larger));
	if (!larger)
		return hp_fail(error, HP_FAILED, "out of memory");
	*ranges = larger;
	for (size_t i = 0; i < takeover->older_count; i++) {
		const struct hp_state_patch *patch = state->patches[takeover->older[i]];

		larger[(*count)++] = (struct hp_range){ patch->text_start, patch->text_end,
							patch->name };
		for (uint32_t p = 0; p < patch->page_count; p++)
			larger[(*count)++] = (struct hp_range){ patch->pages[p],
								patch->pages[p] + HP_PAGE_SIZE,
								patch->name };
	}
	return HP_OK;
}

/* The new patch's jump at `address` in its record, or NULL. */
static const struct hp_state_function *jump_at(const struct hp_state_patch *record, size_t count,
						uint64_t address)
{
	for (size_t i = 0; i < count && i < record->function_count; i++)
		if (record->functions[i].jump_address == address && record->functions[i].length)
			return &record->functions[i];
	return NULL;
}

int takeover_write_jumps(const struct hp_takeover *takeover, struct hp_memory *memory,
			 pid_t stopped_tid, const struct hp_state_patch *record, size_t count,
			 struct hp_error *error)
{
	struct hp_text_piece *pieces;
	size_t used = 0;
	int status;

	if (!takeover->site_count)
		return text_write_functions(memory, stopped_tid, record, HP_TEXT_WRITTEN, count,
					    error);
	/* One write of everything: the new jumps, the original bytes of what
	 * only older patches replace, and past a new jump shorter than the
	 * older one there (a direct jump over an indirect one) the rest of the
	 * original bytes, so that reverting the new patch leaves no older
	 * jump's tail behind. */
	pieces = calloc(count + takeover->site_count, sizeof(*pieces));
	if (!pieces)
		return hp_fail(error, HP_FAILED, "out of memory");
	for (size_t i = 0; i < count && i < record->function_count; i++) {
		const struct hp_state_function *function = &record->functions[i];

		if (function->jump_address && function->length)
			pieces[used++] = (struct hp_text_piece){ function->jump_address,
								 function->written,
								 function->length };
	}
	for (size_t i = 0; i < takeover->site_count; i++) {
		const struct hp_takeover_site *site = &takeover->sites[i];
		const struct hp_state_function *jump =
			site->shared ? jump_at(record, count, site->address) : NULL;
		uint32_t from = jump ? jump->length : 0;

		/* A shared site not written yet (the test build's half write). */
		if (site->shared && !jump)
			continue;
		if (from < site->length)
			pieces[used++] = (struct hp_text_piece){ site->address + from,
								 site->original + from,
								 site->length - from };
	}
	status = text_write(memory, stopped_tid, pieces, used, error);
	free(pieces);
	return status;
}

/* After apply's own rollback of its jumps (their saved bytes): every site
 * as it was, the older jumps whole. */
void takeover_undo_write(const struct hp_takeover *takeover, struct hp_memory *memory,
			 pid_t stopped_tid)
{
	struct hp_text_piece *pieces;
	struct hp_error ignored = { 0 };

	if (!takeover->site_count)
		return;
	pieces = calloc(takeover->site_count, sizeof(*pieces));
	if (!pieces)
		return;
	for (size_t i = 0; i < takeover->site_count; i++)
		pieces[i] = (struct hp_text_piece){ takeover->sites[i].address,
						    takeover->sites[i].current,
						    takeover->sites[i].length };
	if (text_write(memory, stopped_tid, pieces, takeover->site_count, &ignored) != HP_OK)
		memset(&ignored, 0, sizeof(ignored));
	free(pieces);
}

/* The records as they are after the commit: the new one's saved bytes
 * become the original ones (its revert puts back the code as it was before
 * any patch), and each older one is reverted and names no jump site any
 * more (the new patch's jumps, or the original bytes, are there now), so
 * that a command killed before they are dropped leaves records the next
 * command takes back like those of a killed revert. */
static void rewrite_records(struct hp_state *state, size_t index,
			    const struct hp_takeover *takeover)
{
	struct hp_state_patch *record = state->patches[index];

	for (uint32_t f = 0; f < record->function_count; f++) {
		struct hp_state_function *function = &record->functions[f];

		if (function->jump_address && function->length <= HP_SAVED_MAX)
			takeover_original_bytes(state, index, function->jump_address,
						function->saved, function->length);
	}
	for (size_t i = 0; i < takeover->older_count; i++) {
		struct hp_state_patch *older = state->patches[takeover->older[i]];

		older->status = HP_STATE_REMOVED;
		for (uint32_t f = 0; f < older->function_count; f++) {
			older->functions[f].jump_address = 0;
			older->functions[f].length = 0;
		}
	}
}

static int unload_older(struct hp_session *session, const struct hp_takeover *takeover,
			bool *unloaded, struct hp_error *error)
{
	struct hp_remote remote;
	int status = session_borrow_thread(session, &remote, error);
	bool borrowed = status == HP_OK;

	for (size_t i = 0; borrowed && remote.active && i < takeover->older_count; i++) {
		const struct hp_state_patch *older = session->state.patches[takeover->older[i]];
		struct hp_error step_error = { .pid = session->pid };
		int step = session_unload_on(session, &remote, older->handle, older, &step_error);

		unloaded[i] = step == HP_OK;
		status = hp_first_failure(status, error, step, &step_error);
	}
	return session_return_thread(session, &remote, status, error);
}

int takeover_finish(struct hp_session *session, long *record_index, struct hp_takeover *takeover,
		    struct hp_error *error)
{
	struct hp_state *state = &session->state;
	struct hp_error unload_error = { .pid = session->pid };
	int status, unload_status = HP_OK;
	bool *unloaded;

	if (!takeover->older_count)
		return HP_OK;
	unloaded = calloc(takeover->older_count, sizeof(*unloaded));
	if (!unloaded)
		return hp_fail(error, HP_FAILED, "out of memory");
	rewrite_records(state, (size_t)*record_index, takeover);
	/* Nothing is unloaded unless the target's state says it is reverted:
	 * else a later revert of the new patch would jump into it. */
	status = patch_state_write(state, &session->memory, error);
	if (status == HP_OK && hp_fault("kill-in-take-over"))
		raise(SIGKILL);	/* the test build's way to die with the older ones loaded */
	if (session->deadline < hp_now() + UNLOAD_SECONDS)
		session->deadline = hp_now() + UNLOAD_SECONDS;
	/* As revert unloads, on one borrowed thread for all: every one is
	 * tried, the first failure reported; one that stays loaded keeps its
	 * record, for the next command. */
	if (status == HP_OK)
		unload_status = unload_older(session, takeover, unloaded, &unload_error);
	/* Dropped from the highest index down, so the others keep theirs. */
	for (size_t i = takeover->older_count; i-- > 0;) {
		if (!unloaded[i])
			continue;
		patch_state_remove(state, (size_t)takeover->older[i]);
		if (takeover->older[i] < *record_index)
			(*record_index)--;
	}
	if (status == HP_OK)
		status = patch_state_write(state, &session->memory, error);
	free(unloaded);
	return hp_first_failure(status, error, unload_status, &unload_error);
}

void takeover_release(struct hp_takeover *takeover)
{
	free(takeover->older);
	free(takeover->names);
	free(takeover->sites);
	memset(takeover, 0, sizeof(*takeover));
}
