/* audit.c - the audit record: one line of key=value pairs for every apply
 * and revert that reaches the engine, and every startup enable or disable
 * (it changes what every process started later loads), done or failed, sent to syslog with
 * facility LOG_AUTHPRIV (journald keeps it).  A value that is not plain is
 * quoted and escaped, so no file or process name can forge a field or a
 * line.  Only the test build may send it to the unix datagram socket named
 * by HOTPATCH_AUDIT_SOCKET instead; the release build always uses syslog. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <syslog.h>
#include <unistd.h>

#include "cmd.h"

#define RECORD_MAX 2048
#define TRUNCATED " truncated=yes"
#define VALUE_MAX 512	/* bytes of one value taken, before escaping */

struct record {
	char text[RECORD_MAX];
	size_t used;
	bool truncated;
};

static void append(struct record *record, const char *text, size_t length)
{
	/* Room is kept for the mark of a truncated record. */
	if (record->truncated ||
	    record->used + length + sizeof(TRUNCATED) > sizeof(record->text)) {
		record->truncated = true;
		return;
	}
	memcpy(record->text + record->used, text, length);
	record->used += length;
	record->text[record->used] = '\0';
}

static bool plain(const char *value)
{
	if (!value[0])
		return false;
	for (const char *c = value; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		      (*c >= '0' && *c <= '9') || strchr("._/:@+,-", *c)))
			return false;
	return true;
}

/* key=value, or key="..." with \", \\ and \xHH for anything not printable. */
static void field(struct record *record, const char *key, const char *value)
{
	char escaped[4 * VALUE_MAX + 3];
	size_t used = 0;

	if (record->used)
		append(record, " ", 1);
	append(record, key, strlen(key));
	append(record, "=", 1);
	if (plain(value) && strlen(value) <= VALUE_MAX) {
		append(record, value, strlen(value));
		return;
	}
	escaped[used++] = '"';
	for (size_t i = 0; value[i] && i < VALUE_MAX; i++) {
		unsigned char c = (unsigned char)value[i];

		if (c == '"' || c == '\\') {
			escaped[used++] = '\\';
			escaped[used++] = (char)c;
		} else if (c < 0x20 || c >= 0x7f) {
			used += (size_t)snprintf(escaped + used, sizeof(escaped) - used, "\\x%02x", c);
		} else {
			escaped[used++] = (char)c;
		}
	}
	escaped[used++] = '"';
	append(record, escaped, used);
}

static void number(struct record *record, const char *key, long long value)
{
	char text[32];

	snprintf(text, sizeof(text), "%lld", value);
	field(record, key, text);
}

/* Reads a small /proc file's first line; "" when it cannot. */
static void read_line(const char *path, char *text, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t got = fd >= 0 ? read(fd, text, size - 1) : -1;

	if (fd >= 0)
		close(fd);
	text[got > 0 ? got : 0] = '\0';
	text[strcspn(text, "\n")] = '\0';
}

void audit_target_read(int pid, struct audit_target *target)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/comm", pid);
	read_line(path, target->comm, sizeof(target->comm));
}

static const char *result_word(int exit_code)
{
	static const char *const words[] = { "ok", "failed", "usage", "busy", "refused" };

	return exit_code >= 0 && exit_code <= 4 ? words[exit_code] : "failed";
}

static void send_record(const char *text, bool failed)
{
#ifdef HP_FAULT_INJECTION
	const char *socket_path = getenv("HOTPATCH_AUDIT_SOCKET");

	if (socket_path) {
		struct sockaddr_un address = { .sun_family = AF_UNIX };
		int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

		snprintf(address.sun_path, sizeof(address.sun_path), "%s", socket_path);
		if (fd < 0 || sendto(fd, text, strlen(text), 0, (const struct sockaddr *)&address,
				     sizeof(address)) < 0)
			fprintf(stderr, "hotpatch: cannot send the audit record to %s: %s\n",
				socket_path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return;
	}
#endif
	openlog("hotpatch", LOG_PID, LOG_AUTHPRIV);
	syslog(LOG_AUTHPRIV | (failed ? LOG_WARNING : LOG_NOTICE), "%s", text);
	closelog();
}

/* Sent before the engine touches the target: a command killed at work
 * leaves this record with no result after it, and the next command's record
 * names it (interrupted=, interrupted_pid=) with what it took back. */
void audit_started(const char *command, const struct hp_request *request,
		   const struct audit_target *target)
{
	struct record record = { .used = 0 };

	field(&record, "command", command);
	field(&record, "result", "started");
	number(&record, "uid", (long long)getuid());
	number(&record, "pid", (long long)request->pid);
	field(&record, "comm", target->comm);
	field(&record, "patch", request->patch_path ? request->patch_path
			       : request->patch_name ? request->patch_name : "");
	number(&record, "hotpatch_pid", (long long)getpid());
	if (record.truncated)
		strcat(record.text, TRUNCATED);
	send_record(record.text, false);
}

static void leftover_fields(struct record *record, const struct hp_result *result)
{
	size_t reclaimed = 0;

	if (result->interrupted.command[0]) {
		field(record, "interrupted", result->interrupted.command);
		number(record, "interrupted_pid", (long long)result->interrupted.pid);
	}
	if (!result->leftover_count)
		return;
	for (size_t i = 0; i < result->leftover_count; i++)
		reclaimed += result->leftovers[i].reclaimed;
	number(record, "reclaimed", (long long)reclaimed);
	number(record, "leftovers", (long long)(result->leftover_count - reclaimed));
}

/* command=, result=, exit=, kind= (when it failed), uid=, loginuid=. */
static void outcome_fields(struct record *record, const char *command,
			   const struct hp_error *error, int exit_code)
{
	char login[32];

	read_line("/proc/self/loginuid", login, sizeof(login));
	field(record, "command", command);
	field(record, "result", result_word(exit_code));
	number(record, "exit", exit_code);
	if (exit_code != 0)
		field(record, "kind", hp_error_kind_of(error));
	number(record, "uid", (long long)getuid());
	/* 4294967295: no login session (a daemon, or no pam_loginuid). */
	field(record, "loginuid", login[0] && strcmp(login, "4294967295") ? login : "unset");
}

void audit_startup(const char *action, const struct hp_startup_result *result,
		   const struct hp_error *error, int exit_code)
{
	struct record record = { .used = 0 };

	outcome_fields(&record, "startup", error, exit_code);
	field(&record, "action", action);
	field(&record, "file", result->file);
	field(&record, "loader", result->loader);
	field(&record, "changed", result->changed ? "yes" : "no");
	number(&record, "hotpatch_pid", (long long)getpid());
	if (exit_code != 0)
		field(&record, "message", error->message);
	if (record.truncated)
		strcat(record.text, TRUNCATED);
	send_record(record.text, exit_code != 0);
}

void audit_command(const char *command, const struct hp_request *request,
		   const struct audit_target *target, const struct hp_result *result,
		   const struct hp_error *error, int exit_code)
{
	const struct hp_patch_report *applied = result->patch_count ? &result->patches[0] : NULL;
	const bool is_apply = strcmp(command, "apply") == 0;
	struct record record = { .used = 0 };
	char message[2 * HP_TEXT_MAX + 64];
	const char *path = is_apply ? request->patch_path : applied ? applied->path : "";
	const char *name = applied ? applied->name
			   : is_apply ? result->patch_file.name
			   : request->patch_name ? request->patch_name : "";

	if (exit_code == 0)
		snprintf(message, sizeof(message), "%s %s in pid %d",
			 is_apply ? "applied" : "reverted", name, (int)request->pid);
	else
		snprintf(message, sizeof(message), "%s", error->message);
	outcome_fields(&record, command, error, exit_code);
	number(&record, "pid", (long long)request->pid);
	field(&record, "comm", target->comm);
	field(&record, "patch", path ? path : "");
	field(&record, "name", name);
	if (is_apply) {
		field(&record, "sha256", result->patch_file.sha256);
		field(&record, "signer", result->patch_file.signer[0] ? result->patch_file.signer
								     : "none");
	}
	number(&record, "hotpatch_pid", (long long)getpid());
	leftover_fields(&record, result);
	field(&record, "message", message);
	if (record.truncated)
		strcat(record.text, TRUNCATED);
	send_record(record.text, exit_code != 0);
}
