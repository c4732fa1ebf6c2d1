/* patch_elf.c - where things lie in a patch object: its sections by name,
 * its loaded segments.  Shared by patch_file.c and patch_references.c,
 * which parse the untrusted records found there; it reads through libelf
 * only and parses nothing itself. */
#include <gelf.h>
#include <libelf.h>
#include <string.h>

#include "patch/patch.h"

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
