/* build_run.c - running the compiler, patch and the linker for `hotpatch
 * build`: argv vectors only (no shell here; the one shell, for the user's own
 * compile command, is asked for by the caller as argv), output captured up
 * to a bound and the rest drained, so a chatty compiler cannot block. */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "build/build.h"

extern char **environ;

static void collect(int fd, char *output, size_t size)
{
	size_t used = 0;
	char scratch[4096];

	for (;;) {
		char *into = used + 1 < size ? output + used : scratch;
		size_t room = used + 1 < size ? size - 1 - used : sizeof(scratch);
		ssize_t got = read(fd, into, room);

		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			break;
		if (into != scratch)
			used += (size_t)got;
	}
	/* Trailing newlines would end the error's detail with blank lines. */
	while (used > 0 && (output[used - 1] == '\n' || output[used - 1] == ' '))
		used--;
	if (size > 0)
		output[used] = '\0';
}

static int wait_for(pid_t child, int *exit_status, struct hp_error *error)
{
	int status;

	while (waitpid(child, &status, 0) < 0)
		if (errno != EINTR)
			return hp_fail_errno(error, HP_FAILED, "cannot wait for a child process");
	*exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
	return HP_OK;
}

int build_run(const char *const argv[], const char *directory, char *output, size_t size,
	      int *exit_status, struct hp_error *error)
{
	posix_spawn_file_actions_t actions;
	int pipe_fds[2] = { -1, -1 };
	pid_t child = -1;
	int status = HP_OK, spawn_error;

	if (pipe2(pipe_fds, O_CLOEXEC) != 0)
		return hp_fail_errno(error, HP_FAILED, "cannot make a pipe for %s", argv[0]);
	if (posix_spawn_file_actions_init(&actions) != 0) {
		close(pipe_fds[0]);
		close(pipe_fds[1]);
		return hp_fail(error, HP_FAILED, "out of memory running %s", argv[0]);
	}
	spawn_error = posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
	if (!spawn_error)
		spawn_error = posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], 1);
	if (!spawn_error)
		spawn_error = posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], 2);
	if (!spawn_error && directory)
		spawn_error = posix_spawn_file_actions_addchdir_np(&actions, directory);
	if (!spawn_error)
		spawn_error = posix_spawnp(&child, argv[0], &actions, NULL, (char *const *)argv,
					   environ);
	posix_spawn_file_actions_destroy(&actions);
	close(pipe_fds[1]);
	if (spawn_error) {
		errno = spawn_error;
		status = hp_fail_errno(error, HP_FAILED, "cannot run %s", argv[0]);
	} else {
		collect(pipe_fds[0], output, size);
		status = wait_for(child, exit_status, error);
	}
	close(pipe_fds[0]);
	return status;
}
