/* extended_state.c - a thread's arm64 FP/SIMD state (NT_PRFPREG: v0-v31,
 * fpsr, fpcr), and its SVE registers (NT_ARM_SVE) when the processor has
 * them, saved whole and put back exactly. */
#include <asm/ptrace.h>
#include <elf.h>
#include <errno.h>
#include <stdlib.h>
#include <sys/ptrace.h>
#include <sys/uio.h>

#include "arch/arch.h"

/* The largest SVE regset: 2048-bit vectors (SVE_PT_SIZE(16, SVE_PT_REGS_SVE)
 * is a little over 8 KiB), with room to spare. */
#define SVE_BUFFER 16384

_Static_assert(sizeof(struct user_fpsimd_state) == HP_FPSIMD_SIZE, "NT_PRFPREG's size");

static void save_sve(pid_t tid, struct hp_extended_state *state)
{
	struct iovec vector;

	state->sve = malloc(SVE_BUFFER);
	if (!state->sve)
		return;
	vector.iov_base = state->sve;
	vector.iov_len = SVE_BUFFER;
	/* EINVAL without SVE: the FP/SIMD set is all there is. */
	if (ptrace(PTRACE_GETREGSET, tid, (void *)NT_ARM_SVE, &vector) == 0)
		state->sve_size = vector.iov_len;
}

int extended_state_save(pid_t tid, struct hp_extended_state *state)
{
	struct iovec vector;

	*state = (struct hp_extended_state){ NULL, 0, NULL, 0 };
	state->bytes = malloc(HP_FPSIMD_SIZE);
	if (!state->bytes) {
		errno = ENOMEM;
		return -1;
	}
	vector.iov_base = state->bytes;
	vector.iov_len = HP_FPSIMD_SIZE;
	if (ptrace(PTRACE_GETREGSET, tid, (void *)NT_PRFPREG, &vector) != 0)
		return -1;
	if (vector.iov_len != HP_FPSIMD_SIZE) {
		errno = EIO;
		return -1;
	}
	state->size = HP_FPSIMD_SIZE;
	save_sve(tid, state);
	return 0;
}

/* The SVE registers last: their low 128 bits are v0-v31, which they set too. */
int extended_state_restore(pid_t tid, const struct hp_extended_state *state)
{
	struct iovec vector = { state->bytes, state->size };

	if (ptrace(PTRACE_SETREGSET, tid, (void *)NT_PRFPREG, &vector) != 0)
		return -1;
	if (!state->sve_size)
		return 0;
	vector = (struct iovec){ state->sve, state->sve_size };
	return ptrace(PTRACE_SETREGSET, tid, (void *)NT_ARM_SVE, &vector) == 0 ? 0 : -1;
}

void extended_state_release(struct hp_extended_state *state)
{
	free(state->bytes);
	free(state->sve);
	*state = (struct hp_extended_state){ NULL, 0, NULL, 0 };
}
