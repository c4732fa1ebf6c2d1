/* blocking.c - every thread sits in a blocking system call, so whichever
 * thread hotpatch borrows to load a patch is interrupted in one.  After the
 * patch, the test wakes each call and this program prints what it returned.
 * Any EINTR, error, short, merged or repeated message, or a nanosleep cut
 * short, is printed as a line starting with "ERROR".
 *
 * Usage: blocking DIR    (creates DIR/read.fifo, DIR/epoll.fifo, DIR/ctl.fifo)
 * Each message the test sends is one line "msg K" with K = 1, 2, ... per
 * channel, written in one write(2).  Output lines:
 *   ready pid=PID port=PORT          (PORT: loopback port the accept thread uses)
 *   read returned BYTES data=msg K
 *   accept returned data=msg K
 *   epoll_wait returned 1 data=msg K
 *   nanosleep returned 0 after_ms=MS (each sleep is 2000 ms)
 *   cond_wait woke value=V           (after "cond" on ctl.fifo)
 *   futex woke value=V               (after "futex" on ctl.fifo)
 *   ping K -> R                      (after "ping K" on ctl.fifo; answer(): R = K + 100,
 *                                     the answer_fix patch: R = K + 200)
 *   ERROR ...                        (never, if the target survives us) */
#include "target.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#define SLEEP_MS 2000

static pthread_mutex_t cond_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int cond_value;
static atomic_int futex_word;
static int listener = -1;
static unsigned long answers;

__attribute__((noipa)) int answer(int value)
{
	answers++;
	return value + 100;
}

static int open_fifo(const char *directory, const char *name)
{
	char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof path, "%s/%s", directory, name);
	if (mkfifo(path, 0600) == -1 && errno != EEXIST) {
		printf("ERROR mkfifo %s: %s\n", path, strerror(errno));
		exit(1);
	}
	/* Read-write, so that opening does not wait for a writer. */
	fd = open(path, O_RDWR);
	if (fd == -1) {
		printf("ERROR open %s: %s\n", path, strerror(errno));
		exit(1);
	}
	return fd;
}

/* Turns the newlines of `data` that are not its last byte into '|', so that a
 * merged message prints on one line. */
static void flatten(char *data, ssize_t length)
{
	for (ssize_t i = 0; i + 1 < length; i++)
		if (data[i] == '\n')
			data[i] = '|';
}

/* Checks that `data` is exactly one line "msg K" with K one more than the last. */
static void check_message(const char *channel, const char *data, ssize_t length, int *last)
{
	int number;
	char tail;

	if (length <= 0 || data[length - 1] != '\n' || memchr(data, '\n', length) != data + length - 1 ||
	    sscanf(data, "msg %d%c", &number, &tail) != 2 || tail != '\n') {
		printf("ERROR %s: not exactly one message: '%.*s'\n", channel,
		       (int)(length > 0 && data[length - 1] == '\n' ? length - 1 : length), data);
		return;
	}
	if (number != *last + 1)
		printf("ERROR %s: message %d after %d (lost or repeated)\n", channel, number, *last);
	*last = number;
}

static void *reader(void *argument)
{
	int fd = *(int *)argument, last = 0;
	char buffer[256];

	for (;;) {
		ssize_t length = read(fd, buffer, sizeof buffer - 1);

		if (length < 0) {
			printf("ERROR read returned -1: %s\n", strerror(errno));
			sleep_ms(100);
			continue;
		}
		buffer[length] = '\0';
		flatten(buffer, length);
		check_message("read", buffer, length, &last);
		printf("read returned %zd data=%.*s\n", length, (int)(length > 0 ? length - 1 : 0), buffer);
	}
	return NULL;
}

static void *acceptor(void *argument)
{
	int last = 0;

	(void)argument;
	for (;;) {
		char buffer[256];
		ssize_t length = 0, got;
		int connection = accept(listener, NULL, NULL);

		if (connection < 0) {
			printf("ERROR accept returned -1: %s\n", strerror(errno));
			sleep_ms(100);
			continue;
		}
		/* A message may arrive in pieces over TCP: read up to the newline. */
		while (length < (ssize_t)sizeof buffer - 1 &&
		       (got = read(connection, buffer + length, sizeof buffer - 1 - length)) > 0) {
			length += got;
			if (buffer[length - 1] == '\n')
				break;
		}
		close(connection);
		buffer[length] = '\0';
		flatten(buffer, length);
		check_message("accept", buffer, length, &last);
		printf("accept returned data=%.*s\n", (int)(length > 0 ? length - 1 : 0), buffer);
	}
	return NULL;
}

static void *epoller(void *argument)
{
	int fd = *(int *)argument, last = 0;
	int epoll = epoll_create1(0);
	struct epoll_event event = { .events = EPOLLIN, .data.fd = fd };

	epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &event);
	for (;;) {
		struct epoll_event ready[4];
		int count = epoll_wait(epoll, ready, 4, -1);
		char buffer[256];
		ssize_t length;

		if (count <= 0) {
			printf("ERROR epoll_wait returned %d: %s\n", count, count < 0 ? strerror(errno) : "nothing ready");
			sleep_ms(100);
			continue;
		}
		length = read(fd, buffer, sizeof buffer - 1);
		if (length < 0)
			length = 0;
		buffer[length] = '\0';
		flatten(buffer, length);
		check_message("epoll", buffer, length, &last);
		printf("epoll_wait returned %d data=%.*s\n", count, (int)(length > 0 ? length - 1 : 0), buffer);
	}
	return NULL;
}

static void *sleeper(void *argument)
{
	(void)argument;
	for (;;) {
		struct timespec pause = { SLEEP_MS / 1000, (SLEEP_MS % 1000) * 1000000L };
		long start = now_ms(), slept;
		int result = nanosleep(&pause, NULL);

		slept = now_ms() - start;
		if (result != 0)
			printf("ERROR nanosleep returned %d: %s after_ms=%ld\n", result, strerror(errno), slept);
		else if (slept < SLEEP_MS)
			printf("ERROR nanosleep returned 0 after only %ld of %d ms\n", slept, SLEEP_MS);
		else
			printf("nanosleep returned 0 after_ms=%ld\n", slept);
	}
	return NULL;
}

static void *cond_waiter(void *argument)
{
	int seen = 0;

	(void)argument;
	pthread_mutex_lock(&cond_lock);
	for (;;) {
		while (cond_value == seen) {
			int result = pthread_cond_wait(&cond, &cond_lock);

			if (result != 0)
				printf("ERROR pthread_cond_wait returned %d\n", result);
		}
		seen = cond_value;
		printf("cond_wait woke value=%d\n", seen);
	}
	return NULL;
}

static void *futex_waiter(void *argument)
{
	int seen = 0;

	(void)argument;
	for (;;) {
		while (atomic_load(&futex_word) == seen) {
			long result = syscall(SYS_futex, &futex_word, FUTEX_WAIT_PRIVATE, seen, NULL, NULL, 0);

			if (result == -1 && errno != EAGAIN)
				printf("ERROR futex wait returned -1: %s\n", strerror(errno));
		}
		seen = atomic_load(&futex_word);
		printf("futex woke value=%d\n", seen);
	}
	return NULL;
}

static void command(const char *line)
{
	int number;

	if (strcmp(line, "cond") == 0) {
		pthread_mutex_lock(&cond_lock);
		cond_value++;
		pthread_cond_signal(&cond);
		pthread_mutex_unlock(&cond_lock);
	} else if (strcmp(line, "futex") == 0) {
		atomic_fetch_add(&futex_word, 1);
		syscall(SYS_futex, &futex_word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
	} else if (sscanf(line, "ping %d", &number) == 1) {
		printf("ping %d -> %d\n", number, answer(number));
	} else if (strcmp(line, "quit") == 0) {
		exit(0);
	} else {
		printf("ERROR unknown command '%s'\n", line);
	}
}

int main(int argc, char **argv)
{
	struct sockaddr_in address = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t address_size = sizeof address;
	static int read_fd, epoll_fd;
	int control;
	char pending[512];
	size_t used = 0;
	pthread_t thread;

	target_start();
	if (argc != 2) {
		fprintf(stderr, "usage: blocking DIR\n");
		return 2;
	}
	read_fd = open_fifo(argv[1], "read.fifo");
	epoll_fd = open_fifo(argv[1], "epoll.fifo");
	control = open_fifo(argv[1], "ctl.fifo");
	listener = socket(AF_INET, SOCK_STREAM, 0);
	if (listener < 0 || bind(listener, (struct sockaddr *)&address, sizeof address) != 0 ||
	    listen(listener, 16) != 0 || getsockname(listener, (struct sockaddr *)&address, &address_size) != 0) {
		printf("ERROR listen on the loopback: %s\n", strerror(errno));
		return 1;
	}
	pthread_create(&thread, NULL, reader, &read_fd);
	pthread_create(&thread, NULL, acceptor, NULL);
	pthread_create(&thread, NULL, epoller, &epoll_fd);
	pthread_create(&thread, NULL, sleeper, NULL);
	pthread_create(&thread, NULL, cond_waiter, NULL);
	pthread_create(&thread, NULL, futex_waiter, NULL);
	printf("ready pid=%d port=%d\n", (int)getpid(), ntohs(address.sin_port));

	/* The main thread blocks in read(2) on the control fifo. */
	for (;;) {
		ssize_t length = read(control, pending + used, sizeof pending - 1 - used);
		char *line, *newline;

		if (length <= 0) {
			printf("ERROR control read returned %zd: %s\n", length, length < 0 ? strerror(errno) : "end of file");
			sleep_ms(100);
			continue;
		}
		used += length;
		pending[used] = '\0';
		line = pending;
		while ((newline = strchr(line, '\n')) != NULL) {
			*newline = '\0';
			command(line);
			line = newline + 1;
		}
		used = strlen(line);
		memmove(pending, line, used);
		if (used == sizeof pending - 1)
			used = 0;
	}
}
