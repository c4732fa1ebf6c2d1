/* runtime/steps.h - a command as a table of steps, each with its undo, run by
 * one runner (CRIU compel's pattern): the fault points of the test build are
 * named by step, not written into the story. */
#ifndef HOTPATCH_RUNTIME_STEPS_H
#define HOTPATCH_RUNTIME_STEPS_H

#include "common/base.h"

/* ---- steps.c: the runner ---- */
struct hp_step {
	const char *name;	/* also the name of its fault points */
	int (*run)(void *work, struct hp_error *error);
	/* Takes back what run did, once run has succeeded; NULL when nothing
	 * is left (or a later step's undo must wait for an earlier one's, as
	 * an object's record outlives the object).  A run that fails takes
	 * back its own half-done work. */
	int (*undo)(void *work, struct hp_error *error);
	/* Once this step succeeds the process is changed as asked: the steps
	 * after it finish the command, never roll it back, and interruption
	 * is no longer looked at.  Its fault point is its own (it fails half
	 * done, to show it takes back its own half). */
	bool commit;
};

/* What a step returns when the command is done already (apply finding the
 * very patch applied): the steps after it are skipped, nothing is undone,
 * and the command succeeds. */
#define HP_STEPS_DONE 1

struct hp_steps {
	const char *command;
	const struct hp_step *steps;
	size_t count;
};

/* Runs the steps in order, looking at *interrupted before each one until
 * the commit.  On a failure before the commit, the undos of the steps done
 * run in reverse; their failures never hide the first one.  The test build
 * reads HOTPATCH_FAULT: STEP fails the command right after STEP (before the
 * commit), kill-after-STEP dies by SIGKILL and stop-after-STEP stops by
 * SIGSTOP there, target-killed-after-STEP sends the target a SIGKILL
 * there, and list-steps fails at once with every step in the
 * error's detail, one "rollback|commit|finish NAME" a line. */
int steps_run(const struct hp_steps *list, void *work, pid_t pid,
	      volatile const int *interrupted, struct hp_error *error) HP_MUST_CHECK;

#endif
