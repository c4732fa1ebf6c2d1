/* smoke.c - the first test `make check-aarch64` runs in the arm64 machine:
 * that ptrace and /proc/PID/mem do there what hotpatch relies on, before
 * any of hotpatch runs.  It never patches anything but its own child.
 *
 * The child's worker thread calls value() (which returns 1) in a loop and
 * reports every change.  The parent seizes that thread while it runs
 * (PTRACE_SEIZE, PTRACE_INTERRUPT), reads its registers (PTRACE_GETREGSET
 * NT_PRSTATUS), overwrites value()'s first instruction, "mov w0, #1", with
 * "mov w0, #2" through /proc/PID/mem, and detaches.  The worker, which has
 * run the old instruction a million times, must then report 2: the kernel
 * keeps the instruction cache coherent for a ptrace or mem write
 * (arm64's copy_to_user_page flushes an executable page; under TCG, QEMU
 * retranslates written code anyway, so only real hardware can tell).
 *
 * Prints TAP ("ok 1 ...", "not ok 1 ...") and exits 0 or 1. */
#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#if !defined(__aarch64__)
#error "smoke.c is the arm64 machine's test: build it with aarch64-linux-gnu-gcc"
#endif

#define MOV_W0_1 0x52800020u /* movz w0, #1 */
#define MOV_W0_2 0x52800040u /* movz w0, #2 */
/* Generous: the machine is emulated (TCG) on a busy host. */
#define REPORT_SECONDS 60

/* The arm64 user_pt_regs, spelled out so that no kernel header is needed. */
struct arm64_regs {
	uint64_t regs[31];
	uint64_t sp;
	uint64_t pc;
	uint64_t pstate;
};

static int report_fd;

__attribute__((noinline, noipa)) static int value(void)
{
	return 1;
}

static void *worker(void *unused)
{
	char line[64];
	int last = 0, now, length;

	(void)unused;
	for (;;) {
		now = value();
		if (now == last)
			continue;
		last = now;
		length = snprintf(line, sizeof(line), "value=%d\n", now);
		if (write(report_fd, line, (size_t)length) != length)
			_exit(3);
	}
	return NULL;
}

/* The child: reports its worker's tid and value()'s address, then the
 * values the worker sees.  Killed by the parent at the end. */
static void run_target(int fd)
{
	pthread_t thread;
	char line[96];
	int length;

	report_fd = fd;
	length = snprintf(line, sizeof(line), "ready value=%p\n", (void *)value);
	if (write(fd, line, (size_t)length) != length)
		_exit(3);
	if (pthread_create(&thread, NULL, worker, NULL) != 0)
		_exit(3);
	for (;;)
		pause();
}

static int failures;

static void check(int number, int ok, const char *what)
{
	printf("%sok %d %s\n", ok ? "" : "not ", number, what);
	fflush(stdout);
	if (!ok)
		failures++;
}

/* Reads one line from fd into line (at most size - 1 bytes), byte by byte
 * so that nothing after it is consumed; 0 on success, -1 at the end of the
 * file, on an error or when SIGALRM interrupts the read. */
static int read_line(int fd, char *line, size_t size)
{
	size_t used = 0;
	char byte;

	while (used + 1 < size) {
		/* EINTR too: the alarm that bounds every wait */
		if (read(fd, &byte, 1) != 1)
			return -1;
		if (byte == '\n')
			break;
		line[used++] = byte;
	}
	line[used] = '\0';
	return 0;
}

/* The worker's tid: the child's thread that is not its main thread, once
 * the child has started it. */
static pid_t worker_tid(pid_t pid)
{
	char path[64];
	struct dirent *entry;
	pid_t tid = -1;
	int attempt;
	DIR *tasks;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	for (attempt = 0; attempt < 1000 && tid < 0; attempt++) {
		tasks = opendir(path);
		if (tasks == NULL)
			return -1;
		while ((entry = readdir(tasks)) != NULL) {
			pid_t found = (pid_t)atoi(entry->d_name);
			if (found > 0 && found != pid)
				tid = found;
		}
		closedir(tasks);
		if (tid < 0)
			usleep(10000);
	}
	return tid;
}

static int mem_access(pid_t pid, uintptr_t address, uint32_t *word, int writing)
{
	char path[64];
	ssize_t done;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/mem", (int)pid);
	fd = open(path, writing ? O_RDWR : O_RDONLY);
	if (fd < 0)
		return -1;
	if (writing)
		done = pwrite(fd, word, sizeof(*word), (off_t)address);
	else
		done = pread(fd, word, sizeof(*word), (off_t)address);
	if (close(fd) != 0)
		return -1;
	return done == (ssize_t)sizeof(*word) ? 0 : -1;
}

/* Waits for the worker to report value=2, skipping other lines. */
static int wait_for_two(int fd)
{
	char line[64];

	alarm(REPORT_SECONDS);
	while (read_line(fd, line, sizeof(line)) == 0) {
		if (strcmp(line, "value=2") == 0) {
			alarm(0);
			return 1;
		}
	}
	alarm(0);
	return 0;
}

static void on_alarm(int signal_number)
{
	(void)signal_number; /* read() fails with EINTR, and wait_for_two gives up */
}

int main(void)
{
	struct sigaction alarm_action = {.sa_handler = on_alarm};
	struct arm64_regs regs;
	struct iovec vector = {&regs, sizeof(regs)};
	char line[96], what[160];
	uintptr_t address = 0;
	uint32_t word = 0;
	int pipe_fds[2], status = 0, seized = 0;
	pid_t pid, tid;
	FILE *scope;

	if (sigaction(SIGALRM, &alarm_action, NULL) != 0 || pipe(pipe_fds) != 0) {
		perror("smoke");
		return 1;
	}
	pid = fork();
	if (pid < 0) {
		perror("smoke: fork");
		return 1;
	}
	if (pid == 0) {
		close(pipe_fds[0]);
		run_target(pipe_fds[1]);
	}
	close(pipe_fds[1]);
	printf("1..7\n");
	scope = fopen("/proc/sys/kernel/yama/ptrace_scope", "r");
	if (scope != NULL) {
		if (fgets(line, sizeof(line), scope) != NULL)
			printf("# kernel.yama.ptrace_scope = %s", line);
		fclose(scope);
	} else {
		printf("# no Yama (kernel.yama.ptrace_scope absent)\n");
	}

	alarm(REPORT_SECONDS);
	check(1, read_line(pipe_fds[0], line, sizeof(line)) == 0 &&
			 sscanf(line, "ready value=%lx", (unsigned long *)&address) == 1,
	      "the target starts and names value()");
	alarm(0);
	tid = address != 0 ? worker_tid(pid) : -1;
	seized = tid > 0 && ptrace(PTRACE_SEIZE, tid, NULL, NULL) == 0;
	snprintf(what, sizeof(what), "PTRACE_SEIZE of the running worker thread %d (%s)", (int)tid,
		 seized ? "done" : strerror(errno));
	check(2, seized, what);
	check(3,
	      seized && ptrace(PTRACE_INTERRUPT, tid, NULL, NULL) == 0 &&
		      waitpid(tid, &status, __WALL) == tid && WIFSTOPPED(status) &&
		      (status >> 16) == PTRACE_EVENT_STOP,
	      "PTRACE_INTERRUPT stops it (PTRACE_EVENT_STOP)");
	memset(&regs, 0, sizeof(regs));
	check(4,
	      seized && ptrace(PTRACE_GETREGSET, tid, (void *)NT_PRSTATUS, &vector) == 0 &&
		      vector.iov_len == sizeof(regs) && regs.pc != 0 && regs.sp != 0,
	      "PTRACE_GETREGSET NT_PRSTATUS reads its registers");
	printf("# pc=%#llx sp=%#llx value()=%#lx\n", (unsigned long long)regs.pc,
	       (unsigned long long)regs.sp, (unsigned long)address);
	check(5, mem_access(pid, address, &word, 0) == 0 && word == MOV_W0_1,
	      "/proc/PID/mem reads value()'s first instruction, mov w0, #1");
	word = MOV_W0_2;
	check(6, mem_access(pid, address, &word, 1) == 0 && mem_access(pid, address, &word, 0) == 0 &&
			 word == MOV_W0_2,
	      "/proc/PID/mem writes mov w0, #2 over it");
	if (seized && ptrace(PTRACE_DETACH, tid, NULL, NULL) != 0)
		perror("smoke: PTRACE_DETACH");
	check(7, wait_for_two(pipe_fds[0]), "after the detach the worker's value() returns 2");
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return failures == 0 ? 0 : 1;
}
