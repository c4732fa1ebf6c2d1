/* store_files.c - where the store is, and how a file gets into it: under
 * a temporary name, synced, then renamed into place, so that a reader (a
 * command, or the loader in a process starting) sees a whole file or none. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "machine/machine.h"

#define DEFAULT_STORE "/var/lib/hotpatch"

const char *store_directory(void)
{
	const char *chosen = secure_getenv("HOTPATCH_STORE");

	return chosen && chosen[0] ? chosen : DEFAULT_STORE;
}

const char *hp_store_directory(void)
{
	return store_directory();
}

bool store_patch_path(const char *name, char *path, size_t size)
{
	int length = snprintf(path, size, "%s/%s.so", store_directory(), name);

	return length > 0 && (size_t)length < size;
}

/* Writes every byte, retrying short writes. */
static bool write_all(int fd, const unsigned char *bytes, size_t size)
{
	while (size > 0) {
		ssize_t done = write(fd, bytes, size);

		if (done < 0 && errno == EINTR)
			continue;
		if (done <= 0)
			return false;
		bytes += done;
		size -= (size_t)done;
	}
	return true;
}

/* `bytes` written to a temporary name beside `path` and renamed over it:
 * a reader sees the whole file or none. */
int store_write(const char *path, const unsigned char *bytes, size_t size,
		       struct hp_error *error)
{
	char temporary[HP_PATH_MAX];
	int fd, length = snprintf(temporary, sizeof(temporary), "%s/.%s.%d", store_directory(),
				  hp_base_name(path), (int)getpid());
	bool written;

	if (length < 0 || (size_t)length >= sizeof(temporary))
		return hp_fail(error, HP_FAILED, "the store path %s is too long", store_directory());
	fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0)
		return hp_fail_errno(error, HP_FAILED, "cannot write %s", temporary);
	/* 0644 whatever the umask: the loader and apply read it as any user. */
	written = fchmod(fd, 0644) == 0 && write_all(fd, bytes, size) && fsync(fd) == 0;
	if (close(fd) != 0)
		written = false;
	if (written && rename(temporary, path) == 0)
		return HP_OK;
	hp_fail_errno(error, HP_FAILED, "cannot write %s", path);
	unlink(temporary);
	return HP_FAILED;
}
