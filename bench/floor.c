/* floor.c - the floor under any live patch of a process: only the ptrace work
 * every patching tool must do while the target is stopped, with ideal
 * caching.  Before the clock starts it seizes every thread, reads the bytes
 * at each site, and copies what an unwinder reads of every executable object
 * (.eh_frame_hdr, .eh_frame, personality pointers: the object's segments
 * that are not code) into local buffers.  Timed: stop every thread,
 * unwind every stack with libunwind (one read of the stack top per thread,
 * no other system call), write the same bytes back at each site through
 * /proc/PID/mem, resume every thread.  The target is left exactly as it was.
 * A benchmark tool: hotpatch itself never uses it.
 *
 *   floor PID ADDR LEN [ADDR LEN ...]   sites: hex address, length in bytes
 *   floor PID -f FILE                   "ADDR LEN" lines; FILE - is stdin
 *
 * Prints one line:
 *   elapsed_us=E threads=T frames=F incomplete=I missed_reads=M
 *   stop_us=S unwind_us=U write_us=W resume_us=R      (the parts of E)
 * incomplete counts stacks not unwound to their end; missed_reads counts
 * memory reads that needed a system call inside the timed part (both should
 * be 0; they are printed so that a floor that cheated or failed shows).
 * FLOOR_DEBUG=1 in the environment names each missed read on stderr. */
#define _GNU_SOURCE
#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libunwind.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Exported by libunwind but not declared by its headers; perf's
 * util/unwind-libunwind-local.c declares it the same way. */
#if defined(__aarch64__)
#define dwarf_search_unwind_table _Uaarch64_dwarf_search_unwind_table
#else
#define dwarf_search_unwind_table _Ux86_64_dwarf_search_unwind_table
#endif
extern int dwarf_search_unwind_table(unw_addr_space_t space, unw_word_t ip, unw_dyn_info_t *info,
				     unw_proc_info_t *proc, int need_unwind_info, void *argument);

#define PAGE 4096u
#define SITE_BYTES_MAX 16
#define STACK_COPY (8 * 1024)
#define FRAMES_MAX 256
#define PHDRS_MAX 64
#define READ_CHUNK_PAGES 64

/* Encodings of the eh_frame_hdr fields that the binary search table needs
 * (the ones GNU ld writes; libunwind searches nothing else). */
#define EH_PE_PCREL_SDATA4 0x1b
#define EH_PE_UDATA4 0x03
#define EH_PE_DATAREL_SDATA4 0x3b

struct site {
	uint64_t address;
	size_t length;
	unsigned char bytes[SITE_BYTES_MAX];
};

/* A local copy of some target memory. */
struct region {
	uint64_t start;
	size_t length;
	unsigned char *data;
};

/* One executable mapping and the unwind table that describes it. */
struct object {
	uint64_t text_start;
	uint64_t text_end;
	uint64_t eh_frame_hdr;
	uint64_t table;
	uint64_t fde_count;
};

struct thread {
	pid_t tid;
	bool seized;
	bool stopped;
};

struct mapping {
	uint64_t start;
	uint64_t end;
	uint64_t offset;
	bool executable;
	char path[256];
};

struct floor {
	pid_t pid;
	struct site *sites;
	size_t site_count;
	struct thread *threads;
	size_t thread_count;
	struct object *objects;
	size_t object_count;
	struct region *regions;
	size_t region_count;
	int memory_fd;
	unw_addr_space_t space;
	/* The thread being unwound: its registers and a copy of its stack top. */
	struct user_regs_struct regs;
	unsigned char stack[STACK_COPY];
	uint64_t stack_start;
	size_t stack_length;
	/* What the timed part did. */
	size_t frames;
	size_t incomplete;
	size_t missed_reads;
};

static void die(const char *format, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *format, ...)
{
	va_list arguments;

	fputs("floor: ", stderr);
	va_start(arguments, format);
	vfprintf(stderr, format, arguments);
	va_end(arguments);
	fputc('\n', stderr);
	/* Exiting detaches every seized thread and resumes it. */
	exit(1);
}

static void *grow(void *array, size_t count, size_t size)
{
	/* Doubles at powers of two, so appending is amortised O(1). */
	if (count & (count - 1))
		return array;
	array = realloc(array, (count ? count * 2 : 1) * size);
	if (!array)
		die("out of memory");
	return array;
}

static double now_us(void)
{
	struct timespec now;

	if (clock_gettime(CLOCK_MONOTONIC, &now) != 0)
		die("clock_gettime: %s", strerror(errno));
	return (double)now.tv_sec * 1e6 + (double)now.tv_nsec / 1e3;
}

/* Reads target memory page by page (one system call per chunk), so that a
 * read running into an unmapped page returns what came before it. */
static size_t read_target(pid_t pid, uint64_t address, void *buffer, size_t length)
{
	size_t done = 0;

	while (done < length) {
		struct iovec local = {(char *)buffer + done, 0};
		struct iovec remote[READ_CHUNK_PAGES];
		size_t count = 0, wanted = 0;
		ssize_t got;

		while (count < READ_CHUNK_PAGES && done + wanted < length) {
			uint64_t at = address + done + wanted;
			size_t piece = PAGE - (size_t)(at % PAGE);

			if (piece > length - done - wanted)
				piece = length - done - wanted;
			remote[count].iov_base = (void *)(uintptr_t)at;
			remote[count++].iov_len = piece;
			wanted += piece;
		}
		local.iov_len = wanted;
		got = process_vm_readv(pid, &local, 1, remote, count, 0);
		if (got <= 0)
			break;
		done += (size_t)got;
		if ((size_t)got < wanted)
			break;
	}
	return done;
}

static const struct region *region_at(const struct floor *floor, uint64_t address, size_t length)
{
	for (size_t i = 0; i < floor->region_count; i++) {
		const struct region *region = &floor->regions[i];

		if (address >= region->start && address - region->start + length <= region->length)
			return region;
	}
	return NULL;
}

static const unsigned char *local_copy(const struct floor *floor, uint64_t address, size_t length)
{
	const struct region *region = region_at(floor, address, length);

	return region ? region->data + (address - region->start) : NULL;
}

/* Copies target memory from the page of `address` to `end` (or to the first
 * unreadable page) unless a copy already holds all of it. */
static void copy_region(struct floor *floor, uint64_t address, uint64_t end)
{
	struct region region;

	if (region_at(floor, address, end - address))
		return;
	region.start = address & ~(uint64_t)(PAGE - 1);
	region.data = malloc(end - region.start);
	if (!region.data)
		die("out of memory");
	region.length = read_target(floor->pid, region.start, region.data, end - region.start);
	floor->regions = grow(floor->regions, floor->region_count, sizeof(region));
	floor->regions[floor->region_count++] = region;
}

/* Copies the object whose first mapping starts at `base` (its ELF header and
 * program headers, read from the target's memory): every segment that is
 * not code, which holds .eh_frame_hdr, .eh_frame and the pointers that CIEs
 * reach indirectly (the personality routine's DW.ref.* slot), all fixed once
 * the object is loaded.  Then records its unwind table.  Objects without one
 * are left out: libunwind has no information for them, and a stack through
 * them counts as incomplete. */
static void add_object(struct floor *floor, uint64_t base, uint64_t text_start, uint64_t text_end)
{
	Elf64_Ehdr header;
	Elf64_Phdr phdrs[PHDRS_MAX];
	uint64_t bias = 0, hdr = 0;
	const unsigned char *bytes;
	struct object object;
	bool have_bias = false;
	int32_t eh_frame_offset;
	uint32_t fde_count;

	if (read_target(floor->pid, base, &header, sizeof(header)) != sizeof(header) ||
	    memcmp(header.e_ident, ELFMAG, SELFMAG) != 0 ||
	    header.e_ident[EI_CLASS] != ELFCLASS64 || header.e_phnum > PHDRS_MAX ||
	    header.e_phentsize != sizeof(Elf64_Phdr))
		return;
	if (read_target(floor->pid, base + header.e_phoff, phdrs,
			header.e_phnum * sizeof(*phdrs)) != header.e_phnum * sizeof(*phdrs))
		return;
	for (size_t i = 0; i < header.e_phnum; i++) {
		/* The first mapping holds the segment at file offset 0. */
		if (phdrs[i].p_type == PT_LOAD && !have_bias) {
			bias = base - (phdrs[i].p_vaddr & ~(uint64_t)(PAGE - 1));
			have_bias = true;
		}
		if (phdrs[i].p_type == PT_GNU_EH_FRAME)
			hdr = phdrs[i].p_vaddr;
	}
	if (!have_bias || !hdr)
		return;
	hdr += bias;
	for (size_t i = 0; i < header.e_phnum; i++)
		if (phdrs[i].p_type == PT_LOAD && phdrs[i].p_filesz > 0 &&
		    (!(phdrs[i].p_flags & PF_X) ||
		     (hdr >= bias + phdrs[i].p_vaddr &&
		      hdr < bias + phdrs[i].p_vaddr + phdrs[i].p_filesz)))
			copy_region(floor, bias + phdrs[i].p_vaddr,
				    bias + phdrs[i].p_vaddr + phdrs[i].p_filesz);
	bytes = local_copy(floor, hdr, 12);
	if (!bytes || bytes[0] != 1 || bytes[1] != EH_PE_PCREL_SDATA4 || bytes[2] != EH_PE_UDATA4 ||
	    bytes[3] != EH_PE_DATAREL_SDATA4)
		return;
	memcpy(&eh_frame_offset, bytes + 4, sizeof(eh_frame_offset));
	memcpy(&fde_count, bytes + 8, sizeof(fde_count));
	if (!local_copy(floor, hdr + 12, (size_t)fde_count * 8) ||
	    !local_copy(floor, hdr + 4 + (uint64_t)(int64_t)eh_frame_offset, 4))
		return;
	object = (struct object){text_start, text_end, hdr, hdr + 12, fde_count};
	floor->objects = grow(floor->objects, floor->object_count, sizeof(object));
	floor->objects[floor->object_count++] = object;
}

static void read_maps(struct floor *floor)
{
	char path[64], *line = NULL;
	struct mapping *mappings = NULL;
	size_t count = 0, size = 0;
	FILE *maps;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)floor->pid);
	maps = fopen(path, "r");
	if (!maps)
		die("cannot open %s: %s", path, strerror(errno));
	while (getline(&line, &size, maps) > 0) {
		struct mapping mapping = {0};
		char permissions[8];
		int name_at = 0;

		if (sscanf(line, "%" SCNx64 "-%" SCNx64 " %7s %" SCNx64 " %*s %*s %n",
			   &mapping.start, &mapping.end, permissions, &mapping.offset,
			   &name_at) < 4)
			continue;
		mapping.executable = permissions[2] == 'x';
		line[strcspn(line, "\n")] = '\0';
		snprintf(mapping.path, sizeof(mapping.path), "%s", line + name_at);
		mappings = grow(mappings, count, sizeof(mapping));
		mappings[count++] = mapping;
	}
	if (ferror(maps))
		die("cannot read %s", path);
	fclose(maps);
	free(line);
	for (size_t i = 0; i < count; i++) {
		/* An object's first mapping (offset 0) comes before its text;
		 * anonymous code (trampolines) has no ELF header to read. */
		if (!mappings[i].executable || !mappings[i].path[0])
			continue;
		for (size_t j = i + 1; j-- > 0;)
			if (mappings[j].offset == 0 &&
			    strcmp(mappings[j].path, mappings[i].path) == 0) {
				add_object(floor, mappings[j].start, mappings[i].start,
					   mappings[i].end);
				break;
			}
	}
	free(mappings);
}

/* Seizes every thread, reading the task list again until a pass finds no
 * new thread. */
static void seize_threads(struct floor *floor)
{
	char path[64];
	bool found_new = true;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)floor->pid);
	while (found_new) {
		DIR *tasks = opendir(path);
		struct dirent *entry;

		if (!tasks)
			die("cannot open %s: %s", path, strerror(errno));
		found_new = false;
		while ((entry = readdir(tasks))) {
			pid_t tid = (pid_t)atoi(entry->d_name);
			bool known = false;

			if (tid <= 0)
				continue;
			for (size_t i = 0; i < floor->thread_count && !known; i++)
				known = floor->threads[i].tid == tid;
			if (known)
				continue;
			floor->threads =
			    grow(floor->threads, floor->thread_count, sizeof(struct thread));
			floor->threads[floor->thread_count] = (struct thread){tid, false, false};
			if (ptrace(PTRACE_SEIZE, tid, NULL, NULL) == 0)
				floor->threads[floor->thread_count].seized = true;
			else if (errno != ESRCH)
				die("cannot seize thread %d: %s", (int)tid, strerror(errno));
			floor->thread_count++;
			found_new = true;
		}
		closedir(tasks);
	}
}

/* libunwind accessors: every read is served from the stack copy or the
 * copied unwind tables; anything else costs a system call and is counted. */

static int find_proc_info(unw_addr_space_t space, unw_word_t ip, unw_proc_info_t *proc,
			  int need_unwind_info, void *argument)
{
	struct floor *floor = argument;

	for (size_t i = 0; i < floor->object_count; i++) {
		const struct object *object = &floor->objects[i];
		unw_dyn_info_t info;

		if (ip < object->text_start || ip >= object->text_end)
			continue;
		memset(&info, 0, sizeof(info));
		info.format = UNW_INFO_FORMAT_REMOTE_TABLE;
		info.start_ip = object->text_start;
		info.end_ip = object->text_end;
		/* Table entries are relative to the eh_frame_hdr (datarel); the
		 * length counts words, each entry being two int32. */
		info.u.rti.segbase = object->eh_frame_hdr;
		info.u.rti.table_data = object->table;
		info.u.rti.table_len = object->fde_count * 8 / sizeof(unw_word_t);
		return dwarf_search_unwind_table(space, ip, &info, proc, need_unwind_info,
						 argument);
	}
	return -UNW_ENOINFO;
}

static void put_unwind_info(unw_addr_space_t space, unw_proc_info_t *proc, void *argument)
{
	/* dwarf_search_unwind_table's unwind info is libunwind's own. */
	(void)space;
	(void)proc;
	(void)argument;
}

static int get_dyn_info_list_addr(unw_addr_space_t space, unw_word_t *list, void *argument)
{
	(void)space;
	(void)list;
	(void)argument;
	return -UNW_ENOINFO;
}

static int access_mem(unw_addr_space_t space, unw_word_t address, unw_word_t *value, int write,
		      void *argument)
{
	struct floor *floor = argument;
	const unsigned char *bytes;

	(void)space;
	if (write)
		return -UNW_EINVAL;
	if (address >= floor->stack_start &&
	    address - floor->stack_start + sizeof(*value) <= floor->stack_length) {
		memcpy(value, floor->stack + (address - floor->stack_start), sizeof(*value));
		return 0;
	}
	bytes = local_copy(floor, address, sizeof(*value));
	if (bytes) {
		memcpy(value, bytes, sizeof(*value));
		return 0;
	}
	floor->missed_reads++;
	if (getenv("FLOOR_DEBUG"))
		fprintf(stderr, "floor: missed read at 0x%" PRIx64 "\n", (uint64_t)address);
	return read_target(floor->pid, address, value, sizeof(*value)) == sizeof(*value)
		   ? 0
		   : -UNW_EINVAL;
}

/* Where each libunwind register number lives in the registers' record
 * (PTRACE_GETREGS's on x86-64, NT_PRSTATUS's on arm64). */
#if defined(__aarch64__)
#define X(n) [UNW_AARCH64_X##n] = offsetof(struct user_regs_struct, regs[n])
static const size_t register_offsets[] = {
    X(0),  X(1),  X(2),  X(3),  X(4),  X(5),  X(6),  X(7),  X(8),  X(9),  X(10),
    X(11), X(12), X(13), X(14), X(15), X(16), X(17), X(18), X(19), X(20), X(21),
    X(22), X(23), X(24), X(25), X(26), X(27), X(28), X(29), X(30),
    [UNW_AARCH64_SP] = offsetof(struct user_regs_struct, sp),
    [UNW_AARCH64_PC] = offsetof(struct user_regs_struct, pc),
};
#undef X
#define STACK_POINTER(regs) ((regs).sp)
#else
#define STACK_POINTER(regs) ((regs).rsp)
static const size_t register_offsets[] = {
    [UNW_X86_64_RAX] = offsetof(struct user_regs_struct, rax),
    [UNW_X86_64_RDX] = offsetof(struct user_regs_struct, rdx),
    [UNW_X86_64_RCX] = offsetof(struct user_regs_struct, rcx),
    [UNW_X86_64_RBX] = offsetof(struct user_regs_struct, rbx),
    [UNW_X86_64_RSI] = offsetof(struct user_regs_struct, rsi),
    [UNW_X86_64_RDI] = offsetof(struct user_regs_struct, rdi),
    [UNW_X86_64_RBP] = offsetof(struct user_regs_struct, rbp),
    [UNW_X86_64_RSP] = offsetof(struct user_regs_struct, rsp),
    [UNW_X86_64_R8] = offsetof(struct user_regs_struct, r8),
    [UNW_X86_64_R9] = offsetof(struct user_regs_struct, r9),
    [UNW_X86_64_R10] = offsetof(struct user_regs_struct, r10),
    [UNW_X86_64_R11] = offsetof(struct user_regs_struct, r11),
    [UNW_X86_64_R12] = offsetof(struct user_regs_struct, r12),
    [UNW_X86_64_R13] = offsetof(struct user_regs_struct, r13),
    [UNW_X86_64_R14] = offsetof(struct user_regs_struct, r14),
    [UNW_X86_64_R15] = offsetof(struct user_regs_struct, r15),
    [UNW_X86_64_RIP] = offsetof(struct user_regs_struct, rip),
};
#endif

static int access_reg(unw_addr_space_t space, unw_regnum_t number, unw_word_t *value, int write,
		      void *argument)
{
	const struct floor *floor = argument;
	unsigned long long word;

	(void)space;
	if (write || number < 0 ||
	    (size_t)number >= sizeof(register_offsets) / sizeof(register_offsets[0]))
		return -UNW_EBADREG;
	memcpy(&word, (const char *)&floor->regs + register_offsets[number], sizeof(word));
	*value = word;
	return 0;
}

static int access_fpreg(unw_addr_space_t space, unw_regnum_t number, unw_fpreg_t *value, int write,
			void *argument)
{
	(void)space;
	(void)number;
	(void)value;
	(void)write;
	(void)argument;
	return -UNW_EBADREG;
}

static int resume(unw_addr_space_t space, unw_cursor_t *cursor, void *argument)
{
	(void)space;
	(void)cursor;
	(void)argument;
	return -UNW_EINVAL;
}

static int get_proc_name(unw_addr_space_t space, unw_word_t ip, char *name, size_t size,
			 unw_word_t *offset, void *argument)
{
	(void)space;
	(void)ip;
	(void)name;
	(void)size;
	(void)offset;
	(void)argument;
	return -UNW_ENOINFO;
}

static unw_accessors_t accessors = {
    .find_proc_info = find_proc_info,
    .put_unwind_info = put_unwind_info,
    .get_dyn_info_list_addr = get_dyn_info_list_addr,
    .access_mem = access_mem,
    .access_reg = access_reg,
    .access_fpreg = access_fpreg,
    .resume = resume,
    .get_proc_name = get_proc_name,
};

static void add_site(struct floor *floor, const char *address, const char *length)
{
	struct site site = {0};
	char *end;

	errno = 0;
	site.address = strtoull(address, &end, 16);
	if (errno || *end || end == address)
		die("not a hex address: %s", address);
	site.length = strtoul(length, &end, 10);
	if (*end || site.length == 0 || site.length > SITE_BYTES_MAX)
		die("a site length is 1 to %d bytes, not %s", SITE_BYTES_MAX, length);
	floor->sites = grow(floor->sites, floor->site_count, sizeof(site));
	floor->sites[floor->site_count++] = site;
}

static void read_sites_file(struct floor *floor, const char *path)
{
	FILE *file = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
	char address[32], length[16];
	int fields;

	if (!file)
		die("cannot open %s: %s", path, strerror(errno));
	while ((fields = fscanf(file, "%31s %15s", address, length)) == 2)
		add_site(floor, address, length);
	if (fields != EOF || ferror(file))
		die("%s: expected lines of \"ADDRESS LENGTH\"", path);
	if (file != stdin)
		fclose(file);
}

/* Stops every thread: PTRACE_INTERRUPT each, then collect each stop, passing
 * on any signal met on the way.  Waiting for one tid at a time is O(1) in
 * the kernel, while waitpid(-1) scans every tracee for each stop: O(n^2)
 * with a thousand threads. */
static void stop_all(struct floor *floor)
{
	for (size_t i = 0; i < floor->thread_count; i++) {
		struct thread *thread = &floor->threads[i];

		if (!thread->seized)
			continue;
		if (ptrace(PTRACE_INTERRUPT, thread->tid, NULL, NULL) == 0)
			continue;
		if (errno != ESRCH)
			die("cannot interrupt thread %d: %s", (int)thread->tid, strerror(errno));
		thread->seized = false;
	}
	for (size_t i = 0; i < floor->thread_count; i++) {
		struct thread *thread = &floor->threads[i];

		while (thread->seized && !thread->stopped) {
			int status;

			if (waitpid(thread->tid, &status, __WALL) < 0) {
				if (errno == EINTR)
					continue;
				if (errno != ECHILD)
					die("waitpid %d: %s", (int)thread->tid, strerror(errno));
				thread->seized = false;
			} else if (WIFEXITED(status) || WIFSIGNALED(status)) {
				thread->seized = false;
			} else if (WIFSTOPPED(status) && status >> 16 == PTRACE_EVENT_STOP) {
				thread->stopped = true;
			} else if (WIFSTOPPED(status) &&
				   ptrace(PTRACE_CONT, thread->tid, NULL,
					  (void *)(long)WSTOPSIG(status)) != 0) {
				die("cannot pass signal %d on to thread %d: %s", WSTOPSIG(status),
				    (int)thread->tid, strerror(errno));
			}
		}
	}
}

/* One system call either way: arm64 has no PTRACE_GETREGS. */
static long read_registers(pid_t tid, struct user_regs_struct *regs)
{
#if defined(__aarch64__)
	struct iovec vector = {regs, sizeof(*regs)};

	return ptrace(PTRACE_GETREGSET, tid, (void *)NT_PRSTATUS, &vector);
#else
	return ptrace(PTRACE_GETREGS, tid, NULL, regs);
#endif
}

static void unwind(struct floor *floor, const struct thread *thread)
{
	unw_cursor_t cursor;
	size_t frames = 0;
	int step = -1;

	if (read_registers(thread->tid, &floor->regs) != 0)
		die("cannot read the registers of thread %d: %s", (int)thread->tid,
		    strerror(errno));
	floor->stack_start = STACK_POINTER(floor->regs) & ~(uint64_t)(PAGE - 1);
	floor->stack_length = read_target(floor->pid, floor->stack_start, floor->stack, STACK_COPY);
	if (unw_init_remote(&cursor, floor->space, floor) == 0) {
		do
			frames++;
		while (frames < FRAMES_MAX && (step = unw_step(&cursor)) > 0);
	}
	floor->frames += frames;
	if (step != 0)
		floor->incomplete++;
}

static void write_sites(struct floor *floor)
{
	for (size_t i = 0; i < floor->site_count; i++) {
		const struct site *site = &floor->sites[i];

		if (pwrite(floor->memory_fd, site->bytes, site->length, (off_t)site->address) !=
		    (ssize_t)site->length)
			die("cannot write %zu bytes at 0x%" PRIx64 ": %s", site->length,
			    site->address, strerror(errno));
	}
}

static void detach_all(struct floor *floor)
{
	for (size_t i = 0; i < floor->thread_count; i++) {
		struct thread *thread = &floor->threads[i];

		if (thread->stopped && ptrace(PTRACE_DETACH, thread->tid, NULL, NULL) != 0 &&
		    errno != ESRCH)
			die("cannot detach thread %d: %s", (int)thread->tid, strerror(errno));
		thread->stopped = thread->seized = false;
	}
}

int main(int argc, char **argv)
{
	static struct floor floor;
	size_t threads = 0;
	char path[64];
	double start, stopped, unwound, written, resumed;
	char *end;

	floor.pid = argc > 2 ? (pid_t)strtol(argv[1], &end, 10) : 0;
	if (argc < 3 || *end || floor.pid <= 0 ||
	    (strcmp(argv[2], "-f") == 0 ? argc != 4 : argc % 2 != 0)) {
		fprintf(stderr, "usage: floor PID ADDR LEN [ADDR LEN ...]\n"
				"       floor PID -f FILE    (\"ADDR LEN\" lines, - for stdin)\n");
		return 2;
	}
	if (strcmp(argv[2], "-f") == 0)
		read_sites_file(&floor, argv[3]);
	else
		for (int i = 2; i < argc; i += 2)
			add_site(&floor, argv[i], argv[i + 1]);

	/* Untimed preparation. */
	snprintf(path, sizeof(path), "/proc/%d/mem", (int)floor.pid);
	floor.memory_fd = open(path, O_RDWR | O_CLOEXEC);
	if (floor.memory_fd < 0)
		die("cannot open %s: %s", path, strerror(errno));
	for (size_t i = 0; i < floor.site_count; i++)
		if (read_target(floor.pid, floor.sites[i].address, floor.sites[i].bytes,
				floor.sites[i].length) != floor.sites[i].length)
			die("cannot read %zu bytes at 0x%" PRIx64, floor.sites[i].length,
			    floor.sites[i].address);
	/* Rewriting the bytes with their own values makes the code pages
	 * private now, as a careful tool does, so the timed writes are the
	 * cheap ones. */
	write_sites(&floor);
	read_maps(&floor);
	floor.space = unw_create_addr_space(&accessors, 0);
	if (!floor.space)
		die("libunwind cannot create an address space");
	/* Per-thread (we have one thread): the global cache masks signals
	 * around every use, two system calls per frame the floor need not pay. */
	if (unw_set_caching_policy(floor.space, UNW_CACHE_PER_THREAD) != 0)
		die("libunwind refuses the per-thread cache");
	seize_threads(&floor);

	start = now_us();
	stop_all(&floor);
	stopped = now_us();
	for (size_t i = 0; i < floor.thread_count; i++)
		if (floor.threads[i].stopped) {
			unwind(&floor, &floor.threads[i]);
			threads++;
		}
	unwound = now_us();
	write_sites(&floor);
	written = now_us();
	detach_all(&floor);
	resumed = now_us();

	printf("elapsed_us=%.1f threads=%zu frames=%zu incomplete=%zu missed_reads=%zu "
	       "stop_us=%.1f unwind_us=%.1f write_us=%.1f resume_us=%.1f\n",
	       resumed - start, threads, floor.frames, floor.incomplete, floor.missed_reads,
	       stopped - start, unwound - stopped, written - unwound, resumed - written);
	unw_destroy_addr_space(floor.space);
	close(floor.memory_fd);
	for (size_t i = 0; i < floor.region_count; i++)
		free(floor.regions[i].data);
	free(floor.regions);
	free(floor.objects);
	free(floor.threads);
	free(floor.sites);
	return fflush(stdout) == 0 ? 0 : 1;
}
