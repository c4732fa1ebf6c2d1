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

#include "runtime/state.h"
#include "arch/arch.h"
#include "common/base.h"
#include "common/proc_maps.h"
#include "runtime/target.h"
#include "runtime/threads.h"

#define STATE_MAPPING_NAME "/memfd:hotpatch-state (deleted)"
#define STATE_MEMFD_NAME "hotpatch-state"
#define STATE_MAGIC "HPSTATE\x01"
/* 6: a patch record says which fixes are in effect and which excluded,
 * where its revert hooks are, and whether it is cumulative.  5: a function
 * record keeps HP_SAVED_MAX (16) bytes saved and written, room for any
 * architecture's jump.  4: records say where the patch came from (absolute
 * path), its sha256 and when it was applied; two record areas, so that a
 * reader without the lock never sees records half written; 8 bytes saved.
 * 3: no path, hash or time, one record area.  3, 4 and 5 are still read
 * (processes patched by an older hotpatch), and rewritten as 6 on the
 * first write. */
#define STATE_VERSION 6
#define STATE_VERSION_5 5
#define STATE_VERSION_4 4
#define STATE_VERSION_OLD 3
#define STATE_SAVED_OLD 8
#define STATE_CAPACITY (16u << 20)
#define STATE_FUNCTIONS_MAX 100000u
#define STATE_PATCHES_MAX 100000u
/* A reader racing a writer reads again; a writer that stays in the middle
 * (stopped) for longer than this makes the reader give up. */
#define STATE_READ_TRIES 200
#define STATE_READ_PAUSE 0.0005

struct state_header {
	char magic[8];
	uint32_t version;
	uint32_t header_size;
	uint32_t patch_record_size;
	uint32_t function_record_size;
	uint64_t capacity;
	uint64_t used;		/* bytes of records at records_offset */
	uint64_t stub_page;
	uint64_t next_sequence;
	uint64_t patch_count;
	struct hp_state_command running;	/* the command at work, or name "" */
	/* Version 3 ends here, its records right after. */
	uint64_t generation;	/* changes with every write but a status word's */
	uint64_t records_offset;	/* from the mapping's start: one of two areas */
};

#define STATE_HEADER_OLD_SIZE offsetof(struct state_header, generation)

/* A function record of versions 3 and 4: 8 bytes saved. */
struct state_function_old {
	char object[128];
	char function[128];
	uint64_t address, size;
	uint64_t jump_address;
	uint64_t replacement, replacement_size;
	uint64_t trampoline;
	uint8_t saved[STATE_SAVED_OLD];
	uint8_t written[STATE_SAVED_OLD];
	uint32_t length;
	uint32_t reserved;
};

/* Where each of the two record areas starts: a writer fills the one the
 * header does not name, then writes the header. */
#define STATE_AREA_ALIGN 64u

/* A version 3 record, as older hotpatch versions wrote it. */
struct state_patch_old {
	uint32_t record_size;
	uint32_t function_count;
	uint32_t status;
	uint32_t page_count;
	uint64_t sequence;
	char name[HP_PATCH_NAME_MAX];
	char path[HP_TEXT_MAX];		/* as typed */
	char description[HP_DESCRIPTION_MAX];
	char ids[HP_IDS_MAX];
	char load_path[64];
	uint64_t handle;
	uint64_t load_bias;
	uint64_t text_start, text_end;
	uint64_t memfd_inode;
	uint64_t pages[HP_STATE_MAX_PAGES];
	struct state_function_old functions[];
};

/* A patch record of versions 4 and 5 ends where version 6's additions
 * begin. */
#define STATE_PATCH_5_SIZE offsetof(struct hp_state_patch, fixes)

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
	patch->description[sizeof(patch->description) - 1] = '\0';
	patch->ids[sizeof(patch->ids) - 1] = '\0';
	patch->load_path[sizeof(patch->load_path) - 1] = '\0';
	patch->fixes[sizeof(patch->fixes) - 1] = '\0';
	patch->excluded[sizeof(patch->excluded) - 1] = '\0';
	for (uint32_t i = 0; i < patch->function_count; i++) {
		struct hp_state_function *function = &patch->functions[i];

		function->object[sizeof(function->object) - 1] = '\0';
		function->function[sizeof(function->function) - 1] = '\0';
		if (function->length > HP_SAVED_MAX)
			function->length = HP_SAVED_MAX;
	}
}

static size_t old_record_size(size_t function_count)
{
	return sizeof(struct state_patch_old) + function_count * sizeof(struct state_function_old);
}

static size_t version_4_record_size(size_t function_count)
{
	return STATE_PATCH_5_SIZE + function_count * sizeof(struct state_function_old);
}

static size_t version_5_record_size(size_t function_count)
{
	return STATE_PATCH_5_SIZE + function_count * sizeof(struct hp_state_function);
}

/* `count` function records of versions 3 and 4 at `bytes` as this
 * version's; a length beyond the old room is cut as terminate_strings
 * would. */
static void convert_old_functions(struct hp_state_function *functions, const unsigned char *bytes,
				  size_t count)
{
	for (size_t i = 0; i < count; i++) {
		struct state_function_old old;
		struct hp_state_function *function = &functions[i];

		memcpy(&old, bytes + i * sizeof(old), sizeof(old));
		memcpy(function->object, old.object, sizeof(function->object));
		memcpy(function->function, old.function, sizeof(function->function));
		function->address = old.address;
		function->size = old.size;
		function->jump_address = old.jump_address;
		function->replacement = old.replacement;
		function->replacement_size = old.replacement_size;
		function->trampoline = old.trampoline;
		memcpy(function->saved, old.saved, sizeof(old.saved));
		memcpy(function->written, old.written, sizeof(old.written));
		function->length = old.length > STATE_SAVED_OLD ? STATE_SAVED_OLD : old.length;
	}
}

/* This version's function records as versions 3 and 4 laid them out; a
 * jump longer than their room cannot be written in them. */
static bool fits_old_functions(const struct hp_state_patch *patch)
{
	for (uint32_t i = 0; i < patch->function_count; i++)
		if (patch->functions[i].length > STATE_SAVED_OLD)
			return false;
	return true;
}

static void old_functions(unsigned char *bytes, const struct hp_state_patch *patch)
{
	for (uint32_t i = 0; i < patch->function_count; i++) {
		const struct hp_state_function *function = &patch->functions[i];
		struct state_function_old old = {
			.address = function->address,
			.size = function->size,
			.jump_address = function->jump_address,
			.replacement = function->replacement,
			.replacement_size = function->replacement_size,
			.trampoline = function->trampoline,
			.length = function->length,
		};

		memcpy(old.object, function->object, sizeof(old.object));
		memcpy(old.function, function->function, sizeof(old.function));
		memcpy(old.saved, function->saved, sizeof(old.saved));
		memcpy(old.written, function->written, sizeof(old.written));
		memcpy(bytes + i * sizeof(old), &old, sizeof(old));
	}
}

/* A version 4 or 5 record as this version's: what version 6 added is
 * empty (no fixes known, no hooks), and version 4's functions are
 * converted. */
static struct hp_state_patch *convert_version_5_record(const unsigned char *bytes,
						       const struct hp_state_patch *header,
						       uint32_t version)
{
	struct hp_state_patch *patch = patch_state_new_patch(header->function_count);
	const unsigned char *functions = bytes + STATE_PATCH_5_SIZE;

	if (!patch)
		return NULL;
	memcpy(patch, header, STATE_PATCH_5_SIZE);
	patch->record_size = (uint32_t)record_size(header->function_count);
	if (version == STATE_VERSION_4)
		convert_old_functions(patch->functions, functions, header->function_count);
	else
		memcpy(patch->functions, functions,
		       header->function_count * sizeof(struct hp_state_function));
	return patch;
}

/* A version 3 record as this version's: what it never recorded (time,
 * sha256, the resolved path) is marked unknown. */
static struct hp_state_patch *convert_old_record(const unsigned char *bytes,
						 const struct state_patch_old *old)
{
	struct hp_state_patch *patch = patch_state_new_patch(old->function_count);

	if (!patch)
		return NULL;
	patch->status = old->status;
	patch->page_count = old->page_count;
	patch->sequence = old->sequence;
	memcpy(patch->name, old->name, sizeof(patch->name));
	memcpy(patch->path, old->path, sizeof(old->path));
	patch->path[sizeof(old->path) - 1] = '\0';
	memcpy(patch->description, old->description, sizeof(patch->description));
	memcpy(patch->ids, old->ids, sizeof(patch->ids));
	memcpy(patch->load_path, old->load_path, sizeof(patch->load_path));
	patch->handle = old->handle;
	patch->load_bias = old->load_bias;
	patch->text_start = old->text_start;
	patch->text_end = old->text_end;
	patch->memfd_inode = old->memfd_inode;
	memcpy(patch->pages, old->pages, sizeof(patch->pages));
	convert_old_functions(patch->functions, bytes + sizeof(*old), old->function_count);
	return patch;
}

/* One record at `bytes`, `left` bytes long at most; NULL if damaged (or
 * out of memory: *damaged says which). */
static struct hp_state_patch *parse_record(const unsigned char *bytes, uint64_t left,
					   uint32_t version, size_t *size, bool *damaged)
{
	struct state_patch_old old;
	struct hp_state_patch header, *patch;

	*damaged = true;
	if (version == STATE_VERSION_OLD) {
		if (left < sizeof(old))
			return NULL;
		memcpy(&old, bytes, sizeof(old));
		if (old.function_count > STATE_FUNCTIONS_MAX ||
		    old.record_size != old_record_size(old.function_count) ||
		    old.record_size > left || old.page_count > HP_STATE_MAX_PAGES)
			return NULL;
		*damaged = false;
		*size = old.record_size;
		return convert_old_record(bytes, &old);
	}
	memset(&header, 0, sizeof(header));
	if (left < (version == STATE_VERSION ? sizeof(header) : STATE_PATCH_5_SIZE))
		return NULL;
	memcpy(&header, bytes, version == STATE_VERSION ? sizeof(header) : STATE_PATCH_5_SIZE);
	if (header.function_count > STATE_FUNCTIONS_MAX ||
	    header.record_size != (version == STATE_VERSION_4   ? version_4_record_size(header.function_count)
				   : version == STATE_VERSION_5 ? version_5_record_size(header.function_count)
								: record_size(header.function_count)) ||
	    header.record_size > left || header.page_count > HP_STATE_MAX_PAGES)
		return NULL;
	*damaged = false;
	*size = header.record_size;
	if (version != STATE_VERSION)
		return convert_version_5_record(bytes, &header, version);
	patch = malloc(header.record_size);
	if (patch)
		memcpy(patch, bytes, header.record_size);
	return patch;
}

static int parse_records(struct hp_state *state, const unsigned char *records, uint64_t used,
			 uint64_t count, uint32_t version, struct hp_error *error)
{
	uint64_t offset = 0;

	state->patches = calloc(count ? count : 1, sizeof(*state->patches));
	if (!state->patches)
		return hp_fail(error, HP_FAILED, "out of memory reading the patch state");
	for (uint64_t i = 0; i < count; i++) {
		size_t size = 0;
		bool damaged = false;
		struct hp_state_patch *patch =
			parse_record(records + offset, used - offset, version, &size, &damaged);

		if (!patch && damaged)
			return hp_fail(error, HP_FAILED, "the patch state of pid %d is damaged",
				       (int)error->pid);
		if (!patch)
			return hp_fail(error, HP_FAILED, "out of memory reading the patch state");
		terminate_strings(patch);
		state->patches[state->patch_count++] = patch;
		offset += size;
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

/* The first record area: after this version's header. */
static uint64_t first_area(void)
{
	return (sizeof(struct state_header) + STATE_AREA_ALIGN - 1) / STATE_AREA_ALIGN *
	       STATE_AREA_ALIGN;
}

static uint64_t second_area(uint64_t capacity)
{
	return first_area() + (capacity - first_area()) / 2 / STATE_AREA_ALIGN * STATE_AREA_ALIGN;
}

/* Where the records are and how many bytes, as the header says; false when
 * it says what no hotpatch writes. */
static bool records_span(const struct state_header *header, uint64_t mapping_size,
			 uint64_t *offset)
{
	uint32_t patch_record = header->version == STATE_VERSION_OLD
					? (uint32_t)sizeof(struct state_patch_old)
				: header->version == STATE_VERSION ? (uint32_t)sizeof(struct hp_state_patch)
								   : (uint32_t)STATE_PATCH_5_SIZE;
	uint32_t header_size = header->version == STATE_VERSION_OLD
				       ? (uint32_t)STATE_HEADER_OLD_SIZE
				       : (uint32_t)sizeof(*header);
	uint32_t function_record = header->version >= STATE_VERSION_5
					   ? (uint32_t)sizeof(struct hp_state_function)
					   : (uint32_t)sizeof(struct state_function_old);

	if (memcmp(header->magic, STATE_MAGIC, sizeof(header->magic)) != 0 ||
	    (header->version != STATE_VERSION && header->version != STATE_VERSION_5 &&
	     header->version != STATE_VERSION_4 && header->version != STATE_VERSION_OLD) ||
	    header->header_size != header_size || header->patch_record_size != patch_record ||
	    header->function_record_size != function_record ||
	    header->capacity > mapping_size || header->capacity < first_area() * 2 ||
	    header->patch_count > STATE_PATCHES_MAX)
		return false;
	*offset = header->version == STATE_VERSION_OLD ? header_size : header->records_offset;
	if (header->version != STATE_VERSION_OLD && *offset != first_area() &&
	    *offset != second_area(header->capacity))
		return false;
	return *offset >= header_size && *offset <= header->capacity &&
	       header->used <= header->capacity - *offset;
}

/* One reading of the state; `header` is what it was read under. */
static int read_once(struct hp_memory *memory, const struct hp_maps *maps, struct hp_state *state,
		     struct state_header *header, const struct hp_mapping **found,
		     struct hp_error *error)
{
	const struct hp_mapping *mapping = find_state_mapping(memory, maps, header);
	unsigned char *records = NULL;
	uint64_t offset = 0;
	int status = HP_OK;

	memset(state, 0, sizeof(*state));
	*found = mapping;
	if (!mapping)
		return HP_OK;
	if (all_zero(header, sizeof(*header)))
		return adopt_blank(state, mapping) == HP_OK
			       ? HP_OK
			       : hp_fail(error, HP_FAILED, "out of memory reading the patch state");
	if (!records_span(header, mapping->end - mapping->start, &offset)) {
		hp_hint(error, "the state was written by another hotpatch version, or damaged");
		return hp_fail(error, HP_FAILED, "pid %d has a patch state this hotpatch cannot read",
			       (int)memory->pid);
	}
	state->address = mapping->start;
	state->capacity = header->capacity;
	state->layout = header->version;
	state->generation = header->version != STATE_VERSION_OLD ? header->generation : 0;
	state->records_offset = offset;
	state->stub_page = header->stub_page;
	state->next_sequence = header->next_sequence;
	state->running = header->running;
	state->running.name[sizeof(state->running.name) - 1] = '\0';
	records = malloc(header->used ? header->used : 1);
	if (!records)
		return hp_fail(error, HP_FAILED, "out of memory reading the patch state");
	status = target_memory_read(memory, mapping->start + offset, records, header->used, error);
	if (status == HP_OK) {
		error->pid = memory->pid;
		status = parse_records(state, records, header->used, header->patch_count,
				       header->version, error);
	}
	free(records);
	return status;
}

/* The header is read again after the records: unchanged, what was read is
 * one state; changed, a writer was at work and it is read again. */
int patch_state_read(struct hp_memory *memory, const struct hp_maps *maps,
		     struct hp_state *state, struct hp_error *error)
{
	for (int attempt = 0;; attempt++) {
		struct state_header before, after;
		const struct hp_mapping *mapping = NULL;
		struct hp_error read_error = *error;
		struct hp_error ignored = { 0 };
		int status = read_once(memory, maps, state, &before, &mapping, &read_error);

		/* Only a header of ours can be in the middle of a change. */
		if (!mapping || memcmp(before.magic, STATE_MAGIC, sizeof(before.magic)) != 0 ||
		    (target_memory_read(memory, mapping->start, &after, sizeof(after), &ignored) ==
			     HP_OK &&
		     memcmp(&before, &after, sizeof(after)) == 0)) {
			*error = read_error;
			if (status != HP_OK)
				patch_state_release(state);
			return status;
		}
		patch_state_release(state);
		if (attempt + 1 >= STATE_READ_TRIES) {
			hp_hint(error, "try again when the other hotpatch command has ended");
			return hp_fail(error, HP_FAILED,
				       "the patch state of pid %d kept changing while read",
				       (int)memory->pid);
		}
		hp_sleep(STATE_READ_PAUSE);
	}
}

bool patch_state_generation(struct hp_memory *memory, const struct hp_state *state,
			    uint64_t *generation)
{
	struct state_header header;
	struct hp_error ignored = { 0 };

	*generation = 0;
	if (!state->address)
		return true;
	if (target_memory_read(memory, state->address, &header, sizeof(header), &ignored) != HP_OK)
		return false;
	/* A blank state, or one a hotpatch of version 3 wrote, counts no
	 * generations. */
	if (memcmp(header.magic, STATE_MAGIC, sizeof(header.magic)) == 0 &&
	    (header.version == STATE_VERSION || header.version == STATE_VERSION_5 ||
	     header.version == STATE_VERSION_4))
		*generation = header.generation;
	return true;
}

/* The test build can write the state as version 3 did, to show that
 * processes patched by an older hotpatch are read and taken over. */
static unsigned char *old_layout(const struct hp_state *state, struct state_header *header,
				 size_t *length)
{
	size_t used = 0;
	unsigned char *buffer;

	for (size_t i = 0; i < state->patch_count; i++)
		used += old_record_size(state->patches[i]->function_count);
	buffer = calloc(1, STATE_HEADER_OLD_SIZE + used);
	if (!buffer)
		return NULL;
	header->version = STATE_VERSION_OLD;
	header->header_size = STATE_HEADER_OLD_SIZE;
	header->patch_record_size = sizeof(struct state_patch_old);
	header->function_record_size = sizeof(struct state_function_old);
	header->used = used;
	memcpy(buffer, header, STATE_HEADER_OLD_SIZE);
	used = STATE_HEADER_OLD_SIZE;
	for (size_t i = 0; i < state->patch_count; i++) {
		const struct hp_state_patch *patch = state->patches[i];
		struct state_patch_old old = {
			.record_size = (uint32_t)old_record_size(patch->function_count),
			.function_count = patch->function_count,
			.status = patch->status,
			.page_count = patch->page_count,
			.sequence = patch->sequence,
			.handle = patch->handle,
			.load_bias = patch->load_bias,
			.text_start = patch->text_start,
			.text_end = patch->text_end,
			.memfd_inode = patch->memfd_inode,
		};

		hp_copy_string(old.name, sizeof(old.name), patch->name);
		hp_copy_string(old.path, sizeof(old.path), hp_base_name(patch->path));
		hp_copy_string(old.description, sizeof(old.description), patch->description);
		hp_copy_string(old.ids, sizeof(old.ids), patch->ids);
		hp_copy_string(old.load_path, sizeof(old.load_path), patch->load_path);
		memcpy(old.pages, patch->pages, sizeof(old.pages));
		memcpy(buffer + used, &old, sizeof(old));
		old_functions(buffer + used + sizeof(old), patch);
		used += old.record_size;
	}
	*length = used;
	return buffer;
}

static int write_old_layout(struct hp_state *state, struct state_header *header,
			    struct hp_memory *memory, struct hp_error *error)
{
	size_t length = 0;
	unsigned char *buffer = old_layout(state, header, &length);
	int status;

	if (!buffer)
		return hp_fail(error, HP_FAILED, "out of memory writing the patch state");
	status = target_memory_write(memory, 0, state->address + STATE_HEADER_OLD_SIZE,
				     buffer + STATE_HEADER_OLD_SIZE, length - STATE_HEADER_OLD_SIZE,
				     error);
	if (status == HP_OK)
		status = target_memory_write(memory, 0, state->address, buffer,
					     STATE_HEADER_OLD_SIZE, error);
	if (status == HP_OK) {
		state->layout = STATE_VERSION_OLD;
		state->records_offset = STATE_HEADER_OLD_SIZE;
	}
	free(buffer);
	return status;
}

/* The layout a write uses: this version's, or in the test build version
 * 5's or 4's, to show that processes patched by an earlier hotpatch are
 * read and taken over. */
static uint32_t write_version(const struct hp_state *state)
{
	if (hp_fault("state-version-5"))
		return STATE_VERSION_5;
	if (!hp_fault("state-version-4"))
		return STATE_VERSION;
	for (size_t i = 0; i < state->patch_count; i++)
		if (!fits_old_functions(state->patches[i]))
			return STATE_VERSION;
	return STATE_VERSION_4;
}

static size_t record_size_as(const struct hp_state_patch *patch, uint32_t version)
{
	return version == STATE_VERSION_4   ? version_4_record_size(patch->function_count)
	       : version == STATE_VERSION_5 ? version_5_record_size(patch->function_count)
					    : patch->record_size;
}

static void lay_out_record(unsigned char *bytes, const struct hp_state_patch *patch,
			   uint32_t version)
{
	struct hp_state_patch header = *patch;	/* without its functions */

	if (version == STATE_VERSION) {
		memcpy(bytes, patch, patch->record_size);
		return;
	}
	header.record_size = (uint32_t)record_size_as(patch, version);
	memcpy(bytes, &header, STATE_PATCH_5_SIZE);
	if (version == STATE_VERSION_4)
		old_functions(bytes + STATE_PATCH_5_SIZE, patch);
	else
		memcpy(bytes + STATE_PATCH_5_SIZE, patch->functions,
		       patch->function_count * sizeof(struct hp_state_function));
}

/* The records go into the area the header does not name, then the header
 * names them: a reader (list takes no lock) never finds the records it is
 * told of half written, and a hotpatch killed in between leaves the state
 * as it was. */
int patch_state_write(struct hp_state *state, struct hp_memory *memory, struct hp_error *error)
{
	uint32_t version = write_version(state);
	struct state_header header = {
		.version = version,
		.header_size = sizeof(header),
		.patch_record_size = version == STATE_VERSION ? sizeof(struct hp_state_patch)
							      : STATE_PATCH_5_SIZE,
		.function_record_size = version == STATE_VERSION_4
						? sizeof(struct state_function_old)
						: sizeof(struct hp_state_function),
		.capacity = state->capacity,
		.stub_page = state->stub_page,
		.next_sequence = state->next_sequence,
		.patch_count = state->patch_count,
		.running = state->running,
		.generation = state->generation + 1,
	};
	uint64_t area = state->records_offset >= second_area(state->capacity)
				? first_area()
				: second_area(state->capacity);
	unsigned char *buffer;
	size_t used = 0;
	int status;

	memcpy(header.magic, STATE_MAGIC, sizeof(header.magic));
	if (hp_fault("state-old-layout"))
		return write_old_layout(state, &header, memory, error);
	for (size_t i = 0; i < state->patch_count; i++)
		used += record_size_as(state->patches[i], version);
	if (used > state->capacity - second_area(state->capacity))
		return hp_fail(error, HP_FAILED, "the patch state of pid %d is full",
			       (int)memory->pid);
	header.used = used;
	header.records_offset = area;
	buffer = malloc(used ? used : 1);
	if (!buffer)
		return hp_fail(error, HP_FAILED, "out of memory writing the patch state");
	used = 0;
	for (size_t i = 0; i < state->patch_count; i++) {
		lay_out_record(buffer + used, state->patches[i], version);
		used += record_size_as(state->patches[i], version);
	}
	status = target_memory_write(memory, 0, state->address + area, buffer, used, error);
	if (status == HP_OK && hp_fault("stop-in-state-write"))
		raise(SIGSTOP);	/* the test build's way to be caught in the middle */
	if (status == HP_OK)
		status = target_memory_write(memory, 0, state->address, &header, sizeof(header),
					     error);
	if (status == HP_OK) {
		state->layout = version;
		state->generation = header.generation;
		state->records_offset = area;
	}
	free(buffer);
	return status;
}

/* Inside the blackout: one aligned word in the records the header names,
 * which a reader sees whole, before or after. */
int patch_state_write_status(struct hp_state *state, size_t index, struct hp_memory *memory,
			     pid_t stopped_tid, struct hp_error *error)
{
	uint64_t offset = state->records_offset;

	/* What the target holds is still laid out as an older version. */
	if (state->layout != STATE_VERSION)
		return patch_state_write(state, memory, error);
	for (size_t i = 0; i < index; i++)
		offset += state->patches[i]->record_size;
	offset += offsetof(struct hp_state_patch, status);
	return target_memory_write(memory, stopped_tid, state->address + offset,
				   &state->patches[index]->status,
				   sizeof(state->patches[index]->status), error);
}

/* The note and the next generation in one write, so that a reader sees
 * the change. */
int patch_state_write_running(struct hp_state *state, struct hp_memory *memory,
			      struct hp_error *error)
{
	struct {
		struct hp_state_command running;
		uint64_t generation;
	} note = { state->running, state->generation + 1 };
	int status;

	_Static_assert(offsetof(struct state_header, generation) ==
			       offsetof(struct state_header, running) + sizeof(note.running),
		       "the note and the generation are written at once");
	if (state->layout != STATE_VERSION)
		return patch_state_write(state, memory, error);
	status = target_memory_write(memory, 0,
				     state->address + offsetof(struct state_header, running), &note,
				     sizeof(note), error);
	if (status == HP_OK)
		state->generation = note.generation;
	return status;
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

uint64_t patch_state_page_length(const struct hp_state_patch *patch, uint32_t p)
{
	/* The record lives in the target: never more than a table for every
	 * thread id the kernel can give, and the most code pages. */
	uint32_t most = (uint32_t)((HP_GATE_TABLE_MAX + gate_code_length(HP_GATE_FUNCTIONS_MAX)) /
				   HP_PAGE_SIZE);

	if (p != 0 || patch->gate_pages == 0)
		return HP_PAGE_SIZE;
	return (uint64_t)(patch->gate_pages < most ? patch->gate_pages : most) * HP_PAGE_SIZE;
}

uint64_t patch_state_code_length(const struct hp_state_patch *patch, uint32_t p)
{
	uint64_t length = patch_state_page_length(patch, p), code;

	/* Every function of a patch applied through gates has its gate, in
	 * order: the count says how many pages they take. */
	if (p != 0 || patch->gate_pages == 0 || patch->function_count > HP_GATE_FUNCTIONS_MAX)
		return HP_PAGE_SIZE;
	code = gate_code_length(patch->function_count);
	return code < length ? code : HP_PAGE_SIZE;
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
	stub_code_bytes(stub);
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
		struct hp_error close_error = { 0 };
		int closed = remote_syscall_checked(remote, SYS_close, (uint64_t[6]){ (uint64_t)fd },
						    "close", &ignored, &close_error);

		/* A close after a failure must not hide what failed. */
		status = hp_first_failure(status, error, closed, &close_error);
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
	stub_code_bytes(expected);
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
