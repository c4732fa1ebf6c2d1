/* patch_fixes.c - which fix of a patch changed which function (the
 * .hotpatch.fixes records of HOTPATCH_FIX, written by hotpatch build --fix),
 * read untrusted and bounded, and the exclusion of fixes: the replacements
 * only excluded fixes changed are taken out of the patch before anything
 * is planned.  It reads the patch object only; it never sees a process. */
#include <gelf.h>
#include <libelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hotpatch.h"
#include "patch/patch.h"
#include "common/base.h"

#define FIX_RECORDS_MAX 100000u

bool patch_fix_id_is_valid(const char *id)
{
	size_t length = strnlen(id, HOTPATCH_FIX_MAX);

	if (length == 0 || length >= HOTPATCH_FIX_MAX)
		return false;
	for (size_t i = 0; i < length; i++)
		if (id[i] <= 0x20 || id[i] >= 0x7f || id[i] == '=')
			return false;
	return true;
}

static bool terminated(const char *text, size_t size)
{
	return memchr(text, '\0', size) != NULL;
}

/* Whether `id` is one of the space-separated `ids`. */
static bool listed(const char *ids, const char *id)
{
	size_t length = strlen(id);

	for (const char *at = ids; *at;) {
		size_t word = strcspn(at, " ");

		if (word == length && strncmp(at, id, length) == 0)
			return true;
		at += word;
		at += strspn(at, " ");
	}
	return false;
}

static bool append(char *ids, size_t size, const char *id)
{
	size_t used = strlen(ids);

	if (used + (used ? 1 : 0) + strlen(id) >= size)
		return false;
	snprintf(ids + used, size - used, "%s%s", used ? " " : "", id);
	return true;
}

static int compare_strings(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The distinct fix ids, sorted (the compiler keeps no record order). */
static int collect_ids(struct hp_patch_file *patch, struct hp_error *error)
{
	const char **ids = calloc(patch->fix_count + 1, sizeof(*ids));
	size_t count = 0;
	int status = HP_OK;

	if (!ids)
		return hp_fail(error, HP_FAILED, "out of memory reading %s", patch->path);
	for (size_t i = 0; i < patch->fix_count; i++) {
		bool seen = false;

		for (size_t j = 0; j < count && !seen; j++)
			seen = strcmp(ids[j], patch->fixes[i].fix) == 0;
		if (!seen)
			ids[count++] = patch->fixes[i].fix;
	}
	qsort(ids, count, sizeof(*ids), compare_strings);
	for (size_t i = 0; status == HP_OK && i < count; i++)
		if (!append(patch->fix_ids, sizeof(patch->fix_ids), ids[i]))
			status = hp_fail(error, HP_MISFIT, "patch %s tags more fixes than %d characters "
							   "of ids hold", patch->path, HP_FIXES_MAX - 1);
	free(ids);
	return status;
}

static int take_record(struct hp_patch_file *patch, const struct hotpatch_fix *record,
		       struct hp_error *error)
{
	struct hp_patch_fix *fix = &patch->fixes[patch->fix_count];

	if (record->abi_version != HOTPATCH_ABI_VERSION || record->record_size != sizeof(*record) ||
	    !terminated(record->object, sizeof(record->object)) ||
	    !terminated(record->file, sizeof(record->file)) ||
	    !terminated(record->function, sizeof(record->function)) ||
	    !terminated(record->fix, sizeof(record->fix)) || !record->function[0])
		return hp_fail(error, HP_MISFIT, "patch %s has a damaged fix record", patch->path);
	if (!patch_fix_id_is_valid(record->fix))
		return hp_fail(error, HP_MISFIT,
			       "patch %s tags %s with a fix id that is empty, too long, or has a "
			       "space, '=' or an unprintable character", patch->path, record->function);
	hp_copy_string(fix->object, sizeof(fix->object), record->object);
	hp_copy_string(fix->file, sizeof(fix->file), record->file);
	hp_copy_string(fix->function, sizeof(fix->function), record->function);
	hp_copy_string(fix->fix, sizeof(fix->fix), record->fix);
	patch->fix_count++;
	return HP_OK;
}

int patch_fixes_read(Elf *elf, struct hp_patch_file *patch, struct hp_error *error)
{
	GElf_Shdr header;
	Elf_Scn *section = patch_find_section(elf, ".hotpatch.fixes", &header);
	Elf_Data *data = section ? elf_rawdata(section, NULL) : NULL;
	const size_t record_size = sizeof(struct hotpatch_fix);
	size_t count;
	int status = HP_OK;

	if (!data)
		return HP_OK;
	/* A NOBITS section has a size but no bytes. */
	if (header.sh_type != SHT_PROGBITS || !data->d_buf || data->d_size != header.sh_size ||
	    data->d_size % record_size != 0)
		return hp_fail(error, HP_MISFIT, "patch %s has a damaged fix table", patch->path);
	count = data->d_size / record_size;
	if (count > FIX_RECORDS_MAX)
		return hp_fail(error, HP_MISFIT, "patch %s has more than %u fix records", patch->path,
			       FIX_RECORDS_MAX);
	patch->fixes = calloc(count ? count : 1, sizeof(*patch->fixes));
	if (!patch->fixes)
		return hp_fail(error, HP_FAILED, "out of memory reading %s", patch->path);
	for (size_t i = 0; status == HP_OK && i < count; i++) {
		struct hotpatch_fix record;

		memcpy(&record, (const char *)data->d_buf + i * record_size, record_size);
		status = take_record(patch, &record, error);
	}
	if (status == HP_OK)
		status = collect_ids(patch, error);
	return status;
}

/* A tag names a function of a replacement: the same object and name, and
 * the same source file unless the tag names none. */
static bool tags_function(const struct hp_patch_fix *fix, const char *object, const char *file,
			  const char *function)
{
	return strcmp(fix->object, object) == 0 && strcmp(fix->function, function) == 0 &&
	       (!fix->file[0] || strcmp(fix->file, file) == 0);
}

/* Refuses a function an excluded and a kept fix both changed: leaving one
 * out would leave the other half done. */
static int check_shared(const struct hp_patch_file *patch, const char *excluded_ids,
			struct hp_error *error)
{
	for (size_t i = 0; i < patch->fix_count; i++) {
		const struct hp_patch_fix *out = &patch->fixes[i];

		if (!listed(excluded_ids, out->fix))
			continue;
		for (size_t j = 0; j < patch->fix_count; j++) {
			const struct hp_patch_fix *kept = &patch->fixes[j];

			if (listed(excluded_ids, kept->fix) ||
			    !tags_function(kept, out->object, out->file, out->function))
				continue;
			hp_error_function(error, out->function);
			hp_hint(error, "exclude %s too, or neither", kept->fix);
			return hp_fail_as(error, HP_KIND_DEPENDS,
					  "patch %s: fix %s cannot be excluded: fix %s changes %s too",
					  patch->name, out->fix, kept->fix, out->function);
		}
	}
	return HP_OK;
}

/* Whether an excluded fix changed the replacement (then only excluded ones
 * did: check_shared ran first). */
static bool left_out(const struct hp_patch_file *patch, const char *excluded_ids,
		     const struct hp_patch_replacement *replacement)
{
	for (size_t i = 0; i < patch->fix_count; i++)
		if (listed(excluded_ids, patch->fixes[i].fix) &&
		    tags_function(&patch->fixes[i], replacement->object, replacement->file,
				  replacement->function))
			return true;
	return false;
}

static int choose_ids(struct hp_patch_file *patch, const char *const *excluded, size_t count,
		      char *excluded_ids, size_t size, struct hp_error *error)
{
	for (size_t i = 0; i < count; i++) {
		if (!listed(patch->fix_ids, excluded[i])) {
			hp_hint(error, "its fixes are: %s", patch->fix_ids[0] ? patch->fix_ids : "none");
			return hp_fail(error, HP_MISFIT, "patch %s has no fix %s to exclude",
				       patch->name, excluded[i]);
		}
		if (!listed(excluded_ids, excluded[i]))
			append(excluded_ids, size, excluded[i]);
	}
	/* In the patch's order (sorted), whatever order they were given in. */
	patch->excluded[0] = patch->in_effect[0] = '\0';
	for (const char *at = patch->fix_ids; *at;) {
		size_t word = strcspn(at, " ");
		char id[HOTPATCH_FIX_MAX];

		snprintf(id, sizeof(id), "%.*s", (int)word, at);
		append(listed(excluded_ids, id) ? patch->excluded : patch->in_effect,
		       sizeof(patch->excluded), id);
		at += word;
		at += strspn(at, " ");
	}
	return HP_OK;
}

int patch_fixes_exclude(struct hp_patch_file *patch, const char *const *excluded, size_t count,
			struct hp_error *error)
{
	char excluded_ids[HP_FIXES_MAX] = "";
	size_t kept = 0;
	int status = choose_ids(patch, excluded, count, excluded_ids, sizeof(excluded_ids), error);

	if (status == HP_OK)
		status = check_shared(patch, excluded_ids, error);
	if (status != HP_OK || !count)
		return status;
	for (size_t i = 0; i < patch->count; i++)
		if (!left_out(patch, excluded_ids, &patch->replacements[i]))
			patch->replacements[kept++] = patch->replacements[i];
	if (kept == 0) {
		hp_hint(error, "apply it without --exclude, or not at all");
		return hp_fail(error, HP_MISFIT, "patch %s: excluding %s leaves nothing to replace",
			       patch->name, excluded_ids);
	}
	patch->count = kept;
	return HP_OK;
}

void patch_fixes_release(struct hp_patch_file *patch)
{
	free(patch->fixes);
	patch->fixes = NULL;
	patch->fix_count = 0;
}
