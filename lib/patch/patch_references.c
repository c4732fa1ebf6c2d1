/* patch_references.c - what a patch needs from the target besides the
 * functions it replaces: the target's own variables and functions it uses
 * (HOTPATCH_SYMBOL records in .hotpatch.symbols) with every place of the
 * patch the dynamic linker leaves for them or that hotpatch build recorded
 * (.hotpatch.relocations), and the build-ids it was built for
 * (.hotpatch.build_id).  Like patch_file.c it parses untrusted bytes:
 * every record and relocation is bounds-checked, and a place is accepted
 * only inside a loaded segment of the patch. */
#include <gelf.h>
#include <libelf.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "hotpatch.h"
#include "patch/patch.h"
#include "arch/arch.h"
#include "common/base.h"

#define REFERENCES_MAX 100000u
#define PINS_MAX 1024u
#define SITES_MAX (4u << 20)

static bool terminated(const char *text, size_t size)
{
	return memchr(text, '\0', size) != NULL;
}

/* A table of fixed-size records in its own section, or none. */
static int record_table(Elf *elf, const char *name, size_t record_size, size_t limit,
			const struct hp_patch_file *patch, const unsigned char **records,
			size_t *count, struct hp_error *error)
{
	GElf_Shdr header;
	Elf_Scn *section = patch_find_section(elf, name, &header);
	Elf_Data *data = section ? elf_rawdata(section, NULL) : NULL;

	*records = NULL;
	*count = 0;
	if (!section)
		return HP_OK;
	if (!data || header.sh_type != SHT_PROGBITS || !data->d_buf ||
	    data->d_size != header.sh_size || data->d_size % record_size != 0)
		return hp_fail(error, HP_MISFIT, "patch %s has a damaged %s table", patch->path,
			       name);
	if (data->d_size / record_size > limit)
		return hp_fail(error, HP_MISFIT, "patch %s has more than %zu records in %s",
			       patch->path, limit, name);
	*records = data->d_buf;
	*count = data->d_size / record_size;
	return HP_OK;
}

static bool valid_build_id(const char *hex)
{
	size_t length = strlen(hex);

	if (length < 2 || length % 2 != 0)
		return false;
	for (size_t i = 0; i < length; i++)
		if (!((hex[i] >= '0' && hex[i] <= '9') || (hex[i] >= 'a' && hex[i] <= 'f')))
			return false;
	return true;
}

static int read_pins(Elf *elf, struct hp_patch_file *patch, struct hp_error *error)
{
	const size_t record_size = sizeof(struct hotpatch_build_id);
	const unsigned char *records;
	size_t count;
	int status = record_table(elf, ".hotpatch.build_id", record_size, PINS_MAX, patch,
				  &records, &count, error);

	if (status != HP_OK || count == 0)
		return status;
	patch->pins = calloc(count, sizeof(*patch->pins));
	if (!patch->pins)
		return hp_fail(error, HP_FAILED, "out of memory reading %s", patch->path);
	for (size_t i = 0; i < count; i++) {
		struct hotpatch_build_id record;

		memcpy(&record, records + i * record_size, record_size);
		if (record.abi_version != HOTPATCH_ABI_VERSION || record.record_size != record_size ||
		    !terminated(record.object, sizeof(record.object)) ||
		    !terminated(record.build_id, sizeof(record.build_id)) ||
		    !valid_build_id(record.build_id))
			return hp_fail(error, HP_MISFIT,
				       "patch %s has a damaged build-id record (lower-case hex "
				       "expected)", patch->path);
		hp_copy_string(patch->pins[i].object, sizeof(patch->pins[i].object), record.object);
		hp_copy_string(patch->pins[i].build_id, sizeof(patch->pins[i].build_id),
			       record.build_id);
		patch->pin_count++;
	}
	return HP_OK;
}

static int compare_aliases(const void *a, const void *b)
{
	return strcmp(((const struct hp_patch_reference *)a)->alias,
		      ((const struct hp_patch_reference *)b)->alias);
}

static int read_reference_records(Elf *elf, struct hp_patch_file *patch, struct hp_error *error)
{
	const size_t record_size = sizeof(struct hotpatch_symbol);
	const unsigned char *records;
	size_t count;
	int status = record_table(elf, ".hotpatch.symbols", record_size, REFERENCES_MAX, patch,
				  &records, &count, error);

	if (status != HP_OK || count == 0)
		return status;
	patch->references = calloc(count, sizeof(*patch->references));
	if (!patch->references)
		return hp_fail(error, HP_FAILED, "out of memory reading %s", patch->path);
	for (size_t i = 0; i < count; i++) {
		struct hp_patch_reference *reference = &patch->references[i];
		struct hotpatch_symbol record;

		memcpy(&record, records + i * record_size, record_size);
		if (record.abi_version != HOTPATCH_ABI_VERSION || record.record_size != record_size ||
		    !terminated(record.object, sizeof(record.object)) ||
		    !terminated(record.file, sizeof(record.file)) ||
		    !terminated(record.symbol, sizeof(record.symbol)) ||
		    !terminated(record.alias, sizeof(record.alias)) || !record.symbol[0])
			return hp_fail(error, HP_MISFIT, "patch %s has a damaged symbol record",
				       patch->path);
		hp_copy_string(reference->object, sizeof(reference->object), record.object);
		hp_copy_string(reference->file, sizeof(reference->file), record.file);
		hp_copy_string(reference->symbol, sizeof(reference->symbol), record.symbol);
		hp_copy_string(reference->alias, sizeof(reference->alias),
			       record.alias[0] ? record.alias : record.symbol);
		patch->reference_count++;
	}
	qsort(patch->references, count, sizeof(*patch->references), compare_aliases);
	for (size_t i = 1; i < count; i++)
		if (strcmp(patch->references[i - 1].alias, patch->references[i].alias) == 0)
			return hp_fail(error, HP_MISFIT, "patch %s declares %s twice", patch->path,
				       patch->references[i].alias);
	return HP_OK;
}

static int add_site(struct hp_patch_reference *reference, uint64_t vaddr, int64_t addend,
		    unsigned type, size_t *total, struct hp_error *error)
{
	struct hp_reference_site *larger;

	if (++*total > SITES_MAX)
		return hp_fail(error, HP_MISFIT, "the patch has more than %u references",
			       SITES_MAX);
	larger = realloc(reference->sites, (reference->site_count + 1) * sizeof(*larger));
	if (!larger)
		return hp_fail(error, HP_FAILED, "out of memory reading the patch");
	reference->sites = larger;
	reference->sites[reference->site_count++] = (struct hp_reference_site){ vaddr, addend, type };
	return HP_OK;
}

/* Addresses, and the three words of thread-local references: a module id
 * and an offset for __tls_get_addr (the general-dynamic model of -fPIC), an
 * offset from the thread pointer (initial-exec). */
static bool fillable_type(unsigned type)
{
	switch (relocation_kind(type)) {
	case HP_RELOCATION_ABSOLUTE64:
	case HP_RELOCATION_GLOBAL_DATA:
	case HP_RELOCATION_JUMP_SLOT:
	case HP_RELOCATION_TLS_MODULE:
	case HP_RELOCATION_TLS_OFFSET:
	case HP_RELOCATION_TLS_STATIC:
		return true;
	default:
		return false;
	}
}

static bool has_addend(unsigned type)
{
	enum hp_relocation_kind kind = relocation_kind(type);

	return kind == HP_RELOCATION_ABSOLUTE64 || kind == HP_RELOCATION_TLS_OFFSET ||
	       kind == HP_RELOCATION_TLS_STATIC;
}

/* One dynamic relocation: a place for a declared symbol, or not ours. */
static int note_relocation(Elf *elf, const GElf_Rela *rela, const GElf_Sym *symbol,
			   const char *name, struct hp_patch_file *patch, size_t *total,
			   struct hp_error *error)
{
	struct hp_patch_reference key, *reference;
	unsigned type = (unsigned)GELF_R_TYPE(rela->r_info);
	const char *why = NULL;

	hp_copy_string(key.alias, sizeof(key.alias), name);
	reference = bsearch(&key, patch->references, patch->reference_count,
			    sizeof(*patch->references), compare_aliases);
	if (!reference)
		return HP_OK;
	if (symbol->st_shndx != SHN_UNDEF)
		why = "defines it itself and also declares it as the target's";
	else if (!fillable_type(type))
		why = "uses it through a relocation hotpatch cannot fill (build with -fPIC, "
		      "and for a thread-local variable without -mtls-dialect=gnu2)";
	else if (!patch_in_segment(elf, rela->r_offset, 8, false))
		why = "has a reference to it outside its image";
	if (why) {
		hp_error_function(error, reference->symbol);
		return hp_fail(error, HP_MISFIT, "patch %s cannot use %s: the patch %s",
			       patch->path, name, why);
	}
	return add_site(reference, rela->r_offset, has_addend(type) ? rela->r_addend : 0, type,
			total, error);
}

static int scan_relocations(Elf *elf, Elf_Scn *section, const GElf_Shdr *header,
			    struct hp_patch_file *patch, size_t *total, struct hp_error *error)
{
	Elf_Scn *symbols = elf_getscn(elf, header->sh_link);
	Elf_Data *data = elf_getdata(section, NULL);
	Elf_Data *symbol_data = symbols ? elf_getdata(symbols, NULL) : NULL;
	GElf_Shdr symbols_header;
	size_t count = header->sh_size / header->sh_entsize;
	int status = HP_OK;

	if (!data || !symbol_data || !gelf_getshdr(symbols, &symbols_header) ||
	    symbols_header.sh_type != SHT_DYNSYM)
		return HP_OK;
	for (size_t i = 0; status == HP_OK && i < count; i++) {
		GElf_Rela rela;
		GElf_Sym symbol;
		const char *name;

		if (!gelf_getrela(data, (int)i, &rela) || GELF_R_SYM(rela.r_info) == 0 ||
		    !gelf_getsym(symbol_data, (int)GELF_R_SYM(rela.r_info), &symbol))
			continue;
		name = elf_strptr(elf, symbols_header.sh_link, symbol.st_name);
		if (name)
			status = note_relocation(elf, &rela, &symbol, name, patch, total, error);
	}
	return status;
}

static int read_sites(Elf *elf, struct hp_patch_file *patch, struct hp_error *error)
{
	Elf_Scn *section = NULL;
	size_t total = 0;
	int status = HP_OK;

	while (status == HP_OK && (section = elf_nextscn(elf, section)) != NULL) {
		GElf_Shdr header;

		if (gelf_getshdr(section, &header) && header.sh_type == SHT_RELA &&
		    header.sh_entsize == sizeof(Elf64_Rela))
			status = scan_relocations(elf, section, &header, patch, &total, error);
	}
	return status;
}

/* One relocation record (hotpatch build's, for a field of the patch's code
 * that no shared object can carry): a site of the reference its alias
 * names, of a type this hotpatch fills, inside the patch's code. */
static int read_relocation(Elf *elf, const struct hotpatch_relocation *record, uint64_t vaddr,
			   struct hp_patch_file *patch, size_t *total, struct hp_error *error)
{
	struct hp_patch_reference key, *reference;
	uint64_t place = 0;
	size_t size = relocation_field_size(record->type);

	if (record->abi_version != HOTPATCH_ABI_VERSION || record->record_size != sizeof(*record) ||
	    record->reserved != 0 || !terminated(record->alias, sizeof(record->alias)))
		return hp_fail(error, HP_MISFIT, "patch %s has a damaged relocation record",
			       patch->path);
	hp_copy_string(key.alias, sizeof(key.alias), record->alias);
	/* bsearch wants a table, even an empty one. */
	reference = patch->reference_count ? bsearch(&key, patch->references,
						     patch->reference_count,
						     sizeof(*patch->references), compare_aliases)
					   : NULL;
	if (!reference)
		return hp_fail(error, HP_MISFIT, "patch %s has a relocation for %s, which it does "
						 "not declare", patch->path, record->alias);
	if (relocation_kind(record->type) != HP_RELOCATION_TLS_STATIC_FIELD || size == 0) {
		hp_error_function(error, reference->symbol);
		return hp_fail(error, HP_MISFIT, "patch %s uses %s through a relocation of type %u, "
						 "which this hotpatch cannot apply",
			       patch->path, reference->symbol, record->type);
	}
	if (!patch_relocated_value(elf, vaddr + offsetof(struct hotpatch_relocation, place),
				   &place) ||
	    !patch_in_segment(elf, place, size, true)) {
		hp_error_function(error, reference->symbol);
		return hp_fail(error, HP_MISFIT, "patch %s has a relocation for %s outside its code",
			       patch->path, reference->symbol);
	}
	return add_site(reference, place, record->addend, record->type, total, error);
}

static int read_relocations(Elf *elf, struct hp_patch_file *patch, struct hp_error *error)
{
	const size_t record_size = sizeof(struct hotpatch_relocation);
	const unsigned char *records;
	size_t count, total = 0;
	GElf_Shdr header;
	int status = record_table(elf, ".hotpatch.relocations", record_size, SITES_MAX, patch,
				  &records, &count, error);

	if (status != HP_OK || count == 0)
		return status;
	for (size_t i = 0; i < patch->reference_count; i++)
		total += patch->references[i].site_count;
	if (!patch_find_section(elf, ".hotpatch.relocations", &header) ||
	    !(header.sh_flags & SHF_ALLOC))
		return hp_fail(error, HP_MISFIT, "patch %s has a damaged .hotpatch.relocations table",
			       patch->path);
	for (size_t i = 0; status == HP_OK && i < count; i++) {
		struct hotpatch_relocation record;

		memcpy(&record, records + i * record_size, record_size);
		status = read_relocation(elf, &record, header.sh_addr + i * record_size, patch,
					 &total, error);
	}
	return status;
}

int patch_references_read(Elf *elf, struct hp_patch_file *patch, struct hp_error *error)
{
	int status = read_pins(elf, patch, error);

	if (status == HP_OK)
		status = read_reference_records(elf, patch, error);
	if (status == HP_OK && patch->reference_count > 0)
		status = read_sites(elf, patch, error);
	if (status == HP_OK)
		status = read_relocations(elf, patch, error);
	return status;
}

void patch_references_release(struct hp_patch_file *patch)
{
	for (size_t i = 0; i < patch->reference_count; i++)
		free(patch->references[i].sites);
	free(patch->references);
	free(patch->pins);
	patch->references = NULL;
	patch->pins = NULL;
	patch->reference_count = patch->pin_count = 0;
}
