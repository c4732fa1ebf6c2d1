/* common/loader_outcomes.h - what the preloaded loader tried in a process,
 * laid out for `hotpatch status` to read from outside.  The loader
 * (loader/preload.c, libc only) keeps it in a memory file of its own,
 * mapped in the process as "/memfd:hotpatch-loader-outcomes", made when
 * a patch first fits; status reads it through /proc/PID/mem without
 * stopping the process.  What it says is the process's word about itself:
 * read bounded, checked, shown and never acted on. */
#ifndef HOTPATCH_COMMON_LOADER_OUTCOMES_H
#define HOTPATCH_COMMON_LOADER_OUTCOMES_H

#include <stdint.h>

#define LOADER_OUTCOMES_NAME "hotpatch-loader-outcomes"
#define LOADER_OUTCOMES_MAGIC "hotpatch-loader-outcomes 1"
#define LOADER_OUTCOMES_MAX 64
#define LOADER_OUTCOME_NAME_MAX 64	/* HP_PATCH_NAME_MAX */
#define LOADER_OUTCOME_REASON_MAX 184

/* One installed patch the loader tried: `code` 0 applied, else the exit
 * code `hotpatch apply` would have given, and why. */
struct loader_outcome {
	char name[LOADER_OUTCOME_NAME_MAX];
	int32_t code;
	uint32_t reserved;
	char reason[LOADER_OUTCOME_REASON_MAX];
};

struct loader_outcomes {
	char magic[32];
	uint32_t count;
	uint32_t reserved;
	struct loader_outcome entries[LOADER_OUTCOMES_MAX];
};

_Static_assert(sizeof(struct loader_outcome) == 256, "an outcome is 256 bytes");

#endif
