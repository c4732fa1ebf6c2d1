/* fanout.c - one command over many processes (several --pid, --exe, or
 * --object): each process is handled by a child of its own, a few at a
 * time, so that one process's stop never waits for another's and one
 * failure never stops the others.  A child prints its one-process JSON
 * document into a memory file; the parent gathers them, in the order the
 * processes were chosen, into {"processes": [...]} or a line per process. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cmd.h"

/* Processes worked on at once: one per processor, at most eight.  More
 * children than processors would make each stop longer, not the command
 * shorter: a child holding its process stopped then shares a processor with
 * others parsing ELF files (measured by bench/many.sh on 2 processors, 10
 * processes: the longest stop 9-13 ms with eight at once, 2 ms with two, the
 * wall time the same). */
#define PARALLEL_MAX 8

static size_t parallel_limit(void)
{
	long processors = sysconf(_SC_NPROCESSORS_ONLN);

	if (processors < 1)
		return 1;
	return processors < PARALLEL_MAX ? (size_t)processors : PARALLEL_MAX;
}

struct worker {
	pid_t target;
	pid_t child;		/* 0 before it starts and after it ended */
	int output_fd;		/* memfd holding the child's document */
	json_t *document;
	int exit_code;
	bool named;		/* given with --pid, not found by --exe/--object */
};

/* In the child: the one-process command, its JSON into `fd`. */
static void run_child(const struct invocation *shared, struct output *output, pid_t target,
		      int fd)
{
	struct invocation invocation = *shared;
	struct outcome outcome = { 0 };
	struct hp_error error = { 0 };
	int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
	int status, code;

	/* The parent speaks for everyone; a child's prose would interleave. */
	if (dup2(fd, STDOUT_FILENO) < 0 || null < 0 || dup2(null, STDERR_FILENO) < 0)
		_exit(1);
	invocation.request.pid = target;
	invocation.selector.pid_count = 1;
	output->json = true;
	output->pid = target;
	error.pid = target;
	status = invocation.command->run(&invocation, &outcome, &error);
	code = exit_code_for(status);
	if (status == HP_OK)
		invocation.command->print_json(output, &invocation, &outcome);
	else
		print_failure(output, &error, code);
	fflush(stdout);
	_exit(code);
}

static int start_worker(struct worker *worker, const struct invocation *invocation,
			struct output *output)
{
	worker->output_fd = memfd_create("hotpatch-output", MFD_CLOEXEC);
	if (worker->output_fd < 0)
		return -1;
	worker->child = fork();
	if (worker->child == 0)
		run_child(invocation, output, worker->target, worker->output_fd);
	return worker->child > 0 ? 0 : -1;
}

/* A document for a process whose child could not say: it never started,
 * or ended without a word (killed). */
static json_t *document_without_child(const struct output *output, pid_t target,
				      const char *kind, const char *message)
{
	return json_pack("{s:s, s:b, s:i, s:i, s:{s:s, s:s}}", "command", output->command, "ok",
			 0, "exit_code", 1, "pid", (int)target, "error", "kind", kind, "message",
			 message);
}

static void collect(struct worker *worker, int wait_status, const struct output *output)
{
	json_error_t ignored;
	char message[128];

	worker->child = 0;
	if (lseek(worker->output_fd, 0, SEEK_SET) == 0)
		worker->document = json_loadfd(worker->output_fd, 0, &ignored);
	close(worker->output_fd);
	worker->output_fd = -1;
	worker->exit_code = WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : 1;
	if (worker->document && json_is_object(worker->document))
		return;
	json_decref(worker->document);
	snprintf(message, sizeof(message), "the hotpatch worker for pid %d ended %s %d",
		 (int)worker->target, WIFSIGNALED(wait_status) ? "by signal" : "with status",
		 WIFSIGNALED(wait_status) ? WTERMSIG(wait_status) : WEXITSTATUS(wait_status));
	worker->document = document_without_child(output, worker->target, "failed", message);
	worker->exit_code = 1;
}

static struct worker *find_child(struct worker *workers, size_t count, pid_t child)
{
	for (size_t i = 0; i < count; i++)
		if (workers[i].child == child)
			return &workers[i];
	return NULL;
}

/* Starts, waits for and collects every worker, at most PARALLEL_MAX at once.
 * On SIGINT/SIGTERM the running children are told (they roll back) and no
 * new one starts. */
static void run_all(struct worker *workers, size_t count, const struct invocation *invocation,
		    struct output *output, volatile const int *interrupted)
{
	size_t next = 0, running = 0, limit = parallel_limit();
	bool told = false;

	while (next < count || running > 0) {
		int wait_status;
		pid_t child;

		while (!*interrupted && next < count && running < limit) {
			if (start_worker(&workers[next], invocation, output) == 0)
				running++;
			else
				workers[next].document = document_without_child(
					output, workers[next].target, "failed",
					"cannot start a hotpatch worker for this process");
			next++;
		}
		if (*interrupted && !told) {
			for (size_t i = 0; i < count; i++)
				if (workers[i].child > 0)
					kill(workers[i].child, SIGTERM);
			told = true;
		}
		if (running == 0)
			break;
		child = waitpid(-1, &wait_status, 0);
		if (child < 0 && errno == EINTR)
			continue;
		if (child < 0)
			break;
		if (find_child(workers, count, child)) {
			collect(find_child(workers, count, child), wait_status, output);
			running--;
		}
	}
	for (size_t i = next; i < count; i++)
		workers[i].document = document_without_child(output, workers[i].target,
							      "interrupted",
							      "not started: hotpatch was interrupted");
}

/* A process found by --exe or --object that exited meanwhile is reported,
 * but fails nothing; a pid named with --pid must be there. */
static bool counts_as_failure(const struct worker *worker, const char *harmless_kind)
{
	const char *kind = json_string_value(
		json_object_get(json_object_get(worker->document, "error"), "kind"));

	if (worker->exit_code == 0)
		return false;
	if (kind && harmless_kind && strcmp(kind, harmless_kind) == 0)
		return false;
	return !kind || worker->named || (strcmp(kind, "no_process") != 0 && strcmp(kind, "target_exited") != 0);
}

/* 0 when every process succeeded (or none was chosen), the failures' code
 * when they share one, else 1. */
static int common_exit_code(const struct worker *workers, size_t count, const char *harmless_kind)
{
	int code = 0;

	for (size_t i = 0; i < count; i++) {
		if (!counts_as_failure(&workers[i], harmless_kind))
			continue;
		if (code != 0 && code != workers[i].exit_code)
			return 1;
		code = workers[i].exit_code;
	}
	return code;
}

/* "pid 4242: applied fix (5 threads, stopped 212 us)" and the like. */
static void print_process_line(const char *command, json_t *document)
{
	json_t *error = json_object_get(document, "error");
	json_t *patch = json_object_get(document, "patch");
	const char *name = json_string_value(json_object_get(patch, "name"));
	const char *state = json_string_value(json_object_get(patch, "state"));
	char clean[2 * HP_TEXT_MAX], hint[HP_TEXT_MAX];

	printf("pid %d: ", (int)json_integer_value(json_object_get(document, "pid")));
	if (error) {
		const char *message = json_string_value(json_object_get(error, "message"));
		const char *advice = json_string_value(json_object_get(error, "hint"));

		printf("failed (%s, exit %d): %s%s%s\n",
		       json_string_value(json_object_get(error, "kind")),
		       (int)json_integer_value(json_object_get(document, "exit_code")),
		       one_line(message ? message : "", clean, sizeof(clean)), advice ? "; " : "",
		       advice ? one_line(advice, hint, sizeof(hint)) : "");
	} else if (strcmp(command, "list") == 0) {
		size_t count = json_array_size(json_object_get(document, "patches"));

		printf("%zu patch%s applied", count, count == 1 ? "" : "es");
		for (size_t i = 0; i < count; i++)
			printf("%s%s", i ? ", " : ": ",
			       one_line(json_string_value(json_object_get(
						json_array_get(json_object_get(document, "patches"), i),
						"name")) ?: "",
					clean, sizeof(clean)));
		putchar('\n');
	} else if (strcmp(command, "check") == 0) {
		printf("patch %s fits\n", one_line(name ? name : "", clean, sizeof(clean)));
	} else {
		int threads = (int)json_integer_value(json_object_get(document, "threads"));

		printf("%s %s (%d thread%s, stopped %.0f us)\n",
		       state && strcmp(state, "already applied") == 0 ? "already applied"
		       : strcmp(command, "apply") == 0		      ? "applied"
								      : "reverted",
		       one_line(name ? name : "", clean, sizeof(clean)), threads,
		       threads == 1 ? "" : "s",
		       json_number_value(json_object_get(document, "blackout_us")));
	}
}

void fanout_print_lines(const char *command, struct json_t *processes)
{
	for (size_t i = 0; i < json_array_size(processes); i++)
		print_process_line(command, json_array_get(processes, i));
}

static void print_outcome(const struct output *output, json_t *processes, int exit_code)
{
	if (!output->json) {
		fanout_print_lines(output->command, processes);
		if (json_array_size(processes) == 0)
			printf("no process matched\n");
		if (exit_code != 0)
			fprintf(stderr, "hotpatch: %s failed for some processes (exit %d); see above\n",
				output->command, exit_code);
		return;
	}
	json_emit(json_pack("{s:s, s:b, s:i, s:O}", "command", output->command, "ok",
			    exit_code == 0, "exit_code", exit_code, "processes", processes));
}

int fanout_processes(const struct invocation *invocation, const pid_t *targets, size_t count,
		     size_t named, const char *harmless_kind, struct output *output,
		     volatile const int *interrupted, struct json_t **processes)
{
	struct worker *workers = calloc(count ? count : 1, sizeof(*workers));
	int exit_code;

	*processes = json_array();
	if (!workers || !*processes) {
		free(workers);
		return usage_error(output, "out of memory for %zu processes", count);
	}
	for (size_t i = 0; i < count; i++)
		workers[i] = (struct worker){ .target = targets[i], .output_fd = -1,
					      .named = i < named };
	fflush(stdout);	/* nothing buffered may be printed twice by a child */
	run_all(workers, count, invocation, output, interrupted);
	exit_code = common_exit_code(workers, count, harmless_kind);
	for (size_t i = 0; i < count; i++)
		json_array_append_new(*processes, workers[i].document);
	free(workers);
	return exit_code;
}

int fanout_run(const struct invocation *invocation, struct output *output,
	       volatile const int *interrupted)
{
	struct hp_error error = { 0 };
	json_t *processes = NULL;
	pid_t *targets = NULL;
	size_t count = 0;
	int status = hp_select_processes(&invocation->selector, &targets, &count, &error);
	int exit_code;

	if (status != HP_OK) {
		print_failure(output, &error, exit_code_for(status));
		return exit_code_for(status);
	}
	exit_code = fanout_processes(invocation, targets, count, invocation->selector.pid_count,
				     NULL, output, interrupted, &processes);
	if (processes)
		print_outcome(output, processes, exit_code);
	json_decref(processes);
	free(targets);
	return exit_code;
}
