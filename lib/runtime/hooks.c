/* hooks.c - the patch author's hooks (HOTPATCH_PRE_APPLY ... of hotpatch.h)
 * run in the target: a remote call on one borrowed thread, as dlopen is
 * made, bounded by a time limit of its own.  A hook that outlives it is
 * left running: its thread finishes the hook and then restores itself (the
 * remote call's frame), and the patch it runs in must stay loaded until
 * then.  Whether a hook's result cancels anything is the caller's. */
#include <inttypes.h>
#include <string.h>

#include "runtime/session.h"
#include "common/base.h"
#include "runtime/state.h"
#include "runtime/threads.h"

/* Long enough to build a cache or take a lock a moment; a hook that needs
 * longer is a bug the command reports. */
#define HOOK_SECONDS 5.0

int hook_call(struct hp_remote *remote, const char *patch, const char *which, uint64_t address,
	      int *returned, bool *still_running, struct hp_error *error)
{
	uint64_t result = 0;
	int status;

	*returned = 0;
	*still_running = false;
	remote->call_deadline = hp_now() + HOOK_SECONDS;
	status = remote_call(remote, address, (uint64_t[6]){ 0 }, &result, error);
	/* Timed out (not faulted): the thread is still in the hook. */
	if (status != HP_OK && remote->active && !remote->faulted && !remote->at_sync &&
	    hp_now() >= remote->call_deadline) {
		*still_running = true;
		error->detail[0] = '\0';
		hp_hint(error, "its thread finishes the hook on its own; the next apply or revert "
			       "takes the patch back once it has");
		status = hp_fail(error, HP_FAILED,
				 "the %s hook of patch %s did not return within %.0f s in pid %d",
				 which, patch, HOOK_SECONDS, (int)remote->pid);
	} else if (status != HP_OK) {
		char why[sizeof(error->message)];
		enum hp_error_kind kind = error->kind;
		int number = error->error_number;

		hp_copy_string(why, sizeof(why), error->message);
		status = hp_fail(error, status, "the %s hook of patch %s failed in pid %d: %s", which,
				 patch, (int)remote->pid, why);
		/* Only the words change: what failed is still what it was. */
		error->kind = kind;
		error->error_number = number;
	}
	remote->call_deadline = 0;
	*returned = (int)(uint32_t)result;
	return status;
}

int hook_run(struct hp_session *session, const char *patch, const char *which, uint64_t address,
	     int *returned, bool *still_running, struct hp_error *error)
{
	struct hp_remote remote;
	int status = session_borrow_thread(session, &remote, error);

	*returned = 0;
	*still_running = false;
	if (status == HP_OK)
		status = hook_call(&remote, patch, which, address, returned, still_running, error);
	return session_return_thread(session, &remote, status, error);
}

bool hook_in_patch(const struct hp_session *session, const struct hp_state_patch *record,
		   uint64_t address)
{
	uint64_t bias, text_start, text_end;

	/* The address comes from the target's memory: only code of the patch
	 * as it is mapped now is called. */
	return address && patch_mapped_span(&session->target.maps, record->memfd_inode, &bias,
					    &text_start, &text_end) &&
	       bias == record->load_bias && address >= text_start && address < text_end &&
	       address >= record->text_start && address < record->text_end;
}
