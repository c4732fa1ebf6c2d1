/* fault.c - named failure points, compiled in only for the test build
 * (-DHP_FAULT_INJECTION), so the rollback tests can fail every step of a
 * command on purpose.  The release build never reads the environment here. */
#include <stdlib.h>
#include <string.h>

#include "common/base.h"

bool hp_fault(const char *step)
{
#ifdef HP_FAULT_INJECTION
	const char *wanted = getenv("HOTPATCH_FAULT");

	return wanted && strcmp(wanted, step) == 0;
#else
	(void)step;
	return false;
#endif
}

int hp_fault_fail(struct hp_error *error, const char *step)
{
	hp_hint(error, "unset HOTPATCH_FAULT");
	return hp_fail(error, HP_FAILED, "injected fault at step %s", step);
}
