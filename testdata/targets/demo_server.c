/* demo_server.c - the live server that `make demo` patches: a line-protocol
 * record server on 127.0.0.1 with a real out-of-bounds read in find_record().
 * It never talks to anything but loopback and never writes outside stdout.
 *
 *     demo_server [PORT]      PORT 0 (the default) lets the kernel choose
 *
 * Prints "ready port N" once it listens, then serves, one line per request:
 *     GET n      ->  "OK <record n>" or "ERR no such record"
 *     anything   ->  "ERR bad request"
 * SIGTERM or SIGINT stops it with exit status 0.
 *
 * The bug: find_record() checks `n > RECORD_COUNT` where it means `>=`, so
 * "GET 4" reads one slot past the table, into the admin token stored right
 * after it.  testdata/patches/demo_fix.c replaces find_record() with a
 * correct one.  find_record() is `noipa` and writes through its arguments so
 * that callers really call it (see DESIGN.md on pure functions). */
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define RECORD_COUNT 4
#define RECORD_SIZE 48
#define WORKER_COUNT 4
#define LINE_MAX_BYTES 128

/* The layout demo_fix.c repeats: the patch is compiled against it. */
struct store {
	char records[RECORD_COUNT][RECORD_SIZE];
	char admin_token[RECORD_SIZE];	/* right after the table: what leaks */
	unsigned long lookups;
};

static struct store store = {
	.records = {
		"ada lovelace, analyst, london",
		"grace hopper, admiral, arlington",
		"alan turing, mathematician, wilmslow",
		"edsger dijkstra, professor, nuenen",
	},
	.admin_token = "SECRET admin-token=7f3a9c2e-do-not-serve",
};

static int listen_fd = -1;

/* Writes "OK <record>" or an error into `out`; returns 0 or -1.
 * BUG: `n > RECORD_COUNT` lets n == RECORD_COUNT through. */
__attribute__((noipa)) int find_record(struct store *records, long n, char *out,
				       size_t size);
__attribute__((noipa)) int find_record(struct store *records, long n, char *out,
				       size_t size)
{
	records->lookups++;
	if (n < 0 || n > RECORD_COUNT) {
		snprintf(out, size, "ERR no such record");
		return -1;
	}
	snprintf(out, size, "OK %s", records->records[n]);
	return 0;
}

static int write_all(int fd, const char *buffer, size_t length)
{
	while (length > 0) {
		ssize_t written = write(fd, buffer, length);

		if (written < 0 && errno == EINTR)
			continue;
		if (written <= 0)
			return -1;
		buffer += written;
		length -= (size_t)written;
	}
	return 0;
}

static void answer(int fd, const char *line)
{
	char reply[LINE_MAX_BYTES + RECORD_SIZE];
	char *end;
	long n;

	if (strncmp(line, "GET ", 4) == 0) {
		errno = 0;
		n = strtol(line + 4, &end, 10);
		if (end != line + 4 && *end == '\0' && errno == 0)
			find_record(&store, n, reply, sizeof(reply) - 1);
		else
			snprintf(reply, sizeof(reply) - 1, "ERR bad request");
	} else {
		snprintf(reply, sizeof(reply) - 1, "ERR bad request");
	}
	strcat(reply, "\n");
	write_all(fd, reply, strlen(reply));
}

/* Serves one connection until the client closes it; one request a line. */
static void serve(int fd)
{
	char buffer[LINE_MAX_BYTES];
	size_t used = 0;

	for (;;) {
		ssize_t got = read(fd, buffer + used, sizeof(buffer) - used);
		char *newline;

		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			return;
		used += (size_t)got;
		while ((newline = memchr(buffer, '\n', used)) != NULL) {
			size_t length = (size_t)(newline - buffer) + 1;

			*newline = '\0';
			if (newline > buffer && newline[-1] == '\r')
				newline[-1] = '\0';
			answer(fd, buffer);
			memmove(buffer, buffer + length, used - length);
			used -= length;
		}
		if (used == sizeof(buffer)) {	/* a line too long: drop it */
			write_all(fd, "ERR bad request\n", 16);
			used = 0;
		}
	}
}

/* Each worker blocks in accept() on the shared socket: the threads spend
 * most of their life in a system call, as real servers do. */
static void *worker(void *unused)
{
	(void)unused;
	for (;;) {
		int fd = accept(listen_fd, NULL, NULL);

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			perror("demo_server: accept");
			exit(1);
		}
		serve(fd);
		close(fd);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	struct sockaddr_in address = { .sin_family = AF_INET };
	socklen_t address_length = sizeof(address);
	pthread_t threads[WORKER_COUNT];
	sigset_t stop_signals;
	int one = 1, signal_number, i;
	long port = argc > 1 ? strtol(argv[1], NULL, 10) : 0;

	if (argc > 2 || port < 0 || port > 65535) {
		fprintf(stderr, "usage: demo_server [PORT]\n");
		return 2;
	}
	/* Workers inherit the blocked set; only main takes SIGTERM/SIGINT. */
	sigemptyset(&stop_signals);
	sigaddset(&stop_signals, SIGTERM);
	sigaddset(&stop_signals, SIGINT);
	pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
	signal(SIGPIPE, SIG_IGN);

	address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	address.sin_port = htons((unsigned short)port);
	listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (listen_fd < 0 ||
	    setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(listen_fd, (struct sockaddr *)&address, sizeof(address)) < 0 ||
	    listen(listen_fd, 64) < 0 ||
	    getsockname(listen_fd, (struct sockaddr *)&address, &address_length) < 0) {
		perror("demo_server: 127.0.0.1");
		return 1;
	}
	for (i = 0; i < WORKER_COUNT; i++) {
		if (pthread_create(&threads[i], NULL, worker, NULL) != 0) {
			fprintf(stderr, "demo_server: cannot start a thread\n");
			return 1;
		}
	}
	printf("ready port %u\n", (unsigned)ntohs(address.sin_port));
	fflush(stdout);

	sigwait(&stop_signals, &signal_number);
	printf("stopped by signal %d after %lu lookups\n", signal_number,
	       store.lookups);
	return 0;
}
