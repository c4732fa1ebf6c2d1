/* patch_load.c - getting the patch object into the target and out again.
 * The bytes we checked go into a memfd created by the target itself (we
 * fill it through pidfd_getfd and seal it), and the target dlopens
 * /proc/self/fd/N: no path in the target's mount namespace is trusted, and
 * the file cannot change between check and load. */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/memfd.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "runtime/state.h"
#include "common/base.h"
#include "common/proc_maps.h"
#include "runtime/target.h"
#include "runtime/threads.h"

/* Copies the checked bytes into the target's memfd and seals it. */
static int fill_memfd(pid_t pid, int64_t remote_fd, const struct hp_patch_file *patch,
		      uint64_t *inode, struct hp_error *error)
{
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0), local = -1, status = HP_OK;
	size_t done = 0;
	struct stat info;

	if (pidfd < 0)
		return hp_fail_errno(error, HP_FAILED, "pidfd_open(%d)", (int)pid);
	local = (int)syscall(SYS_pidfd_getfd, pidfd, (int)remote_fd, 0);
	if (local < 0) {
		status = hp_fail_errno(error, HP_FAILED, "cannot reach the memfd in pid %d", (int)pid);
		goto out;
	}
	while (done < patch->size) {
		ssize_t written = write(local, patch->bytes + done, patch->size - done);

		if (written < 0 && errno == EINTR)
			continue;
		if (written <= 0) {
			status = hp_fail_errno(error, HP_FAILED, "cannot fill the patch memfd");
			goto out;
		}
		done += (size_t)written;
	}
	if (fstat(local, &info) != 0 ||
	    fcntl(local, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL) != 0) {
		status = hp_fail_errno(error, HP_FAILED, "cannot seal the patch memfd");
		goto out;
	}
	*inode = info.st_ino;
out:
	if (local >= 0)
		close(local);
	close(pidfd);
	return status;
}

/* The dynamic loader matches objects by the name they were opened with, so
 * every load gets a name no object has: variant `number` of the path to the
 * descriptor, one of 2^16 spellings ("/." or an empty component for each
 * bit: /proc/self//././/fd/N).  A recorded patch's name is skipped here; an
 * object a killed hotpatch loaded and nobody reclaimed is caught when the
 * loader hands it back.  Counting on from the state's sequence number, the
 * names never run out. */
#define LOAD_NAME_BITS 16
#define LOAD_NAME_TRIES 64

static bool load_path_variant(int64_t fd, uint64_t number, const struct hp_state *state,
			      char *path, size_t size)
{
	size_t used = (size_t)snprintf(path, size, "/proc/self");

	for (int bit = 0; bit < LOAD_NAME_BITS && used < size; bit++)
		used += (size_t)snprintf(path + used, size - used, "%s",
					 (number >> bit) & 1 ? "/." : "/");
	if (used >= size || (size_t)snprintf(path + used, size - used, "/fd/%lld", (long long)fd) >=
				    size - used)
		return false;
	for (size_t i = 0; i < state->patch_count; i++)
		if (strcmp(state->patches[i]->load_path, path) == 0)
			return false;
	return true;
}

bool patch_mapped_span(const struct hp_maps *maps, uint64_t inode, uint64_t *bias,
		       uint64_t *text_start, uint64_t *text_end)
{
	*bias = *text_start = *text_end = 0;
	for (size_t i = 0; i < maps->count; i++) {
		const struct hp_mapping *mapping = &maps->items[i];

		if (mapping->inode != inode ||
		    strncmp(mapping->path, PATCH_MEMFD_PATH, strlen(PATCH_MEMFD_PATH)) != 0)
			continue;
		if (mapping->offset == 0 && (!*bias || mapping->start < *bias))
			*bias = mapping->start;
		if (mapping->executable && (!*text_start || mapping->start < *text_start))
			*text_start = mapping->start;
		if (mapping->executable && mapping->end > *text_end)
			*text_end = mapping->end;
	}
	return *bias != 0;
}

static int locate_loaded(pid_t pid, struct hp_loaded_patch *loaded, struct hp_error *error)
{
	struct hp_maps maps = { 0 };
	int status = proc_maps_read(pid, &maps, error);

	if (status == HP_OK)
		patch_mapped_span(&maps, loaded->inode, &loaded->bias, &loaded->text_start,
				  &loaded->text_end);
	proc_maps_release(&maps);
	if (status == HP_OK && (!loaded->bias || !loaded->text_start))
		status = hp_fail(error, HP_FAILED, "the loaded patch is not mapped in pid %d",
				 (int)pid);
	return status;
}

static int report_dlerror(struct hp_remote *remote, struct hp_target *target,
			  const struct hp_patch_file *patch, struct hp_error *error)
{
	struct hp_memory memory = { .pid = remote->pid, .mem_fd = -1 };
	uint64_t dlerror_address = 0, text = 0;
	char message[300] = "unknown reason";
	struct hp_error ignored = { 0 };

	if (target_find_export(target, "dlerror", &dlerror_address, &ignored) == HP_OK &&
	    remote_call(remote, dlerror_address, (uint64_t[6]){ 0 }, &text, &ignored) == HP_OK &&
	    text && target_memory_open(remote->pid, &memory, &ignored) == HP_OK)
		if (target_memory_read_string(&memory, text, message, sizeof(message), &ignored) !=
		    HP_OK)
			hp_copy_string(message, sizeof(message), "unknown reason");
	target_memory_close(&memory);
	hp_error_file(error, patch->path);
	if (strstr(message, "undefined symbol: "))
		hp_hint(error, "a variable or function of the target itself (static or not "
			       "exported) must be named with HOTPATCH_SYMBOL in the patch");
	else
		hp_hint(error, "check the patch's library dependencies and symbols");
	return hp_fail_as(error, HP_KIND_LOAD_FAILED, "pid %d cannot load patch %s: %s", (int)remote->pid,
		       patch->name, message);
}

/* dlopens the memfd, by a name no loaded object has.  When the loader hands
 * back an object it has under that name (one a killed hotpatch loaded), our
 * reference to it is let go and the next name tried.  A failed dlopen
 * leaves loaded->handle 0 for the caller to explain. */
static int open_in_target(struct hp_remote *remote, struct hp_target *target,
			  struct hp_memory *memory, uint64_t dlopen_address, int64_t fd,
			  const struct hp_state *state, struct hp_loaded_patch *loaded,
			  struct hp_error *error)
{
	uint64_t data = remote->stub_page + HP_STUB_DATA, inode = loaded->inode;
	int status = HP_OK;

	for (uint64_t try = 0; status == HP_OK && try < LOAD_NAME_TRIES; try++) {
		struct hp_error not_ours = { 0 };

		if (!load_path_variant(fd, state->next_sequence + try, state, loaded->load_path,
				       sizeof(loaded->load_path)))
			continue;
		status = target_memory_write(memory, remote->tid, data, loaded->load_path,
					     strlen(loaded->load_path) + 1, error);
		if (status == HP_OK)
			status = remote_call(remote, dlopen_address,
					     (uint64_t[6]){ data, RTLD_NOW | RTLD_LOCAL },
					     &loaded->handle, error);
		if (status != HP_OK || !loaded->handle)
			return status;
		if (locate_loaded(remote->pid, loaded, &not_ours) == HP_OK)
			return HP_OK;
		status = patch_unload(remote, target, loaded->handle, error);
		memset(loaded, 0, sizeof(*loaded));
		loaded->inode = inode;
	}
	hp_hint(error, "see the leftovers with: hotpatch list --pid %d", (int)remote->pid);
	return status == HP_OK ? hp_fail(error, HP_FAILED, "no free name to load the patch by in pid %d",
					 (int)remote->pid)
			       : status;
}

int patch_load(struct hp_remote *remote, struct hp_target *target,
	       const struct hp_patch_file *patch, const struct hp_state *state,
	       struct hp_loaded_patch *loaded, struct hp_error *error)
{
	struct hp_memory memory = { .pid = remote->pid, .mem_fd = -1 };
	uint64_t data = remote->stub_page + HP_STUB_DATA, dlopen_address = 0;
	char memfd_name[HP_PATCH_NAME_MAX + 16];
	int64_t fd = -1, ignored;
	int status;

	memset(loaded, 0, sizeof(*loaded));
	snprintf(memfd_name, sizeof(memfd_name), "hotpatch:%s", patch->name);
	status = target_find_export(target, "dlopen", &dlopen_address, error);
	if (status == HP_OK)
		status = target_memory_open(remote->pid, &memory, error);
	if (status == HP_OK)
		status = target_memory_write(&memory, remote->tid, data, memfd_name,
					     strlen(memfd_name) + 1, error);
	if (status == HP_OK)
		status = remote_syscall_checked(remote, SYS_memfd_create,
					(uint64_t[6]){ data, MFD_CLOEXEC | MFD_ALLOW_SEALING },
					"memfd_create", &fd, error);
	if (status == HP_OK)
		status = fill_memfd(remote->pid, fd, patch, &loaded->inode, error);
	if (status == HP_OK && hp_fault("kill-in-load"))
		raise(SIGKILL);	/* the test build's way to die with the memfd open */
	if (status == HP_OK)
		status = open_in_target(remote, target, &memory, dlopen_address, fd, state, loaded,
					error);
	/* After a failure the close is best effort: its own failure (the
	 * target died, say) must not replace the error that is reported. */
	if (fd >= 0) {
		struct hp_error close_error = { 0 };
		int closed = remote_syscall_checked(remote, SYS_close, (uint64_t[6]){ (uint64_t)fd },
						    "close", &ignored, &close_error);

		status = hp_first_failure(status, error, closed, &close_error);
	}
	if (status == HP_OK && !loaded->handle)
		status = report_dlerror(remote, target, patch, error);
	if (status == HP_OK && !loaded->bias)
		status = hp_fail(error, HP_FAILED, "the loaded patch is not mapped in pid %d",
				 (int)remote->pid);
	target_memory_close(&memory);
	return status;
}

int patch_unload(struct hp_remote *remote, struct hp_target *target, uint64_t handle,
		 struct hp_error *error)
{
	uint64_t dlclose_address = 0, result = 0;
	int status = target_find_export(target, "dlclose", &dlclose_address, error);

	if (status == HP_OK)
		status = remote_call(remote, dlclose_address, (uint64_t[6]){ handle }, &result,
				     error);
	if (status == HP_OK && (int)result != 0)
		status = hp_fail(error, HP_FAILED, "dlclose of the patch failed in pid %d",
				 (int)remote->pid);
	return status;
}
