/* debug_file.c - a stripped object's symbols from its separate debug file:
 * a file named with --debug-file, one found by build-id under --debug-dir,
 * the directories /etc/hotpatch/debug-dirs lists and /usr/lib/debug (as
 * Debian's -dbgsym packages install them), or, failing those, one fetched
 * from the debuginfod servers DEBUGINFOD_URLS names.  A file is used only
 * when it is trusted like a patch (its addresses decide where hotpatch
 * writes) and carries the object's very build-id.  Absent or unusable is
 * not an error here: a lookup that needs the symbols says where we looked. */
#include <errno.h>
#include <gelf.h>
#include <libelf.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "symbols/symbols.h"
#include "common/base.h"
#include "common/trusted_files.h"

#define CONFIGURED_MAX 16		/* directories in /etc/hotpatch/debug-dirs */
#define CONFIGURED_BYTES (64u << 10)
#define FETCHES_MAX 32			/* build-ids asked of debuginfod, per command */
#define WHY_MAX (3 * HP_TEXT_MAX)	/* an error message and a path */

/* What the front end asked for (hp_debug_search_set); one command per process. */
static struct hp_debug_search search;
static double search_deadline;		/* 0: none */

/* /etc/hotpatch/debug-dirs, read once; `configured_note` says why it was
 * not used when it was there but refused. */
static bool configured_read;
static size_t configured_count;
static char configured[CONFIGURED_MAX][HP_PATH_MAX];
static char configured_note[WHY_MAX];

/* Each build-id is asked of debuginfod once per command: a second lookup
 * of a name in the same object must not wait on the network again. */
static struct fetch {
	unsigned char build_id[sizeof(((struct hp_elf_info *)0)->build_id)];
	size_t build_id_size;
	char outcome[WHY_MAX];
} fetches[FETCHES_MAX];
static size_t fetch_count;

void hp_debug_search_set(const struct hp_debug_search *wanted)
{
	search = *wanted;
	search_deadline = wanted->timeout_seconds > 0 ? hp_now() + wanted->timeout_seconds : 0;
}

/* Bounded text: a note cut short still says what it is about. */
static void explain(char *text, size_t size, const char *format, ...) HP_PRINTF(3, 4);

static void explain(char *text, size_t size, const char *format, ...)
{
	va_list arguments;

	va_start(arguments, format);
	vsnprintf(text, size, format, arguments);
	va_end(arguments);
}

/* The test build alone lets HOTPATCH_DEBUG_DIR move the default. */
static const char *default_directory(void)
{
#ifdef HP_FAULT_INJECTION
	const char *moved = getenv("HOTPATCH_DEBUG_DIR");

	if (moved && moved[0] == '/')
		return moved;
#endif
	return "/usr/lib/debug/.build-id";
}

static void build_id_text(const struct hp_elf_info *info, char *text, size_t size)
{
	text[0] = '\0';
	for (size_t i = 0; i < info->build_id_size && 2 * i + 2 < size; i++)
		snprintf(text + 2 * i, size - 2 * i, "%02x", info->build_id[i]);
}

/* `directory`/xx/rest.debug, the layout of /usr/lib/debug/.build-id. */
static void build_id_path(const char *directory, const struct hp_elf_info *info, char *path,
			  size_t size)
{
	char id[2 * sizeof(info->build_id) + 1];

	build_id_text(info, id, sizeof(id));
	explain(path, size, "%s/%.2s/%s.debug", directory, id, id + 2);
}

/* One absolute directory a line; '#' starts a comment.  Root's file only:
 * whoever could write it could point us at their own files. */
static void read_configured(void)
{
	struct trust_directory directory = { .fd = -1 };
	struct trust_file file = TRUST_FILE_INIT;
	struct hp_error error = { 0 };
	struct trust_owners root;
	unsigned char *bytes = NULL;
	char *line, *next;
	size_t size = 0;

	if (configured_read)
		return;
	configured_read = true;
	trust_owners_root(&root);
	if (trust_open_directory(trust_config_directory(), "configuration directory", &root,
				 &directory, &error) == HP_OK &&
	    directory.fd >= 0 &&
	    trust_open_at(&directory, "debug-dirs", "debug directory list", &root, &file,
			  &error) == HP_OK &&
	    file.fd >= 0 &&
	    trust_read(&file, "debug directory list", CONFIGURED_BYTES, &bytes, &size,
		       &error) != HP_OK)
		bytes = NULL;
	if (error.message[0])
		hp_copy_string(configured_note, sizeof(configured_note), error.message);
	for (line = (char *)bytes; line && *line; line = next) {
		size_t length;

		next = strchrnul(line, '\n');
		if (*next)
			*next++ = '\0';
		line[strcspn(line, "#")] = '\0';
		length = strlen(line);
		while (length > 0 && (line[length - 1] == ' ' || line[length - 1] == '\t' ||
				      line[length - 1] == '\r'))
			line[--length] = '\0';
		line += strspn(line, " \t");
		if (line[0] == '/' && configured_count < CONFIGURED_MAX)
			hp_copy_string(configured[configured_count++], HP_PATH_MAX, line);
	}
	free(bytes);
	trust_close(&file);
	trust_directory_close(&directory);
}

/* Only the build-id note: a --debug-file meant for another object is
 * passed over without reading its symbols. */
static bool read_build_id(int fd, unsigned char *id, size_t capacity, size_t *size)
{
	Elf *elf;

	*size = 0;
	if (elf_version(EV_CURRENT) == EV_NONE)
		return false;
	elf = elf_begin(fd, ELF_C_READ, NULL);
	if (elf && elf_kind(elf) == ELF_K_ELF)
		*size = elf_build_id(elf, id, capacity);
	elf_end(elf);
	return *size > 0;
}

enum verdict { ABSENT, REFUSED, OTHER_BUILD, NO_SYMBOLS, USABLE };

/* Whether the file at `path` is the debug file of `info`; `why` says why
 * not.  When `debug` is given and the answer is USABLE, it holds the
 * file's symbols. */
static enum verdict examine(const struct hp_elf_info *info, const char *path, const char *what,
			    const struct trust_owners *owners, struct hp_elf_info *debug,
			    char *why, size_t size)
{
	struct trust_file file = TRUST_FILE_INIT;
	struct hp_elf_info read = { 0 };
	struct hp_error error = { 0 };
	unsigned char id[sizeof(info->build_id)];
	size_t id_size;
	enum verdict verdict = REFUSED;

	why[0] = '\0';
	if (access(path, F_OK) != 0) {
		explain(why, size, "absent");
		return ABSENT;
	}
	if (trust_open(path, what, owners, &file, &error) != HP_OK || file.fd < 0) {
		explain(why, size, "refused: %s", error.message);
	} else if (!read_build_id(file.fd, id, sizeof(id), &id_size)) {
		explain(why, size, "ignored: no build-id in it");
	} else if (id_size != info->build_id_size || memcmp(id, info->build_id, id_size) != 0) {
		struct hp_elf_info other = { .build_id_size = id_size };
		char text[2 * sizeof(id) + 1];

		memcpy(other.build_id, id, id_size);
		build_id_text(&other, text, sizeof(text));
		explain(why, size, "ignored: its build-id is %s", text);
		verdict = OTHER_BUILD;
	} else if (elf_info_read_fd(file.fd, path, &read, &error) != HP_OK) {
		explain(why, size, "refused: %s", error.message);
	} else if (!read.has_symtab) {
		explain(why, size, "ignored: no symbol table in it");
		verdict = NO_SYMBOLS;
	} else {
		verdict = USABLE;
	}
	if (verdict == USABLE && debug)
		*debug = read;
	else
		elf_info_release(&read);
	trust_close(&file);
	return verdict;
}

/* The local places, in order: every --debug-file, then each directory
 * (--debug-dir, /etc/hotpatch/debug-dirs) by build-id and by the object's
 * file name, then the default.  `visit` returns true to stop. */
typedef bool (*visit_function)(const char *path, const char *place, void *context);

static bool visit_directory(const char *directory, const struct hp_elf_info *info,
			    const char *name, const char *place, visit_function visit,
			    void *context)
{
	char base[HP_PATH_MAX], path[HP_PATH_MAX];

	explain(base, sizeof(base), "%s/.build-id", directory);
	build_id_path(base, info, path, sizeof(path));
	if (visit(path, place, context))
		return true;
	if (!name || !name[0])
		return false;
	explain(path, sizeof(path), "%s/%s.debug", directory, name);
	return visit(path, place, context);
}

static bool visit_local(const struct hp_elf_info *info, const char *name, visit_function visit,
			void *context)
{
	char path[HP_PATH_MAX];

	for (size_t i = 0; i < search.file_count; i++)
		if (visit(search.files[i], "--debug-file", context))
			return true;
	for (size_t i = 0; i < search.directory_count; i++)
		if (visit_directory(search.directories[i], info, name, "--debug-dir", visit,
				    context))
			return true;
	read_configured();
	for (size_t i = 0; i < configured_count; i++)
		if (visit_directory(configured[i], info, name, "debug-dirs", visit, context))
			return true;
	build_id_path(default_directory(), info, path, sizeof(path));
	return visit(path, "default", context);
}

struct taking {
	struct hp_elf_info *info;
	const struct trust_owners *owners;
	bool taken;
};

static bool take_from(struct hp_elf_info *info, const char *path, const char *what,
		      const struct trust_owners *owners, char *why, size_t size)
{
	struct hp_elf_info debug = { 0 };
	struct hp_error error = { 0 };
	bool taken = false;

	if (examine(info, path, what, owners, &debug, why, size) == USABLE) {
		taken = elf_info_take_symbols(info, &debug, &error) == HP_OK;
		if (!taken)
			explain(why, size, "refused: %s", error.message);
	}
	elf_info_release(&debug);
	return taken;
}

static bool take_visit(const char *path, const char *place, void *context)
{
	struct taking *taking = context;
	char why[WHY_MAX];

	(void)place;
	taking->taken = take_from(taking->info, path, "debug file", taking->owners, why,
				  sizeof(why));
	return taking->taken;
}

bool debug_file_find(struct hp_elf_info *info, const char *name,
		     const struct trust_owners *owners)
{
	struct taking taking = { .info = info, .owners = owners };

	if (info->has_symtab || info->build_id_size < 2)
		return false;
	visit_local(info, name, take_visit, &taking);
	return taking.taken;
}

/* What debuginfod downloaded sits in the cache that we, running hotpatch,
 * wrote: ours only (root's, or the target owner's when that is who runs
 * us), through directories nobody else can write. */
static void cache_owners(const struct trust_owners *owners, struct trust_owners *cache)
{
	uid_t self = geteuid();

	trust_owners_root(cache);
	cache->pid = owners->pid;
	for (size_t i = 0; i < owners->count && self != 0; i++)
		if (owners->uids[i] == self)
			cache->uids[cache->count++] = self;
}

static struct fetch *fetch_remembered(const struct hp_elf_info *info)
{
	for (size_t i = 0; i < fetch_count; i++)
		if (fetches[i].build_id_size == info->build_id_size &&
		    memcmp(fetches[i].build_id, info->build_id, info->build_id_size) == 0)
			return &fetches[i];
	return NULL;
}

static void fetch_ask(struct hp_elf_info *info, const struct trust_owners *owners,
		      struct fetch *fetch, bool *taken)
{
	const char *urls = getenv("DEBUGINFOD_URLS");
	struct trust_owners cache;
	char *path = NULL, why[WHY_MAX];
	bool stopped = false;
	int fd;

	if (!urls || !urls[0]) {
		explain(fetch->outcome, sizeof(fetch->outcome), "DEBUGINFOD_URLS not set");
		return;
	}
	if (search_deadline > 0 && hp_now() >= search_deadline) {
		explain(fetch->outcome, sizeof(fetch->outcome), "not asked: --timeout is over");
		return;
	}
	fd = debug_download(info->build_id, info->build_id_size, search_deadline,
			    search.interrupted, &path, &stopped);
	if (fd >= 0) {
		close(fd);
		cache_owners(owners, &cache);
		/* The path, not the descriptor: the cached file passes the same
		 * checks as a local one. */
		*taken = take_from(info, path, "debuginfod download", &cache, why, sizeof(why));
		explain(fetch->outcome, sizeof(fetch->outcome), "%s from %s", *taken ? "used" : why,
			urls);
	} else if (fd == -ENOTSUP) {
		explain(fetch->outcome, sizeof(fetch->outcome),
			"not asked: a process starting never waits on the network");
	} else if (stopped) {
		explain(fetch->outcome, sizeof(fetch->outcome), "%s (%s)",
			search.interrupted && *search.interrupted ? "interrupted"
								  : "gave up at --timeout",
			urls);
	} else {
		explain(fetch->outcome, sizeof(fetch->outcome), "%s (%s)",
			fd == -ENOENT ? "not found" : strerror(-fd), urls);
	}
	free(path);
}

bool debug_file_fetch(struct hp_elf_info *info, const struct trust_owners *owners)
{
	struct fetch *fetch;
	bool taken = false;

	if (info->has_symtab || info->build_id_size < 2 || fetch_remembered(info) ||
	    fetch_count == FETCHES_MAX)
		return false;
	fetch = &fetches[fetch_count++];
	memcpy(fetch->build_id, info->build_id, info->build_id_size);
	fetch->build_id_size = info->build_id_size;
	fetch_ask(info, owners, fetch, &taken);
	return taken;
}

bool debug_file_take_symbols(struct hp_elf_info *info, const struct trust_owners *owners)
{
	return debug_file_find(info, NULL, owners) || debug_file_fetch(info, owners);
}

void debug_file_default_path(const struct hp_elf_info *info, char *path, size_t size)
{
	build_id_path(default_directory(), info, path, size);
}

struct describing {
	const struct hp_elf_info *info;
	const struct trust_owners *owners;
	struct hp_error *error;
};

static bool describe_visit(const char *path, const char *place, void *context)
{
	struct describing *describing = context;
	char why[WHY_MAX];

	examine(describing->info, path, "debug file", describing->owners, NULL, why, sizeof(why));
	hp_detail(describing->error, "  %s %s: %s", place, path, why);
	return false;
}

void debug_file_describe_search(const struct hp_elf_info *info, const char *name,
				const struct trust_owners *owners, struct hp_error *error)
{
	struct describing describing = { .info = info, .owners = owners, .error = error };
	const struct fetch *fetch = fetch_remembered(info);
	char id[2 * sizeof(info->build_id) + 1];

	build_id_text(info, id, sizeof(id));
	hp_detail(error, "looked for the debug file of build-id %s:", id);
	visit_local(info, name, describe_visit, &describing);
	if (configured_note[0])
		hp_detail(error, "  debug-dirs: not used: %s", configured_note);
	hp_detail(error, "  debuginfod: %s", fetch ? fetch->outcome : "not asked");
}
