/* build_rewrite.c - a fixed object made ready for the patch link.  Every
 * section is copied in place (so the linker's --gc-sections keeps only what
 * the records reach), but the symbol table is rebuilt: references from kept
 * code to the binary's functions and variables go to undefined weak aliases
 * (__hotpatch_ref_N) that hotpatch fills in at apply time; each replaced
 * function is renamed FUNCTION.hotpatch, a hidden global the records use
 * (and the only name nm, gdb and backtraces see for the new code);
 * everything else not kept becomes local.  Constructors never run again. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "build/build.h"

/* The buffers the new file is made of, alive until it is written. */
struct rewrite {
	const struct build_plan *plan;
	const struct build_unit *unit;
	size_t symbol_count, first_global;
	Elf64_Sym *symbols;
	size_t *new_index;		/* old symbol index -> new */
	size_t *alias_index;		/* plan alias -> new symbol index, 0 if unused */
	char *strings;
	size_t string_size;
	Elf64_Rela **relas;		/* per section, for RELA sections */
};

static size_t add_string(struct rewrite *rewrite, const char *name)
{
	size_t offset = rewrite->string_size, length = strlen(name) + 1;

	memcpy(rewrite->strings + offset, name, length);
	rewrite->string_size += length;
	return offset;
}

/* The new name of a reference, in this unit, to a global function that
 * another unit of the patch replaces (the plan links such calls to the
 * patch's code by name), or NULL. */
static const char *renamed_reference(const struct rewrite *rewrite, size_t index)
{
	const struct build_plan *plan = rewrite->plan;
	const struct build_symbol *symbol = &rewrite->unit->fixed.symbols[index];

	if (build_symbol_defined(symbol) || GELF_ST_BIND(symbol->sym.st_info) == STB_LOCAL ||
	    !symbol->name[0])
		return NULL;
	for (size_t i = 0; i < plan->replace_count; i++) {
		const struct build_replace *r = &plan->replaces[i];
		const struct build_symbol *replaced = &plan->units[r->object].fixed.symbols[r->symbol];

		if (GELF_ST_BIND(replaced->sym.st_info) != STB_LOCAL &&
		    strcmp(replaced->name, symbol->name) == 0)
			return r->code;
	}
	return NULL;
}

/* What an old symbol becomes: a replaced function its new name, a hidden
 * global; kept definitions stay global (hidden, so the patch exports
 * nothing), the rest of the definitions turn local. */
static Elf64_Sym new_symbol(struct rewrite *rewrite, size_t index)
{
	const struct build_unit *unit = rewrite->unit;
	Elf64_Sym symbol = unit->fixed.symbols[index].sym;
	unsigned char bind = GELF_ST_BIND(symbol.st_info), type = GELF_ST_TYPE(symbol.st_info);
	bool defined = symbol.st_shndx != SHN_UNDEF && symbol.st_shndx < SHN_LORESERVE;
	const char *renamed = renamed_reference(rewrite, index);

	if (unit->replace[index] >= 0) {
		symbol.st_name = (Elf64_Word)add_string(rewrite,
							 rewrite->plan->replaces[unit->replace[index]].code);
		symbol.st_info = GELF_ST_INFO(STB_GLOBAL, STT_FUNC);
		symbol.st_other = STV_HIDDEN;
		return symbol;
	}
	if (renamed)
		symbol.st_name = (Elf64_Word)add_string(rewrite, renamed);
	if (!defined || bind == STB_LOCAL)
		return symbol;
	if (unit->kept[symbol.st_shndx]) {
		symbol.st_other = (unsigned char)((symbol.st_other & ~3u) | STV_HIDDEN);
		return symbol;
	}
	symbol.st_info = GELF_ST_INFO(STB_LOCAL, type);
	symbol.st_other = (unsigned char)(symbol.st_other & ~3u);
	return symbol;
}

static bool stays_local(const Elf64_Sym *symbol)
{
	return GELF_ST_BIND(symbol->st_info) == STB_LOCAL;
}

/* Locals first (the ELF rule), then globals, then the aliases. */
static int build_symbols(struct rewrite *rewrite, struct hp_error *error)
{
	Elf64_Sym *converted;
	const struct build_unit *unit = rewrite->unit;
	const struct build_object *object = &unit->fixed;
	const struct build_section *strtab = &object->sections[object->sections[object->symtab].header.sh_link];
	size_t extra = rewrite->plan->alias_count, names = 1;
	size_t next = 1;

	/* Room for every new name: each alias once, each symbol renamed once. */
	for (size_t i = 0; i < rewrite->plan->alias_count; i++)
		names += strlen(rewrite->plan->aliases[i].alias) + 1;
	for (size_t i = 1; i < object->symbol_count; i++) {
		const char *renamed = unit->replace[i] >= 0 ? rewrite->plan->replaces[unit->replace[i]].code
							    : renamed_reference(rewrite, i);

		names += renamed ? strlen(renamed) + 1 : 0;
	}
	rewrite->symbols = calloc(object->symbol_count + extra, sizeof(*rewrite->symbols));
	rewrite->new_index = calloc(object->symbol_count, sizeof(*rewrite->new_index));
	rewrite->alias_index = calloc(rewrite->plan->alias_count + 1, sizeof(size_t));
	rewrite->strings = malloc(strtab->header.sh_size + names);
	if (!rewrite->symbols || !rewrite->new_index || !rewrite->alias_index || !rewrite->strings)
		return hp_fail(error, HP_FAILED, "out of memory rewriting %s", object->source);
	if (strtab->bytes)
		memcpy(rewrite->strings, strtab->bytes, strtab->header.sh_size);
	rewrite->string_size = strtab->bytes ? strtab->header.sh_size : 0;
	if (rewrite->string_size == 0)
		rewrite->strings[rewrite->string_size++] = '\0';
	converted = calloc(object->symbol_count, sizeof(*converted));
	if (!converted)
		return hp_fail(error, HP_FAILED, "out of memory rewriting %s", object->source);
	for (size_t i = 1; i < object->symbol_count; i++)
		converted[i] = new_symbol(rewrite, i);
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 1; i < object->symbol_count; i++) {
			if (stays_local(&converted[i]) != (pass == 0))
				continue;
			rewrite->new_index[i] = next;
			rewrite->symbols[next++] = converted[i];
			if (pass == 0)
				rewrite->first_global = next;
		}
	free(converted);
	if (rewrite->first_global == 0)
		rewrite->first_global = 1;
	for (size_t i = 1; i < object->symbol_count; i++) {
		long alias = unit->alias[i];

		if (alias >= 0 && !rewrite->alias_index[alias]) {
			Elf64_Sym undefined = { 0 };

			undefined.st_name = (Elf64_Word)add_string(rewrite,
								    rewrite->plan->aliases[alias].alias);
			undefined.st_info = GELF_ST_INFO(STB_WEAK, STT_NOTYPE);
			undefined.st_shndx = SHN_UNDEF;
			rewrite->alias_index[alias] = next;
			rewrite->symbols[next++] = undefined;
		}
	}
	rewrite->symbol_count = next;
	return HP_OK;
}

/* Relocations of kept sections that point at the binary go to its alias,
 * the addend made relative to the symbol (not its section). */
static int build_relas(struct rewrite *rewrite, size_t index, struct hp_error *error)
{
	const struct build_unit *unit = rewrite->unit;
	const struct build_object *object = &unit->fixed;
	const struct build_section *rela = &object->sections[index];
	size_t applies_to = rela->header.sh_info;
	const struct build_section *target = applies_to < object->section_count ?
							      &object->sections[applies_to] : NULL;
	Elf64_Rela *entries;

	if (!target || target->rela != index)
		return HP_OK;
	entries = calloc(target->reloc_count ? target->reloc_count : 1, sizeof(*entries));
	if (!entries)
		return hp_fail(error, HP_FAILED, "out of memory rewriting %s", object->source);
	rewrite->relas[index] = entries;
	for (size_t i = 0; i < target->reloc_count; i++) {
		const struct build_reloc *reloc = &target->relocs[i];
		struct build_target meaning;
		size_t symbol = rewrite->new_index[reloc->symbol];
		int64_t addend = reloc->addend;

		build_object_target(object, reloc->symbol, reloc->addend, &meaning);
		if (unit->kept[applies_to] && meaning.symbol >= 0 && unit->alias[meaning.symbol] >= 0) {
			symbol = rewrite->alias_index[unit->alias[meaning.symbol]];
			addend = meaning.offset;
		}
		entries[i].r_offset = reloc->offset;
		entries[i].r_info = ELF64_R_INFO(symbol, reloc->type);
		entries[i].r_addend = addend;
	}
	return HP_OK;
}

static bool is_debug(const struct build_section *section)
{
	return strncmp(section->name, ".debug", 6) == 0 || strncmp(section->name, ".rela.debug", 11) == 0;
}

static void fill_data(Elf_Data *data, void *bytes, size_t size, Elf_Type type, size_t align)
{
	data->d_buf = bytes;
	data->d_size = size;
	data->d_type = type;
	data->d_align = align ? align : 1;
	data->d_off = 0;
	data->d_version = EV_CURRENT;
}

static int copy_section(struct rewrite *rewrite, Elf *out, size_t index, struct hp_error *error)
{
	const struct build_object *object = &rewrite->unit->fixed;
	const struct build_section *section = &object->sections[index];
	GElf_Shdr header = section->header;
	Elf_Scn *scn = elf_newscn(out);
	Elf_Data *data = scn ? elf_newdata(scn) : NULL;
	const struct build_section *applies_to = header.sh_type == SHT_RELA &&
							 header.sh_info < object->section_count ?
						 &object->sections[header.sh_info] : NULL;

	if (!data)
		return hp_fail(error, HP_FAILED, "libelf: %s", elf_errmsg(-1));
	/* They ran when the program started; they must not run again. */
	if (build_section_is_constructor(section) ||
	    (applies_to && build_section_is_constructor(applies_to)))
		header.sh_flags |= SHF_EXCLUDE;
	/* The file's debug information describes every function, most of which
	 * the link drops, and names the binary's variables as the patch's own:
	 * a debugger is better served by the binary's. */
	if (is_debug(section))
		header.sh_flags |= SHF_EXCLUDE;
	if (index == object->symtab) {
		fill_data(data, rewrite->symbols, rewrite->symbol_count * sizeof(Elf64_Sym), ELF_T_SYM, 8);
		header.sh_size = rewrite->symbol_count * sizeof(Elf64_Sym);
		header.sh_info = (Elf64_Word)rewrite->first_global;
	} else if (index == object->sections[object->symtab].header.sh_link) {
		fill_data(data, rewrite->strings, rewrite->string_size, ELF_T_BYTE, 1);
		header.sh_size = rewrite->string_size;
	} else if (rewrite->relas[index]) {
		size_t size = applies_to->reloc_count * sizeof(Elf64_Rela);

		fill_data(data, rewrite->relas[index], size, ELF_T_RELA, 8);
		header.sh_size = size;
	} else if (section->data) {
		fill_data(data, section->data->d_buf, section->data->d_size, section->data->d_type,
			  header.sh_addralign);
		if (header.sh_type == SHT_GROUP && header.sh_info < object->symbol_count)
			header.sh_info = (Elf64_Word)rewrite->new_index[header.sh_info];
	} else {
		fill_data(data, NULL, header.sh_type == SHT_NOBITS ? header.sh_size : 0, ELF_T_BYTE,
			  header.sh_addralign);
	}
	if (!gelf_update_shdr(scn, &header))
		return hp_fail(error, HP_FAILED, "libelf: %s", elf_errmsg(-1));
	return HP_OK;
}

static int write_object(struct rewrite *rewrite, int fd, struct hp_error *error)
{
	const struct build_object *object = &rewrite->unit->fixed;
	Elf *out = elf_begin(fd, ELF_C_WRITE, NULL);
	GElf_Ehdr header, input;
	int status = HP_OK;

	if (!out || !gelf_newehdr(out, ELFCLASS64) || !gelf_getehdr(object->elf, &input) ||
	    !gelf_getehdr(out, &header))
		status = hp_fail(error, HP_FAILED, "libelf: %s", elf_errmsg(-1));
	if (status == HP_OK) {
		memcpy(header.e_ident, input.e_ident, EI_NIDENT);
		header.e_type = input.e_type;
		header.e_machine = input.e_machine;
		header.e_version = input.e_version;
		header.e_flags = input.e_flags;
		header.e_shstrndx = input.e_shstrndx;
		if (!gelf_update_ehdr(out, &header))
			status = hp_fail(error, HP_FAILED, "libelf: %s", elf_errmsg(-1));
	}
	for (size_t i = 1; status == HP_OK && i < object->section_count; i++)
		status = copy_section(rewrite, out, i, error);
	if (status == HP_OK && elf_update(out, ELF_C_WRITE) < 0)
		status = hp_fail(error, HP_FAILED, "cannot write the rewritten %s: %s",
				 object->source, elf_errmsg(-1));
	if (out)
		elf_end(out);
	return status;
}

int build_rewrite(const struct build_plan *plan, size_t unit, const char *path,
		  struct hp_error *error)
{
	struct rewrite rewrite = { .plan = plan, .unit = &plan->units[unit] };
	const struct build_object *object = &plan->units[unit].fixed;
	int fd = -1, status;

	rewrite.relas = calloc(object->section_count, sizeof(*rewrite.relas));
	status = rewrite.relas ? build_symbols(&rewrite, error)
			       : hp_fail(error, HP_FAILED, "out of memory rewriting %s", object->source);
	for (size_t i = 1; status == HP_OK && i < object->section_count; i++)
		if (object->sections[i].header.sh_type == SHT_RELA)
			status = build_relas(&rewrite, i, error);
	if (status == HP_OK) {
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0)
			status = hp_fail_errno(error, HP_FAILED, "cannot create %s", path);
	}
	if (status == HP_OK)
		status = write_object(&rewrite, fd, error);
	if (fd >= 0 && close(fd) != 0 && status == HP_OK)
		status = hp_fail_errno(error, HP_FAILED, "cannot write %s", path);
	for (size_t i = 0; rewrite.relas && i < object->section_count; i++)
		free(rewrite.relas[i]);
	free(rewrite.relas);
	free(rewrite.symbols);
	free(rewrite.new_index);
	free(rewrite.alias_index);
	free(rewrite.strings);
	return status;
}
