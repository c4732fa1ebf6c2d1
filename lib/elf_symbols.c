/* elf_symbols.c - the facts we need from one ELF object (type, load address,
 * soname, build-id, function symbols), read with libelf.  The file may be
 * hostile or truncated: libelf bounds-checks sections and strings, and we
 * bound counts.  Nothing here opens paths; callers hand in a descriptor. */
#include <gelf.h>
#include <libelf.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define SYMBOLS_MAX (8u << 20)

static int libelf_ready(struct hp_error *error)
{
	if (elf_version(EV_CURRENT) == EV_NONE)
		return hp_fail(error, HP_FAILED, "libelf is too old: %s", elf_errmsg(-1));
	return HP_OK;
}

static void read_build_id(Elf *elf, struct hp_elf_info *info)
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
			    note.n_descsz > 0 && note.n_descsz <= sizeof(info->build_id)) {
				memcpy(info->build_id, (char *)data->d_buf + descriptor_offset,
				       note.n_descsz);
				info->build_id_size = note.n_descsz;
				return;
			}
		}
	}
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

static int add_symbols(Elf *elf, Elf_Scn *section, const GElf_Shdr *header,
		       struct hp_elf_info *info, struct hp_error *error)
{
	bool dynamic = header->sh_type == SHT_DYNSYM;
	Elf_Data *data = elf_getdata(section, NULL), *versym = dynamic ? find_versym(elf) : NULL;
	size_t count = header->sh_entsize ? header->sh_size / header->sh_entsize : 0;
	struct hp_symbol *larger;

	if (!data || count == 0)
		return HP_OK;
	if (count > SYMBOLS_MAX || info->symbol_count > SYMBOLS_MAX)
		return hp_fail(error, HP_MISFIT, "more than %u symbols", SYMBOLS_MAX);
	larger = realloc(info->symbols, (info->symbol_count + count) * sizeof(*larger));
	if (!larger)
		return hp_fail(error, HP_FAILED, "out of memory reading symbols");
	info->symbols = larger;
	for (size_t i = 1; i < count; i++) {
		struct hp_symbol *symbol = &info->symbols[info->symbol_count];
		GElf_Sym raw;
		GElf_Versym version = 0;
		const char *name;

		if (!gelf_getsym(data, (int)i, &raw) || raw.st_shndx == SHN_UNDEF)
			continue;
		if (GELF_ST_TYPE(raw.st_info) != STT_FUNC &&
		    GELF_ST_TYPE(raw.st_info) != STT_GNU_IFUNC)
			continue;
		name = elf_strptr(elf, header->sh_link, raw.st_name);
		if (!name || !*name)
			continue;
		if (versym)
			gelf_getversym(versym, (int)i, &version);
		symbol->name = strdup(name);
		if (!symbol->name)
			return hp_fail(error, HP_FAILED, "out of memory reading symbols");
		symbol->value = raw.st_value;
		symbol->size = raw.st_size;
		symbol->bind = GELF_ST_BIND(raw.st_info);
		symbol->type = GELF_ST_TYPE(raw.st_info);
		symbol->dynamic = dynamic;
		symbol->hidden_version = (version & 0x8000) != 0;
		info->symbol_count++;
	}
	return HP_OK;
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
	if (gelf_getclass(elf) != ELFCLASS64 || header.e_machine != EM_X86_64) {
		hp_error_file(error, label);
		return hp_fail(error, HP_MISFIT, "%s is not an x86-64 ELF object", label);
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

void elf_info_release(struct hp_elf_info *info)
{
	for (size_t i = 0; i < info->symbol_count; i++)
		free(info->symbols[i].name);
	free(info->symbols);
	free(info->soname);
	memset(info, 0, sizeof(*info));
}
