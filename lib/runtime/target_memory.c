/* target_memory.c - reading and writing another process's memory.  Reads use
 * process_vm_readv (one system call for a whole range) with /proc/PID/mem as
 * the fallback; writes go through /proc/PID/mem, which may write read-only
 * code, or through PTRACE_POKEDATA where a hardened kernel forbids that.
 * Both reach the kernel's access_remote_vm, whose copy_to_user_page also
 * keeps the instruction cache right where a processor needs it: on arm64,
 * flush_ptrace_access cleans the data cache and invalidates the instruction
 * cache for an executable mapping, so code we write is the code that runs
 * (process_vm_writev would not: it is used for stack data only). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <unistd.h>

#include "runtime/target.h"
#include "common/base.h"

int target_memory_open(pid_t pid, struct hp_memory *memory, struct hp_error *error)
{
	char path[64];

	memory->pid = pid;
	snprintf(path, sizeof(path), "/proc/%d/mem", (int)pid);
	memory->mem_fd = open(path, O_RDWR | O_CLOEXEC);
	if (memory->mem_fd < 0)
		memory->mem_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (memory->mem_fd < 0)
		return hp_fail_errno(error, HP_FAILED, "cannot open the memory of pid %d",
				     (int)pid);
	return HP_OK;
}

void target_memory_close(struct hp_memory *memory)
{
	if (memory->mem_fd >= 0)
		close(memory->mem_fd);
	memory->mem_fd = -1;
}

static bool read_vm(pid_t pid, uint64_t address, void *buffer, size_t length)
{
	struct iovec local = { buffer, length };
	struct iovec remote = { (void *)(uintptr_t)address, length };

	return process_vm_readv(pid, &local, 1, &remote, 1, 0) == (ssize_t)length;
}

int target_memory_read(struct hp_memory *memory, uint64_t address, void *buffer,
		       size_t length, struct hp_error *error)
{
	size_t done = 0;

	if (read_vm(memory->pid, address, buffer, length))
		return HP_OK;
	while (done < length) {
		ssize_t got = pread(memory->mem_fd, (char *)buffer + done, length - done,
				    (off_t)(address + done));

		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			return hp_fail(error, HP_FAILED,
				       "cannot read %zu bytes at 0x%" PRIx64 " in pid %d", length,
				       address, (int)memory->pid);
		done += (size_t)got;
	}
	return HP_OK;
}

int target_memory_read_string(struct hp_memory *memory, uint64_t address, char *buffer,
			      size_t size, struct hp_error *error)
{
	/* Read byte ranges that stay within one page, so an unmapped page after a
	 * short string does not fail the read. */
	size_t done = 0;

	while (done + 1 < size) {
		uint64_t at = address + done;
		size_t chunk = HP_PAGE_SIZE - (at % HP_PAGE_SIZE);
		int status;

		if (chunk > size - 1 - done)
			chunk = size - 1 - done;
		status = target_memory_read(memory, at, buffer + done, chunk, error);
		if (status != HP_OK)
			return status;
		if (memchr(buffer + done, '\0', chunk))
			return HP_OK;
		done += chunk;
	}
	buffer[size - 1] = '\0';
	return HP_OK;
}

static int poke(pid_t tid, uint64_t address, const unsigned char *bytes, size_t length,
		pid_t pid, struct hp_error *error)
{
	/* Read-modify-write whole words; the thread is stopped. */
	size_t done = 0;

	while (done < length) {
		uint64_t at = address + done, word_address = at & ~(uint64_t)7;
		size_t skip = (size_t)(at - word_address), take = 8 - skip;
		long word;

		if (take > length - done)
			take = length - done;
		errno = 0;
		word = ptrace(PTRACE_PEEKDATA, tid, (void *)(uintptr_t)word_address, NULL);
		if (errno != 0)
			return hp_fail_errno(error, HP_FAILED, "cannot read 0x%" PRIx64 " in pid %d",
					     word_address, (int)pid);
		memcpy((unsigned char *)&word + skip, bytes + done, take);
		if (ptrace(PTRACE_POKEDATA, tid, (void *)(uintptr_t)word_address,
			   (void *)word) != 0)
			return hp_fail_errno(error, HP_FAILED,
					     "cannot write 0x%" PRIx64 " in pid %d", word_address,
					     (int)pid);
		done += take;
	}
	return HP_OK;
}

int target_memory_write(struct hp_memory *memory, pid_t stopped_tid, uint64_t address,
			const void *buffer, size_t length, struct hp_error *error)
{
	ssize_t written;

	do
		written = pwrite(memory->mem_fd, buffer, length, (off_t)address);
	while (written < 0 && errno == EINTR);
	if (written == (ssize_t)length)
		return HP_OK;
	if (stopped_tid > 0)
		return poke(stopped_tid, address, buffer, length, memory->pid, error);
	return hp_fail_errno(error, HP_FAILED, "cannot write %zu bytes at 0x%" PRIx64 " in pid %d",
			     length, address, (int)memory->pid);
}
