/* remote_self.c - the remote calls of remote_call.c when the process to
 * work on is the one running the engine (the preloaded loader applying an
 * installed patch): nothing to trace, a system call is a system call and a
 * function call a call.  The rest of the engine stays as it is, writing
 * through /proc/self/mem as it writes through /proc/PID/mem. */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "runtime/threads.h"

void remote_begin_self(struct hp_remote *remote)
{
	memset(remote, 0, sizeof(*remote));
	remote->pid = getpid();
	remote->tid = 0;	/* no stopped thread: writes go through /proc/self/mem */
	remote->active = true;
	remote->in_process = true;
}

/* The raw kernel convention (-errno), as a borrowed thread returns it. */
int remote_self_syscall(long number, const uint64_t arguments[6], int64_t *result)
{
	long value = syscall(number, arguments[0], arguments[1], arguments[2], arguments[3],
			     arguments[4], arguments[5]);

	*result = value == -1 ? -(int64_t)errno : (int64_t)value;
	return HP_OK;
}

typedef uint64_t (*call6)(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t, uint64_t);

/* `function` is an address the engine resolved in this very process
 * (dlopen, dlclose, dlerror): calling it is what a borrowed thread does. */
int remote_self_call(uint64_t function, const uint64_t arguments[6], uint64_t *result)
{
	call6 target = (call6)(uintptr_t)function;

	*result = target(arguments[0], arguments[1], arguments[2], arguments[3], arguments[4],
			 arguments[5]);
	return HP_OK;
}
