/* build_rewrite.c - a fixed object made ready for the patch link.  Every
 * section is copied in place (so the linker's --gc-sections keeps only what
 * the records reach), but the symbol table is rebuilt: references from kept
 * code to the binary's functions and variables go to undefined weak aliases
 * (__hotpatch_ref_N) that hotpatch fills in at apply time; each replaced
 * function is renamed FUNCTION.hotpatch, a hidden global the records use
 * (and the only name nm, gdb and backtraces see for the new code);
 * everything else not kept becomes local.  Constructors never run again.
 * A field of kept code that holds a thread-local variable's offset from the
 * thread pointer (local-exec code), which no shared object can carry, is
 * left empty and named in a .hotpatch.relocations record for apply. */
#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "build/build.h"
#include "arch/arch.h"
#include "hotpatch.h"

#define RECORDS_NAME ".rela.hotpatch.relocations"
/* The records' section name is the tail of their relocations' name. */
#define RECORDS_NAME_SKIP 5

/* A field of kept code for apply to fill (see build_plan.c's redirectable). */
struct field {
	size_t section;
	uint64_t offset;
	long alias;			/* index into plan aliases */
	int64_t addend;
	uint32_t type;
};

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
	size_t field_count;
	struct field *fields;
	size_t *section_symbol;		/* per section: new index of its section symbol */
	size_t names_index;		/* of .shstrtab */
	char *section_names;		/* .shstrtab with RECORDS_NAME added, when fields */
	size_t section_names_size;
	struct hotpatch_relocation *records;	/* per field */
	Elf64_Rela *record_relas;		/* per field: where its `place` points */
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

/* A relocation of kept code that is a thread-local field for apply. */
static bool is_field(const struct build_unit *unit, size_t section,
		     const struct build_reloc *reloc, struct build_target *meaning)
{
	build_object_target(&unit->fixed, reloc->symbol, reloc->addend, meaning);
	return unit->kept[section] && meaning->symbol >= 0 && unit->alias[meaning->symbol] >= 0 &&
	       relocation_kind(reloc->type) == HP_RELOCATION_TLS_STATIC_FIELD;
}

/* The thread-local fields of kept code, in section and offset order. */
static int collect_fields(struct rewrite *rewrite, struct hp_error *error)
{
	const struct build_unit *unit = rewrite->unit;
	const struct build_object *object = &unit->fixed;
	size_t count = 0;

	for (size_t pass = 0; pass < 2; pass++) {
		for (size_t i = 1; i < object->section_count; i++)
			for (size_t r = 0; r < object->sections[i].reloc_count; r++) {
				const struct build_reloc *reloc = &object->sections[i].relocs[r];
				struct build_target meaning;

				if (!is_field(unit, i, reloc, &meaning))
					continue;
				if (pass == 1)
					rewrite->fields[rewrite->field_count++] = (struct field){
						i, reloc->offset, unit->alias[meaning.symbol],
						meaning.offset, reloc->type
					};
				count++;
			}
		if (pass == 0 && count == 0)
			return HP_OK;
		if (pass == 0 && !(rewrite->fields = calloc(count, sizeof(*rewrite->fields))))
			return hp_fail(error, HP_FAILED, "out of memory rewriting %s", object->source);
	}
	return HP_OK;
}

/* Each section that holds a field gets a section symbol, its own or a new
 * one, for the records to point into. */
static void add_section_symbols(struct rewrite *rewrite, size_t *next)
{
	const struct build_object *object = &rewrite->unit->fixed;

	for (size_t f = 0; f < rewrite->field_count; f++) {
		size_t section = rewrite->fields[f].section;

		for (size_t i = 1; !rewrite->section_symbol[section] && i < object->symbol_count; i++)
			if (GELF_ST_TYPE(object->symbols[i].sym.st_info) == STT_SECTION &&
			    object->symbols[i].sym.st_shndx == section)
				rewrite->section_symbol[section] = rewrite->new_index[i];
		if (!rewrite->section_symbol[section]) {
			Elf64_Sym symbol = { 0 };

			symbol.st_info = GELF_ST_INFO(STB_LOCAL, STT_SECTION);
			symbol.st_shndx = (Elf64_Section)section;
			rewrite->section_symbol[section] = *next;
			rewrite->symbols[(*next)++] = symbol;
		}
	}
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
	rewrite->symbols = calloc(object->symbol_count + extra + rewrite->field_count,
				  sizeof(*rewrite->symbols));
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
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 1; i < object->symbol_count; i++) {
			if (stays_local(&converted[i]) != (pass == 0))
				continue;
			rewrite->new_index[i] = next;
			rewrite->symbols[next++] = converted[i];
		}
		if (pass == 0) {
			add_section_symbols(rewrite, &next);
			rewrite->first_global = next;
		}
	}
	free(converted);
	for (size_t i = 1; i < object->symbol_count; i++) {
		long alias = unit->alias[i];

		if (alias >= 0 && !rewrite->alias_index[alias]) {
			Elf64_Sym undefined = { 0 };
			bool thread_local = GELF_ST_TYPE(object->symbols[i].sym.st_info) == STT_TLS;

			undefined.st_name = (Elf64_Word)add_string(rewrite,
								    rewrite->plan->aliases[alias].alias);
			/* A thread-local variable's stays one: the link makes
			 * its initial-exec GOT entries for it. */
			undefined.st_info = GELF_ST_INFO(STB_WEAK, thread_local ? STT_TLS : STT_NOTYPE);
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

		entries[i].r_offset = reloc->offset;
		/* Filled by apply, as its record says. */
		if (is_field(unit, applies_to, reloc, &meaning)) {
			entries[i].r_info = ELF64_R_INFO(0, relocation_type(HP_RELOCATION_NONE));
			continue;
		}
		if (unit->kept[applies_to] && meaning.symbol >= 0 && unit->alias[meaning.symbol] >= 0) {
			symbol = rewrite->alias_index[unit->alias[meaning.symbol]];
			addend = meaning.offset;
		}
		entries[i].r_info = ELF64_R_INFO(symbol, reloc->type);
		entries[i].r_addend = addend;
	}
	return HP_OK;
}

/* One record per field, its `place` the field's address once linked (a
 * relocation against the field's section), and the section names the two
 * new sections need. */
static int prepare_records(struct rewrite *rewrite, struct hp_error *error)
{
	const struct build_object *object = &rewrite->unit->fixed;
	const Elf_Data *names;
	size_t count = rewrite->field_count;

	if (count == 0)
		return HP_OK;
	if (elf_getshdrstrndx(object->elf, &rewrite->names_index) != 0 ||
	    rewrite->names_index >= object->section_count ||
	    !(names = object->sections[rewrite->names_index].data) || !names->d_buf)
		return hp_fail(error, HP_FAILED, "cannot read the section names of %s",
			       object->source);
	rewrite->records = calloc(count, sizeof(*rewrite->records));
	rewrite->record_relas = calloc(count, sizeof(*rewrite->record_relas));
	rewrite->section_names = malloc(names->d_size + sizeof(RECORDS_NAME));
	if (!rewrite->records || !rewrite->record_relas || !rewrite->section_names)
		return hp_fail(error, HP_FAILED, "out of memory rewriting %s", object->source);
	memcpy(rewrite->section_names, names->d_buf, names->d_size);
	memcpy(rewrite->section_names + names->d_size, RECORDS_NAME, sizeof(RECORDS_NAME));
	rewrite->section_names_size = names->d_size + sizeof(RECORDS_NAME);
	for (size_t f = 0; f < count; f++) {
		const struct field *field = &rewrite->fields[f];
		struct hotpatch_relocation *record = &rewrite->records[f];

		record->abi_version = HOTPATCH_ABI_VERSION;
		record->record_size = sizeof(*record);
		record->addend = field->addend;
		record->type = field->type;
		hp_copy_string(record->alias, sizeof(record->alias),
			       rewrite->plan->aliases[field->alias].alias);
		rewrite->record_relas[f].r_offset = f * sizeof(*record) +
						    offsetof(struct hotpatch_relocation, place);
		rewrite->record_relas[f].r_info =
			ELF64_R_INFO(rewrite->section_symbol[field->section],
				     relocation_type(HP_RELOCATION_ABSOLUTE64));
		rewrite->record_relas[f].r_addend = (int64_t)field->offset;
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
	} else if (rewrite->section_names && index == rewrite->names_index) {
		fill_data(data, rewrite->section_names, rewrite->section_names_size, ELF_T_BYTE, 1);
		header.sh_size = rewrite->section_names_size;
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

static int add_section(Elf *out, const GElf_Shdr *header, void *bytes, Elf_Type type,
		       struct hp_error *error)
{
	Elf_Scn *scn = elf_newscn(out);
	Elf_Data *data = scn ? elf_newdata(scn) : NULL;

	if (!data)
		return hp_fail(error, HP_FAILED, "libelf: %s", elf_errmsg(-1));
	fill_data(data, bytes, header->sh_size, type, header->sh_addralign);
	if (!gelf_update_shdr(scn, (GElf_Shdr *)header))
		return hp_fail(error, HP_FAILED, "libelf: %s", elf_errmsg(-1));
	return HP_OK;
}

/* .hotpatch.relocations (kept by the link's --gc-sections, as the records
 * of <hotpatch.h> are) and its relocations, after every copied section. */
static int add_records(struct rewrite *rewrite, Elf *out, struct hp_error *error)
{
	const struct build_object *object = &rewrite->unit->fixed;
	size_t names = rewrite->section_names_size - sizeof(RECORDS_NAME);
	GElf_Shdr records = { 0 }, relas = { 0 };
	int status;

	records.sh_name = (Elf64_Word)(names + RECORDS_NAME_SKIP);
	records.sh_type = SHT_PROGBITS;
	records.sh_flags = SHF_ALLOC | SHF_WRITE | SHF_GNU_RETAIN;
	records.sh_size = rewrite->field_count * sizeof(*rewrite->records);
	records.sh_addralign = 8;
	relas.sh_name = (Elf64_Word)names;
	relas.sh_type = SHT_RELA;
	relas.sh_flags = SHF_INFO_LINK;
	relas.sh_size = rewrite->field_count * sizeof(Elf64_Rela);
	relas.sh_link = (Elf64_Word)object->symtab;
	relas.sh_info = (Elf64_Word)object->section_count;	/* the records' index */
	relas.sh_addralign = 8;
	relas.sh_entsize = sizeof(Elf64_Rela);
	status = add_section(out, &records, rewrite->records, ELF_T_BYTE, error);
	if (status == HP_OK)
		status = add_section(out, &relas, rewrite->record_relas, ELF_T_RELA, error);
	return status;
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
		/* The link keeps a section marked SHF_GNU_RETAIN (the records)
		 * only from an object of the GNU ABI, as the assembler marks one. */
		if (rewrite->field_count && header.e_ident[EI_OSABI] == ELFOSABI_NONE)
			header.e_ident[EI_OSABI] = ELFOSABI_GNU;
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
	if (status == HP_OK && rewrite->field_count)
		status = add_records(rewrite, out, error);
	if (status == HP_OK && elf_update(out, ELF_C_WRITE) < 0)
		status = hp_fail(error, HP_FAILED, "cannot write the rewritten %s: %s",
				 object->source, elf_errmsg(-1));
	if (out)
		elf_end(out);
	return status;
}

size_t build_rewrite_field_count(const struct build_plan *plan)
{
	size_t count = 0;

	for (size_t u = 0; u < plan->unit_count; u++) {
		const struct build_object *object = &plan->units[u].fixed;

		for (size_t i = 1; i < object->section_count; i++)
			for (size_t r = 0; r < object->sections[i].reloc_count; r++) {
				struct build_target meaning;

				count += is_field(&plan->units[u], i, &object->sections[i].relocs[r],
						  &meaning);
			}
	}
	return count;
}

int build_rewrite(const struct build_plan *plan, size_t unit, const char *path,
		  struct hp_error *error)
{
	struct rewrite rewrite = { .plan = plan, .unit = &plan->units[unit] };
	const struct build_object *object = &plan->units[unit].fixed;
	int fd = -1, status;

	rewrite.relas = calloc(object->section_count, sizeof(*rewrite.relas));
	rewrite.section_symbol = calloc(object->section_count, sizeof(*rewrite.section_symbol));
	status = rewrite.relas && rewrite.section_symbol
			 ? collect_fields(&rewrite, error)
			 : hp_fail(error, HP_FAILED, "out of memory rewriting %s", object->source);
	if (status == HP_OK)
		status = build_symbols(&rewrite, error);
	for (size_t i = 1; status == HP_OK && i < object->section_count; i++)
		if (object->sections[i].header.sh_type == SHT_RELA)
			status = build_relas(&rewrite, i, error);
	if (status == HP_OK)
		status = prepare_records(&rewrite, error);
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
	free(rewrite.fields);
	free(rewrite.section_symbol);
	free(rewrite.section_names);
	free(rewrite.records);
	free(rewrite.record_relas);
	return status;
}
