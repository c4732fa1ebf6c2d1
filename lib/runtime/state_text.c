/* state_text.c - a recorded patch's code in the target: the saved (original)
 * or written (jump) bytes of its functions put back in few writes, and which
 * of them a jump site holds now.  It reads the records, never changes them;
 * text_write.c, under it, knows nothing of records. */
#include <stdlib.h>
#include <string.h>

#include "runtime/state.h"
#include "common/base.h"

int text_write_functions(struct hp_memory *memory, pid_t stopped_tid,
			 const struct hp_state_patch *patch, enum hp_text_bytes which, size_t count,
			 struct hp_error *error)
{
	struct hp_text_piece *pieces = calloc(count ? count : 1, sizeof(*pieces));
	size_t used = 0;
	int status;

	if (!pieces)
		return hp_fail(error, HP_FAILED, "out of memory");
	for (size_t i = 0; i < count && i < patch->function_count; i++) {
		const struct hp_state_function *function = &patch->functions[i];

		/* A record is written before its jumps are planned: skip the unplanned. */
		if (!function->jump_address || !function->length)
			continue;
		pieces[used++] = (struct hp_text_piece){
			function->jump_address,
			which == HP_TEXT_WRITTEN ? function->written : function->saved,
			function->length,
		};
	}
	status = text_write(memory, stopped_tid, pieces, used, error);
	free(pieces);
	return status;
}

int text_site_read(struct hp_memory *memory, const struct hp_state_function *function,
		   enum hp_text_site *site, struct hp_error *error)
{
	unsigned char current[HP_SAVED_MAX];
	int status;

	*site = HP_SITE_UNPLANNED;
	if (!function->jump_address || !function->length || function->length > HP_SAVED_MAX)
		return HP_OK;	/* recorded before its jump was planned */
	status = target_memory_read(memory, function->jump_address, current, function->length,
				    error);
	if (status != HP_OK)
		return status;
	*site = memcmp(current, function->written, function->length) == 0 ? HP_SITE_JUMP
		: memcmp(current, function->saved, function->length) == 0 ? HP_SITE_ORIGINAL
									 : HP_SITE_FOREIGN;
	return HP_OK;
}
