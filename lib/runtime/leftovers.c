/* leftovers.c - what a killed hotpatch left in a target, found and taken
 * back by the next command so that nothing piles up: patch objects loaded
 * and never recorded, records of a patch half in or half out, trampoline and
 * stub pages, state mappings and descriptors of ours.  Nothing is unloaded
 * or unmapped while a jump, a trampoline or a thread's stack leads into it;
 * what cannot be taken back yet is reported with the reason. */
#include <dirent.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "runtime/session.h"
#include "arch/arch.h"
#include "common/base.h"
#include "common/proc_maps.h"
#include "runtime/state.h"
#include "runtime/target.h"
#include "runtime/threads.h"

#define STATE_MEMFD_PREFIX "/memfd:hotpatch-state"
#define DELETED_SUFFIX " (deleted)"
#define DESCRIPTORS_MAX 65536
/* The stop that checks stacks before anything is taken back is short: a
 * leftover someone still runs in waits for a later command. */
#define RECLAIM_SECONDS 1.0

static struct hp_leftover *add(struct hp_leftovers *found, enum hp_leftover_kind kind,
			       const char *name, struct hp_error *error)
{
	struct hp_leftover *larger = realloc(found->items, (found->count + 1) * sizeof(*larger));

	if (!larger) {
		hp_fail(error, HP_FAILED, "out of memory");
		return NULL;
	}
	found->items = larger;
	larger = &found->items[found->count++];
	memset(larger, 0, sizeof(*larger));
	larger->kind = kind;
	larger->record = -1;
	larger->descriptor = -1;
	larger->reclaimable = true;
	hp_copy_string(larger->name, sizeof(larger->name), name);
	return larger;
}

static void set_reason(struct hp_leftover *leftover, const char *format, ...) HP_PRINTF(2, 3);
static void set_reason(struct hp_leftover *leftover, const char *format, ...)
{
	va_list arguments;

	va_start(arguments, format);
	vsnprintf(leftover->reason, sizeof(leftover->reason), format, arguments);
	va_end(arguments);
}

/* "NAME" of "/memfd:hotpatch:NAME (deleted)". */
static void memfd_patch_name(const char *path, char *name, size_t size)
{
	size_t length;

	hp_copy_string(name, size, path + strlen(PATCH_MEMFD_PATH));
	length = strlen(name);
	if (length >= strlen(DELETED_SUFFIX) &&
	    strcmp(name + length - strlen(DELETED_SUFFIX), DELETED_SUFFIX) == 0)
		name[length - strlen(DELETED_SUFFIX)] = '\0';
}

/* Whether some function of the record has its jump in place, and whether
 * every one holds either its original bytes or our jump. */
static int record_jumps(struct hp_session *session, const struct hp_state_patch *record,
			bool *any_written, bool *all_ours, struct hp_error *error)
{
	*any_written = false;
	*all_ours = true;
	for (uint32_t f = 0; f < record->function_count; f++) {
		enum hp_text_site site;
		int status = text_site_read(&session->memory, &record->functions[f], &site, error);

		if (status != HP_OK)
			return status;
		*any_written |= site == HP_SITE_JUMP;
		*all_ours &= site != HP_SITE_FOREIGN;
	}
	return HP_OK;
}

static int find_records(struct hp_session *session, struct hp_leftovers *found,
			struct hp_error *error)
{
	const struct hp_state *state = &session->state;

	for (size_t i = 0; i < state->patch_count; i++) {
		const struct hp_state_patch *record = state->patches[i];
		struct hp_leftover *leftover;
		bool written = false, ours = true;
		uint64_t bias, text_start, text_end;
		int status;

		if (record->status == HP_STATE_APPLIED)
			continue;
		status = record_jumps(session, record, &written, &ours, error);
		if (status != HP_OK)
			return status;
		leftover = add(found, written ? HP_LEFTOVER_INCOMPLETE : HP_LEFTOVER_RECORD,
			       record->name, error);
		if (!leftover)
			return HP_FAILED;
		leftover->record = (long)i;
		leftover->start = record->text_start;
		leftover->end = record->text_end;
		leftover->loaded = patch_mapped_span(&session->target.maps, record->memfd_inode,
						     &bias, &text_start, &text_end) &&
				   bias == record->load_bias;
		leftover->bias = record->load_bias;
		leftover->address = record->load_bias;
		if (written) {
			leftover->reclaimable = false;
			set_reason(leftover, "partly applied by a killed hotpatch; run: hotpatch revert "
					     "--pid %d %s",
				   (int)session->pid, record->name);
		} else if (!ours) {
			leftover->reclaimable = false;
			set_reason(leftover, "its functions' code was changed by something else");
		} else {
			set_reason(leftover, "%s by a killed hotpatch, no jump in place",
				   record->status == HP_STATE_REMOVED ? "reverted" : "loaded");
		}
	}
	return HP_OK;
}

static bool named_by_record(const struct hp_state *state, uint64_t inode, uint64_t bias)
{
	for (size_t i = 0; i < state->patch_count; i++)
		if (state->patches[i]->memfd_inode == inode && state->patches[i]->load_bias == bias)
			return true;
	return false;
}

static bool already_found(const struct hp_leftovers *found, enum hp_leftover_kind kind,
			  uint64_t address)
{
	for (size_t i = 0; i < found->count; i++)
		if (found->items[i].kind == kind && found->items[i].address == address)
			return true;
	return false;
}

/* A jump of a patch that stays, or its trampoline, leads into [start, end). */
static const char *jump_into(const struct hp_state *state, uint64_t start, uint64_t end)
{
	for (size_t i = 0; i < state->patch_count; i++) {
		const struct hp_state_patch *record = state->patches[i];

		if (record->status != HP_STATE_APPLIED && record->status != HP_STATE_PENDING)
			continue;
		for (uint32_t f = 0; f < record->function_count; f++)
			if (record->functions[f].replacement >= start &&
			    record->functions[f].replacement < end)
				return record->name;
	}
	return NULL;
}

/* Patch objects in our memfds that no record names: loaded by an apply that
 * was killed before it recorded them. */
static int find_objects(struct hp_session *session, struct hp_leftovers *found,
			struct hp_error *error)
{
	const struct hp_maps *maps = &session->target.maps;

	for (size_t i = 0; i < maps->count; i++) {
		const struct hp_mapping *mapping = &maps->items[i];
		struct hp_leftover *leftover;
		uint64_t bias, text_start, text_end;
		char name[HP_PATCH_NAME_MAX];
		const char *user;

		if (strncmp(mapping->path, PATCH_MEMFD_PATH, strlen(PATCH_MEMFD_PATH)) != 0 ||
		    !patch_mapped_span(maps, mapping->inode, &bias, &text_start, &text_end) ||
		    named_by_record(&session->state, mapping->inode, bias) ||
		    already_found(found, HP_LEFTOVER_OBJECT, bias))
			continue;
		memfd_patch_name(mapping->path, name, sizeof(name));
		leftover = add(found, HP_LEFTOVER_OBJECT, name, error);
		if (!leftover)
			return HP_FAILED;
		leftover->address = leftover->bias = bias;
		leftover->start = text_start;
		leftover->end = text_end;
		leftover->loaded = true;
		user = jump_into(&session->state, bias, text_end > bias ? text_end : bias + 1);
		if (user) {
			leftover->reclaimable = false;
			set_reason(leftover, "patch %s jumps into it", user);
		} else {
			set_reason(leftover, "loaded by a killed hotpatch, never recorded");
		}
	}
	return HP_OK;
}

/* Stub pages the state does not name (a hotpatch killed while creating the
 * state), and mappings named like the state that are not it. */
static int find_pages(struct hp_session *session, struct hp_leftovers *found,
		      struct hp_error *error)
{
	const struct hp_maps *maps = &session->target.maps;

	for (size_t i = 0; i < maps->count; i++) {
		const struct hp_mapping *mapping = &maps->items[i];
		struct hp_leftover *leftover = NULL;

		if (patch_state_is_leftover_mapping(&session->state, mapping)) {
			leftover = add(found, HP_LEFTOVER_STATE, "", error);
			if (leftover)
				set_reason(leftover, "created by a killed hotpatch, not the state");
		} else if (mapping->start != session->state.stub_page &&
			   mapping->end - mapping->start == HP_PAGE_SIZE &&
			   patch_state_stub_is_ours(&session->memory, maps, mapping->start)) {
			leftover = add(found, HP_LEFTOVER_STUB, "", error);
			if (leftover)
				set_reason(leftover, "created by a killed hotpatch, not the state's");
		} else {
			continue;
		}
		if (!leftover)
			return HP_FAILED;
		leftover->address = mapping->start;
		leftover->size = mapping->end - mapping->start;
		if (leftover->kind == HP_LEFTOVER_STUB) {
			leftover->start = mapping->start;
			leftover->end = mapping->end;
		}
	}
	return HP_OK;
}

/* Our memfds still open in the target: only memfds with our names that are
 * close-on-exec, as we create them. */
static bool descriptor_is_ours(pid_t pid, long entry)
{
	char path[64], link[128], info[256];
	ssize_t length;
	const char *flags;

	snprintf(path, sizeof(path), "/proc/%d/fd/%ld", (int)pid, entry);
	length = readlink(path, link, sizeof(link) - 1);
	if (length <= 0)
		return false;
	link[length] = '\0';
	if (strncmp(link, PATCH_MEMFD_PATH, strlen(PATCH_MEMFD_PATH)) != 0 &&
	    strncmp(link, STATE_MEMFD_PREFIX, strlen(STATE_MEMFD_PREFIX)) != 0)
		return false;
	snprintf(path, sizeof(path), "/proc/%d/fdinfo/%ld", (int)pid, entry);
	if (proc_read_small(path, info, sizeof(info)) < 0)
		return false;
	flags = strstr(info, "flags:");
	return flags && (strtoul(flags + 6, NULL, 8) & O_CLOEXEC);
}

static int find_descriptors(struct hp_session *session, struct hp_leftovers *found,
			    struct hp_error *error)
{
	char path[64];
	DIR *directory;
	struct dirent *entry;
	size_t seen = 0;
	int status = HP_OK;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)session->pid);
	directory = opendir(path);
	if (!directory)
		return hp_fail_errno(error, HP_FAILED, "cannot list the descriptors of pid %d",
				     (int)session->pid);
	while (status == HP_OK && seen++ < DESCRIPTORS_MAX && (entry = readdir(directory))) {
		struct hp_leftover *leftover;
		char *end;
		long number = strtol(entry->d_name, &end, 10);

		if (entry->d_name[0] == '.' || *end || number < 0 ||
		    !descriptor_is_ours(session->pid, number))
			continue;
		leftover = add(found, HP_LEFTOVER_DESCRIPTOR, "", error);
		if (!leftover) {
			status = HP_FAILED;
			break;
		}
		leftover->descriptor = number;
		leftover->address = (uint64_t)number;
		set_reason(leftover, "opened by a killed hotpatch");
	}
	closedir(directory);
	return status;
}

int leftovers_find(struct hp_session *session, struct hp_leftovers *found, struct hp_error *error)
{
	int status;

	memset(found, 0, sizeof(*found));
	status = find_records(session, found, error);
	if (status == HP_OK)
		status = find_objects(session, found, error);
	if (status == HP_OK)
		status = find_pages(session, found, error);
	/* Descriptors are only left by a command that was killed: looked for
	 * when the state says one was, or when there is no state to say it. */
	if (status == HP_OK && (session->state.running.name[0] || !session->state.address ||
				found->count))
		status = find_descriptors(session, found, error);
	return status;
}

void leftovers_release(struct hp_leftovers *found)
{
	free(found->items);
	memset(found, 0, sizeof(*found));
}

/* ---- taking back ---- */

/* Code and pages that must be clear of every stack before they go. */
static int clear_ranges(struct hp_session *session, const struct hp_leftovers *found,
			struct hp_range **ranges, size_t *count, struct hp_error *error)
{
	size_t capacity = 0;

	*count = 0;
	for (size_t i = 0; i < found->count; i++)
		capacity += 1 + (found->items[i].record >= 0
					 ? session->state.patches[found->items[i].record]->page_count
					 : 0);
	*ranges = calloc(capacity ? capacity : 1, sizeof(**ranges));
	if (!*ranges)
		return hp_fail(error, HP_FAILED, "out of memory");
	for (size_t i = 0; i < found->count; i++) {
		const struct hp_leftover *leftover = &found->items[i];
		const struct hp_state_patch *record =
			leftover->record >= 0 ? session->state.patches[leftover->record] : NULL;

		if (!leftover->reclaimable)
			continue;
		if (leftover->end > leftover->start)
			(*ranges)[(*count)++] = (struct hp_range){ leftover->start, leftover->end,
								   "a leftover" };
		for (uint32_t p = 0; record && p < record->page_count; p++)
			(*ranges)[(*count)++] = (struct hp_range){
				record->pages[p],
				record->pages[p] + patch_state_code_length(record, p), "a leftover"
			};
	}
	return HP_OK;
}

/* Stops every thread once, briefly, to see that no stack leads into what is
 * to go; if some does, those leftovers stay for a later command. */
static int check_stacks(struct hp_session *session, struct hp_leftovers *found,
			struct hp_error *error)
{
	struct hp_range *ranges = NULL;
	struct hp_error busy = { 0 };
	double deadline = session->deadline, stopped_at = 0;
	unsigned attempts = 0;
	size_t count = 0;
	int status = clear_ranges(session, found, &ranges, &count, error);

	if (status != HP_OK || count == 0) {
		free(ranges);
		return status;
	}
	if (session->deadline > hp_now() + RECLAIM_SECONDS)
		session->deadline = hp_now() + RECLAIM_SECONDS;
	busy.pid = session->pid;
	status = session_stop_when_clear(session, ranges, count, &attempts, &stopped_at, &busy);
	threads_resume_all(&session->threads);
	session->deadline = deadline;
	free(ranges);
	if (status == HP_OK)
		return HP_OK;
	if (process_has_exited(session->pid) || status == HP_USAGE) {
		*error = busy;
		return status;
	}
	for (size_t i = 0; i < found->count; i++)
		if (found->items[i].reclaimable &&
		    (found->items[i].end > found->items[i].start || found->items[i].record >= 0)) {
			found->items[i].reclaimable = false;
			set_reason(&found->items[i], "not taken back yet: %s", busy.message);
		}
	hp_error_release(&busy);
	return HP_OK;
}

/* The handle of the object loaded at `bias`, asked of the loader itself
 * (dladdr1 with RTLD_DL_LINKMAP, which writes its answers into a page we map
 * for it: the stub page is not writable by the target), and checked: a
 * handle is its link_map, whose first member is the load bias. */
static int loaded_handle(struct hp_session *session, struct hp_remote *remote, uint64_t bias,
			 uint64_t text_address, uint64_t *handle, struct hp_error *error)
{
	uint64_t dladdr1_address = 0, found = 0, link_map = 0, link_bias = 0;
	int64_t scratch = 0, ignored = 0;
	int status = target_find_export(&session->target, "dladdr1", &dladdr1_address, error);

	*handle = 0;
	if (status == HP_OK)
		status = remote_syscall_checked(remote, SYS_mmap,
						(uint64_t[6]){ 0, HP_PAGE_SIZE, PROT_READ | PROT_WRITE,
							       MAP_PRIVATE | MAP_ANONYMOUS,
							       (uint64_t)-1, 0 },
						"mmap", &scratch, error);
	if (status == HP_OK)
		status = remote_call(remote, dladdr1_address,
				     (uint64_t[6]){ text_address, (uint64_t)scratch,
						    (uint64_t)scratch + 64, RTLD_DL_LINKMAP },
				     &found, error);
	if (status == HP_OK && (int)found != 0)
		status = target_memory_read(&session->memory, (uint64_t)scratch + 64, &link_map,
					    sizeof(link_map), error);
	if (status == HP_OK && link_map)
		status = target_memory_read(&session->memory, link_map, &link_bias,
					    sizeof(link_bias), error);
	if (status == HP_OK && link_map && link_bias == bias)
		*handle = link_map;
	if (scratch > 0) {
		struct hp_error unmap_error = { 0 };
		int unmapped = remote_syscall_checked(remote, SYS_munmap,
						      (uint64_t[6]){ (uint64_t)scratch, HP_PAGE_SIZE },
						      "munmap", &ignored, &unmap_error);

		status = hp_first_failure(status, error, unmapped, &unmap_error);
	}
	return status;
}

static bool still_mapped(pid_t pid, uint64_t bias)
{
	struct hp_maps maps = { 0 };
	struct hp_error ignored = { 0 };
	bool mapped = true;

	if (proc_maps_read(pid, &maps, &ignored) == HP_OK) {
		const struct hp_mapping *mapping = proc_maps_find(&maps, bias);

		mapped = mapping &&
			 strncmp(mapping->path, PATCH_MEMFD_PATH, strlen(PATCH_MEMFD_PATH)) == 0;
	}
	proc_maps_release(&maps);
	return mapped;
}

static int unload_object(struct hp_session *session, struct hp_remote *remote,
			 struct hp_leftover *leftover, struct hp_error *error)
{
	uint64_t handle = 0;
	int status = loaded_handle(session, remote, leftover->bias,
				   leftover->start ? leftover->start : leftover->bias, &handle, error);

	if (status == HP_OK && !handle) {
		set_reason(leftover, "the loader does not know it as loaded at 0x%" PRIx64,
			   leftover->bias);
		return HP_OK;
	}
	if (status == HP_OK)
		status = patch_unload(remote, &session->target, handle, error);
	if (status == HP_OK && still_mapped(session->pid, leftover->bias)) {
		set_reason(leftover, "still loaded after dlclose");
		return HP_OK;
	}
	leftover->loaded = status != HP_OK;
	return status;
}

/* A trampoline page of ours: one private anonymous R-X page holding only
 * empty slots or jumps through their own address, or landings, or our
 * gates (then `code_length` long). */
static bool trampoline_page_is_ours(struct hp_session *session, const struct hp_maps *maps,
				    uint64_t page, uint64_t code_length)
{
	const struct hp_mapping *mapping = proc_maps_find(maps, page);
	unsigned char bytes[HP_PAGE_SIZE], expected[HP_TRAMPOLINE_SLOT];
	static const unsigned char empty[HP_TRAMPOLINE_SLOT];
	struct hp_error ignored = { 0 };

	if (!mapping || mapping->start != page ||
	    (mapping->end != page + HP_PAGE_SIZE && mapping->end != page + code_length) ||
	    mapping->writable || !mapping->executable || mapping->shared || mapping->path[0] ||
	    target_memory_read(&session->memory, page, bytes, sizeof(bytes), &ignored) != HP_OK)
		return false;
	/* Or the gates of an apply through gates (transition.c), or a page of
	 * their punned jumps' landings. */
	if (gate_page_is_gate(bytes))
		return true;
	if (mapping->end != page + HP_PAGE_SIZE)
		return false;
	if (gate_landing_page_is_ours(bytes))
		return true;
	for (size_t at = 0; at < sizeof(bytes); at += HP_TRAMPOLINE_SLOT) {
		uint64_t to;

		memcpy(&to, bytes + at + HP_TRAMPOLINE_POINTER, sizeof(to));
		trampoline_encode_slot(to, expected);
		if (memcmp(bytes + at, empty, sizeof(empty)) != 0 &&
		    memcmp(bytes + at, expected, sizeof(expected)) != 0)
			return false;
	}
	return true;
}

static int unmap_page(struct hp_remote *remote, uint64_t page, uint64_t size,
		      struct hp_error *error)
{
	int64_t result = 0;

	return remote_syscall_checked(remote, SYS_munmap, (uint64_t[6]){ page, size }, "munmap",
				      &result, error);
}

static int unmap_record_pages(struct hp_session *session, struct hp_remote *remote,
			      const struct hp_state_patch *record, struct hp_error *error)
{
	struct hp_maps maps = { 0 };
	int status = proc_maps_read(session->pid, &maps, error);

	for (uint32_t p = 0; status == HP_OK && p < record->page_count; p++) {
		uint64_t length = patch_state_page_length(record, p);
		uint64_t code = patch_state_code_length(record, p);

		/* A gate mapping's table, where the maps show it is still ours. */
		if (length > code &&
		    !proc_maps_anonymous_span(&maps, record->pages[p] + code,
					      record->pages[p] + length))
			length = code;
		if (trampoline_page_is_ours(session, &maps, record->pages[p], code))
			status = unmap_page(remote, record->pages[p], length, error);
	}
	proc_maps_release(&maps);
	return status;
}

static int take_back_one(struct hp_session *session, struct hp_remote *remote,
			 struct hp_leftover *leftover, struct hp_error *error)
{
	const struct hp_state_patch *record =
		leftover->record >= 0 ? session->state.patches[leftover->record] : NULL;
	int64_t ignored = 0;
	int status = HP_OK;

	switch (leftover->kind) {
	case HP_LEFTOVER_OBJECT:
		status = unload_object(session, remote, leftover, error);
		leftover->reclaimed = status == HP_OK && !leftover->loaded;
		break;
	case HP_LEFTOVER_RECORD:
		if (leftover->loaded)
			status = unload_object(session, remote, leftover, error);
		if (status == HP_OK && !leftover->loaded)
			status = unmap_record_pages(session, remote, record, error);
		leftover->reclaimed = status == HP_OK && !leftover->loaded;
		break;
	case HP_LEFTOVER_DESCRIPTOR:
		status = remote_syscall_checked(remote, SYS_close,
						(uint64_t[6]){ (uint64_t)leftover->descriptor },
						"close", &ignored, error);
		leftover->reclaimed = status == HP_OK;
		break;
	case HP_LEFTOVER_STUB:
	case HP_LEFTOVER_STATE:
		status = unmap_page(remote, leftover->address, leftover->size, error);
		leftover->reclaimed = status == HP_OK;
		break;
	case HP_LEFTOVER_INCOMPLETE:
		break;
	}
	return status;
}

/* Records whose leftovers were taken back leave the state, newest first so
 * that the indices of the others hold. */
static int drop_records(struct hp_session *session, struct hp_leftovers *found,
			struct hp_error *error)
{
	bool dropped = false;

	for (size_t i = found->count; i-- > 0;) {
		struct hp_leftover *leftover = &found->items[i];

		if (leftover->kind != HP_LEFTOVER_RECORD || !leftover->reclaimed)
			continue;
		patch_state_remove(&session->state, (size_t)leftover->record);
		leftover->record = -1;
		dropped = true;
	}
	return dropped ? patch_state_write(&session->state, &session->memory, error) : HP_OK;
}

static bool anything_to_take_back(const struct hp_leftovers *found)
{
	for (size_t i = 0; i < found->count; i++)
		if (found->items[i].reclaimable)
			return true;
	return false;
}

int leftovers_reclaim(struct hp_session *session, struct hp_leftovers *found,
		      struct hp_error *error)
{
	struct hp_remote remote;
	int status;

	if (!anything_to_take_back(found))
		return HP_OK;
	status = session_mark_running(session, error);
	if (status == HP_OK)
		status = check_stacks(session, found, error);
	if (status != HP_OK || !anything_to_take_back(found))
		return status;
	status = session_borrow_thread(session, &remote, error);
	for (size_t i = 0; status == HP_OK && i < found->count; i++)
		if (found->items[i].reclaimable)
			status = take_back_one(session, &remote, &found->items[i], error);
	if (status == HP_OK && hp_fault("kill-in-reclaim"))
		raise(SIGKILL);	/* the test build's way to die while taking back */
	status = session_return_thread(session, &remote, status, error);
	if (status == HP_OK)
		status = drop_records(session, found, error);
	return status;
}

/* ---- what the commands report ---- */

static const char *const kind_words[] = {
	[HP_LEFTOVER_OBJECT] = "object",	 [HP_LEFTOVER_RECORD] = "record",
	[HP_LEFTOVER_INCOMPLETE] = "incomplete", [HP_LEFTOVER_DESCRIPTOR] = "descriptor",
	[HP_LEFTOVER_STUB] = "stub page",	 [HP_LEFTOVER_STATE] = "state mapping",
};

int leftovers_report(const struct hp_session *session, const struct hp_leftovers *found,
		     struct hp_result *result, struct hp_error *error)
{
	const struct hp_state_command *running = &session->previous;

	if (running->name[0]) {
		hp_copy_string(result->interrupted.command, sizeof(result->interrupted.command),
			       running->name);
		result->interrupted.pid = (pid_t)running->pid;
		result->interrupted.started = running->started;
	}
	if (!found->count)
		return HP_OK;
	result->leftovers = calloc(found->count, sizeof(*result->leftovers));
	if (!result->leftovers)
		return hp_fail(error, HP_FAILED, "out of memory");
	for (size_t i = 0; i < found->count; i++) {
		const struct hp_leftover *from = &found->items[i];
		struct hp_leftover_report *to = &result->leftovers[result->leftover_count++];

		hp_copy_string(to->kind, sizeof(to->kind), kind_words[from->kind]);
		hp_copy_string(to->name, sizeof(to->name), from->name);
		hp_copy_string(to->reason, sizeof(to->reason), from->reason);
		to->address = from->address;
		to->reclaimed = from->reclaimed;
	}
	return HP_OK;
}

int leftovers_take_back(struct hp_session *session, bool reclaim, struct hp_result *result,
			struct hp_error *error)
{
	struct hp_leftovers found;
	int status = leftovers_find(session, &found, error);

	if (status == HP_OK && reclaim)
		status = leftovers_reclaim(session, &found, error);
	if (status == HP_OK)
		status = leftovers_report(session, &found, result, error);
	leftovers_release(&found);
	return status;
}
