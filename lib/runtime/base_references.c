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

#include "runtime/state.h"
#include "common/base.h"
#include "runtime/target.h"

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

static bool thread_local_site(const struct hp_reference_site *site)
{
	enum hp_relocation_kind kind = relocation_kind(site->type);

	return kind == HP_RELOCATION_TLS_MODULE || kind == HP_RELOCATION_TLS_OFFSET ||
	       kind == HP_RELOCATION_TLS_STATIC || kind == HP_RELOCATION_TLS_STATIC_FIELD;
}

/* A place that holds the offset from the thread pointer: a word the
 * initial-exec code of the patch reads, or a field of its local-exec code. */
static bool static_tls_site(const struct hp_reference_site *site)
{
	enum hp_relocation_kind kind = relocation_kind(site->type);

	return kind == HP_RELOCATION_TLS_STATIC || kind == HP_RELOCATION_TLS_STATIC_FIELD;
}

static uint64_t static_tls_value(const struct hp_patch_reference *reference,
				 const struct hp_reference_site *site)
{
	return relocation_tls_static_value(reference->address + (uint64_t)site->addend,
					   reference->module.static_offset);
}

/* A field of code holds fewer bytes than a word: the value must fit it. */
static bool site_fits(const struct hp_patch_reference *reference,
		      const struct hp_reference_site *site)
{
	unsigned char field[8];

	return relocation_kind(site->type) != HP_RELOCATION_TLS_STATIC_FIELD ||
	       relocation_tls_static_field(site->type, static_tls_value(reference, site), field);
}

/* A thread-local variable: its offset in its module's block, and the
 * module's id and static offset, with which every site of the patch is
 * checked now, before anything is loaded.  An address of one (a site of
 * another kind) would be one thread's, and none for threads to come. */
static int resolve_thread_local(struct hp_target *target, struct hp_memory *memory,
				struct hp_object *object, struct hp_patch_reference *reference,
				struct hp_error *error)
{
	int status = target_tls_module(target, memory, object, &reference->module, error);

	for (size_t s = 0; status == HP_OK && s < reference->site_count; s++) {
		const struct hp_reference_site *site = &reference->sites[s];

		if (!thread_local_site(site) ||
		    (static_tls_site(site) && !reference->module.in_static_block)) {
			hp_error_function(error, reference->symbol);
			hp_error_file(error, object->path);
		}
		if (!thread_local_site(site)) {
			hp_hint(error, "refer to it as a thread-local variable (extern __thread), built "
				       "with -fPIC");
			return hp_fail(error, HP_MISFIT,
				       "%s in %s is thread-local, and the patch uses it by address",
				       reference->symbol, object->path);
		}
		if (static_tls_site(site) && !reference->module.in_static_block) {
			hp_hint(error, "a patch written by hand with HOTPATCH_THREAD_SYMBOL and built "
				       "with the default -fPIC model (global-dynamic) reaches it in "
				       "every thread");
			return hp_fail(error, HP_MISFIT,
				       "%s in %s is thread-local in storage the dynamic linker "
				       "allocates per thread (a library loaded with dlopen), which "
				       "the patch's initial-exec or local-exec code cannot reach",
				       reference->symbol, object->path);
		}
		if (!site_fits(reference, site)) {
			hp_error_function(error, reference->symbol);
			hp_error_file(error, object->path);
			return hp_fail(error, HP_MISFIT,
				       "%s in %s lies too far from the thread pointer for the "
				       "patch's local-exec code", reference->symbol, object->path);
		}
	}
	return status;
}

int references_resolve(struct hp_target *target, struct hp_memory *memory,
		       struct hp_patch_file *patch, struct hp_error *error)
{
	int status = HP_OK;

	for (size_t i = 0; status == HP_OK && i < patch->reference_count; i++) {
		struct hp_patch_reference *reference = &patch->references[i];
		struct hp_object *object = NULL;

		status = target_find_object(target, reference->object, &object, error);
		if (status == HP_OK)
			status = target_find_thread_local(target, object, reference->symbol,
							  reference->file, &reference->thread_local,
							  &reference->address, error);
		if (status == HP_OK && reference->thread_local)
			status = resolve_thread_local(target, memory, object, reference, error);
		else if (status == HP_OK)
			status = target_find_symbol(target, object, reference->symbol,
						    reference->file, &reference->address, error);
		for (size_t s = 0; status == HP_OK && !reference->thread_local &&
				   s < reference->site_count; s++)
			if (thread_local_site(&reference->sites[s])) {
				hp_error_function(error, reference->symbol);
				hp_error_file(error, object->path);
				status = hp_fail(error, HP_MISFIT,
						 "the patch uses %s of %s as a thread-local variable, "
						 "which it is not", reference->symbol, object->path);
			}
	}
	return status;
}

/* What one site of a reference holds. */
static uint64_t site_value(const struct hp_patch_reference *reference,
			   const struct hp_reference_site *site)
{
	switch (relocation_kind(site->type)) {
	case HP_RELOCATION_TLS_MODULE:
		return reference->module.id;
	case HP_RELOCATION_TLS_STATIC:
	case HP_RELOCATION_TLS_STATIC_FIELD:
		return static_tls_value(reference, site);
	default:	/* TLS_OFFSET, and addresses */
		return reference->address + (uint64_t)site->addend;
	}
}

/* A word, or a field of code in the bytes its relocation type says. */
static int fill_site(struct hp_memory *memory, pid_t stopped_tid,
		     const struct hp_patch_reference *reference,
		     const struct hp_reference_site *site, uint64_t bias, struct hp_error *error)
{
	uint64_t value = site_value(reference, site);
	unsigned char field[8];

	if (relocation_kind(site->type) != HP_RELOCATION_TLS_STATIC_FIELD)
		return target_memory_write(memory, stopped_tid, bias + site->vaddr, &value,
					   sizeof(value), error);
	/* Checked when resolved; a field that cannot hold it is never written. */
	if (!relocation_tls_static_field(site->type, value, field)) {
		hp_error_function(error, reference->symbol);
		return hp_fail(error, HP_MISFIT, "%s lies too far from the thread pointer for the "
						 "patch's local-exec code", reference->symbol);
	}
	return target_memory_write(memory, stopped_tid, bias + site->vaddr, field,
				   relocation_field_size(site->type), error);
}

int references_fill(struct hp_memory *memory, pid_t stopped_tid,
		    const struct hp_patch_file *patch, uint64_t bias, struct hp_error *error)
{
	int status = HP_OK;

	for (size_t i = 0; status == HP_OK && i < patch->reference_count; i++) {
		const struct hp_patch_reference *reference = &patch->references[i];

		for (size_t s = 0; status == HP_OK && s < reference->site_count; s++)
			status = fill_site(memory, stopped_tid, reference, &reference->sites[s], bias,
					   error);
	}
	return status;
}
