/* base_references.c - joining a patch to the image it patches.  Before
 * anything is loaded: every build-id the patch was built for must be the
 * target's, and every variable or function of the target the patch uses
 * must resolve to exactly one address.  After the patch is loaded and
 * before any jump is written: each place the dynamic linker left for those
 * symbols gets its address, so the patch reads and writes the target's own
 * storage and calls its own code. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

static void build_id_text(const struct hp_elf_info *elf, char *text, size_t size)
{
	text[0] = '\0';
	for (size_t i = 0; i < elf->build_id_size && 2 * i + 2 < size; i++)
		snprintf(text + 2 * i, size - 2 * i, "%02x", elf->build_id[i]);
}

static int check_pin(struct hp_target *target, const struct hp_patch_file *patch,
		     const struct hp_patch_pin *pin, struct hp_error *error)
{
	struct hp_object *object = NULL;
	char actual[2 * sizeof(object->elf.build_id) + 1];
	int status = target_find_object(target, pin->object, &object, error);

	if (status != HP_OK)
		return status;
	build_id_text(&object->elf, actual, sizeof(actual));
	if (strcmp(actual, pin->build_id) == 0)
		return HP_OK;
	hp_error_file(error, object->path);
	hp_hint(error, "build the patch against the binary pid %d runs", (int)target->pid);
	if (!actual[0])
		return hp_fail_as(error, HP_KIND_BUILD_ID_MISMATCH,
			       "patch %s was built for build-id %s, but %s of pid %d has no build-id",
			       patch->path, pin->build_id, object->path, (int)target->pid);
	return hp_fail_as(error, HP_KIND_BUILD_ID_MISMATCH,
		       "patch %s was built for build-id %s, but %s of pid %d has build-id %s",
		       patch->path, pin->build_id, object->path, (int)target->pid, actual);
}

int references_check_pins(struct hp_target *target, const struct hp_patch_file *patch,
			  struct hp_error *error)
{
	int status = HP_OK;

	for (size_t i = 0; status == HP_OK && i < patch->pin_count; i++)
		status = check_pin(target, patch, &patch->pins[i], error);
	return status;
}

int references_resolve(struct hp_target *target, struct hp_patch_file *patch,
		       struct hp_error *error)
{
	int status = HP_OK;

	for (size_t i = 0; status == HP_OK && i < patch->reference_count; i++) {
		struct hp_patch_reference *reference = &patch->references[i];
		struct hp_object *object = NULL;

		status = target_find_object(target, reference->object, &object, error);
		if (status == HP_OK)
			status = target_find_symbol(target, object, reference->symbol,
						    reference->file, &reference->address, error);
	}
	return status;
}

int references_fill(struct hp_memory *memory, pid_t stopped_tid,
		    const struct hp_patch_file *patch, uint64_t bias, struct hp_error *error)
{
	int status = HP_OK;

	for (size_t i = 0; status == HP_OK && i < patch->reference_count; i++) {
		const struct hp_patch_reference *reference = &patch->references[i];

		for (size_t s = 0; status == HP_OK && s < reference->site_count; s++) {
			const struct hp_reference_site *site = &reference->sites[s];
			uint64_t value = reference->address + (uint64_t)site->addend;

			status = target_memory_write(memory, stopped_tid, bias + site->vaddr, &value,
						     sizeof(value), error);
		}
	}
	return status;
}
