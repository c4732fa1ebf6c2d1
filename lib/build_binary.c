/* build_binary.c - the binary a running process uses, as `hotpatch build`
 * sees it: its build-id and every symbol with the source file it belongs to,
 * so that each reference the patch makes into it is checked with the rules
 * the apply side uses (base_refs.c), before any process is touched. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "build.h"

#define BINARY_SYMBOLS_MAX (8u << 20)

static const char *base_of(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? slash + 1 : path;
}

static int add_file(struct build_binary *binary, const char *name, struct hp_error *error)
{
	char **files = realloc(binary->files, (binary->file_count + 1) * sizeof(*files));

	if (!files)
		return hp_fail(error, HP_FAILED, "out of memory reading %s", binary->path);
	binary->files = files;
	files[binary->file_count] = strdup(name);
	if (!files[binary->file_count])
		return hp_fail(error, HP_FAILED, "out of memory reading %s", binary->path);
	binary->file_count++;
	return HP_OK;
}

static int add_symbols(struct build_binary *binary, Elf *elf, Elf_Scn *section,
		       const GElf_Shdr *header, struct hp_error *error)
{
	Elf_Data *data = elf_getdata(section, NULL);
	size_t count = header->sh_entsize ? header->sh_size / header->sh_entsize : 0;
	const char *file = "";
	int status = HP_OK;

	if (!data || count > BINARY_SYMBOLS_MAX)
		return hp_fail(error, HP_MISFIT, "%s has an unreadable symbol table", binary->path);
	binary->symbols = calloc(count ? count : 1, sizeof(*binary->symbols));
	if (!binary->symbols)
		return hp_fail(error, HP_FAILED, "out of memory reading %s", binary->path);
	for (size_t i = 1; status == HP_OK && i < count; i++) {
		struct build_binary_symbol *symbol = &binary->symbols[binary->count];
		GElf_Sym raw;
		const char *name;

		if (!gelf_getsym(data, (int)i, &raw))
			continue;
		name = elf_strptr(elf, header->sh_link, raw.st_name);
		if (!name || !*name)
			continue;
		if (GELF_ST_TYPE(raw.st_info) == STT_FILE) {
			status = add_file(binary, base_of(name), error);
			file = status == HP_OK ? binary->files[binary->file_count - 1] : "";
			continue;
		}
		if (raw.st_shndx == SHN_UNDEF || GELF_ST_TYPE(raw.st_info) == STT_SECTION)
			continue;
		symbol->name = strdup(name);
		if (!symbol->name)
			return hp_fail(error, HP_FAILED, "out of memory reading %s", binary->path);
		symbol->value = raw.st_value;
		symbol->size = raw.st_size;
		symbol->bind = GELF_ST_BIND(raw.st_info);
		symbol->type = GELF_ST_TYPE(raw.st_info);
		symbol->file = symbol->bind == STB_LOCAL ? file : "";
		binary->count++;
	}
	return status;
}

/* .symtab if there is one, else .dynsym (exports only). */
static int read_symbols(struct build_binary *binary, int fd, bool *full, struct hp_error *error)
{
	Elf *elf = elf_begin(fd, ELF_C_READ, NULL);
	Elf_Scn *section = NULL, *chosen = NULL;
	GElf_Shdr header, chosen_header;
	int status = HP_OK;

	while (elf && (section = elf_nextscn(elf, section)) != NULL) {
		if (!gelf_getshdr(section, &header))
			continue;
		if (header.sh_type == SHT_SYMTAB || (header.sh_type == SHT_DYNSYM && !chosen)) {
			chosen = section;
			chosen_header = header;
		}
	}
	*full = chosen && chosen_header.sh_type == SHT_SYMTAB;
	if (chosen)
		status = add_symbols(binary, elf, chosen, &chosen_header, error);
	if (elf)
		elf_end(elf);
	return status;
}

/* A stripped binary's symbols live in its debug file, found by build-id. */
static int read_debug_symbols(struct build_binary *binary, struct hp_error *error)
{
	char path[PATH_MAX];
	bool full = false;
	int fd, status;

	if (strlen(binary->build_id) < 3)
		return HP_OK;
	snprintf(path, sizeof(path), "/usr/lib/debug/.build-id/%.2s/%s.debug", binary->build_id,
		 binary->build_id + 2);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return HP_OK;
	for (size_t i = 0; i < binary->count; i++)
		free(binary->symbols[i].name);
	free(binary->symbols);
	binary->symbols = NULL;
	binary->count = 0;
	status = read_symbols(binary, fd, &full, error);
	binary->symbol_table = full;
	close(fd);
	return status;
}

int build_binary_open(struct build_binary *binary, const char *path, struct hp_error *error)
{
	struct hp_elf_info info = { 0 };
	bool full = false;
	int fd, status;

	memset(binary, 0, sizeof(*binary));
	hp_copy_string(binary->path, sizeof(binary->path), path);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return hp_fail_errno(error, HP_USAGE, "cannot open the binary %s", path);
	status = elf_info_read_fd(fd, path, &info, error);
	if (status == HP_OK && info.type != ET_EXEC && info.type != ET_DYN)
		status = hp_fail(error, HP_USAGE, "%s is not an executable or a shared library",
				 path);
	for (size_t i = 0; status == HP_OK && i < info.build_id_size; i++)
		snprintf(binary->build_id + 2 * i, sizeof(binary->build_id) - 2 * i, "%02x",
			 info.build_id[i]);
	if (status == HP_OK)
		status = read_symbols(binary, fd, &full, error);
	binary->symbol_table = full;
	if (status == HP_OK && !full)
		status = read_debug_symbols(binary, error);
	if (status == HP_USAGE || status == HP_MISFIT)
		hp_error_file(error, path);
	elf_info_release(&info);
	close(fd);
	return status;
}

void build_binary_close(struct build_binary *binary)
{
	for (size_t i = 0; i < binary->count; i++)
		free(binary->symbols[i].name);
	for (size_t i = 0; i < binary->file_count; i++)
		free(binary->files[i]);
	free(binary->symbols);
	free(binary->files);
	memset(binary, 0, sizeof(*binary));
}

static bool same_file(const char *a, const char *b)
{
	return strcmp(base_of(a), base_of(b)) == 0;
}

/* Locals of `file` called `name`, or with the same base name (count.0 for
 * count.2) when `by_base`. */
static const struct build_binary_symbol *find_local(const struct build_binary *binary,
						    const char *file, const char *name,
						    bool by_base, size_t *count)
{
	const struct build_binary_symbol *found = NULL;
	char base[HP_TEXT_MAX], other[HP_TEXT_MAX];

	build_base_name(name, base, sizeof(base));
	*count = 0;
	for (size_t i = 0; i < binary->count; i++) {
		const struct build_binary_symbol *s = &binary->symbols[i];

		if (s->bind != STB_LOCAL || !same_file(s->file, file))
			continue;
		if (by_base) {
			build_base_name(s->name, other, sizeof(other));
			if (strcmp(other, base) != 0 || strcmp(other, s->name) == 0)
				continue;
		} else if (strcmp(s->name, name) != 0) {
			continue;
		}
		found = s;
		(*count)++;
	}
	return found;
}

static const struct build_binary_symbol *find_any(const struct build_binary *binary,
						  const char *name, bool globals_only,
						  size_t *count)
{
	const struct build_binary_symbol *found = NULL;

	*count = 0;
	for (size_t i = 0; i < binary->count; i++)
		if (strcmp(binary->symbols[i].name, name) == 0 &&
		    (!globals_only || binary->symbols[i].bind != STB_LOCAL)) {
			found = &binary->symbols[i];
			(*count)++;
		}
	return found;
}

const struct build_binary_symbol *build_binary_find(const struct build_binary *binary,
						    const char *file, const char *name,
						    const char **why)
{
	const struct build_binary_symbol *found;
	char base[HP_TEXT_MAX];
	size_t count;

	*why = "it is not in the binary's symbol table";
	if (!file[0]) {
		found = find_any(binary, name, false, &count);
		if (count > 1)
			*why = "several definitions have that name";
		return count == 1 ? found : NULL;
	}
	found = find_local(binary, file, name, false, &count);
	if (count == 1)
		return found;
	build_base_name(name, base, sizeof(base));
	if (count == 0 && strcmp(base, name) != 0) {
		found = find_local(binary, file, name, true, &count);
		if (count == 1)
			return found;
	}
	found = find_any(binary, name, true, &count);
	if (count > 1)
		*why = "several definitions have that name";
	return count == 1 ? found : NULL;
}

const struct build_binary_symbol *build_binary_find_global(const struct build_binary *binary,
							   const char *name, const char **why)
{
	size_t count;
	const struct build_binary_symbol *found = find_any(binary, name, true, &count);

	*why = count > 1 ? "several global definitions have that name"
			 : "the binary defines no global of that name";
	return count == 1 ? found : NULL;
}
