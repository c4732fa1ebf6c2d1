/* build_object.c - one relocatable object of `hotpatch build`, read with
 * libelf into sections, symbols and relocations, and the few questions asked
 * of it (what does this relocation point at, is this a variable).  The
 * objects are our own compiler's output, still read with bounded counts. */
#include <ctype.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "build.h"

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
	    header.e_type != ET_REL || header.e_machine != EM_X86_64 ||
	    gelf_getclass(object->elf) != ELFCLASS64)
		return hp_fail(error, HP_FAILED, "%s is not an x86-64 relocatable object", path);
	return read_sections(object, error);
}

void build_object_close(struct build_object *object)
{
	for (size_t i = 0; object->sections && i < object->section_count; i++)
		free(object->sections[i].relocs);
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
