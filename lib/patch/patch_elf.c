/* patch_elf.c - where things lie in a patch object: its sections by name,
 * its loaded segments, what its relocations store.  Shared by the files
 * that parse the untrusted records found there; it reads through libelf
 * only and parses nothing itself. */
#include <gelf.h>
#include <libelf.h>
#include <string.h>

#include "patch/patch.h"
#include "arch/arch.h"

Elf_Scn *patch_find_section(Elf *elf, const char *wanted, GElf_Shdr *header)
{
	Elf_Scn *section = NULL;
	size_t names;

	if (elf_getshdrstrndx(elf, &names) != 0)
		return NULL;
	while ((section = elf_nextscn(elf, section)) != NULL) {
		const char *name;

		if (!gelf_getshdr(section, header))
			continue;
		name = elf_strptr(elf, names, header->sh_name);
		if (name && strcmp(name, wanted) == 0)
			return section;
	}
	return NULL;
}

bool patch_in_segment(Elf *elf, uint64_t address, uint64_t length, bool code)
{
	size_t count = 0;

	if (elf_getphdrnum(elf, &count) != 0)
		return false;
	for (size_t i = 0; i < count; i++) {
		GElf_Phdr header;
		/* Code must be in the file; data may lie in the zero-filled rest. */
		uint64_t size;

		if (!gelf_getphdr(elf, (int)i, &header) || header.p_type != PT_LOAD ||
		    (code && !(header.p_flags & PF_X)))
			continue;
		size = code ? header.p_filesz : header.p_memsz;
		if (address >= header.p_vaddr && address - header.p_vaddr <= size &&
		    length <= size - (address - header.p_vaddr))
			return true;
	}
	return false;
}

bool patch_relocated_value(Elf *elf, uint64_t where, uint64_t *value)
{
	Elf_Scn *section = NULL;

	while ((section = elf_nextscn(elf, section)) != NULL) {
		GElf_Shdr header;
		Elf_Data *data;
		size_t count;

		if (!gelf_getshdr(section, &header) || header.sh_type != SHT_RELA ||
		    header.sh_entsize == 0)
			continue;
		data = elf_getdata(section, NULL);
		count = header.sh_size / header.sh_entsize;
		for (size_t i = 0; data && i < count; i++) {
			GElf_Rela rela;

			if (!gelf_getrela(data, (int)i, &rela) || rela.r_offset != where)
				continue;
			if (relocation_kind(GELF_R_TYPE(rela.r_info)) == HP_RELOCATION_RELATIVE) {
				*value = (uint64_t)rela.r_addend;
				return true;
			}
			if (relocation_kind(GELF_R_TYPE(rela.r_info)) == HP_RELOCATION_ABSOLUTE64) {
				Elf_Scn *symbols = elf_getscn(elf, header.sh_link);
				Elf_Data *symbol_data = symbols ? elf_getdata(symbols, NULL) : NULL;
				GElf_Sym symbol;

				if (!symbol_data ||
				    !gelf_getsym(symbol_data, (int)GELF_R_SYM(rela.r_info), &symbol) ||
				    symbol.st_shndx == SHN_UNDEF)
					return false;
				*value = symbol.st_value + (uint64_t)rela.r_addend;
				return true;
			}
			return false;
		}
	}
	return false;
}
