/* steps.c - runs a command's steps in order and, on a failure before its
 * commit, the undo of each step done, in reverse.  It knows no step; it
 * never touches the process itself, except to kill it for a test. */
#include <signal.h>
#include <stdio.h>

#include "runtime/steps.h"

/* The test build's points around one step: kill-after-STEP, stop-after-STEP. */
static bool fault_after(const char *what, const struct hp_step *step)
{
	char name[128];

	snprintf(name, sizeof(name), "%s-after-%s", what, step->name);
	return hp_fault(name);
}

/* list-steps: the test build's way to say what it would run, so a test can
 * fail each step in turn (and check the docs name them all). */
static int list_steps(const struct hp_steps *list, struct hp_error *error)
{
	bool committed = false;
	int status;

	hp_hint(error, "unset HOTPATCH_FAULT");
	status = hp_fail(error, HP_FAILED, "injected fault list-steps: the %zu steps of %s follow",
			 list->count, list->command);
	for (size_t i = 0; i < list->count; i++) {
		const struct hp_step *step = &list->steps[i];

		hp_detail(error, "%s %s",
			  step->commit ? "commit" : committed ? "finish" : "rollback", step->name);
		committed = committed || step->commit;
	}
	return status;
}

/* Every undo runs, whatever the one before it did: each takes back its
 * own step, and the first failure (the one that caused all this) stays
 * the reported one. */
static int undo_done(const struct hp_steps *list, size_t done, void *work, int status,
		     struct hp_error *error)
{
	while (done-- > 0) {
		const struct hp_step *step = &list->steps[done];
		struct hp_error undo_error = { 0 };

		if (step->undo)
			status = hp_first_failure(status, error, step->undo(work, &undo_error),
						  &undo_error);
	}
	return status;
}

int steps_run(const struct hp_steps *list, void *work, pid_t pid,
	      volatile const int *interrupted, struct hp_error *error)
{
	size_t done = 0;
	bool committed = false;
	int status = hp_fault("list-steps") ? list_steps(list, error) : HP_OK;

	while (status == HP_OK && done < list->count) {
		const struct hp_step *step = &list->steps[done];

		if (!committed && interrupted && *interrupted)
			status = hp_fail_as(error, HP_KIND_INTERRUPTED,
					    "interrupted; pid %d was left unchanged", (int)pid);
		if (status == HP_OK)
			status = step->run(work, error);
		if (status == HP_STEPS_DONE)
			return HP_OK;
		if (status != HP_OK)
			break;
		done++;
		committed = committed || step->commit;
		if (fault_after("kill", step))
			raise(SIGKILL);	/* to show that a killed hotpatch leaves nothing lost */
		if (fault_after("stop", step))
			raise(SIGSTOP);	/* to be caught at work */
		if (fault_after("target-killed", step))
			kill(pid, SIGKILL);	/* the target dies under the next step */
		if (!committed && hp_fault(step->name))
			status = hp_fault_fail(error, step->name);
	}
	if (status == HP_OK || committed)
		return status;
	return undo_done(list, done, work, status, error);
}
