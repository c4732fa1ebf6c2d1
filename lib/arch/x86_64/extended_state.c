/* extended_state.c - a thread's x86-64 FPU/SSE/AVX state, saved whole
 * (the XSAVE area through NT_X86_XSTATE, or the legacy FXSAVE area on a
 * processor without XSAVE) and put back exactly. */
#include <elf.h>
#include <errno.h>
#include <stdlib.h>
#include <sys/ptrace.h>
#include <sys/uio.h>

#include "arch/arch.h"

#define XSTATE_BUFFER 16384

int extended_state_save(pid_t tid, struct hp_extended_state *state)
{
	struct iovec vector;

	state->size = 0;
	state->bytes = malloc(XSTATE_BUFFER);
	if (!state->bytes) {
		errno = ENOMEM;
		return -1;
	}
	vector.iov_base = state->bytes;
	vector.iov_len = XSTATE_BUFFER;
	if (ptrace(PTRACE_GETREGSET, tid, (void *)NT_X86_XSTATE, &vector) == 0) {
		state->size = vector.iov_len;
		return 0;
	}
	/* No XSAVE: the legacy FPU/SSE area is all there is. */
	return ptrace(PTRACE_GETFPREGS, tid, NULL, state->bytes) == 0 ? 0 : -1;
}

int extended_state_restore(pid_t tid, const struct hp_extended_state *state)
{
	struct iovec vector = { state->bytes, state->size };

	if (state->size)
		return ptrace(PTRACE_SETREGSET, tid, (void *)NT_X86_XSTATE, &vector) == 0 ? 0 : -1;
	return ptrace(PTRACE_SETFPREGS, tid, NULL, state->bytes) == 0 ? 0 : -1;
}

void extended_state_release(struct hp_extended_state *state)
{
	free(state->bytes);
	state->bytes = NULL;
	state->size = 0;
}
