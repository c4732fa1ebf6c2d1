/* patch_hooks.c - the functions a patch declares to run in the target when
 * it is applied and reverted (HOTPATCH_PRE_APPLY ...), read from
 * .hotpatch.hooks untrusted: a known kind, at most one of each, and a
 * pointer the dynamic linker fills with code of the patch itself.  Running
 * them is lib/runtime/hooks.c's. */
#include <gelf.h>
#include <libelf.h>
#include <stddef.h>
#include <string.h>

#include "hotpatch.h"
#include "patch/patch.h"
#include "common/base.h"

const char *patch_hook_name(unsigned kind)
{
	static const char *const names[HP_HOOK_KINDS] = {
		[HOTPATCH_HOOK_PRE_APPLY] = "pre-apply",
		[HOTPATCH_HOOK_POST_APPLY] = "post-apply",
		[HOTPATCH_HOOK_PRE_REVERT] = "pre-revert",
		[HOTPATCH_HOOK_POST_REVERT] = "post-revert",
	};

	return kind > 0 && kind < HP_HOOK_KINDS ? names[kind] : "unknown";
}

static int take_record(Elf *elf, struct hp_patch_file *patch, const struct hotpatch_hook *record,
		       uint64_t vaddr, struct hp_error *error)
{
	uint64_t function = 0;

	if (record->abi_version != HOTPATCH_ABI_VERSION || record->record_size != sizeof(*record) ||
	    record->when == 0 || record->when >= HP_HOOK_KINDS)
		return hp_fail(error, HP_MISFIT, "patch %s has a damaged hook record", patch->path);
	if (patch->hooks[record->when])
		return hp_fail(error, HP_MISFIT, "patch %s declares two %s hooks", patch->path,
			       patch_hook_name(record->when));
	if (!patch_relocated_value(elf, vaddr + offsetof(struct hotpatch_hook, function), &function) ||
	    !function || !patch_in_segment(elf, function, 1, true))
		return hp_fail(error, HP_MISFIT, "patch %s: its %s hook is not code inside the patch",
			       patch->path, patch_hook_name(record->when));
	patch->hooks[record->when] = function;
	return HP_OK;
}

int patch_hooks_read(Elf *elf, struct hp_patch_file *patch, struct hp_error *error)
{
	GElf_Shdr header;
	Elf_Scn *section = patch_find_section(elf, ".hotpatch.hooks", &header);
	Elf_Data *data = section ? elf_rawdata(section, NULL) : NULL;
	const size_t record_size = sizeof(struct hotpatch_hook);
	int status = HP_OK;

	if (!data)
		return HP_OK;
	/* At most one of each kind: a longer table is damaged. */
	if (header.sh_type != SHT_PROGBITS || !data->d_buf || data->d_size != header.sh_size ||
	    data->d_size % record_size != 0 || data->d_size / record_size >= HP_HOOK_KINDS)
		return hp_fail(error, HP_MISFIT, "patch %s has a damaged hook table", patch->path);
	for (size_t i = 0; status == HP_OK && i < data->d_size / record_size; i++) {
		struct hotpatch_hook record;

		memcpy(&record, (const char *)data->d_buf + i * record_size, record_size);
		status = take_record(elf, patch, &record, header.sh_addr + i * record_size, error);
	}
	return status;
}
