/* build_object.c - one relocatable object of `hotpatch build`, read with
 * libelf into sections, symbols and relocations, and the few questions asked
 * of it (what does this relocation point at, is this a variable).  The
 * objects are our own compiler's output, still read with bounded counts. */
#include <ctype.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "build/build.h"
#include "arch/arch.h"

#define SECTIONS_MAX (1u << 20)
#define ENTRIES_MAX (16u << 20)

static int read_relocs(struct build_object *object, size_t index, struct hp_error *error)
{
	const struct build_section *rela = &object->sections[index];
	struct build_section *target;
	size_t count;

	if (rela->header.sh_info >= object->section_count || rela->header.sh_entsize == 0 ||
	    !rela->data)
		return HP_OK;
	target = &object->sections[rela->header.sh_info];
	count = rela->header.sh_size / rela->header.sh_entsize;
	if (count > ENTRIES_MAX || target->rela)
		return hp_fail(error, HP_FAILED, "%s: unexpected relocations", object->path);
	target->relocs = calloc(count ? count : 1, sizeof(*target->relocs));
	if (!target->relocs)
		return hp_fail(error, HP_FAILED, "out of memory reading %s", object->path);
	target->rela = index;
	for (size_t i = 0; i < count; i++) {
		GElf_Rela entry;

		if (!gelf_getrela(rela->data, (int)i, &entry) ||
		    GELF_R_SYM(entry.r_info) >= object->symbol_count)
			return hp_fail(error, HP_FAILED, "%s: a damaged relocation", object->path);
		target->relocs[i] = (struct build_reloc){ entry.r_offset,
							  (uint32_t)GELF_R_TYPE(entry.r_info),
							  (uint32_t)GELF_R_SYM(entry.r_info),
							  entry.r_addend };
	}
	target->reloc_count = count;
	return HP_OK;
}

static int read_symbols(struct build_object *object, struct hp_error *error)
{
	const struct build_section *symtab = &object->sections[object->symtab];
	size_t count = symtab->header.sh_entsize ? symtab->header.sh_size / symtab->header.sh_entsize : 0;

	if (count == 0 || count > ENTRIES_MAX || !symtab->data)
		return hp_fail(error, HP_FAILED, "%s has no symbols", object->path);
	object->symbols = calloc(count, sizeof(*object->symbols));
	if (!object->symbols)
		return hp_fail(error, HP_FAILED, "out of memory reading %s", object->path);
	object->symbol_count = count;
	for (size_t i = 0; i < count; i++) {
		struct build_symbol *symbol = &object->symbols[i];
		const char *name;

		if (!gelf_getsym(symtab->data, (int)i, &symbol->sym))
			return hp_fail(error, HP_FAILED, "%s: a damaged symbol", object->path);
		name = elf_strptr(object->elf, symtab->header.sh_link, symbol->sym.st_name);
		symbol->name = name ? name : "";
		if (GELF_ST_TYPE(symbol->sym.st_info) == STT_FILE && !object->file[0])
			hp_copy_string(object->file, sizeof(object->file), symbol->name);
		if (symbol->sym.st_shndx != SHN_UNDEF && symbol->sym.st_shndx < SHN_LORESERVE &&
		    symbol->sym.st_shndx >= object->section_count)
			return hp_fail(error, HP_FAILED, "%s: a damaged symbol", object->path);
	}
	return HP_OK;
}

bool build_reloc_is_absolute(uint32_t type)
{
	enum hp_relocation_kind kind = relocation_kind(type);

	return kind == HP_RELOCATION_ABSOLUTE64 || kind == HP_RELOCATION_ABSOLUTE32;
}

/* Where an absolute relocation of allocated code or data points, as a
 * section and offset, when it points into an anonymous piece of one. */
static bool anchor_of(const struct build_object *object, const struct build_section *from,
		      const struct build_reloc *reloc, size_t *section, int64_t *offset)
{
	const struct build_symbol *s = &object->symbols[reloc->symbol];

	if (!(from->header.sh_flags & SHF_ALLOC) || !build_reloc_is_absolute(reloc->type) ||
	    !build_symbol_defined(s) || s->sym.st_shndx >= object->section_count)
		return false;
	if (GELF_ST_TYPE(s->sym.st_info) == STT_SECTION)
		*offset = reloc->addend;
	else if (!build_symbol_is_function(s) && !build_symbol_is_variable(s))
		*offset = reloc->addend + (int64_t)s->sym.st_value;
	else
		return false;
	*section = s->sym.st_shndx;
	return *offset >= 0 && (uint64_t)*offset <= object->sections[*section].header.sh_size;
}

static bool is_sized(const struct build_symbol *s, size_t section_count)
{
	unsigned char type = GELF_ST_TYPE(s->sym.st_info);

	return build_symbol_defined(s) && s->sym.st_shndx < section_count && s->sym.st_size &&
	       type != STT_SECTION && type != STT_FILE;
}

static bool fits(const struct build_object *object, const struct build_symbol *s)
{
	uint64_t size = object->sections[s->sym.st_shndx].header.sh_size;

	return s->sym.st_value <= size && s->sym.st_size <= size - s->sym.st_value;
}

/* Calls `add` for every anchor: referred-to offsets, symbol starts and ends. */
static void each_anchor(struct build_object *object,
			void (*add)(struct build_section *, uint64_t, bool))
{
	for (size_t i = 1; i < object->section_count; i++) {
		const struct build_section *from = &object->sections[i];

		for (size_t r = 0; r < from->reloc_count; r++) {
			size_t section;
			int64_t offset;

			if (anchor_of(object, from, &from->relocs[r], &section, &offset))
				add(&object->sections[section], (uint64_t)offset, false);
		}
	}
	for (size_t i = 1; i < object->symbol_count; i++) {
		const struct build_symbol *s = &object->symbols[i];

		if (!is_sized(s, object->section_count) || !fits(object, s))
			continue;
		add(&object->sections[s->sym.st_shndx], s->sym.st_value, true);
		add(&object->sections[s->sym.st_shndx], s->sym.st_value + s->sym.st_size, true);
	}
}

static void count_anchor(struct build_section *section, uint64_t offset, bool boundary)
{
	(void)offset, (void)boundary;
	section->anchor_count++;
}

static void store_anchor(struct build_section *section, uint64_t offset, bool boundary)
{
	section->anchors[section->anchor_count++] = (struct build_anchor){ offset, boundary };
}

static int by_offset(const void *a, const void *b)
{
	const struct build_anchor *one = a, *two = b;

	return one->offset < two->offset ? -1 : one->offset > two->offset;
}

/* Sorted, each offset once (a boundary when any of its anchors is one). */
static void sort_anchors(struct build_section *section)
{
	size_t kept = 0;

	if (section->anchor_count == 0)
		return;
	qsort(section->anchors, section->anchor_count, sizeof(*section->anchors), by_offset);
	for (size_t i = 1; i < section->anchor_count; i++) {
		if (section->anchors[i].offset == section->anchors[kept].offset)
			section->anchors[kept].boundary |= section->anchors[i].boundary;
		else
			section->anchors[++kept] = section->anchors[i];
	}
	section->anchor_count = kept + 1;
}

/* Anonymous constants (-O0 puts every string in one .rodata) are told
 * apart by where the object refers to them. */
static int read_anchors(struct build_object *object, struct hp_error *error)
{
	each_anchor(object, count_anchor);
	for (size_t i = 1; i < object->section_count; i++) {
		struct build_section *section = &object->sections[i];

		if (section->anchor_count > ENTRIES_MAX)
			return hp_fail(error, HP_FAILED, "%s: too many relocations", object->path);
		section->anchors = calloc(section->anchor_count ? section->anchor_count : 1,
					  sizeof(*section->anchors));
		if (!section->anchors)
			return hp_fail(error, HP_FAILED, "out of memory reading %s", object->path);
		section->anchor_count = 0;
	}
	each_anchor(object, store_anchor);
	for (size_t i = 1; i < object->section_count; i++)
		sort_anchors(&object->sections[i]);
	return HP_OK;
}

static int read_sections(struct build_object *object, struct hp_error *error)
{
	size_t names = 0, count = 0;
	int status = HP_OK;

	if (elf_getshdrnum(object->elf, &count) != 0 || elf_getshdrstrndx(object->elf, &names) != 0 ||
	    count > SECTIONS_MAX)
		return hp_fail(error, HP_FAILED, "%s is not a usable object", object->path);
	object->sections = calloc(count, sizeof(*object->sections));
	if (!object->sections)
		return hp_fail(error, HP_FAILED, "out of memory reading %s", object->path);
	object->section_count = count;
	for (size_t i = 1; i < count; i++) {
		struct build_section *section = &object->sections[i];
		Elf_Scn *scn = elf_getscn(object->elf, i);
		const char *name;

		if (!scn || !gelf_getshdr(scn, &section->header))
			return hp_fail(error, HP_FAILED, "%s: a damaged section", object->path);
		name = elf_strptr(object->elf, names, section->header.sh_name);
		section->name = name ? name : "";
		section->data = elf_getdata(scn, NULL);
		if (section->data && section->header.sh_type != SHT_NOBITS && section->data->d_size &&
		    section->data->d_size == section->header.sh_size)
			section->bytes = section->data->d_buf;
		if (section->header.sh_type == SHT_SYMTAB)
			object->symtab = i;
	}
	if (!object->symtab)
		return hp_fail(error, HP_FAILED, "%s has no symbol table", object->path);
	status = read_symbols(object, error);
	for (size_t i = 1; status == HP_OK && i < count; i++)
		if (object->sections[i].header.sh_type == SHT_RELA)
			status = read_relocs(object, i, error);
	if (status == HP_OK)
		status = read_anchors(object, error);
	return status;
}

int build_object_open(struct build_object *object, const char *path, const char *source,
		      struct hp_error *error)
{
	GElf_Ehdr header;

	memset(object, 0, sizeof(*object));
	object->fd = -1;
	hp_copy_string(object->path, sizeof(object->path), path);
	hp_copy_string(object->source, sizeof(object->source), source);
	if (elf_version(EV_CURRENT) == EV_NONE)
		return hp_fail(error, HP_FAILED, "libelf is unusable: %s", elf_errmsg(-1));
	object->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (object->fd < 0)
		return hp_fail_errno(error, HP_FAILED, "cannot open %s", path);
	object->elf = elf_begin(object->fd, ELF_C_READ, NULL);
	if (!object->elf || elf_kind(object->elf) != ELF_K_ELF || !gelf_getehdr(object->elf, &header) ||
	    header.e_type != ET_REL || header.e_machine != HP_ELF_MACHINE ||
	    gelf_getclass(object->elf) != ELFCLASS64)
		return hp_fail(error, HP_FAILED, "%s is not an " HP_ARCH_NAME " relocatable object",
			       path);
	return read_sections(object, error);
}

void build_object_close(struct build_object *object)
{
	for (size_t i = 0; object->sections && i < object->section_count; i++) {
		free(object->sections[i].relocs);
		free(object->sections[i].anchors);
	}
	free(object->sections);
	free(object->symbols);
	if (object->elf)
		elf_end(object->elf);
	if (object->fd >= 0)
		close(object->fd);
	memset(object, 0, sizeof(*object));
	object->fd = -1;
}

bool build_symbol_defined(const struct build_symbol *symbol)
{
	return symbol->sym.st_shndx != SHN_UNDEF && symbol->sym.st_shndx < SHN_LORESERVE;
}

bool build_symbol_is_function(const struct build_symbol *symbol)
{
	return GELF_ST_TYPE(symbol->sym.st_info) == STT_FUNC && symbol->name[0];
}

/* Compiler-made constants are compared by their bytes, not their names. */
static bool is_compiler_constant(const char *name)
{
	return strncmp(name, "CSWTCH.", 7) == 0 || name[0] == '.' || strncmp(name, "__compound_literal.", 19) == 0;
}

bool build_symbol_is_variable(const struct build_symbol *symbol)
{
	unsigned char type = GELF_ST_TYPE(symbol->sym.st_info);

	return (type == STT_OBJECT || type == STT_TLS) && symbol->name[0] &&
	       !is_compiler_constant(symbol->name);
}

bool build_name_is_clone(const char *name)
{
	/* C names have no dot: foo.isra.0, foo.constprop.1, foo.part.2, foo.cold. */
	return strchr(name, '.') != NULL;
}

void build_base_name(const char *name, char *base, size_t size)
{
	const char *dot = strrchr(name, '.');
	size_t length = strlen(name);
	bool numbered = dot && dot != name && dot[1];

	for (const char *c = dot ? dot + 1 : name; numbered && *c; c++)
		numbered = isdigit((unsigned char)*c);
	if (numbered)
		length = (size_t)(dot - name);
	if (length >= size)
		length = size - 1;
	memcpy(base, name, length);
	base[length] = '\0';
}

bool build_section_writable(const struct build_section *section)
{
	return (section->header.sh_flags & SHF_WRITE) != 0;
}

bool build_section_is_constructor(const struct build_section *section)
{
	static const char *const prefixes[] = { ".init_array", ".fini_array", ".ctors", ".dtors",
						".preinit_array" };

	if (section->header.sh_type == SHT_INIT_ARRAY || section->header.sh_type == SHT_FINI_ARRAY ||
	    section->header.sh_type == SHT_PREINIT_ARRAY)
		return true;
	for (size_t i = 0; i < HP_ARRAY_SIZE(prefixes); i++)
		if (strncmp(section->name, prefixes[i], strlen(prefixes[i])) == 0)
			return true;
	return false;
}

/* The named function or variable of `section` that holds `offset`. */
static long named_at(const struct build_object *object, size_t section, int64_t offset)
{
	long best = -1;

	for (size_t i = 1; i < object->symbol_count; i++) {
		const struct build_symbol *symbol = &object->symbols[i];
		int64_t start = (int64_t)symbol->sym.st_value;
		unsigned char type = GELF_ST_TYPE(symbol->sym.st_info);

		if (symbol->sym.st_shndx != section || !symbol->name[0] ||
		    (type != STT_FUNC && !build_symbol_is_variable(symbol)))
			continue;
		if (offset == start ||
		    (offset > start && offset < start + (int64_t)symbol->sym.st_size))
			return (long)i;
	}
	return best;
}

void build_object_target(const struct build_object *object, uint32_t symbol, int64_t addend,
			 struct build_target *target)
{
	const struct build_symbol *s = &object->symbols[symbol];
	long named;

	target->symbol = -1;
	target->section = 0;
	target->offset = addend;
	if (GELF_ST_TYPE(s->sym.st_info) != STT_SECTION) {
		if (build_symbol_is_function(s) || build_symbol_is_variable(s) ||
		    !build_symbol_defined(s)) {
			target->symbol = symbol;
			return;
		}
		/* A compiler constant: an anonymous piece of its section. */
		target->section = s->sym.st_shndx;
		target->offset = addend + (int64_t)s->sym.st_value;
		return;
	}
	target->section = s->sym.st_shndx < object->section_count ? s->sym.st_shndx : 0;
	named = named_at(object, target->section, addend);
	if (named >= 0) {
		target->symbol = named;
		target->offset = addend - (int64_t)object->symbols[named].sym.st_value;
	}
}

/* Whether a constant may start at `anchor`: a symbol's edge, the section's
 * start, or right after a NUL (a string's end, or padding).  An offset that
 * follows another byte is taken for a reference into the middle of the
 * constant before it ("text" + 2), never for a new one. */
static bool starts_piece(const struct build_section *section, const struct build_anchor *anchor)
{
	return anchor->boundary || anchor->offset == 0 || !section->bytes ||
	       section->bytes[anchor->offset - 1] == '\0';
}

/* The first anchor above `offset` (anchor_count when none). */
static size_t anchor_above(const struct build_section *section, uint64_t offset)
{
	size_t low = 0, high = section->anchor_count;

	while (low < high) {
		size_t middle = low + (high - low) / 2;

		if (section->anchors[middle].offset <= offset)
			low = middle + 1;
		else
			high = middle;
	}
	return low;
}

void build_object_piece(const struct build_object *object, size_t index, uint64_t offset,
			uint64_t reach, uint64_t *start, uint64_t *end)
{
	const struct build_section *section = &object->sections[index];
	uint64_t size = section->header.sh_size;
	size_t above = anchor_above(section, offset);
	size_t after = anchor_above(section, offset + reach < offset ? UINT64_MAX : offset + reach);

	*start = 0;
	for (size_t i = above; i-- > 0;)
		if (starts_piece(section, &section->anchors[i])) {
			*start = section->anchors[i].offset;
			break;
		}
	*end = size;
	for (size_t i = after; i < section->anchor_count; i++)
		if (starts_piece(section, &section->anchors[i])) {
			*end = section->anchors[i].offset;
			break;
		}
	if (*start > offset)
		*start = offset;
	if (*end > size)
		*end = size;
	if (*end < *start)
		*end = *start;
}
