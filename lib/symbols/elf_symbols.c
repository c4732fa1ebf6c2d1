/* elf_symbols.c - the facts we need from one ELF object (type, load address,
 * soname, build-id, code and data symbols with their source files), read
 * with libelf.  The file may be
 * hostile or truncated: libelf bounds-checks sections and strings, and we
 * bound counts.  Nothing here opens paths; callers hand in a descriptor. */
#include <gelf.h>
#include <libelf.h>
#include <stdlib.h>
#include <string.h>

#include "symbols/symbols.h"
#include "arch/arch.h"
#include "common/base.h"

#define SYMBOLS_MAX (8u << 20)

static int libelf_ready(struct hp_error *error)
{
	if (elf_version(EV_CURRENT) == EV_NONE)
		return hp_fail(error, HP_FAILED, "libelf is too old: %s", elf_errmsg(-1));
	return HP_OK;
}

size_t elf_build_id(Elf *elf, unsigned char *id, size_t capacity)
{
	Elf_Scn *section = NULL;

	while ((section = elf_nextscn(elf, section)) != NULL) {
		GElf_Shdr header;
		Elf_Data *data;
		GElf_Nhdr note;
		size_t offset = 0, name_offset, descriptor_offset;

		if (!gelf_getshdr(section, &header) || header.sh_type != SHT_NOTE)
			continue;
		data = elf_getdata(section, NULL);
		while (data && (offset = gelf_getnote(data, offset, &note, &name_offset,
						       &descriptor_offset)) > 0) {
			if (note.n_type == NT_GNU_BUILD_ID && note.n_namesz == 4 &&
			    memcmp((char *)data->d_buf + name_offset, "GNU", 4) == 0 &&
			    note.n_descsz > 0 && note.n_descsz <= capacity) {
				memcpy(id, (char *)data->d_buf + descriptor_offset, note.n_descsz);
				return note.n_descsz;
			}
		}
	}
	return 0;
}

static void read_build_id(Elf *elf, struct hp_elf_info *info)
{
	info->build_id_size = elf_build_id(elf, info->build_id, sizeof(info->build_id));
}

static void read_first_load(Elf *elf, struct hp_elf_info *info)
{
	size_t count = 0;

	if (elf_getphdrnum(elf, &count) != 0)
		return;
	for (size_t i = 0; i < count; i++) {
		GElf_Phdr header;

		if (gelf_getphdr(elf, (int)i, &header) && header.p_type == PT_LOAD) {
			info->first_load_vaddr = header.p_vaddr & ~(uint64_t)(HP_PAGE_SIZE - 1);
			return;
		}
	}
}

static void read_soname(Elf *elf, struct hp_elf_info *info)
{
	Elf_Scn *section = NULL;

	while ((section = elf_nextscn(elf, section)) != NULL) {
		GElf_Shdr header;
		Elf_Data *data;

		if (!gelf_getshdr(section, &header) || header.sh_type != SHT_DYNAMIC ||
		    header.sh_entsize == 0)
			continue;
		data = elf_getdata(section, NULL);
		for (size_t i = 0; data && i < header.sh_size / header.sh_entsize; i++) {
			GElf_Dyn entry;
			const char *name;

			if (!gelf_getdyn(data, (int)i, &entry) || entry.d_tag != DT_SONAME)
				continue;
			name = elf_strptr(elf, header.sh_link, entry.d_un.d_val);
			if (name)
				info->soname = strdup(name);
			return;
		}
	}
}

/* The version index of each .dynsym entry, to skip non-default versions. */
static Elf_Data *find_versym(Elf *elf)
{
	Elf_Scn *section = NULL;

	while ((section = elf_nextscn(elf, section)) != NULL) {
		GElf_Shdr header;

		if (gelf_getshdr(section, &header) && header.sh_type == SHT_GNU_versym)
			return elf_getdata(section, NULL);
	}
	return NULL;
}

/* The kinds of symbol we keep: code and data a patch may replace or use. */
static bool wanted_type(unsigned char type)
{
	return type == STT_FUNC || type == STT_GNU_IFUNC || type == STT_OBJECT ||
	       type == STT_TLS || type == STT_NOTYPE;
}

/* Remembers a source file name (an STT_FILE symbol); returns its number. */
static int add_file(struct hp_elf_info *info, const char *name, uint32_t *number,
		    struct hp_error *error)
{
	char **larger;

	if (info->file_count >= SYMBOLS_MAX)
		return hp_fail(error, HP_MISFIT, "more than %u source files", SYMBOLS_MAX);
	larger = realloc(info->files, (info->file_count + 1) * sizeof(*larger));
	if (!larger)
		return hp_fail(error, HP_FAILED, "out of memory reading symbols");
	info->files = larger;
	info->files[info->file_count] = strdup(name);
	if (!info->files[info->file_count])
		return hp_fail(error, HP_FAILED, "out of memory reading symbols");
	*number = (uint32_t)++info->file_count;
	return HP_OK;
}

static int add_symbol(const GElf_Sym *raw, const char *name, bool dynamic, GElf_Versym version,
		      uint32_t file, struct hp_elf_info *info, struct hp_error *error)
{
	struct hp_symbol *symbol = &info->symbols[info->symbol_count];

	symbol->name = strdup(name);
	if (!symbol->name)
		return hp_fail(error, HP_FAILED, "out of memory reading symbols");
	symbol->value = raw->st_value;
	symbol->size = raw->st_size;
	symbol->bind = GELF_ST_BIND(raw->st_info);
	symbol->type = GELF_ST_TYPE(raw->st_info);
	symbol->dynamic = dynamic;
	symbol->hidden_version = (version & 0x8000) != 0;
	symbol->absolute = raw->st_shndx == SHN_ABS;
	symbol->file = symbol->bind == STB_LOCAL ? file : 0;
	info->symbol_count++;
	return HP_OK;
}

/* Local symbols follow the STT_FILE symbol of the source file that defines
 * them (the linker keeps each input file's locals together after it). */
static int add_symbols(Elf *elf, Elf_Scn *section, const GElf_Shdr *header,
		       struct hp_elf_info *info, struct hp_error *error)
{
	bool dynamic = header->sh_type == SHT_DYNSYM;
	Elf_Data *data = elf_getdata(section, NULL), *versym = dynamic ? find_versym(elf) : NULL;
	size_t count = header->sh_entsize ? header->sh_size / header->sh_entsize : 0;
	struct hp_symbol *larger;
	uint32_t file = 0;
	int status = HP_OK;

	if (!data || count == 0)
		return HP_OK;
	if (count > SYMBOLS_MAX || info->symbol_count > SYMBOLS_MAX)
		return hp_fail(error, HP_MISFIT, "more than %u symbols", SYMBOLS_MAX);
	larger = realloc(info->symbols, (info->symbol_count + count) * sizeof(*larger));
	if (!larger)
		return hp_fail(error, HP_FAILED, "out of memory reading symbols");
	info->symbols = larger;
	if (!dynamic)
		info->has_symtab = true;
	for (size_t i = 1; status == HP_OK && i < count; i++) {
		GElf_Sym raw;
		GElf_Versym version = 0;
		const char *name;

		if (!gelf_getsym(data, (int)i, &raw))
			continue;
		name = elf_strptr(elf, header->sh_link, raw.st_name);
		if (GELF_ST_TYPE(raw.st_info) == STT_FILE) {
			file = 0;
			if (name && *name && !dynamic)
				status = add_file(info, name, &file, error);
			continue;
		}
		if (raw.st_shndx == SHN_UNDEF || !wanted_type(GELF_ST_TYPE(raw.st_info)) ||
		    !name || !*name)
			continue;
		if (versym)
			gelf_getversym(versym, (int)i, &version);
		status = add_symbol(&raw, name, dynamic, version, file, info, error);
	}
	return status;
}

/* Prefers .symtab (it has file-local functions); .dynsym adds exports. */
static int read_symbols(Elf *elf, struct hp_elf_info *info, struct hp_error *error)
{
	Elf_Scn *section = NULL;
	int status = HP_OK;

	while (status == HP_OK && (section = elf_nextscn(elf, section)) != NULL) {
		GElf_Shdr header;

		if (!gelf_getshdr(section, &header))
			continue;
		if (header.sh_type == SHT_SYMTAB || header.sh_type == SHT_DYNSYM)
			status = add_symbols(elf, section, &header, info, error);
	}
	return status;
}

static int read_info(Elf *elf, const char *label, struct hp_elf_info *info,
		     struct hp_error *error)
{
	GElf_Ehdr header;
	int status;

	memset(info, 0, sizeof(*info));
	if (!elf || elf_kind(elf) != ELF_K_ELF || !gelf_getehdr(elf, &header)) {
		hp_error_file(error, label);
		return hp_fail(error, HP_MISFIT, "%s is not an ELF file", label);
	}
	if (gelf_getclass(elf) != ELFCLASS64 || header.e_machine != HP_ELF_MACHINE) {
		hp_error_file(error, label);
		return hp_fail(error, HP_MISFIT, "%s is not an " HP_ARCH_NAME " ELF object", label);
	}
	info->type = header.e_type;
	read_first_load(elf, info);
	read_build_id(elf, info);
	read_soname(elf, info);
	status = read_symbols(elf, info, error);
	if (status != HP_OK)
		elf_info_release(info);
	return status;
}

int elf_info_read_fd(int fd, const char *label, struct hp_elf_info *info,
		     struct hp_error *error)
{
	Elf *elf;
	int status = libelf_ready(error);

	if (status != HP_OK)
		return status;
	/* ELF_C_READ, not mmap: a file truncated under us must not SIGBUS us. */
	elf = elf_begin(fd, ELF_C_READ, NULL);
	status = read_info(elf, label, info, error);
	elf_end(elf);
	return status;
}

int elf_info_read_memory(const void *bytes, size_t size, const char *label,
			 struct hp_elf_info *info, struct hp_error *error)
{
	Elf *elf;
	int status = libelf_ready(error);

	if (status != HP_OK)
		return status;
	elf = elf_memory((char *)bytes, size);
	status = read_info(elf, label, info, error);
	elf_end(elf);
	return status;
}

int elf_info_take_symbols(struct hp_elf_info *info, struct hp_elf_info *from,
			  struct hp_error *error)
{
	size_t count = info->symbol_count + from->symbol_count;
	size_t files = info->file_count + from->file_count;
	struct hp_symbol *symbols;
	char **names;

	if (count > SYMBOLS_MAX || files > SYMBOLS_MAX)
		return hp_fail(error, HP_MISFIT, "more than %u symbols", SYMBOLS_MAX);
	symbols = realloc(info->symbols, (count ? count : 1) * sizeof(*symbols));
	if (symbols)
		info->symbols = symbols;
	names = symbols ? realloc(info->files, (files ? files : 1) * sizeof(*names)) : NULL;
	if (!names)
		return hp_fail(error, HP_FAILED, "out of memory reading symbols");
	info->files = names;
	for (size_t i = 0; i < from->symbol_count; i++) {
		info->symbols[info->symbol_count] = from->symbols[i];
		if (from->symbols[i].file)
			info->symbols[info->symbol_count].file += (uint32_t)info->file_count;
		info->symbol_count++;
	}
	memcpy(info->files + info->file_count, from->files, from->file_count * sizeof(*names));
	info->file_count = files;
	info->has_symtab = info->has_symtab || from->has_symtab;
	free(from->symbols);
	free(from->files);
	from->symbols = NULL;
	from->files = NULL;
	from->symbol_count = from->file_count = 0;
	return HP_OK;
}

const char *elf_symbol_file(const struct hp_elf_info *info, const struct hp_symbol *symbol)
{
	return symbol->file && symbol->file <= info->file_count ? info->files[symbol->file - 1]
								 : NULL;
}

/* The linker makes globals local (hidden visibility, a version script's
 * "local: *") and lists them after an unnamed STT_FILE: no source file of
 * their own, and for C they are the program's globals all the same. */
bool elf_symbol_is_global(const struct hp_symbol *symbol)
{
	return symbol->bind != STB_LOCAL || symbol->file == 0;
}

/* Source files compare by their last component: the symbol table keeps the
 * name the compiler was given, which may or may not include directories. */
bool elf_same_source_file(const char *wanted, const char *file)
{
	return file && strcmp(hp_base_name(wanted), hp_base_name(file)) == 0;
}

static bool candidate(const struct hp_elf_info *info, const struct hp_symbol *symbol,
		      const char *name, const char *file, bool functions, bool locals)
{
	if (strcmp(symbol->name, name) != 0 ||
	    (functions && symbol->type != STT_FUNC && symbol->type != STT_GNU_IFUNC))
		return false;
	if (file && !file[0])
		return true;
	if (locals)
		return symbol->bind == STB_LOCAL &&
		       elf_same_source_file(file, elf_symbol_file(info, symbol));
	return elf_symbol_is_global(symbol);
}

size_t elf_symbol_choose(const struct hp_elf_info *info, const char *name, const char *file,
			 bool functions, const struct hp_symbol **chosen)
{
	size_t distinct = 0;

	*chosen = NULL;
	for (int locals = file && file[0] ? 1 : 0; locals >= 0 && !*chosen; locals--)
		for (size_t i = 0; i < info->symbol_count; i++) {
			const struct hp_symbol *symbol = &info->symbols[i];

			if (!candidate(info, symbol, name, file, functions, locals))
				continue;
			if (!*chosen || (*chosen)->value != symbol->value)
				distinct++;
			if (!*chosen || symbol->size > (*chosen)->size)
				*chosen = symbol;
		}
	return distinct;
}

void elf_info_release(struct hp_elf_info *info)
{
	for (size_t i = 0; i < info->symbol_count; i++)
		free(info->symbols[i].name);
	for (size_t i = 0; i < info->file_count; i++)
		free(info->files[i]);
	free(info->files);
	free(info->symbols);
	free(info->soname);
	memset(info, 0, sizeof(*info));
}

bool elf_file_name_matches(const char *wanted, const char *file_name)
{
	size_t length = strlen(wanted);

	return strcmp(wanted, file_name) == 0 ||
	       (strncmp(wanted, file_name, length) == 0 && file_name[length] == '.');
}
