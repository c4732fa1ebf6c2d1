/* patch_file.c - checking a patch shared object before anything touches
 * the target.  It parses bytes already in memory (trust_patch.c reads the
 * file once, checks who may have written it and its signature); those very
 * bytes are later handed to the target, so nothing can swap the file in
 * between.  The bytes are untrusted: every record is bounds-checked.  It
 * calls nothing outside this file, patch_references.c, patch_fixes.c,
 * patch_hooks.c, patch_elf.c, elf_symbols.c and error.c (the fuzzer links
 * only those). */
#include <gelf.h>
#include <libelf.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hotpatch.h"
#include "patch/patch.h"
#include "arch/arch.h"
#include "common/base.h"
#include "symbols/symbols.h"

#define REPLACEMENTS_MAX 100000u

static bool terminated(const char *text, size_t size)
{
	return memchr(text, '\0', size) != NULL;
}

static uint64_t replacement_size(const struct hp_elf_info *info, uint64_t address)
{
	for (size_t i = 0; i < info->symbol_count; i++)
		if (info->symbols[i].value == address && info->symbols[i].type == STT_FUNC)
			return info->symbols[i].size;
	return 0;
}

static int check_record(Elf *elf, const struct hotpatch_replacement *record, uint64_t vaddr,
			const struct hp_elf_info *info, struct hp_patch_replacement *out,
			struct hp_error *error)
{
	uint64_t target = 0;

	if (record->abi_version != HOTPATCH_ABI_VERSION ||
	    record->record_size != sizeof(*record))
		return hp_fail(error, HP_MISFIT,
			       "patch %s was built for hotpatch ABI %u; this hotpatch reads ABI %u",
			       error->file, record->abi_version, HOTPATCH_ABI_VERSION);
	if (!terminated(record->object, sizeof(record->object)) ||
	    !terminated(record->function, sizeof(record->function)) ||
	    !terminated(record->file, sizeof(record->file)) || !record->function[0])
		return hp_fail(error, HP_MISFIT, "patch %s has a replacement record without a "
						 "function name", error->file);
	hp_copy_string(out->object, sizeof(out->object), record->object);
	hp_copy_string(out->function, sizeof(out->function), record->function);
	hp_copy_string(out->file, sizeof(out->file), record->file);
	hp_error_function(error, out->function);
	if (!patch_relocated_value(elf, vaddr + offsetof(struct hotpatch_replacement, replacement),
			     &target) ||
	    !patch_in_segment(elf, target, 1, true))
		return hp_fail(error, HP_MISFIT,
			       "patch %s: the replacement for %s is not code inside the patch",
			       error->file, out->function);
	out->replacement_vaddr = target;
	out->replacement_size = replacement_size(info, target);
	return HP_OK;
}

static int read_replacements(Elf *elf, struct hp_patch_file *patch,
			     const struct hp_elf_info *info, struct hp_error *error)
{
	GElf_Shdr header;
	Elf_Scn *section = patch_find_section(elf, ".hotpatch", &header);
	Elf_Data *data = section ? elf_rawdata(section, NULL) : NULL;
	const size_t record_size = sizeof(struct hotpatch_replacement);
	size_t count;

	if (!data || header.sh_type != SHT_PROGBITS || data->d_size == 0 || !data->d_buf) {
		hp_hint(error, "declare replacements with HOTPATCH_REPLACE from <hotpatch.h>");
		return hp_fail(error, HP_MISFIT, "patch %s has no replacement table (.hotpatch)",
			       patch->path);
	}
	if (data->d_size % record_size != 0 || data->d_size != header.sh_size)
		return hp_fail(error, HP_MISFIT, "patch %s has a damaged replacement table",
			       patch->path);
	count = data->d_size / record_size;
	if (count > REPLACEMENTS_MAX)
		return hp_fail(error, HP_MISFIT, "patch %s replaces more than %u functions",
			       patch->path, REPLACEMENTS_MAX);
	patch->replacements = calloc(count, sizeof(*patch->replacements));
	if (!patch->replacements)
		return hp_fail(error, HP_FAILED, "out of memory reading %s", patch->path);
	for (size_t i = 0; i < count; i++) {
		struct hotpatch_replacement record;
		int status;

		memcpy(&record, (const char *)data->d_buf + i * record_size, record_size);
		status = check_record(elf, &record, header.sh_addr + i * record_size, info,
				      &patch->replacements[i], error);
		if (status != HP_OK)
			return status;
		for (size_t j = 0; j < i; j++)
			if (!strcmp(patch->replacements[j].function, record.function) &&
			    !strcmp(patch->replacements[j].object, record.object))
				return hp_fail(error, HP_MISFIT, "patch %s replaces %s twice",
					       patch->path, record.function);
		patch->count++;
	}
	return HP_OK;
}

bool patch_name_is_valid(const char *name)
{
	size_t length = strnlen(name, HP_PATCH_NAME_MAX);

	if (length == 0 || length >= HP_PATCH_NAME_MAX)
		return false;
	for (size_t i = 0; i < length; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

void patch_default_name(const char *path, char *name, size_t size)
{
	const char *file = hp_base_name(path);
	size_t length = strlen(file), i;

	if (length > 3 && strcmp(file + length - 3, ".so") == 0)
		length -= 3;
	for (i = 0; i < length && i + 1 < size; i++) {
		char c = file[i];
		bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			     (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';

		name[i] = plain ? c : '_';
	}
	name[i] = '\0';
	if (i == 0)
		hp_copy_string(name, size, "patch");
}

/* Text shown to operators: printable ASCII only, so that no patch can put
 * terminal escapes in front of them. */
static bool printable(const char *text)
{
	for (; *text; text++)
		if (*text < 0x20 || *text > 0x7e)
			return false;
	return true;
}

static void append_id(struct hp_patch_file *patch, const char *id)
{
	size_t used = strlen(patch->ids);

	if (used + (used ? 1 : 0) + strlen(id) >= sizeof(patch->ids))
		return;
	if (used)
		patch->ids[used++] = ' ';
	hp_copy_string(patch->ids + used, sizeof(patch->ids) - used, id);
}

static int compare_strings(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The compiler does not keep records in the order they were written:
 * sorted ids read the same every time. */
static void sort_ids(struct hp_patch_file *patch)
{
	char copy[sizeof(patch->ids)], *ids[sizeof(patch->ids) / 2], *saved = NULL;
	size_t count = 0, used = 0;

	hp_copy_string(copy, sizeof(copy), patch->ids);
	for (char *id = strtok_r(copy, " ", &saved); id; id = strtok_r(NULL, " ", &saved))
		ids[count++] = id;
	qsort(ids, count, sizeof(*ids), compare_strings);
	for (size_t i = 0; i < count; i++)
		used += (size_t)snprintf(patch->ids + used, sizeof(patch->ids) - used, "%s%s",
					 i ? " " : "", ids[i]);
}

static int take_metadata(struct hp_patch_file *patch, const struct hotpatch_meta *record,
			 struct hp_error *error)
{
	if (!strcmp(record->key, "name")) {
		if (!patch_name_is_valid(record->value))
			return hp_fail(error, HP_MISFIT,
				       "patch %s declares an invalid name (letters, digits, '.', '_', "
				       "'-'; at most 63)", patch->path);
		hp_copy_string(patch->name, sizeof(patch->name), record->value);
	} else if (!strcmp(record->key, "description") || !strcmp(record->key, "id")) {
		if (!printable(record->value))
			return hp_fail(error, HP_MISFIT,
				       "patch %s has a %s with characters that are not printable",
				       patch->path, record->key);
		if (record->key[0] == 'd')
			hp_copy_string(patch->description, sizeof(patch->description),
				       record->value);
		else if (record->value[0] && !strchr(record->value, ' '))
			append_id(patch, record->value);
		else
			return hp_fail(error, HP_MISFIT, "patch %s has an id with a space or empty",
				       patch->path);
	} else if (!strcmp(record->key, "cumulative")) {
		if (strcmp(record->value, "yes") != 0)
			return hp_fail(error, HP_MISFIT, "patch %s has damaged metadata", patch->path);
		patch->cumulative = true;
	}
	return HP_OK;
}

static int read_metadata(Elf *elf, struct hp_patch_file *patch, struct hp_error *error)
{
	GElf_Shdr header;
	Elf_Scn *section = patch_find_section(elf, ".hotpatch.meta", &header);
	Elf_Data *data = section ? elf_rawdata(section, NULL) : NULL;
	const size_t record_size = sizeof(struct hotpatch_meta);
	int status = HP_OK;

	patch_default_name(patch->path, patch->name, sizeof(patch->name));
	if (!data)
		return HP_OK;
	/* A NOBITS section has a size but no bytes (found by fuzzing). */
	if (header.sh_type != SHT_PROGBITS || !data->d_buf || data->d_size != header.sh_size ||
	    data->d_size % record_size != 0)
		return hp_fail(error, HP_MISFIT, "patch %s has damaged metadata", patch->path);
	for (size_t i = 0; status == HP_OK && i < data->d_size / record_size; i++) {
		struct hotpatch_meta record;

		memcpy(&record, (const char *)data->d_buf + i * record_size, record_size);
		if (record.abi_version != HOTPATCH_ABI_VERSION ||
		    record.record_size != record_size || !terminated(record.key, sizeof(record.key)) ||
		    !terminated(record.value, sizeof(record.value)))
			return hp_fail(error, HP_MISFIT, "patch %s has damaged metadata",
				       patch->path);
		status = take_metadata(patch, &record, error);
	}
	sort_ids(patch);
	return status;
}

static int check_shape(Elf *elf, const struct hp_patch_file *patch, struct hp_error *error)
{
	GElf_Ehdr header;
	size_t count = 0;
	bool dynamic = false;

	if (!elf || elf_kind(elf) != ELF_K_ELF || !gelf_getehdr(elf, &header)) {
		hp_hint(error, "build the patch with: cc -shared -fPIC -o fix.so fix.c");
		return hp_fail(error, HP_MISFIT, "patch %s is not an ELF file", patch->path);
	}
	if (gelf_getclass(elf) != ELFCLASS64 || header.e_machine != HP_ELF_MACHINE)
		return hp_fail(error, HP_MISFIT, "patch %s is not built for " HP_ARCH_NAME, patch->path);
	if (elf_getphdrnum(elf, &count) == 0)
		for (size_t i = 0; i < count; i++) {
			GElf_Phdr program;

			if (gelf_getphdr(elf, (int)i, &program) && program.p_type == PT_DYNAMIC)
				dynamic = true;
		}
	if (header.e_type != ET_DYN || !dynamic) {
		hp_hint(error, "build the patch with: cc -shared -fPIC -o fix.so fix.c");
		return hp_fail(error, HP_MISFIT, "patch %s is not a shared object", patch->path);
	}
	return HP_OK;
}

int patch_file_parse(struct hp_patch_file *patch, struct hp_error *error)
{
	struct hp_elf_info info = { 0 };
	Elf *elf;
	int status;

	if (elf_version(EV_CURRENT) == EV_NONE)
		return hp_fail(error, HP_FAILED, "libelf is unusable: %s", elf_errmsg(-1));
	hp_error_file(error, patch->path);
	elf = elf_memory((char *)patch->bytes, patch->size);
	status = check_shape(elf, patch, error);
	if (status == HP_OK)
		status = elf_info_read_memory(patch->bytes, patch->size, patch->path, &info, error);
	if (status == HP_OK)
		status = read_replacements(elf, patch, &info, error);
	if (status == HP_OK)
		status = read_metadata(elf, patch, error);
	if (status == HP_OK)
		status = patch_references_read(elf, patch, error);
	if (status == HP_OK)
		status = patch_fixes_read(elf, patch, error);
	if (status == HP_OK)
		status = patch_hooks_read(elf, patch, error);
	/* Nothing excluded yet: every fix is in effect. */
	if (status == HP_OK)
		status = patch_fixes_exclude(patch, NULL, 0, error);
	elf_info_release(&info);
	elf_end(elf);
	if (status != HP_OK)
		hp_error_classify(error, HP_KIND_BAD_PATCH);
	return status;
}

void patch_file_release(struct hp_patch_file *patch)
{
	free(patch->bytes);
	free(patch->replacements);
	patch_references_release(patch);
	patch_fixes_release(patch);
	patch->bytes = NULL;
	patch->replacements = NULL;
	patch->count = 0;
}
