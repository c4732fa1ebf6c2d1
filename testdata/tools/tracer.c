/* tracer.c - holds a process with PTRACE_SEIZE (which does not stop it), so a
 * test can check what hotpatch says when another tracer got there first.
 * Not a target.  Usage: tracer PID.  Prints "tracing pid=PID", then sleeps
 * until it is killed or 120 s pass; the kernel detaches when it exits. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sys/ptrace.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	pid_t pid;

	if (argc != 2) {
		fprintf(stderr, "usage: tracer PID\n");
		return 2;
	}
	pid = (pid_t)atoi(argv[1]);
	if (ptrace(PTRACE_SEIZE, pid, NULL, NULL) == -1) {
		fprintf(stderr, "tracer: cannot seize %d: %s\n", (int)pid, strerror(errno));
		return 1;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("tracing pid=%d\n", (int)pid);
	sleep(120);
	return 0;
}
