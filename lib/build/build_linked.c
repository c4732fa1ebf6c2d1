/* build_linked.c - the patch just linked, read back with the very parser
 * apply uses (patch/), before it is put in place: a link that dropped the
 * records of thread-local fields (a linker that collects unreferenced
 * sections the records' flag does not keep) would leave fields empty that
 * the patch's code then uses as they are, as offsets from the thread
 * pointer.  Such a patch is never written. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "build/build.h"
#include "arch/arch.h"

/* The linked file whole, into patch->bytes; it is ours, just written. */
static int read_linked(const char *linked, struct hp_patch_file *patch, struct hp_error *error)
{
	FILE *file = fopen(linked, "rbe");
	struct stat status;
	int result = HP_OK;

	if (!file)
		return hp_fail_errno(error, HP_FAILED, "cannot read the linked patch %s", linked);
	if (fstat(fileno(file), &status) != 0 || status.st_size <= 0)
		result = hp_fail_errno(error, HP_FAILED, "cannot read the linked patch %s", linked);
	else if (!(patch->bytes = malloc((size_t)status.st_size)))
		result = hp_fail(error, HP_FAILED, "out of memory reading the linked patch");
	else if (fread(patch->bytes, 1, (size_t)status.st_size, file) != (size_t)status.st_size)
		result = hp_fail_errno(error, HP_FAILED, "cannot read the linked patch %s", linked);
	else
		patch->size = (size_t)status.st_size;
	fclose(file);
	return result;
}

static size_t field_sites(const struct hp_patch_file *patch)
{
	size_t count = 0;

	for (size_t i = 0; i < patch->reference_count; i++)
		for (size_t s = 0; s < patch->references[i].site_count; s++)
			count += relocation_kind(patch->references[i].sites[s].type) ==
				 HP_RELOCATION_TLS_STATIC_FIELD;
	return count;
}

int build_linked_check(const struct build_plan *plan, const char *linked, struct hp_error *error)
{
	struct hp_patch_file patch = { .bytes = NULL };
	size_t wanted = build_rewrite_field_count(plan), found;
	int status = read_linked(linked, &patch, error);

	hp_copy_string(patch.path, sizeof(patch.path), linked);
	if (status == HP_OK)
		status = patch_file_parse(&patch, error);
	if (status != HP_OK) {
		char why[sizeof(error->message)];

		hp_copy_string(why, sizeof(why), error->message);
		hp_hint(error, "this is a fault of hotpatch build or of the linker it ran, not of "
			       "the fix");
		status = hp_fail(error, HP_FAILED, "the linked patch is not one apply can use: %s",
				 why);
	} else if ((found = field_sites(&patch)) != wanted) {
		hp_hint(error, "the linker (cc -shared) dropped or kept what hotpatch build did not "
			       "expect");
		status = hp_fail(error, HP_FAILED, "the linked patch records %zu of the %zu "
						   "thread-local fields of its code", found, wanted);
	}
	patch_file_release(&patch);
	return status;
}
