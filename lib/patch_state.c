/* patch_state.c - the record of applied patches, kept inside the target so
 * that it lives exactly as long as the process (no files that go stale when
 * a pid is reused) and follows it into fork children.  It is a private,
 * read-only mapping of a memfd named "hotpatch-state": visible by name in
 * /proc/PID/maps, read-only to the program, written by us through
 * /proc/PID/mem.  Its contents come from the target, so they are validated
 * and bounded like any other untrusted input. */
#include <inttypes.h>
#include <linux/memfd.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include "internal.h"

#define STATE_MAPPING_NAME "/memfd:hotpatch-state (deleted)"
#define STATE_MEMFD_NAME "hotpatch-state"
#define STATE_MAGIC "HPSTATE\x01"
#define STATE_VERSION 3
#define STATE_CAPACITY (16u << 20)
#define STATE_FUNCTIONS_MAX 100000u

struct state_header {
	char magic[8];
	uint32_t version;
	uint32_t header_size;
	uint32_t patch_record_size;
	uint32_t function_record_size;
	uint64_t capacity;
	uint64_t used;		/* bytes of records after the header */
	uint64_t stub_page;
	uint64_t next_sequence;
	uint64_t patch_count;
	struct hp_state_command running;	/* the command at work, or name "" */
};

static size_t record_size(size_t function_count)
{
	return sizeof(struct hp_state_patch) + function_count * sizeof(struct hp_state_function);
}

struct hp_state_patch *patch_state_new_patch(size_t function_count)
{
	struct hp_state_patch *patch = calloc(1, record_size(function_count));

	if (patch) {
		patch->record_size = (uint32_t)record_size(function_count);
		patch->function_count = (uint32_t)function_count;
	}
	return patch;
}

static bool is_state_mapping(const struct hp_mapping *mapping)
{
	return strcmp(mapping->path, STATE_MAPPING_NAME) == 0 && mapping->offset == 0;
}

static bool all_zero(const void *bytes, size_t length)
{
	const unsigned char *byte = bytes;

	for (size_t i = 0; i < length; i++)
		if (byte[i])
			return false;
	return true;
}

/* The state is the first mapping of that name with a header; failing that,
 * one never written (a hotpatch killed while creating it) is taken over as
 * an empty state, so a killed command can never leave a process that no
 * later command can patch.  Other mappings of the name are leftovers. */
static const struct hp_mapping *find_state_mapping(struct hp_memory *memory,
						   const struct hp_maps *maps,
						   struct state_header *header)
{
	const struct hp_mapping *blank = NULL;
	struct hp_error ignored = { 0 };

	for (size_t i = 0; i < maps->count; i++) {
		const struct hp_mapping *mapping = &maps->items[i];

		if (!is_state_mapping(mapping) || mapping->end - mapping->start < sizeof(*header) ||
		    target_memory_read(memory, mapping->start, header, sizeof(*header), &ignored) !=
			    HP_OK)
			continue;
		if (memcmp(header->magic, STATE_MAGIC, sizeof(header->magic)) == 0)
			return mapping;
		if (!blank && all_zero(header, sizeof(*header)))
			blank = mapping;
	}
	if (blank) {
		memset(header, 0, sizeof(*header));
		return blank;
	}
	/* Only damaged ones (or unreadable): the first is refused by the caller. */
	memset(header, 0xff, sizeof(*header));
	for (size_t i = 0; i < maps->count; i++)
		if (is_state_mapping(&maps->items[i]))
			return &maps->items[i];
	return NULL;
}

bool patch_state_is_leftover_mapping(const struct hp_state *state,
				     const struct hp_mapping *mapping)
{
	return is_state_mapping(mapping) && mapping->start != state->address;
}

static void terminate_strings(struct hp_state_patch *patch)
{
	patch->name[sizeof(patch->name) - 1] = '\0';
	patch->path[sizeof(patch->path) - 1] = '\0';
	patch->load_path[sizeof(patch->load_path) - 1] = '\0';
	for (uint32_t i = 0; i < patch->function_count; i++) {
		struct hp_state_function *function = &patch->functions[i];

		function->object[sizeof(function->object) - 1] = '\0';
		function->function[sizeof(function->function) - 1] = '\0';
		if (function->length > HP_SAVED_MAX)
			function->length = HP_SAVED_MAX;
	}
}

static int parse_records(struct hp_state *state, const unsigned char *records, uint64_t used,
			 uint64_t count, struct hp_error *error)
{
	uint64_t offset = 0;

	state->patches = calloc(count ? count : 1, sizeof(*state->patches));
	if (!state->patches)
		return hp_fail(error, HP_FAILED, "out of memory reading the patch state");
	for (uint64_t i = 0; i < count; i++) {
		struct hp_state_patch header;
		struct hp_state_patch *patch;

		if (used - offset < sizeof(header))
			return hp_fail(error, HP_FAILED, "the patch state of pid %d is damaged",
				       (int)error->pid);
		memcpy(&header, records + offset, sizeof(header));
		if (header.function_count > STATE_FUNCTIONS_MAX ||
		    header.record_size != record_size(header.function_count) ||
		    header.record_size > used - offset)
			return hp_fail(error, HP_FAILED, "the patch state of pid %d is damaged",
				       (int)error->pid);
		patch = malloc(header.record_size);
		if (!patch)
			return hp_fail(error, HP_FAILED, "out of memory reading the patch state");
		memcpy(patch, records + offset, header.record_size);
		terminate_strings(patch);
		state->patches[state->patch_count++] = patch;
		offset += header.record_size;
	}
	return HP_OK;
}

static int adopt_blank(struct hp_state *state, const struct hp_mapping *mapping)
{
	uint64_t size = mapping->end - mapping->start;

	state->address = mapping->start;
	state->capacity = size < STATE_CAPACITY ? size : STATE_CAPACITY;
	state->patches = calloc(1, sizeof(*state->patches));
	return state->patches ? HP_OK : HP_FAILED;
}

int patch_state_read(struct hp_memory *memory, const struct hp_maps *maps,
		     struct hp_state *state, struct hp_error *error)
{
	struct state_header header;
	const struct hp_mapping *mapping = find_state_mapping(memory, maps, &header);
	unsigned char *records = NULL;
	int status = HP_OK;

	memset(state, 0, sizeof(*state));
	if (!mapping)
		return HP_OK;
	if (all_zero(&header, sizeof(header)))
		return adopt_blank(state, mapping) == HP_OK
			       ? HP_OK
			       : hp_fail(error, HP_FAILED, "out of memory reading the patch state");
	if (memcmp(header.magic, STATE_MAGIC, sizeof(header.magic)) != 0 ||
	    header.version != STATE_VERSION || header.header_size != sizeof(header) ||
	    header.patch_record_size != sizeof(struct hp_state_patch) ||
	    header.function_record_size != sizeof(struct hp_state_function) ||
	    header.capacity > mapping->end - mapping->start ||
	    header.used > header.capacity - sizeof(header) || header.patch_count > 100000) {
		hp_hint(error, "the state was written by another hotpatch version, or damaged");
		return hp_fail(error, HP_FAILED, "pid %d has a patch state this hotpatch cannot read",
			       (int)memory->pid);
	}
	state->address = mapping->start;
	state->capacity = header.capacity;
	state->stub_page = header.stub_page;
	state->next_sequence = header.next_sequence;
	state->running = header.running;
	state->running.name[sizeof(state->running.name) - 1] = '\0';
	records = malloc(header.used ? header.used : 1);
	if (!records)
		return hp_fail(error, HP_FAILED, "out of memory reading the patch state");
	status = target_memory_read(memory, mapping->start + sizeof(header), records, header.used,
				    error);
	if (status == HP_OK) {
		error->pid = memory->pid;
		status = parse_records(state, records, header.used, header.patch_count, error);
	}
	free(records);
	if (status != HP_OK)
		patch_state_release(state);
	return status;
}

int patch_state_write(const struct hp_state *state, struct hp_memory *memory,
		      struct hp_error *error)
{
	struct state_header header = {
		.version = STATE_VERSION,
		.header_size = sizeof(header),
		.patch_record_size = sizeof(struct hp_state_patch),
		.function_record_size = sizeof(struct hp_state_function),
		.capacity = state->capacity,
		.stub_page = state->stub_page,
		.next_sequence = state->next_sequence,
		.patch_count = state->patch_count,
		.running = state->running,
	};
	unsigned char *buffer;
	size_t used = 0;
	int status;

	for (size_t i = 0; i < state->patch_count; i++)
		used += state->patches[i]->record_size;
	if (used > state->capacity - sizeof(header))
		return hp_fail(error, HP_FAILED, "the patch state of pid %d is full",
			       (int)memory->pid);
	memcpy(header.magic, STATE_MAGIC, sizeof(header.magic));
	header.used = used;
	buffer = malloc(sizeof(header) + used);
	if (!buffer)
		return hp_fail(error, HP_FAILED, "out of memory writing the patch state");
	memcpy(buffer, &header, sizeof(header));
	used = sizeof(header);
	for (size_t i = 0; i < state->patch_count; i++) {
		memcpy(buffer + used, state->patches[i], state->patches[i]->record_size);
		used += state->patches[i]->record_size;
	}
	/* Records first, header last: a reader never sees a count that is ahead
	 * of the records it counts. */
	status = target_memory_write(memory, 0, state->address + sizeof(header),
				     buffer + sizeof(header), used - sizeof(header), error);
	if (status == HP_OK)
		status = target_memory_write(memory, 0, state->address, buffer, sizeof(header),
					     error);
	free(buffer);
	return status;
}

int patch_state_write_status(const struct hp_state *state, size_t index,
			     struct hp_memory *memory, pid_t stopped_tid, struct hp_error *error)
{
	uint64_t offset = sizeof(struct state_header);

	for (size_t i = 0; i < index; i++)
		offset += state->patches[i]->record_size;
	offset += offsetof(struct hp_state_patch, status);
	return target_memory_write(memory, stopped_tid, state->address + offset,
				   &state->patches[index]->status,
				   sizeof(state->patches[index]->status), error);
}

int patch_state_write_running(const struct hp_state *state, struct hp_memory *memory,
			      struct hp_error *error)
{
	return target_memory_write(memory, 0, state->address + offsetof(struct state_header, running),
				   &state->running, sizeof(state->running), error);
}

int patch_state_append(struct hp_state *state, struct hp_state_patch *patch,
		       struct hp_error *error)
{
	struct hp_state_patch **larger =
		realloc(state->patches, (state->patch_count + 1) * sizeof(*larger));

	if (!larger)
		return hp_fail(error, HP_FAILED, "out of memory");
	state->patches = larger;
	patch->sequence = ++state->next_sequence;
	state->patches[state->patch_count++] = patch;
	return HP_OK;
}

void patch_state_remove(struct hp_state *state, size_t index)
{
	free(state->patches[index]);
	memmove(&state->patches[index], &state->patches[index + 1],
		(state->patch_count - index - 1) * sizeof(*state->patches));
	state->patch_count--;
}

void patch_state_release(struct hp_state *state)
{
	for (size_t i = 0; i < state->patch_count; i++)
		free(state->patches[i]);
	free(state->patches);
	state->patches = NULL;
	state->patch_count = 0;
}

long patch_state_latest_for(const struct hp_state *state, uint64_t address, size_t before)
{
	for (size_t i = before; i-- > 0;) {
		const struct hp_state_patch *patch = state->patches[i];

		if (patch->status == HP_STATE_REMOVED)
			continue;
		for (uint32_t f = 0; f < patch->function_count; f++)
			if (patch->functions[f].address == address)
				return (long)i;
	}
	return -1;
}

static int create_stub_page(struct hp_state *state, struct hp_remote *remote,
			    struct hp_memory *memory, struct hp_error *error)
{
	const uint64_t arguments[6] = { 0, HP_PAGE_SIZE, PROT_READ | PROT_EXEC,
					 MAP_PRIVATE | MAP_ANONYMOUS, (uint64_t)-1, 0 };
	unsigned char stub[HP_STUB_DATA];
	int64_t address = 0;
	int status = remote_syscall(remote, SYS_mmap, arguments, &address, error);

	if (status != HP_OK)
		return status;
	if (address < 0 && address > -4096)
		return hp_fail(error, HP_FAILED, "cannot map a page in pid %d (error %lld)",
			       (int)remote->pid, (long long)-address);
	remote_stub_bytes(stub);
	status = target_memory_write(memory, remote->tid, (uint64_t)address, stub, sizeof(stub),
				     error);
	if (status != HP_OK)
		return status;
	remote->stub_page = (uint64_t)address;
	state->stub_page = (uint64_t)address;
	return HP_OK;
}

static int create_state_mapping(struct hp_state *state, struct hp_remote *remote,
				struct hp_memory *memory, struct hp_error *error)
{
	uint64_t name_address = remote->stub_page + HP_STUB_DATA;
	int64_t fd = -1, address = 0, ignored;
	int status;

	status = target_memory_write(memory, remote->tid, name_address, STATE_MEMFD_NAME,
				     sizeof(STATE_MEMFD_NAME), error);
	if (status == HP_OK)
		status = remote_syscall_checked(remote, SYS_memfd_create,
					 (uint64_t[6]){ name_address, MFD_CLOEXEC }, "memfd_create",
					 &fd, error);
	if (status == HP_OK)
		status = remote_syscall_checked(remote, SYS_ftruncate,
					 (uint64_t[6]){ (uint64_t)fd, STATE_CAPACITY }, "ftruncate",
					 &ignored, error);
	if (status == HP_OK)
		status = remote_syscall_checked(remote, SYS_mmap,
					 (uint64_t[6]){ 0, STATE_CAPACITY, PROT_READ, MAP_PRIVATE,
							(uint64_t)fd, 0 },
					 "mmap", &address, error);
	if (status == HP_OK && hp_fault("kill-in-state"))
		raise(SIGKILL);	/* the test build's way to die with the state blank */
	if (fd >= 0) {
		int closed = remote_syscall_checked(remote, SYS_close, (uint64_t[6]){ (uint64_t)fd },
					     "close", &ignored, error);

		if (status == HP_OK)
			status = closed;
	}
	if (status != HP_OK)
		return status;
	state->address = (uint64_t)address;
	state->capacity = STATE_CAPACITY;
	return patch_state_write(state, memory, error);
}

bool patch_state_stub_is_ours(struct hp_memory *memory, const struct hp_maps *maps,
			      uint64_t address)
{
	const struct hp_mapping *mapping = proc_maps_find(maps, address);
	unsigned char expected[HP_STUB_DATA], actual[HP_STUB_DATA];
	struct hp_error ignored = { 0 };

	if (!mapping || mapping->start != address || mapping->writable || !mapping->executable ||
	    mapping->path[0] != '\0')
		return false;
	remote_stub_bytes(expected);
	return target_memory_read(memory, address, actual, sizeof(actual), &ignored) == HP_OK &&
	       memcmp(expected, actual, sizeof(actual)) == 0;
}

int patch_state_create(struct hp_state *state, struct hp_remote *remote,
		       struct hp_memory *memory, struct hp_error *error)
{
	struct hp_maps maps = { 0 };
	int status = proc_maps_read(remote->pid, &maps, error);

	if (status == HP_OK && state->stub_page && patch_state_stub_is_ours(memory, &maps, state->stub_page))
		remote->stub_page = state->stub_page;
	proc_maps_release(&maps);
	if (status != HP_OK)
		return status;
	if (remote->stub_page)
		return state->address ? HP_OK : create_state_mapping(state, remote, memory, error);
	status = create_stub_page(state, remote, memory, error);
	if (status == HP_OK)
		status = state->address ? patch_state_write(state, memory, error)
					: create_state_mapping(state, remote, memory, error);
	return status;
}

bool patch_state_is_mapping(const struct hp_mapping *mapping)
{
	return is_state_mapping(mapping);
}
