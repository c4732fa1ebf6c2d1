/* target_map.c - the objects a target process has loaded: which mappings
 * belong together, which one is the main executable, their ELF facts and
 * local debug files (target_symbols.c says what names in them mean).
 * Files are opened through the target's own view (/proc/PID/map_files, else
 * /proc/PID/root checked against the mapped inode), never by a bare path. */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "runtime/target.h"
#include "common/base.h"
#include "common/proc_maps.h"
#include "common/trusted_files.h"
#include "symbols/symbols.h"

static bool same_file(const struct hp_mapping *mapping, const struct hp_object *object)
{
	return mapping->inode == object->inode && mapping->dev_major == object->dev_major &&
	       mapping->dev_minor == object->dev_minor && strcmp(mapping->path, object->path) == 0;
}

static struct hp_object *object_for(struct hp_target *target, const struct hp_mapping *mapping)
{
	for (size_t i = 0; i < target->object_count; i++)
		if (same_file(mapping, &target->objects[i]))
			return &target->objects[i];
	return NULL;
}

static int add_object(struct hp_target *target, const struct hp_mapping *mapping,
		      struct hp_error *error)
{
	struct hp_object *larger, *object;

	larger = realloc(target->objects, (target->object_count + 1) * sizeof(*larger));
	if (!larger)
		return hp_fail(error, HP_FAILED, "out of memory mapping the target");
	target->objects = larger;
	object = &target->objects[target->object_count];
	memset(object, 0, sizeof(*object));
	object->path = strdup(mapping->path);
	if (!object->path)
		return hp_fail(error, HP_FAILED, "out of memory mapping the target");
	object->dev_major = mapping->dev_major;
	object->dev_minor = mapping->dev_minor;
	object->inode = mapping->inode;
	object->low = mapping->start;
	object->high = mapping->end;
	object->base = mapping->offset == 0 ? mapping->start : 0;
	target->object_count++;
	return HP_OK;
}

static bool is_file_mapping(const struct hp_mapping *mapping)
{
	return mapping->inode != 0 && mapping->path[0] == '/';
}

static int group_objects(struct hp_target *target, struct hp_error *error)
{
	for (size_t i = 0; i < target->maps.count; i++) {
		const struct hp_mapping *mapping = &target->maps.items[i];
		struct hp_object *object;
		int status;

		if (!is_file_mapping(mapping))
			continue;
		object = object_for(target, mapping);
		if (!object) {
			status = add_object(target, mapping, error);
			if (status != HP_OK)
				return status;
			continue;
		}
		if (mapping->start < object->low)
			object->low = mapping->start;
		if (mapping->end > object->high)
			object->high = mapping->end;
		if (mapping->offset == 0 && (object->base == 0 || mapping->start < object->base))
			object->base = mapping->start;
	}
	return HP_OK;
}

/* The main executable is the object /proc/PID/exe names. */
static void mark_main(struct hp_target *target)
{
	char link[64], exe[4096];
	struct stat info;
	ssize_t length;
	bool have_stat;

	snprintf(link, sizeof(link), "/proc/%d/exe", (int)target->pid);
	have_stat = stat(link, &info) == 0;
	length = readlink(link, exe, sizeof(exe) - 1);
	exe[length > 0 ? length : 0] = '\0';
	for (size_t i = 0; i < target->object_count; i++) {
		struct hp_object *object = &target->objects[i];

		if ((have_stat && object->inode == info.st_ino &&
		     object->dev_major == major(info.st_dev) &&
		     object->dev_minor == minor(info.st_dev)) ||
		    (length > 0 && strcmp(object->path, exe) == 0)) {
			object->is_main = true;
			return;
		}
	}
}

int target_map_open(pid_t pid, struct hp_target *target, struct hp_error *error)
{
	int status;

	memset(target, 0, sizeof(*target));
	target->pid = pid;
	status = proc_maps_read(pid, &target->maps, error);
	if (status == HP_OK)
		status = group_objects(target, error);
	if (status == HP_OK)
		mark_main(target);
	return status;
}

void target_map_release(struct hp_target *target)
{
	for (size_t i = 0; i < target->object_count; i++) {
		elf_info_release(&target->objects[i].elf);
		free(target->objects[i].path);
	}
	free(target->objects);
	proc_maps_release(&target->maps);
	memset(target, 0, sizeof(*target));
}

static const struct hp_mapping *first_mapping(const struct hp_target *target,
					      const struct hp_object *object)
{
	for (size_t i = 0; i < target->maps.count; i++)
		if (same_file(&target->maps.items[i], object))
			return &target->maps.items[i];
	return NULL;
}

/* map_files gives the very file that is mapped, even deleted or replaced
 * ones; /proc/PID/root is the fallback, accepted only for the same inode. */
static int open_object_file(const struct hp_target *target, const struct hp_object *object,
			    struct hp_error *error)
{
	const struct hp_mapping *mapping = first_mapping(target, object);
	char path[4200];
	struct stat info;
	int fd;

	if (!mapping)
		return hp_fail(error, HP_FAILED, "%s is no longer mapped", object->path);
	snprintf(path, sizeof(path), "/proc/%d/map_files/%" PRIx64 "-%" PRIx64, (int)target->pid,
		 mapping->start, mapping->end);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0)
		return fd;
	snprintf(path, sizeof(path), "/proc/%d/root%s", (int)target->pid, object->path);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		hp_error_file(error, object->path);
		return hp_fail_errno(error, HP_FAILED, "cannot open %s of pid %d", object->path,
				     (int)target->pid);
	}
	if (fstat(fd, &info) != 0 || info.st_ino != object->inode ||
	    major(info.st_dev) != object->dev_major || minor(info.st_dev) != object->dev_minor) {
		close(fd);
		hp_error_file(error, object->path);
		return hp_fail(error, HP_FAILED, "%s was replaced on disk since pid %d mapped it",
			       object->path, (int)target->pid);
	}
	return fd;
}

/* A stripped object's file-local symbols come from its debug file, trusted
 * like a patch and only by the target's owner or root: its addresses
 * decide where we write.  Only local places here: every object is loaded
 * (libc for dlopen too), and most never need more than their exports
 * (target_symbols.c asks debuginfod when a name is missing). */
static void load_debug_symbols(struct hp_target *target, struct hp_object *object)
{
	struct trust_owners owners;

	trust_owners_of_target(target->pid, &owners);
	object->debug_file = debug_file_find(&object->elf, hp_base_name(object->path), &owners);
}

int target_load_object(struct hp_target *target, struct hp_object *object,
		       struct hp_error *error)
{
	int fd, status;

	if (object->loaded)
		return HP_OK;
	fd = open_object_file(target, object, error);
	if (fd < 0)
		return fd;
	status = elf_info_read_fd(fd, object->path, &object->elf, error);
	close(fd);
	if (status != HP_OK)
		return status;
	object->bias = object->base - object->elf.first_load_vaddr;
	if (object->elf.type == ET_EXEC)
		object->bias = 0;
	load_debug_symbols(target, object);
	object->loaded = true;
	return HP_OK;
}

static bool object_matches(struct hp_target *target, struct hp_object *object,
			   const char *name, bool by_soname)
{
	struct hp_error ignored = { 0 };

	if (!name[0])
		return object->is_main;
	if (!by_soname)
		return elf_file_name_matches(name, hp_base_name(object->path));
	/* Reading every object's symbols is costly: only when file names failed. */
	return target_load_object(target, object, &ignored) == HP_OK && object->elf.soname &&
	       strcmp(object->elf.soname, name) == 0;
}

int target_find_object(struct hp_target *target, const char *name, struct hp_object **found,
		       struct hp_error *error)
{
	size_t matches = 0;

	*found = NULL;
	for (int by_soname = 0; by_soname < 2 && !*found; by_soname++) {
		for (size_t i = 0; i < target->object_count; i++) {
			struct hp_object *object = &target->objects[i];

			if (!object_matches(target, object, name, by_soname))
				continue;
			matches++;
			*found = object;
		}
	}
	if (matches > 1) {
		hp_error_file(error, name);
		hp_hint(error, "name the library by its full file name");
		return hp_fail(error, HP_MISFIT, "more than one loaded library matches %s in pid %d",
			       name, (int)target->pid);
	}
	if (!*found) {
		hp_error_file(error, name[0] ? name : "main executable");
		if (!name[0])
			return hp_fail(error, HP_FAILED, "cannot find the main executable of pid %d",
				       (int)target->pid);
		hp_hint(error, "check the library name in the patch against /proc/%d/maps",
			(int)target->pid);
		return hp_fail_as(error, HP_KIND_MISSING_OBJECT, "pid %d has not loaded %s", (int)target->pid, name);
	}
	return target_load_object(target, *found, error);
}

/* The object whose own mapping holds `address`.  An object's span is not
 * enough: the kernel may put other mappings in the gaps between its
 * segments (arm64's vDSO sits between ld.so's, whose segments are 64 KiB
 * apart). */
struct hp_object *target_object_at(struct hp_target *target, uint64_t address)
{
	const struct hp_mapping *mapping = proc_maps_find(&target->maps, address);

	return mapping && is_file_mapping(mapping) ? object_for(target, mapping) : NULL;
}
