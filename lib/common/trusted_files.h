/* common/trusted_files.h - opening files only root or the target's owner can have chosen; /etc/hotpatch. */
#ifndef HOTPATCH_COMMON_TRUSTED_FILES_H
#define HOTPATCH_COMMON_TRUSTED_FILES_H

#include "common/base.h"

/* ---- trust_open.c, trust_config.c: files only root (or the target's owner) can have chosen ---- */
#define HP_CONFIG_DIR "/etc/hotpatch"

/* trust_open.c: files whose bytes we trust, opened so that nobody but root
 * (and the target's owner) can have chosen them. */
struct trust_owners {
	pid_t pid;		/* the target whose owner is accepted, 0 if none */
	size_t count;
	uid_t uids[2];		/* root, then the target's owner */
};

struct trust_directory {
	int fd;			/* O_PATH; -1 when not open (or absent) */
	char path[HP_PATH_MAX];	/* resolved: no link, "." or ".." */
};

struct trust_file {
	int fd;			/* open for reading; -1 when not open (or absent) */
	uint64_t size;
	struct trust_directory directory;	/* the one it is in */
	char path[HP_PATH_MAX];	/* resolved */
};

#define TRUST_FILE_INIT { .fd = -1, .directory = { .fd = -1 } }

/* Writes all of `text`, riding out EINTR; returns how much was written. */
size_t trust_write_all(int fd, const char *text, size_t length);
void trust_owners_root(struct trust_owners *owners);
/* Root, and the owner of `pid` when its real, effective, saved and file
 * system uids are one (not a set-uid process); root only when unknown. */
void trust_owners_of_target(pid_t pid, struct trust_owners *owners);
/* Resolves links in `path`, then opens every directory from / down (each
 * owned by one of `owners`, not writable by group or others unless sticky)
 * and the file in the last one without following links: a regular file
 * owned by one of `owners`, not writable by group or others.  `what` names
 * the file in messages ("patch").  A missing file is HP_USAGE. */
int trust_open(const char *path, const char *what, const struct trust_owners *owners,
	       struct trust_file *file, struct hp_error *error) HP_MUST_CHECK;
/* Opens a directory the same way; when it does not exist, HP_OK with
 * directory->fd == -1. */
int trust_open_directory(const char *path, const char *what, const struct trust_owners *owners,
			 struct trust_directory *directory, struct hp_error *error) HP_MUST_CHECK;
/* Opens `name` in `directory` the same way; when there is no such file,
 * HP_OK with file->fd == -1. */
int trust_open_at(const struct trust_directory *directory, const char *name, const char *what,
		  const struct trust_owners *owners, struct trust_file *file,
		  struct hp_error *error) HP_MUST_CHECK;
/* Reads the open file whole, once, refusing more than `limit` bytes;
 * *bytes is malloc'd (one spare NUL byte after the end). */
int trust_read(const struct trust_file *file, const char *what, size_t limit,
	       unsigned char **bytes, size_t *size, struct hp_error *error) HP_MUST_CHECK;
void trust_close(struct trust_file *file);
void trust_directory_close(struct trust_directory *directory);

/* trust_config.c: the policy's home, /etc/hotpatch (the test build alone
 * lets HOTPATCH_CONFIG_DIR move it). */
const char *trust_config_directory(void);
/* Whether CONFIG/require-signature exists. */
int trust_policy_requires_signature(bool *required, struct hp_error *error) HP_MUST_CHECK;

#endif
