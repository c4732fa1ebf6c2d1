/* stack_unwind.c - unwinding a stopped thread with libunwind, through our own
 * accessors.  Memory comes from process_vm_readv in whole pages kept in a
 * cache: pages of read-only mappings (code, .eh_frame) for the whole session,
 * stacks only until the next stop.  Unwind tables are found from the
 * .eh_frame_hdr of each loaded object, read from the target's memory, so no
 * file is opened (paths in the target's mount namespace mean nothing here)
 * and nothing is re-read per thread or per retry.  A frame for which no
 * unwind information exists (JIT code, hand-written assembly) is recorded, so
 * the caller can call that stack unreliable, unless it is code known to
 * keep its caller's frame (arm64's vDSO and PLT entries, frameless.c): the
 * innermost frame is unwound out of that by hand.  One kind of code without
 * unwind information is ours: the return trampolines of our stub page
 * (thread_move.c), which a thread returns through when a killed hotpatch
 * left it on its way out of a function.  A frame there stands for the
 * return address its slot holds, and unwinding goes on from that. */
#include <elf.h>
#include <errno.h>
#include <libunwind.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>

#include "runtime/threads.h"
#include "common/base.h"
#include "common/proc_maps.h"
#include "symbols/symbols.h"

/* Exported by libunwind (and used the same way by perf) but not declared in
 * its headers: binary search in an .eh_frame_hdr table living in the target. */
extern int HP_UNWIND_SEARCH_TABLE(unw_addr_space_t space, unw_word_t ip, unw_dyn_info_t *info,
				  unw_proc_info_t *proc, int need_unwind_info, void *argument);

#define CACHE_SLOTS 16384u		/* a power of two; room for 4 stack pages of 2048 threads */
#define CACHE_PROBES 16u
#define PREFETCH_PAGES 2u
#define PROGRAM_HEADERS_MAX 64u
#define DW_EH_PE_udata4 0x03
#define DW_EH_PE_sdata4 0x0b
#define DW_EH_PE_pcrel 0x10
#define DW_EH_PE_datarel 0x30
#define VDSO_SIZE_MAX (64u * 1024)
#define FRAMELESS_MAX 16u

struct cached_page {
	uint64_t page;		/* address; 0 for an empty slot */
	uint64_t generation;	/* 0: read-only, valid for the session */
	unsigned char *bytes;
};

/* The unwind table of one loaded object's code. */
struct unwind_table {
	uint64_t low, high;	/* executable mappings of the object */
	uint64_t bias;		/* runtime address = bias + file address */
	uint64_t header;	/* .eh_frame_hdr; 0 when the object has none */
	uint64_t table;		/* its binary-search table */
	uint64_t entries;
};

/* Page buffers are taken from regions mapped and faulted in before a stop:
 * touching fresh memory costs a page fault each, which would otherwise fall
 * inside the blackout, once per page of every thread's stack. */
#define POOL_REGIONS_MAX 8

struct page_pool {
	unsigned char *regions[POOL_REGIONS_MAX];
	size_t region_pages[POOL_REGIONS_MAX];
	size_t region_count;
	unsigned char *next;	/* in the newest region */
	size_t left;		/* pages left there */
};

struct hp_unwinder {
	pid_t pid;
	struct page_pool pool;
	unw_addr_space_t space;
	uint64_t generation;
	struct hp_maps maps;
	bool maps_fresh;	/* re-read since the last stop */
	uint64_t stub_page;	/* ours, checked by the caller; 0 if none */
	size_t table_count;
	struct unwind_table *tables;
	/* The vDSO's functions that keep their caller's frame, where it has
	 * no unwind information (arm64's); looked for at the first need. */
	bool frameless_known;
	size_t frameless_count;
	struct {
		uint64_t low, high;
	} frameless[FRAMELESS_MAX];
	struct cached_page cache[CACHE_SLOTS];
};

/* What one unwind works with, handed to every accessor. */
struct unwind_context {
	struct hp_unwinder *unwinder;
	const struct hp_registers *regs;
	bool pc_sp_only;	/* every other register unknown */
	struct hp_stack *stack;
};

/* ---- memory ---- */

static unsigned char *pool_take(struct page_pool *pool)
{
	unsigned char *page;

	if (pool->left == 0)
		return malloc(HP_PAGE_SIZE);	/* flagged as not from the pool below */
	page = pool->next;
	pool->next += HP_PAGE_SIZE;
	pool->left--;
	return page;
}

static bool from_pool(const struct page_pool *pool, const unsigned char *page)
{
	for (size_t i = 0; i < pool->region_count; i++)
		if (page >= pool->regions[i] &&
		    page < pool->regions[i] + pool->region_pages[i] * HP_PAGE_SIZE)
			return true;
	return false;
}

static const struct hp_mapping *mapping_at(const struct hp_maps *maps, uint64_t address)
{
	size_t low = 0, high = maps->count;

	while (low < high) {
		size_t middle = low + (high - low) / 2;
		const struct hp_mapping *mapping = &maps->items[middle];

		if (address < mapping->start)
			high = middle;
		else if (address >= mapping->end)
			low = middle + 1;
		else
			return mapping;
	}
	return NULL;
}

static size_t slot_of(uint64_t page)
{
	return (size_t)((page / HP_PAGE_SIZE) * 0x9e3779b97f4a7c15ull >> 52) & (CACHE_SLOTS - 1);
}

static struct cached_page *cache_find(struct hp_unwinder *unwinder, uint64_t page)
{
	size_t slot = slot_of(page);

	for (unsigned probe = 0; probe < CACHE_PROBES; probe++) {
		struct cached_page *entry = &unwinder->cache[(slot + probe) & (CACHE_SLOTS - 1)];

		if (entry->page == page && entry->bytes &&
		    (entry->generation == 0 || entry->generation == unwinder->generation))
			return entry;
		if (entry->page == 0)
			return NULL;
	}
	return NULL;
}

/* A slot for `page`: an empty or outdated one, else the first probed. */
static struct cached_page *cache_slot_for(struct hp_unwinder *unwinder, uint64_t page)
{
	size_t slot = slot_of(page);
	struct cached_page *first = &unwinder->cache[slot];

	for (unsigned probe = 0; probe < CACHE_PROBES; probe++) {
		struct cached_page *entry = &unwinder->cache[(slot + probe) & (CACHE_SLOTS - 1)];

		if (entry->page == 0 || entry->page == page ||
		    (entry->generation != 0 && entry->generation != unwinder->generation))
			return entry;
	}
	return first;
}

/* Reads `page` and up to PREFETCH_PAGES-1 following pages of the same
 * mapping in one system call; a stack is read upwards from its top. */
static struct cached_page *cache_fill(struct hp_unwinder *unwinder, uint64_t page)
{
	const struct hp_mapping *mapping = mapping_at(&unwinder->maps, page);
	struct cached_page *entries[PREFETCH_PAGES] = { 0 };
	struct iovec local[PREFETCH_PAGES], remote;
	struct cached_page *first = NULL;
	size_t pages = 1;
	ssize_t got;

	if (mapping && !mapping->readable)
		return NULL;
	if (mapping)
		while (pages < PREFETCH_PAGES && page + pages * HP_PAGE_SIZE < mapping->end)
			pages++;
	for (size_t i = 0; i < pages; i++) {
		struct cached_page *entry = cache_slot_for(unwinder, page + i * HP_PAGE_SIZE);

		if (!entry->bytes)
			entry->bytes = pool_take(&unwinder->pool);
		if (!entry->bytes)
			return NULL;
		entry->page = 0;	/* not valid until read */
		entries[i] = entry;
		local[i] = (struct iovec){ entry->bytes, HP_PAGE_SIZE };
		/* Two pages may hash to one slot; read the rest another time. */
		for (size_t j = 0; j < i; j++)
			if (entries[j] == entries[i])
				pages = i;
	}
	remote = (struct iovec){ (void *)(uintptr_t)page, pages * HP_PAGE_SIZE };
	got = process_vm_readv(unwinder->pid, local, pages, &remote, 1, 0);
	for (size_t i = 0; got > 0 && i < pages && (size_t)got >= (i + 1) * HP_PAGE_SIZE; i++) {
		/* The slots chosen above: looking again could find another. */
		struct cached_page *entry = entries[i];

		/* Code and tables do not change; stacks and data do. */
		entry->page = page + i * HP_PAGE_SIZE;
		entry->generation = mapping && !mapping->writable ? 0 : unwinder->generation;
		if (i == 0)
			first = entry;
	}
	return first;
}

static int memory_read(struct hp_unwinder *unwinder, uint64_t address, void *buffer,
		       size_t length)
{
	unsigned char *out = buffer;

	while (length > 0) {
		uint64_t page = address & ~(uint64_t)(HP_PAGE_SIZE - 1);
		size_t offset = (size_t)(address - page);
		size_t piece = HP_PAGE_SIZE - offset < length ? HP_PAGE_SIZE - offset : length;
		struct cached_page *entry;

		/* Page 0 marks an empty slot, and is never mapped anyway. */
		if (page == 0)
			return -1;
		entry = cache_find(unwinder, page);
		if (!entry)
			entry = cache_fill(unwinder, page);
		if (!entry)
			return -1;
		memcpy(out, entry->bytes + offset, piece);
		out += piece;
		address += piece;
		length -= piece;
	}
	return 0;
}

/* ---- unwind tables, from each object's .eh_frame_hdr in memory ---- */

/* The bias and .eh_frame_hdr of the object whose first mapping is `base`;
 * everything read is the target's and is checked. */
static void read_object_header(struct hp_unwinder *unwinder, uint64_t base,
			       struct unwind_table *table)
{
	Elf64_Ehdr header;
	Elf64_Phdr program[PROGRAM_HEADERS_MAX];
	uint64_t bias = 0, frame_header = 0;
	bool have_bias = false;
	unsigned char hdr[12];
	uint32_t count;

	if (memory_read(unwinder, base, &header, sizeof(header)) != 0 ||
	    memcmp(header.e_ident, ELFMAG, SELFMAG) != 0 ||
	    header.e_ident[EI_CLASS] != ELFCLASS64 || header.e_phentsize != sizeof(Elf64_Phdr) ||
	    header.e_phnum == 0 || header.e_phnum > PROGRAM_HEADERS_MAX ||
	    memory_read(unwinder, base + header.e_phoff, program,
			header.e_phnum * sizeof(Elf64_Phdr)) != 0)
		return;
	for (unsigned i = 0; i < header.e_phnum; i++) {
		if (program[i].p_type == PT_LOAD && !have_bias) {
			bias = base - (program[i].p_vaddr & ~(uint64_t)(HP_PAGE_SIZE - 1));
			have_bias = true;
		}
		if (program[i].p_type == PT_GNU_EH_FRAME)
			frame_header = program[i].p_vaddr;
	}
	table->bias = bias;
	if (!have_bias || !frame_header ||
	    memory_read(unwinder, bias + frame_header, hdr, sizeof(hdr)) != 0)
		return;
	/* version 1, a 4-byte pointer to .eh_frame, a 4-byte count, and a table
	 * of 4-byte pairs relative to the header: what every linker writes and
	 * what libunwind's search expects. */
	if (hdr[0] != 1 || (hdr[1] & 0x0f) != DW_EH_PE_sdata4 || hdr[2] != DW_EH_PE_udata4 ||
	    hdr[3] != (DW_EH_PE_datarel | DW_EH_PE_sdata4))
		return;
	table->header = bias + frame_header;
	table->table = table->header + sizeof(hdr);
	memcpy(&count, hdr + 8, sizeof(count));
	table->entries = count;
}

static bool same_object(const struct hp_mapping *a, const struct hp_mapping *b)
{
	return a->inode == b->inode && a->dev_major == b->dev_major &&
	       a->dev_minor == b->dev_minor && strcmp(a->path, b->path) == 0;
}

static int add_table(struct hp_unwinder *unwinder, const struct unwind_table *table)
{
	struct unwind_table *larger = realloc(unwinder->tables,
					      (unwinder->table_count + 1) * sizeof(*larger));

	if (!larger)
		return -1;
	unwinder->tables = larger;
	unwinder->tables[unwinder->table_count++] = *table;
	return 0;
}

/* One table per object with code: its executable range and its header. */
static int build_tables(struct hp_unwinder *unwinder)
{
	const struct hp_maps *maps = &unwinder->maps;

	unwinder->table_count = 0;
	for (size_t i = 0; i < maps->count;) {
		const struct hp_mapping *first = &maps->items[i];
		struct unwind_table table = { 0 };
		bool code = false, named = first->path[0] != '\0';
		size_t next = i + 1;

		while (named && next < maps->count && same_object(first, &maps->items[next]))
			next++;
		for (size_t j = i; j < next; j++) {
			const struct hp_mapping *mapping = &maps->items[j];

			if (!mapping->executable)
				continue;
			table.low = code ? table.low : mapping->start;
			table.high = mapping->end;
			code = true;
		}
		if (code && (first->offset == 0 || strcmp(first->path, "[vdso]") == 0))
			read_object_header(unwinder, first->start, &table);
		if (code && add_table(unwinder, &table) != 0)
			return -1;
		i = next;
	}
	return 0;
}

static int refresh_maps(struct hp_unwinder *unwinder)
{
	struct hp_maps maps = { 0 };
	struct hp_error ignored = { 0 };

	if (proc_maps_read(unwinder->pid, &maps, &ignored) != HP_OK)
		return -1;
	proc_maps_release(&unwinder->maps);
	unwinder->maps = maps;
	unwinder->maps_fresh = true;
	return build_tables(unwinder);
}

static const struct unwind_table *table_for(struct hp_unwinder *unwinder, uint64_t ip)
{
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < unwinder->table_count; i++)
			if (ip >= unwinder->tables[i].low && ip < unwinder->tables[i].high)
				return &unwinder->tables[i];
		/* New code (a library loaded since): look again, once per stop. */
		if (unwinder->maps_fresh || refresh_maps(unwinder) != 0)
			return NULL;
	}
	return NULL;
}

/* ---- frameless code: arm64's vDSO and PLT entries ---- */

/* The functions of a vDSO without unwind information that keep their
 * caller's frame (code_frameless), from its own ELF image: the kernel maps
 * the whole file, section headers and symbol table included.  The image
 * is the target's memory and is read as untrusted, like any ELF file. */
static void find_frameless(struct hp_unwinder *unwinder)
{
	/* Bounds, not a pointer into the maps: table_for may read them anew. */
	struct {
		uint64_t start, end;
	} vdso = { 0, 0 };
	const struct unwind_table *table;
	struct hp_elf_info info = { 0 };
	struct hp_error ignored = { 0 };
	unsigned char *image = NULL;
	uint64_t size;

	unwinder->frameless_known = true;
	for (size_t i = 0; i < unwinder->maps.count && !vdso.end; i++)
		if (unwinder->maps.items[i].executable &&
		    strcmp(unwinder->maps.items[i].path, "[vdso]") == 0) {
			vdso.start = unwinder->maps.items[i].start;
			vdso.end = unwinder->maps.items[i].end;
		}
	table = vdso.end ? table_for(unwinder, vdso.start) : NULL;
	size = vdso.end - vdso.start;
	if (!table || table->header || size > VDSO_SIZE_MAX)
		return;
	image = malloc(size);
	if (image && memory_read(unwinder, vdso.start, image, size) == 0 &&
	    elf_info_read_memory(image, size, "[vdso]", &info, &ignored) == HP_OK) {
		for (size_t i = 0; i < info.symbol_count; i++) {
			const struct hp_symbol *symbol = &info.symbols[i];
			uint64_t start = table->bias + symbol->value;

			if (symbol->type != STT_FUNC || symbol->absolute || symbol->size == 0 ||
			    start < vdso.start || start >= vdso.end ||
			    symbol->size > vdso.end - start ||
			    unwinder->frameless_count == FRAMELESS_MAX ||
			    !code_frameless(image + (start - vdso.start), symbol->size, start))
				continue;
			unwinder->frameless[unwinder->frameless_count].low = start;
			unwinder->frameless[unwinder->frameless_count++].high = start + symbol->size;
		}
	}
	elf_info_release(&info);
	free(image);
}

static bool in_frameless_code(struct hp_unwinder *unwinder, uint64_t ip)
{
	if (!unwinder->frameless_known)
		find_frameless(unwinder);
	for (size_t i = 0; i < unwinder->frameless_count; i++)
		if (ip >= unwinder->frameless[i].low && ip < unwinder->frameless[i].high)
			return true;
	return false;
}

/* In a linker's call stub (a PLT entry), which has no unwind information
 * either: the 16-byte block around `ip` is one (code_is_call_stub). */
static bool in_call_stub(struct hp_unwinder *unwinder, uint64_t ip)
{
	unsigned char bytes[HP_CALL_STUB_SIZE];

	return memory_read(unwinder, ip & ~(uint64_t)(HP_CALL_STUB_SIZE - 1), bytes,
			   sizeof(bytes)) == 0 &&
	       code_is_call_stub(bytes);
}

/* A thread stopped in frameless code, which has no unwind information,
 * is unwound by hand to its caller: the same registers at the return
 * address (registers_leave_frameless).  Only the innermost frame can be
 * there: such code calls nothing. */
static bool past_frameless(struct hp_unwinder *unwinder, const struct unwind_context *context,
			   uint64_t ip, struct hp_registers *regs)
{
	if (context->pc_sp_only || context->stack->count != 1 ||
	    context->stack->unknown_ip != ip ||
	    !(in_frameless_code(unwinder, ip) || in_call_stub(unwinder, ip)))
		return false;
	*regs = *context->regs;
	return registers_leave_frameless(regs);
}

/* ---- libunwind accessors ---- */

static int find_proc_info(unw_addr_space_t space, unw_word_t ip, unw_proc_info_t *proc,
			  int need_unwind_info, void *argument)
{
	struct unwind_context *context = argument;
	const struct unwind_table *table = table_for(context->unwinder, ip);
	unw_dyn_info_t info;
	int result;

	if (!table || !table->header) {
		if (!context->stack->unknown_ip)
			context->stack->unknown_ip = ip;
		return -UNW_ENOINFO;
	}
	memset(&info, 0, sizeof(info));
	info.start_ip = table->low;
	info.end_ip = table->high;
	info.format = UNW_INFO_FORMAT_REMOTE_TABLE;
	info.u.rti.segbase = table->header;
	info.u.rti.table_data = table->table;
	/* In words: each entry is two 4-byte values. */
	info.u.rti.table_len = table->entries * 8 / sizeof(unw_word_t);
	result = HP_UNWIND_SEARCH_TABLE(space, ip, &info, proc, need_unwind_info, argument);
	if (result == -UNW_ENOINFO && !context->stack->unknown_ip)
		context->stack->unknown_ip = ip;
	return result;
}

static void put_unwind_info(unw_addr_space_t space, unw_proc_info_t *proc, void *argument)
{
	/* libunwind frees table-format information itself. */
	(void)space;
	(void)proc;
	(void)argument;
}

static int get_dyn_info_list_addr(unw_addr_space_t space, unw_word_t *address, void *argument)
{
	(void)space;
	(void)address;
	(void)argument;
	return -UNW_ENOINFO;
}

static int access_mem(unw_addr_space_t space, unw_word_t address, unw_word_t *value, int write,
		      void *argument)
{
	struct unwind_context *context = argument;

	(void)space;
	if (write)
		return -UNW_EINVAL;
	return memory_read(context->unwinder, address, value, sizeof(*value)) == 0 ? 0
										    : -UNW_EINVAL;
}

static int access_reg(unw_addr_space_t space, unw_regnum_t number, unw_word_t *value, int write,
		      void *argument)
{
	const struct unwind_context *context = argument;
	uint64_t found = 0;

	(void)space;
	/* An unknown register fails the step: libunwind never guesses it. */
	if (context->pc_sp_only && number != UNW_REG_IP && number != UNW_REG_SP)
		return -UNW_EBADREG;
	if (write || !registers_unwind_value(context->regs, number, &found))
		return -UNW_EBADREG;
	*value = found;
	return 0;
}

static int access_fpreg(unw_addr_space_t space, unw_regnum_t number, unw_fpreg_t *value,
			int write, void *argument)
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

static int get_proc_name(unw_addr_space_t space, unw_word_t address, char *buffer,
			 size_t length, unw_word_t *offset, void *argument)
{
	(void)space;
	(void)address;
	(void)buffer;
	(void)length;
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

/* ---- our return trampolines ---- */

/* Reads target memory as it is now, bypassing the page cache: a slot and
 * its trampoline are rewritten by every move, in a page that is read-only
 * to the program (which the cache would keep for the whole session). */
static bool read_now(pid_t pid, uint64_t address, void *buffer, size_t length)
{
	struct iovec local = { buffer, length };
	struct iovec remote = { (void *)(uintptr_t)address, length };

	return process_vm_readv(pid, &local, 1, &remote, 1, 0) == (ssize_t)length;
}

/* Whether `ip` is in return trampoline k of our stub page, holding code of
 * ours that jumps on through slot k, and where that slot sends it.  In the
 * innermost frame the thread may stand anywhere in the trampoline; in an
 * outer frame `ip` is a return address, the trampoline's first byte. */
static bool return_trampoline(struct hp_unwinder *unwinder, uint64_t ip, bool innermost,
			      uint64_t *offset, uint64_t *return_ip)
{
	uint64_t first = unwinder->stub_page + HP_STUB_TRAMPOLINES, k, trampoline, slot;
	unsigned char expected[HP_STUB_TRAMPOLINE_SIZE], actual[HP_STUB_TRAMPOLINE_SIZE];
	const struct hp_mapping *mapping;

	if (!unwinder->stub_page || ip < first ||
	    ip >= first + (uint64_t)HP_STUB_TRAMPOLINE_COUNT * HP_STUB_TRAMPOLINE_SIZE)
		return false;
	k = (ip - first) / HP_STUB_TRAMPOLINE_SIZE;
	trampoline = first + k * HP_STUB_TRAMPOLINE_SIZE;
	slot = unwinder->stub_page + HP_STUB_SLOTS + k * sizeof(uint64_t);
	*offset = ip - trampoline;
	if ((!innermost && *offset != 0) || stub_return_trampoline_pushed_words(*offset) < 0)
		return false;
	stub_return_trampoline(trampoline, slot, expected, sizeof(expected));
	if (!read_now(unwinder->pid, trampoline, actual, sizeof(actual)) ||
	    memcmp(actual, expected, sizeof(actual)) != 0 ||
	    !read_now(unwinder->pid, slot, return_ip, sizeof(*return_ip)))
		return false;
	/* The slot is in the target's memory: it must lead into code. */
	mapping = mapping_at(&unwinder->maps, *return_ip);
	if (!mapping && !unwinder->maps_fresh && refresh_maps(unwinder) == 0)
		mapping = mapping_at(&unwinder->maps, *return_ip);
	return mapping && mapping->executable;
}

/* The registers the thread will have when the trampoline at the cursor's
 * frame has jumped on: as unwound to that frame, popped past what it
 * pushed, at the slot's return address.  Only what unwinding reads (the
 * stack pointer and the callee-saved registers) matters. */
static bool past_trampoline(struct hp_unwinder *unwinder, unw_cursor_t *cursor, uint64_t ip,
			    uint64_t sp, bool innermost, struct hp_registers *regs)
{
	uint64_t offset = 0, return_ip = 0;
	const int *kept;
	size_t kept_count = registers_callee_saved(&kept);

	if (!return_trampoline(unwinder, ip, innermost, &offset, &return_ip))
		return false;
	for (size_t i = 0; i < kept_count; i++) {
		unw_word_t value;

		if (unw_get_reg(cursor, kept[i], &value) != 0 ||
		    !registers_set_unwind_value(regs, kept[i], value))
			return false;
	}
	registers_set_sp(regs, sp + (uint64_t)stub_return_trampoline_pushed_words(offset) *
					 sizeof(uint64_t));
	registers_set_pc(regs, return_ip);
	return true;
}

/* ---- the unwinder ---- */

int unwinder_create(pid_t pid, struct hp_unwinder **created, struct hp_error *error)
{
	struct hp_unwinder *unwinder = calloc(1, sizeof(*unwinder));

	*created = NULL;
	if (!unwinder)
		return hp_fail(error, HP_FAILED, "out of memory");
	unwinder->pid = pid;
	unwinder->generation = 1;
	unwinder->space = unw_create_addr_space(&accessors, 0);
	if (!unwinder->space) {
		free(unwinder);
		return hp_fail(error, HP_FAILED, "libunwind cannot create an address space");
	}
	/* Register-state cache keyed by address, shared by every thread we
	 * unwind.  Per-thread (of ours: we have one) rather than global, since
	 * the global cache masks signals around every use: two system calls
	 * per frame. */
	unw_set_caching_policy(unwinder->space, UNW_CACHE_PER_THREAD);
	if (refresh_maps(unwinder) != 0) {
		unwinder_release(unwinder);
		return hp_fail(error, HP_FAILED, "cannot read the memory map of pid %d", (int)pid);
	}
	*created = unwinder;
	return HP_OK;
}

void unwinder_release(struct hp_unwinder *unwinder)
{
	if (!unwinder)
		return;
	if (unwinder->space)
		unw_destroy_addr_space(unwinder->space);
	for (size_t i = 0; i < CACHE_SLOTS; i++)
		if (!from_pool(&unwinder->pool, unwinder->cache[i].bytes))
			free(unwinder->cache[i].bytes);
	for (size_t i = 0; i < unwinder->pool.region_count; i++)
		munmap(unwinder->pool.regions[i], unwinder->pool.region_pages[i] * HP_PAGE_SIZE);
	proc_maps_release(&unwinder->maps);
	free(unwinder->tables);
	free(unwinder);
}

void unwinder_reserve(struct hp_unwinder *unwinder, size_t threads)
{
	struct page_pool *pool = &unwinder->pool;
	size_t held = 0, want = threads * PREFETCH_PAGES + 64;
	void *region;

	for (size_t i = 0; i < CACHE_SLOTS; i++)
		held += unwinder->cache[i].bytes != NULL;
	if (want > CACHE_SLOTS)
		want = CACHE_SLOTS;
	if (held + pool->left >= want || pool->region_count == POOL_REGIONS_MAX)
		return;
	want -= held + pool->left;
	region = mmap(NULL, want * HP_PAGE_SIZE, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (region == MAP_FAILED)
		return;	/* pages come from malloc then, a little slower */
	pool->regions[pool->region_count] = region;
	pool->region_pages[pool->region_count++] = want;
	pool->next = region;
	pool->left = want;
}

void unwinder_know_stub_page(struct hp_unwinder *unwinder, uint64_t stub_page)
{
	unwinder->stub_page = stub_page;
}

void unwinder_forget_volatile(struct hp_unwinder *unwinder)
{
	unwinder->generation++;
	unwinder->maps_fresh = false;
}

/* Where the cursor's frame's return address was read from: the slot a
 * moved thread's return is pointed through (thread_move.c).  libunwind's
 * UNW_REG_IP is the return-address column on every processor (rip's slot
 * on x86-64, x30's on arm64), so no processor is named here. */
static uint64_t return_slot(unw_cursor_t *cursor)
{
	unw_save_loc_t location;

	if (unw_get_save_loc(cursor, UNW_REG_IP, &location) != 0 ||
	    location.type != UNW_SLT_MEMORY)
		return 0;
	return location.u.addr;
}

void unwinder_unwind(struct hp_unwinder *unwinder, const struct hp_registers *regs,
		     bool pc_sp_only, struct hp_stack *stack)
{
	struct unwind_context context = { unwinder, regs, pc_sp_only, stack };
	struct hp_registers resumed = *regs;
	unw_cursor_t cursor;
	int step = -1;

	stack->count = 0;
	stack->complete = false;
	stack->unknown_ip = 0;
	stack->error_code = unw_init_remote(&cursor, unwinder->space, &context);
	if (stack->error_code != 0)
		return;
	do {
		unw_word_t ip = 0, sp = 0;

		if (unw_get_reg(&cursor, UNW_REG_IP, &ip) != 0 ||
		    unw_get_reg(&cursor, UNW_REG_SP, &sp) != 0 || stack->count >= HP_FRAMES_MAX)
			break;
		stack->frames[stack->count++] = (struct hp_frame){ ip, sp, return_slot(&cursor) };
		/* The trampoline's frame stays in the stack (it holds that
		 * trampoline), and the next one is where it returns to. */
		if (past_trampoline(unwinder, &cursor, ip, sp, stack->count == 1, &resumed)) {
			context.regs = &resumed;
			step = unw_init_remote(&cursor, unwinder->space, &context) == 0 ? 1 : -1;
			continue;
		}
		step = unw_step(&cursor);
		/* No unwind information for the innermost frame: libunwind
		 * guessed (arm64: x30); frameless code is known instead. */
		if (past_frameless(unwinder, &context, ip, &resumed)) {
			stack->unknown_ip = 0;
			context.regs = &resumed;
			step = unw_init_remote(&cursor, unwinder->space, &context) == 0 ? 1 : -1;
		}
	} while (step > 0);
	stack->complete = step == 0 && stack->unknown_ip == 0;
	stack->error_code = step;
}
