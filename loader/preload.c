/* preload.c - libhotpatch-loader.so, preloaded into every process started
 * later (LD_PRELOAD, or /etc/ld.so.preload through `hotpatch startup`):
 * applies each installed patch that fits the process before main runs,
 * and a library's when the library is dlopen'ed.
 *
 * It must never make a process fail or start slowly.  So it links only
 * libc; a process nothing fits pays for reading one small file, the
 * store's index (store_index.c writes it: "NAME BUILD-ID..." per patch),
 * and comparing build-ids with those of its loaded objects, read from
 * their notes in memory.  The work is done by libhotpatch-apply.so,
 * loaded from beside this file only when a patch fits, which checks the
 * patch file as `hotpatch apply` does.  Whatever goes wrong is skipped and
 * said in syslog (or on stderr with HOTPATCH_LOADER_LOG=stderr).
 *
 * The store is STORE (HOTPATCH_STORE, or /var/lib/hotpatch), used only
 * when it and its index are owned by root (or by the process's own user
 * outside secure execution) and writable by no one else; in secure
 * execution (set-uid, capabilities) HOTPATCH_STORE is ignored and only a
 * root-owned store counts. */
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* The one header of ours: a layout of plain types, shared with status. */
#include "common/loader_outcomes.h"

#define DEFAULT_STORE "/var/lib/hotpatch"
#define INDEX_HEADER "hotpatch-index 1\n"
#define INDEX_SIZE_MAX (256u << 10)
#define PINS_MAX 16
#define NAME_MAX_LENGTH 64	/* HP_PATCH_NAME_MAX */
#define BUILD_ID_MAX 64		/* bytes */
#define INDEX_ON_STACK 4096	/* bytes: fifty installed patches take 3 KiB */
#define APPLY_LIBRARY "libhotpatch-apply.so"
#define MESSAGE_MAX 768

struct build_id {
	unsigned char bytes[BUILD_ID_MAX];
	size_t size;
};

struct installed_patch {
	char name[NAME_MAX_LENGTH];
	size_t pin_count;
	struct build_id pins[PINS_MAX];
};
_Static_assert(PINS_MAX <= 32, "a pin is a bit of a 32-bit mask");

/* The patches tried in this process, applied or failed: never tried again
 * at a later dlopen, and told to `hotpatch status`, which reads the table
 * from outside (common/loader_outcomes.h).  Made when a patch first fits,
 * so that a process nothing fits has none. */
static struct loader_outcomes *outcomes;

static pthread_mutex_t loader_lock = PTHREAD_MUTEX_INITIALIZER;
static __thread bool loader_busy;	/* a patch's own dlopen must not recurse */
static void *(*real_dlopen)(const char *, int);
static int (*apply_patch)(const char *, char *, size_t);

/* ---- saying what happened ---- */

/* One syslog record, through a socket of our own that is closed again:
 * syslog(3) would leave a descriptor open in the process. */
static void say(int priority, const char *format, ...)
{
	struct sockaddr_un address = { .sun_family = AF_UNIX, .sun_path = "/dev/log" };
	char text[MESSAGE_MAX + 128], body[MESSAGE_MAX];
	const char *where = getauxval(AT_SECURE) ? NULL : getenv("HOTPATCH_LOADER_LOG");
	va_list arguments;
	int length, fd;

	va_start(arguments, format);
	vsnprintf(body, sizeof(body), format, arguments);
	va_end(arguments);
	if (where && strcmp(where, "stderr") == 0) {
		length = snprintf(text, sizeof(text), "hotpatch-loader[%d]: %s\n", (int)getpid(), body);
		if (length > 0 && write(STDERR_FILENO, text, (size_t)length) < 0)
			return;
		return;
	}
	length = snprintf(text, sizeof(text), "<%d>hotpatch-loader[%d]: %s", (3 << 3) | priority,
			  (int)getpid(), body);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || length <= 0)
		return;
	if (sendto(fd, text, (size_t)length < sizeof(text) ? (size_t)length : sizeof(text) - 1,
		   MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr *)&address, sizeof(address)) < 0)
		errno = 0;	/* no syslog daemon: nothing to tell */
	close(fd);
}

/* ---- the store and its index, trusted only as the header says ---- */

static bool owner_trusted(const struct stat *info)
{
	bool secure = getauxval(AT_SECURE) != 0;

	if (info->st_uid != 0 && (secure || info->st_uid != geteuid()))
		return false;
	return (info->st_mode & (S_IWGRP | S_IWOTH)) == 0;
}

/* STORE into `path` (PATH_MAX bytes). */
static void store_path(char *path)
{
	const char *chosen = getauxval(AT_SECURE) ? NULL : getenv("HOTPATCH_STORE");

	if (!chosen || !chosen[0] || strlen(chosen) >= PATH_MAX - 32)
		chosen = DEFAULT_STORE;
	strcpy(path, chosen);
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static bool parse_build_id(const char *hex, size_t length, struct build_id *id)
{
	if (length == 0 || length % 2 || length / 2 > BUILD_ID_MAX)
		return false;
	for (size_t i = 0; i < length; i += 2) {
		int high = hex_value(hex[i]), low = hex_value(hex[i + 1]);

		if (high < 0 || low < 0)
			return false;
		id->bytes[i / 2] = (unsigned char)(high << 4 | low);
	}
	id->size = length / 2;
	return true;
}

static bool name_is_valid(const char *name, size_t length)
{
	if (length == 0 || length >= NAME_MAX_LENGTH || name[0] == '.')
		return false;
	for (size_t i = 0; i < length; i++)
		if (!(name[i] >= 'a' && name[i] <= 'z') && !(name[i] >= 'A' && name[i] <= 'Z') &&
		    !(name[i] >= '0' && name[i] <= '9') && !strchr("._+-", name[i]))
			return false;
	return true;
}

/* "NAME HEX HEX...": false for a line that is not one. */
static bool parse_line(char *line, struct installed_patch *patch)
{
	char *word, *rest = NULL;

	memset(patch, 0, sizeof(*patch));
	word = strtok_r(line, " ", &rest);
	if (!word || !name_is_valid(word, strlen(word)))
		return false;
	strcpy(patch->name, word);
	while ((word = strtok_r(NULL, " ", &rest))) {
		if (patch->pin_count == PINS_MAX ||
		    !parse_build_id(word, strlen(word), &patch->pins[patch->pin_count]))
			return false;
		patch->pin_count++;
	}
	return patch->pin_count > 0;
}

/* STORE/index opened and trusted, with its size; -1 when there is none
 * (nothing installed: the common case, one system call) or none to trust. */
static int index_open(const char *store, size_t *size)
{
	char path[PATH_MAX + 8];
	struct stat info, folder;
	int fd;

	snprintf(path, sizeof(path), "%s/index", store);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0)
		return -1;
	if (fstat(fd, &info) != 0 || !S_ISREG(info.st_mode) || !owner_trusted(&info) ||
	    info.st_size <= 0 || (size_t)info.st_size > INDEX_SIZE_MAX ||
	    stat(store, &folder) != 0 || !S_ISDIR(folder.st_mode) || !owner_trusted(&folder)) {
		say(4, "the store %s is not owned by root or is writable by others; nothing applied",
		    store);
		close(fd);
		return -1;
	}
	*size = (size_t)info.st_size;
	return fd;
}

/* ---- the process's loaded objects, by build-id ---- */

/* The GNU build-id note of one segment, bounded by the segment. */
static bool note_build_id(const unsigned char *notes, size_t size, struct build_id *id)
{
	size_t at = 0;

	while (size - at >= sizeof(ElfW(Nhdr))) {
		const ElfW(Nhdr) *note = (const ElfW(Nhdr) *)(notes + at);
		size_t name = (note->n_namesz + 3) & ~(size_t)3,
		       description = (note->n_descsz + 3) & ~(size_t)3;

		at += sizeof(*note);
		if (name > size - at || description > size - at - name)
			return false;
		if (note->n_type == NT_GNU_BUILD_ID && note->n_namesz == 4 &&
		    memcmp(notes + at, "GNU", 4) == 0 && note->n_descsz > 0 &&
		    note->n_descsz <= BUILD_ID_MAX) {
			memcpy(id->bytes, notes + at + name, note->n_descsz);
			id->size = note->n_descsz;
			return true;
		}
		at += name + description;
	}
	return false;
}

struct pin_search {
	const struct installed_patch *patch;
	uint32_t found;		/* bit i: pins[i] is loaded */
};

/* Marks the pins of the patch that this loaded object's build-id is. */
static int mark_loaded_pins(struct dl_phdr_info *info, size_t size, void *data)
{
	struct pin_search *search = data;
	struct build_id id;

	(void)size;
	for (ElfW(Half) i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *segment = &info->dlpi_phdr[i];

		if (segment->p_type != PT_NOTE ||
		    !note_build_id((const unsigned char *)(info->dlpi_addr + segment->p_vaddr),
				   segment->p_memsz, &id))
			continue;
		for (size_t pin = 0; pin < search->patch->pin_count; pin++)
			if (search->patch->pins[pin].size == id.size &&
			    memcmp(search->patch->pins[pin].bytes, id.bytes, id.size) == 0)
				search->found |= 1u << pin;
		break;
	}
	return 0;
}

/* Every object the patch is pinned to is loaded. */
static bool patch_fits(const struct installed_patch *patch)
{
	struct pin_search search = { .patch = patch };

	dl_iterate_phdr(mark_loaded_pins, &search);
	return search.found == (1u << patch->pin_count) - 1;
}

/* ---- the work, done by libhotpatch-apply.so ---- */

/* libhotpatch-apply.so from the folder this file was loaded from, which
 * must be trusted as the store is. */
static bool load_apply_library(void)
{
	char path[PATH_MAX], *slash;
	struct stat info;
	Dl_info self;
	void *handle;

	if (apply_patch)
		return true;
	if (!dladdr((void *)load_apply_library, &self) || !self.dli_fname ||
	    strlen(self.dli_fname) >= sizeof(path) - sizeof(APPLY_LIBRARY))
		return false;
	strcpy(path, self.dli_fname);
	slash = strrchr(path, '/');
	strcpy(slash ? slash + 1 : path, APPLY_LIBRARY);
	if (stat(path, &info) != 0 || !S_ISREG(info.st_mode) || !owner_trusted(&info)) {
		say(3, "%s is missing, not owned by root or writable by others; nothing applied",
		    path);
		return false;
	}
	handle = real_dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (handle)
		apply_patch = (int (*)(const char *, char *, size_t))dlsym(handle,
									     "hotpatch_loader_apply");
	if (!apply_patch) {
		say(3, "cannot load %s: %s; nothing applied", path, handle ? "no entry point" : dlerror());
		if (handle)
			dlclose(handle);
	}
	return apply_patch != NULL;
}

/* The table of outcomes, made on first use: private pages of a memory
 * file whose name status finds in /proc/PID/maps (private, so that a child
 * forked later keeps its own); anonymous ones where no memory file can be
 * made (a seccomp filter), which status cannot see. */
static struct loader_outcomes *outcomes_table(void)
{
	void *table = MAP_FAILED;
	int fd;

	if (outcomes)
		return outcomes;
	fd = memfd_create(LOADER_OUTCOMES_NAME, MFD_CLOEXEC);
	if (fd >= 0 && ftruncate(fd, sizeof(*outcomes)) == 0)
		table = mmap(NULL, sizeof(*outcomes), PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	if (fd >= 0)
		close(fd);
	if (table == MAP_FAILED)
		table = mmap(NULL, sizeof(*outcomes), PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (table == MAP_FAILED)
		return NULL;
	outcomes = table;
	memcpy(outcomes->magic, LOADER_OUTCOMES_MAGIC, sizeof(LOADER_OUTCOMES_MAGIC));
	return outcomes;
}

static bool tried_before(const char *name)
{
	for (size_t i = 0; outcomes && i < outcomes->count; i++)
		if (strcmp(outcomes->entries[i].name, name) == 0)
			return true;
	return false;
}

/* Applies a fitting patch, once in this process's life, and keeps what
 * came of it. */
static void apply_one(const char *store, const struct installed_patch *patch)
{
	char path[PATH_MAX + NAME_MAX_LENGTH + 8], message[MESSAGE_MAX];
	struct loader_outcomes *table;
	struct loader_outcome *outcome;
	int code = 1;

	if (tried_before(patch->name) || !(table = outcomes_table()))
		return;
	if (table->count == LOADER_OUTCOMES_MAX) {
		say(4, "%s fits, but %d patches were tried in this process already; not applied",
		    patch->name, LOADER_OUTCOMES_MAX);
		return;
	}
	outcome = &table->entries[table->count++];
	strcpy(outcome->name, patch->name);
	snprintf(message, sizeof(message), "the loader's engine %s could not be loaded (syslog says why)",
		 APPLY_LIBRARY);
	if (load_apply_library()) {
		snprintf(path, sizeof(path), "%s/%s.so", store, patch->name);
		message[0] = '\0';
		code = apply_patch(path, message, sizeof(message));
	}
	outcome->code = code;
	if (code != 0)
		snprintf(outcome->reason, sizeof(outcome->reason), "%s", message);
	if (code == 0)
		say(5, "%s", message);
	else
		say(3, "%s not applied (exit %d): %s", patch->name, code, message);
}

/* `text` (`size` bytes, NUL-terminated) is the index: each patch listed
 * that fits is applied, one line at a time. */
static void apply_index(const char *store, char *text, size_t size)
{
	size_t header = sizeof(INDEX_HEADER) - 1;
	struct installed_patch patch;
	char *line, *rest = NULL;

	if (size < header || memcmp(text, INDEX_HEADER, header) != 0) {
		say(4, "%s/index is not an index this loader reads; nothing applied", store);
		return;
	}
	for (line = strtok_r(text + header, "\n", &rest); line;
	     line = strtok_r(NULL, "\n", &rest))
		if (parse_line(line, &patch) && patch_fits(&patch))
			apply_one(store, &patch);
}

/* Every patch not tried yet that fits what is loaded now.  The index is
 * read on the stack: no allocation, so that a process nothing fits gets
 * no heap from us (measured: malloc's first use and the pages it touched
 * were most of the cost of a start). */
static void apply_fitting(void)
{
	char store[PATH_MAX], small[INDEX_ON_STACK], *text = small;
	int fd, saved_errno = errno;
	size_t size;

	if (loader_busy)
		return;
	loader_busy = true;
	pthread_mutex_lock(&loader_lock);
	store_path(store);
	fd = index_open(store, &size);
	if (fd >= 0) {
		if (size >= sizeof(small))
			text = mmap(NULL, size + 1, PROT_READ | PROT_WRITE,
				    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (text != MAP_FAILED && read(fd, text, size) == (ssize_t)size) {
			text[size] = '\0';
			apply_index(store, text, size);
		}
		if (text != small && text != MAP_FAILED && munmap(text, size + 1) != 0)
			say(4, "cannot unmap the index: %s", strerror(errno));
		close(fd);
	}
	pthread_mutex_unlock(&loader_lock);
	loader_busy = false;
	errno = saved_errno;
}

/* A library dlopen'ed later gets its patches before the caller sees it:
 * its code can only be running already in threads its own constructors
 * started. */
__attribute__((visibility("default"))) void *dlopen(const char *file, int flags)
{
	void *handle;

	if (!real_dlopen)
		real_dlopen = (void *(*)(const char *, int))dlsym(RTLD_NEXT, "dlopen");
	if (!real_dlopen)
		return NULL;
	handle = real_dlopen(file, flags);
	if (handle && file && !(flags & RTLD_NOLOAD))
		apply_fitting();
	return handle;
}

__attribute__((constructor)) static void loader_start(void)
{
	real_dlopen = (void *(*)(const char *, int))dlsym(RTLD_NEXT, "dlopen");
	if (real_dlopen)
		apply_fitting();
}
