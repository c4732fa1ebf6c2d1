/* startup.c - `hotpatch startup`: the loader's entry in ROOT/etc/ld.so.preload,
 * through which the dynamic linker loads it into every process started
 * later.  The file is rewritten whole under a temporary name beside it,
 * synced and renamed over it, so that a process starting meanwhile reads
 * the old file or the new one; every other entry and comment stays as it
 * was.  It never touches a running process. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/trusted_files.h"
#include "machine/machine.h"

#ifndef HOTPATCH_LOADER_PATH
#error "HOTPATCH_LOADER_PATH: the Makefile passes PREFIX/lib/hotpatch/libhotpatch-loader.so"
#endif

#define PRELOAD_NAME "ld.so.preload"
#define BACKUP_NAME "ld.so.preload.hotpatch-backup"
/* One fixed name, made under the lock: a killed run's leftover is replaced. */
#define TEMPORARY_NAME ".ld.so.preload.hotpatch-new"
/* ld.so.preload lists a few paths; a larger file is not one we edit. */
#define PRELOAD_SIZE_MAX (1u << 20)
/* '#' starts a comment that runs to the end of the line. */

/* ROOT/etc/ld.so.preload as read: the bytes (NUL-terminated) and what a
 * rewrite keeps of the file. */
struct preload_file {
	bool exists;
	char *text;			/* malloc'd; NULL when absent */
	size_t size;
	mode_t mode;
	uid_t uid;
	gid_t gid;
};

/* A text being built, malloc'd. */
struct text {
	char *bytes;
	size_t size, capacity;
};

const char *startup_loader_path(void)
{
	return HOTPATCH_LOADER_PATH;
}

static bool text_add(struct text *text, const char *bytes, size_t size)
{
	if (text->size + size + 1 > text->capacity) {
		size_t capacity = 2 * (text->size + size + 1);
		char *grown = realloc(text->bytes, capacity);

		if (!grown)
			return false;
		text->bytes = grown;
		text->capacity = capacity;
	}
	memcpy(text->bytes + text->size, bytes, size);
	text->size += size;
	text->bytes[text->size] = '\0';
	return true;
}

/* What separates entries for the dynamic linker (glibc's rtld.c). */
static bool is_separator(char c)
{
	return c == ' ' || c == '\t' || c == ':';
}

/* How many of the `size` bytes at `at` are (or, with !separators, are not)
 * entry separators. */
static size_t span(const char *at, size_t size, bool separators)
{
	size_t length = 0;

	while (length < size && is_separator(at[length]) == separators)
		length++;
	return length;
}

/* The part of a line before its comment. */
static size_t entries_length(const char *line, size_t length)
{
	const char *comment = memchr(line, '#', length);

	return comment ? (size_t)(comment - line) : length;
}

/* Whether the line (without its newline) lists `loader`. */
static bool line_names(const char *line, size_t length, const char *loader)
{
	size_t loader_length = strlen(loader), at = 0;

	length = entries_length(line, length);
	while (at < length) {
		size_t entry;

		at += span(line + at, length - at, true);
		entry = span(line + at, length - at, false);
		if (entry == loader_length && memcmp(line + at, loader, entry) == 0)
			return true;
		at += entry;
	}
	return false;
}

/* The length of the line at `at`, without its newline. */
static size_t line_length(const char *at, size_t size)
{
	const char *newline = memchr(at, '\n', size);

	return newline ? (size_t)(newline - at) : size;
}

bool preload_names_loader(const char *text, size_t size, const char *loader)
{
	for (size_t at = 0; at < size;) {
		size_t length = line_length(text + at, size - at);

		if (line_names(text + at, length, loader))
			return true;
		at += length + 1;
	}
	return false;
}

/* A line that listed the loader, without it: the other entries joined by
 * spaces, then the comment; nothing at all when nothing else was there. */
static bool line_without(struct text *out, const char *line, size_t length, bool newline,
			 const char *loader)
{
	size_t entries = entries_length(line, length), at = 0, start = out->size;
	bool fine = true;

	while (at < entries && fine) {
		size_t entry;

		at += span(line + at, entries - at, true);
		entry = span(line + at, entries - at, false);
		if (entry && !(entry == strlen(loader) && memcmp(line + at, loader, entry) == 0))
			fine = (out->size == start || text_add(out, " ", 1)) &&
			       text_add(out, line + at, entry);
		at += entry;
	}
	if (fine && entries < length)
		fine = (out->size == start || text_add(out, " ", 1)) &&
		       text_add(out, line + entries, length - entries);
	if (fine && out->size > start && newline)
		fine = text_add(out, "\n", 1);
	return fine;
}

/* The file's text without the loader; other lines byte for byte. */
static bool preload_without(const struct preload_file *file, const char *loader,
			    struct text *out)
{
	bool fine = text_add(out, "", 0);

	for (size_t at = 0; at < file->size && fine;) {
		size_t length = line_length(file->text + at, file->size - at);
		bool newline = at + length < file->size;

		if (line_names(file->text + at, length, loader))
			fine = line_without(out, file->text + at, length, newline, loader);
		else
			fine = text_add(out, file->text + at, length + newline);
		at += length + 1;
	}
	return fine;
}

/* The file's text with the loader on a line of its own at the end. */
static bool preload_with(const struct preload_file *file, const char *loader,
			 struct text *out)
{
	bool unterminated = file->size > 0 && file->text[file->size - 1] != '\n';

	return text_add(out, file->text ? file->text : "", file->size) &&
	       (!unterminated || text_add(out, "\n", 1)) &&
	       text_add(out, loader, strlen(loader)) && text_add(out, "\n", 1);
}

/* Whether the text lists nothing: an empty file means what no file means. */
static bool is_blank(const char *bytes, size_t size)
{
	for (size_t i = 0; i < size; i++)
		if (bytes[i] != ' ' && bytes[i] != '\t' && bytes[i] != '\n')
			return false;
	return true;
}

/* The loader's path as the file holds it: absolute, and nothing the
 * dynamic linker would split or take for a comment. */
static int check_loader_name(const char *loader, struct hp_error *error)
{
	if (loader[0] == '/' && !strpbrk(loader, " \t\n:#") &&
	    strlen(loader) < HP_TEXT_MAX)
		return HP_OK;
	hp_hint(error, "give --loader an absolute path without spaces, ':' or '#'");
	return hp_fail(error, HP_USAGE, "the loader path '%s' cannot be listed in %s", loader,
		       PRELOAD_NAME);
}

/* `a` then `b` into `out`; false when that does not fit. */
static bool join(char *out, size_t size, const char *a, const char *b)
{
	int used = snprintf(out, size, "%s%s", a, b);

	return used >= 0 && (size_t)used < size;
}

/* ROOT without trailing slashes ("" for /), then the paths under it. */
static int startup_paths(const struct hp_startup_request *request,
			 struct hp_startup_result *result, char *prefix, char *etc,
			 struct hp_error *error)
{
	const char *root = request->root && request->root[0] ? request->root : "/";
	const char *loader = request->loader ? request->loader : startup_loader_path();
	size_t length = strlen(root);

	while (length > 0 && root[length - 1] == '/')
		length--;
	if (length >= HP_PATH_MAX)
		return hp_fail(error, HP_USAGE, "the root %s is too long", root);
	memcpy(prefix, root, length);
	prefix[length] = '\0';
	if (!join(etc, HP_PATH_MAX, prefix, "/etc") ||
	    !join(result->file, sizeof(result->file), etc, "/" PRELOAD_NAME) ||
	    !join(result->backup, sizeof(result->backup), etc, "/" BACKUP_NAME))
		return hp_fail(error, HP_USAGE, "the root %s is too long", root);
	hp_copy_string(result->loader, sizeof(result->loader), loader);
	return check_loader_name(loader, error);
}

/* The first bytes of an ELF shared object for x86_64 and its kin: the
 * magic, then e_type ET_DYN (little-endian) at offset 16. */
static bool is_shared_object(int fd)
{
	unsigned char header[18];

	return pread(fd, header, sizeof(header), 0) == (ssize_t)sizeof(header) &&
	       memcmp(header, "\177ELF", 4) == 0 && header[16] == 3 && header[17] == 0;
}

/* Every process started later would load the loader: it must be there, be
 * a shared object, and be a file only root can have chosen (the checks
 * apply makes of a patch file). */
static int check_loader(const char *prefix, const char *loader, struct hp_error *error)
{
	struct trust_file file = TRUST_FILE_INIT;
	struct trust_owners owners;
	char path[HP_PATH_MAX];
	int status;

	if (!join(path, sizeof(path), prefix, loader))
		return hp_fail(error, HP_USAGE, "the path of the loader %s%s is too long", prefix,
			       loader);
	hp_error_file(error, path);
	if (access(path, F_OK) != 0 && errno == ENOENT) {
		hp_hint(error, "install it (make install, or the hotpatch package), or name "
			       "it with --loader");
		return hp_fail_as(error, HP_KIND_MISFIT, "the loader %s does not exist", path);
	}
	trust_owners_root(&owners);
	status = trust_open(path, "loader", &owners, &file, error);
	if (status != HP_OK)
		hp_error_classify(error, HP_KIND_UNTRUSTED);
	if (status == HP_OK && !is_shared_object(file.fd)) {
		hp_hint(error, "name libhotpatch-loader.so with --loader");
		status = hp_fail_as(error, HP_KIND_MISFIT, "the loader %s is not a shared object",
				    path);
	}
	trust_close(&file);
	return status;
}

/* ROOT/etc, held open; locked for a change, so that two hotpatch runs never
 * rewrite the file from the same old text. */
static int open_etc(const char *path, bool lock, int *etc, struct hp_error *error)
{
	*etc = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (*etc < 0) {
		hp_hint(error, "--root names the top of a tree that has an etc directory");
		return hp_fail_errno(error, HP_FAILED, "cannot open %s", path);
	}
	while (lock && flock(*etc, LOCK_EX) != 0)
		if (errno != EINTR)
			return hp_fail_errno(error, HP_FAILED, "cannot lock %s", path);
	return HP_OK;
}

static int read_all(int fd, char *buffer, size_t size)
{
	size_t used = 0;

	while (used < size) {
		ssize_t got = read(fd, buffer + used, size - used);

		if (got < 0 && errno == EINTR)
			continue;
		if (got == 0)
			errno = EIO;	/* it shrank while read */
		if (got <= 0)
			return -1;
		used += (size_t)got;
	}
	return 0;
}

/* A file we do not edit: the operator is the one to look at it. */
static int not_ours(const char *path, struct hp_error *error)
{
	hp_hint(error, "hotpatch edits only a regular file of at most 1 MiB: edit %s by hand",
		path);
	return hp_fail(error, HP_FAILED, "%s is not a regular file of at most 1 MiB", path);
}

/* The file whole, bounded; absent is fine, a link or a device is not ours
 * to replace. */
static int preload_read(int etc, const char *path, struct preload_file *file,
			struct hp_error *error)
{
	struct stat info;
	int fd = openat(etc, PRELOAD_NAME, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	int status = HP_OK;

	*file = (struct preload_file){ .mode = 0644, .uid = geteuid(), .gid = getegid() };
	if (fd < 0 && errno == ENOENT)
		return HP_OK;
	if (fd < 0 && errno == ELOOP)
		return not_ours(path, error);
	if (fd < 0)
		return hp_fail_errno(error, HP_FAILED, "cannot open %s", path);
	if (fstat(fd, &info) != 0)
		status = hp_fail_errno(error, HP_FAILED, "cannot inspect %s", path);
	else if (!S_ISREG(info.st_mode) || info.st_size > PRELOAD_SIZE_MAX)
		status = not_ours(path, error);
	if (status == HP_OK) {
		file->size = (size_t)info.st_size;
		file->text = malloc(file->size + 1);
		if (!file->text || read_all(fd, file->text, file->size) != 0)
			status = hp_fail_errno(error, HP_FAILED, "cannot read %s", path);
	}
	if (status == HP_OK) {
		file->text[file->size] = '\0';
		file->exists = true;
		file->mode = info.st_mode & 07777;
		file->uid = info.st_uid;
		file->gid = info.st_gid;
	}
	close(fd);
	return status;
}

static bool write_all(int fd, const char *bytes, size_t size)
{
	return trust_write_all(fd, bytes, size) == size;
}

/* `name` in ROOT/etc replaced by `text`, owned and moded as `like`: written
 * under the temporary name, synced, renamed over, the directory synced. */
static int replace_file(int etc, const char *name, const char *shown, const char *text,
			size_t size, const struct preload_file *like, struct hp_error *error)
{
	int fd, status = HP_OK;

	if (unlinkat(etc, TEMPORARY_NAME, 0) != 0 && errno != ENOENT)
		return hp_fail_errno(error, HP_FAILED, "cannot remove the leftover %s beside %s",
				     TEMPORARY_NAME, shown);
	fd = openat(etc, TEMPORARY_NAME, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		    0600);
	if (fd < 0)
		return hp_fail_errno(error, HP_FAILED, "cannot write a new %s", shown);
	if (fchown(fd, like->uid, like->gid) != 0 || fchmod(fd, like->mode) != 0 ||
	    !write_all(fd, text, size) || fsync(fd) != 0)
		status = hp_fail_errno(error, HP_FAILED, "cannot write a new %s", shown);
	if (close(fd) != 0 && status == HP_OK)
		status = hp_fail_errno(error, HP_FAILED, "cannot write a new %s", shown);
	if (status == HP_OK && hp_fault("startup-rename"))
		status = hp_fault_fail(error, "startup-rename");
	if (status == HP_OK && renameat(etc, TEMPORARY_NAME, etc, name) != 0)
		status = hp_fail_errno(error, HP_FAILED, "cannot replace %s", shown);
	if (status != HP_OK)
		unlinkat(etc, TEMPORARY_NAME, 0);
	else if (fsync(etc) != 0)
		status = hp_fail_errno(error, HP_FAILED, "cannot sync the directory of %s", shown);
	return status;
}

/* Before the first change of a file that lists something besides the
 * loader, its text is kept beside it; never overwritten, so it is the text
 * from before hotpatch touched it.  A file that holds the loader alone (or
 * nothing) has nothing of anyone else's to keep. */
static int backup_previous(int etc, const struct preload_file *file, bool others,
			   const char *backup, struct hp_error *error)
{
	struct stat info;

	if (!others || fstatat(etc, BACKUP_NAME, &info, AT_SYMLINK_NOFOLLOW) == 0)
		return HP_OK;
	if (errno != ENOENT)
		return hp_fail_errno(error, HP_FAILED, "cannot inspect %s", backup);
	return replace_file(etc, BACKUP_NAME, backup, file->text, file->size, file, error);
}

static int remove_file(int etc, const char *shown, struct hp_error *error)
{
	if (unlinkat(etc, PRELOAD_NAME, 0) != 0)
		return hp_fail_errno(error, HP_FAILED, "cannot remove %s", shown);
	if (fsync(etc) != 0)
		return hp_fail_errno(error, HP_FAILED, "cannot sync the directory of %s", shown);
	return HP_OK;
}

/* enable, disable: the file with or without the loader, unless it is so
 * already.  Left listing nothing, the file is removed. */
static int startup_change(enum hp_startup_action action, int etc,
			  const struct preload_file *file, struct hp_startup_result *result,
			  struct hp_error *error)
{
	bool wanted = action == HP_STARTUP_ENABLE;
	struct text text = { 0 };
	bool others;
	int status = HP_OK;

	if (action == HP_STARTUP_STATUS || result->enabled == wanted)
		return HP_OK;
	if (!(wanted ? preload_with(file, result->loader, &text)
		     : preload_without(file, result->loader, &text)))
		status = hp_fail(error, HP_FAILED, "out of memory editing %s", result->file);
	/* What the file lists besides the loader: all of it before an enable,
	 * what a disable leaves. */
	others = wanted ? !is_blank(file->text, file->size) : !is_blank(text.bytes, text.size);
	if (status == HP_OK)
		status = backup_previous(etc, file, others, result->backup, error);
	if (status == HP_OK && !wanted && !others) {
		status = remove_file(etc, result->file, error);
		result->removed = status == HP_OK;
	} else if (status == HP_OK) {
		status = replace_file(etc, PRELOAD_NAME, result->file, text.bytes, text.size, file,
				      error);
	}
	if (status == HP_OK) {
		result->changed = true;
		result->enabled = wanted;
	}
	free(text.bytes);
	return status;
}

int hp_startup(const struct hp_startup_request *request, struct hp_startup_result *result,
	       struct hp_error *error)
{
	struct preload_file file = { 0 };
	char prefix[HP_PATH_MAX], etc_path[HP_PATH_MAX];
	struct stat info;
	int etc = -1;
	int status;

	memset(result, 0, sizeof(*result));
	status = startup_paths(request, result, prefix, etc_path, error);
	if (status == HP_OK && request->action == HP_STARTUP_ENABLE)
		status = check_loader(prefix, result->loader, error);
	if (status == HP_OK)
		status = open_etc(etc_path, request->action != HP_STARTUP_STATUS, &etc, error);
	if (status == HP_OK)
		status = preload_read(etc, result->file, &file, error);
	if (status == HP_OK) {
		result->enabled = preload_names_loader(file.text, file.size, result->loader);
		status = startup_change(request->action, etc, &file, result, error);
	}
	/* The backup's path only when there is one. */
	if (etc < 0 || fstatat(etc, BACKUP_NAME, &info, AT_SYMLINK_NOFOLLOW) != 0)
		result->backup[0] = '\0';
	free(file.text);
	if (etc >= 0)
		close(etc);
	return status;
}
