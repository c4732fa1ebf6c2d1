/* trust_open.c - opening a file whose bytes we are about to trust (a patch,
 * its signature, a public key) so that nobody but root, or the owner of the
 * target, can have chosen them: every directory from / down and then the
 * file are opened one by one, each checked on its open descriptor, and the
 * file is read once.  It never follows a link after the path was resolved,
 * and it never decides what the bytes mean. */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/trusted_files.h"
#include "common/base.h"
#include "common/proc_maps.h"

void trust_owners_root(struct trust_owners *owners)
{
	memset(owners, 0, sizeof(*owners));
	owners->uids[owners->count++] = 0;
}

void trust_owners_of_target(pid_t pid, struct trust_owners *owners)
{
	char path[64], text[8192];
	unsigned long real, effective, saved, filesystem;
	const char *line;

	trust_owners_root(owners);
	owners->pid = pid;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	/* An unknown target is refused later, when it is traced. */
	if (pid <= 0 || proc_read_small(path, text, sizeof(text)) < 0)
		return;
	line = strstr(text, "\nUid:");
	if (!line ||
	    sscanf(line + 5, "%lu %lu %lu %lu", &real, &effective, &saved, &filesystem) != 4)
		return;
	/* A set-uid process is not its real user's to change: root only. */
	if (real != 0 && real == effective && real == saved && real == filesystem)
		owners->uids[owners->count++] = (uid_t)real;
}

static bool owned_by(const struct trust_owners *owners, uid_t uid)
{
	for (size_t i = 0; i < owners->count; i++)
		if (owners->uids[i] == uid)
			return true;
	return false;
}

/* "nobody (uid 65534)", or "uid 12345" for a uid without a name. */
static void describe_uid(uid_t uid, char *text, size_t size)
{
	const struct passwd *entry = getpwuid(uid);

	if (entry && entry->pw_name)
		snprintf(text, size, "%s (uid %u)", entry->pw_name, (unsigned)uid);
	else
		snprintf(text, size, "uid %u", (unsigned)uid);
}

static void describe_owners(const struct trust_owners *owners, char *text, size_t size)
{
	char name[128];

	if (owners->count < 2) {
		snprintf(text, size, "root");
		return;
	}
	describe_uid(owners->uids[1], name, sizeof(name));
	snprintf(text, size, "root or %s, who owns pid %d", name, (int)owners->pid);
}

/* Owner and write permission of what `fd` is: a directory may be writable
 * by others only with the sticky bit (nobody can then replace what is not
 * theirs), a file not at all. */
static int check_owner_and_mode(const struct stat *info, const char *path, bool directory,
				const char *what, const char *subject,
				const struct trust_owners *owners, struct hp_error *error)
{
	char owner[128], allowed[192];
	const char *kind = directory ? "directory " : "";

	if (owned_by(owners, info->st_uid) &&
	    (!(info->st_mode & (S_IWGRP | S_IWOTH)) || (directory && (info->st_mode & S_ISVTX))))
		return HP_OK;
	hp_error_file(error, path);
	if (!owned_by(owners, info->st_uid)) {
		describe_uid(info->st_uid, owner, sizeof(owner));
		describe_owners(owners, allowed, sizeof(allowed));
		hp_hint(error, "only root (or the owner of the process) may own it: chown root %s",
			path);
		if (directory)
			return hp_fail(error, HP_MISFIT,
				       "%s %s is not safe: %s%s is owned by %s, not by %s", what,
				       subject, kind, path, owner, allowed);
		return hp_fail(error, HP_MISFIT, "%s %s is owned by %s, not by %s", what, path,
			       owner, allowed);
	}
	hp_hint(error, "make it writable by its owner only: chmod go-w %s", path);
	if (directory)
		return hp_fail(error, HP_MISFIT,
			       "%s %s is not safe: %s%s is writable by group or others", what,
			       subject, kind, path);
	return hp_fail(error, HP_MISFIT, "%s %s is writable by group or others", what, path);
}

void trust_directory_close(struct trust_directory *directory)
{
	if (directory->fd >= 0)
		close(directory->fd);
	directory->fd = -1;
}

void trust_close(struct trust_file *file)
{
	if (file->fd >= 0)
		close(file->fd);
	file->fd = -1;
	trust_directory_close(&file->directory);
}

/* Walks the resolved directory `path` from / down, holding each level by
 * an O_PATH descriptor so that what is checked is what the next step opens. */
static int walk(const char *path, const char *what, const char *subject,
		const struct trust_owners *owners, struct trust_directory *directory,
		struct hp_error *error)
{
	char walked[HP_PATH_MAX] = "/";
	const char *cursor = path;
	struct stat info;
	int fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC), status;

	if (fd < 0)
		return hp_fail_errno(error, HP_FAILED, "cannot open /");
	for (;;) {
		const char *end;
		char name[256];
		size_t length;
		int next;

		if (fstat(fd, &info) != 0) {
			status = hp_fail_errno(error, HP_FAILED, "cannot inspect %s", walked);
			break;
		}
		status = check_owner_and_mode(&info, walked, true, what, subject, owners, error);
		if (status != HP_OK)
			break;
		while (*cursor == '/')
			cursor++;
		if (!*cursor) {
			directory->fd = fd;
			hp_copy_string(directory->path, sizeof(directory->path), walked);
			return HP_OK;
		}
		end = strchrnul(cursor, '/');
		length = (size_t)(end - cursor);
		if (length >= sizeof(name) || strlen(walked) + length + 2 > sizeof(walked)) {
			status = hp_fail(error, HP_USAGE, "the path of %s %s is too long", what,
					 subject);
			break;
		}
		memcpy(name, cursor, length);
		name[length] = '\0';
		next = openat(fd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (strcmp(walked, "/") != 0)
			strcat(walked, "/");
		strcat(walked, name);
		if (next < 0) {
			status = errno == ENOENT ? HP_OK
						 : hp_fail_errno(error, HP_FAILED,
								 "cannot open directory %s", walked);
			break;
		}
		close(fd);
		fd = next;
		cursor = end;
	}
	close(fd);
	return status;
}

int trust_open_directory(const char *path, const char *what, const struct trust_owners *owners,
			 struct trust_directory *directory, struct hp_error *error)
{
	char *resolved = realpath(path, NULL);
	int status;

	directory->fd = -1;
	if (!resolved)
		return errno == ENOENT ? HP_OK
				       : hp_fail_errno(error, HP_FAILED, "cannot resolve %s", path);
	status = walk(resolved, what, path, owners, directory, error);
	free(resolved);
	return status;
}

int trust_open_at(const struct trust_directory *directory, const char *name, const char *what,
		  const struct trust_owners *owners, struct trust_file *file,
		  struct hp_error *error)
{
	struct stat info;
	int status;

	file->fd = -1;
	file->directory.fd = -1;
	if (snprintf(file->path, sizeof(file->path), "%s%s%s", directory->path,
		     strcmp(directory->path, "/") ? "/" : "", name) >= (int)sizeof(file->path))
		return hp_fail(error, HP_USAGE, "the path of %s %s is too long", what, name);
	/* O_NONBLOCK: a FIFO must not hang us before it is refused. */
	file->fd = openat(directory->fd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (file->fd < 0) {
		if (errno == ENOENT)
			return HP_OK;
		if (errno == ELOOP)
			return hp_fail(error, HP_MISFIT, "%s %s was replaced by a link while opened",
				       what, file->path);
		return hp_fail_errno(error, HP_FAILED, "cannot open %s %s", what, file->path);
	}
	if (fstat(file->fd, &info) != 0) {
		status = hp_fail_errno(error, HP_FAILED, "cannot inspect %s %s", what, file->path);
	} else if (!S_ISREG(info.st_mode)) {
		hp_hint(error, "give the path of the file itself");
		status = hp_fail(error, HP_MISFIT, "%s %s is not a regular file", what, file->path);
	} else {
		status = check_owner_and_mode(&info, file->path, false, what, file->path, owners,
					      error);
		file->size = (uint64_t)info.st_size;
	}
	if (status != HP_OK) {
		close(file->fd);
		file->fd = -1;
		return status;
	}
	file->directory.fd = fcntl(directory->fd, F_DUPFD_CLOEXEC, 0);
	hp_copy_string(file->directory.path, sizeof(file->directory.path), directory->path);
	if (file->directory.fd < 0) {
		trust_close(file);
		return hp_fail_errno(error, HP_FAILED, "cannot keep directory %s", directory->path);
	}
	return HP_OK;
}

int trust_open(const char *path, const char *what, const struct trust_owners *owners,
	       struct trust_file *file, struct hp_error *error)
{
	struct trust_directory directory = { .fd = -1 };
	char *resolved = realpath(path, NULL), *slash;
	int status;

	file->fd = -1;
	file->directory.fd = -1;
	if (!resolved)
		return hp_fail_errno(error, errno == ENOENT ? HP_USAGE : HP_FAILED,
				     "cannot open %s %s", what, path);
	slash = strrchr(resolved, '/');
	*slash = '\0';
	status = walk(resolved[0] ? resolved : "/", what, path, owners, &directory, error);
	if (status == HP_OK && directory.fd < 0)
		status = hp_fail(error, HP_FAILED, "%s %s was moved while opened", what, path);
	if (status == HP_OK)
		status = trust_open_at(&directory, slash + 1, what, owners, file, error);
	if (status == HP_OK && file->fd < 0)
		status = hp_fail(error, HP_FAILED, "%s %s was moved while opened", what, path);
	trust_directory_close(&directory);
	free(resolved);
	return status;
}

int trust_read(const struct trust_file *file, const char *what, size_t limit,
	       unsigned char **bytes, size_t *size, struct hp_error *error)
{
	size_t used = 0, capacity = file->size < limit ? (size_t)file->size : limit;
	unsigned char *buffer;

	*bytes = NULL;
	*size = 0;
	/* One byte more than allowed tells a file that grew past the limit. */
	buffer = malloc(capacity + 2);
	if (!buffer)
		return hp_fail(error, HP_FAILED, "out of memory reading %s %s", what, file->path);
	for (;;) {
		ssize_t got = read(file->fd, buffer + used, capacity + 1 - used);

		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			free(buffer);
			return hp_fail_errno(error, HP_FAILED, "cannot read %s %s", what,
					     file->path);
		}
		used += (size_t)got;
		if (got == 0 || used > capacity)
			break;
	}
	if (used > limit || used != file->size) {
		free(buffer);
		if (used > limit)
			return hp_fail(error, HP_MISFIT, "%s %s is larger than %zu bytes", what,
				       file->path, limit);
		return hp_fail(error, HP_FAILED, "%s %s changed size while it was read", what,
			       file->path);
	}
	buffer[used] = '\0';
	*bytes = buffer;
	*size = used;
	return HP_OK;
}

size_t trust_write_all(int fd, const char *text, size_t length)
{
	size_t written = 0;

	while (written < length) {
		ssize_t done = write(fd, text + written, length - written);

		if (done < 0 && errno == EINTR)
			continue;
		if (done <= 0)
			break;
		written += (size_t)done;
	}
	return written;
}
