/* build_binary.c - the binary a running process uses, as `hotpatch build`
 * sees it: its build-id and every symbol with the source file it belongs to,
 * so that each reference the patch makes into it is checked with the rule
 * the apply side uses (elf_symbol_choose), before any process is touched. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "build/build.h"

int build_binary_open(struct build_binary *binary, const char *path, struct hp_error *error)
{
	struct trust_owners root;
	int fd, status;

	memset(binary, 0, sizeof(*binary));
	hp_copy_string(binary->path, sizeof(binary->path), path);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return hp_fail_errno(error, HP_USAGE, "cannot open the binary %s", path);
	status = elf_info_read_fd(fd, path, &binary->elf, error);
	close(fd);
	if (status == HP_OK && binary->elf.type != ET_EXEC && binary->elf.type != ET_DYN)
		status = hp_fail(error, HP_USAGE, "%s is not an executable or a shared library",
				 path);
	for (size_t i = 0; status == HP_OK && i < binary->elf.build_id_size; i++)
		snprintf(binary->build_id + 2 * i, sizeof(binary->build_id) - 2 * i, "%02x",
			 binary->elf.build_id[i]);
	trust_owners_root(&root);
	if (status == HP_OK)
		debug_file_take_symbols(&binary->elf, &root);
	binary->symbol_table = binary->elf.has_symtab;
	if (status == HP_USAGE || status == HP_MISFIT)
		hp_error_file(error, path);
	return status;
}

void build_binary_close(struct build_binary *binary)
{
	for (size_t i = 0; i < binary->source_count; i++)
		free(binary->sources[i]);
	free(binary->sources);
	elf_info_release(&binary->elf);
	memset(binary, 0, sizeof(*binary));
}

/* A static local of `file` whose number differs (count.0 for count.2). */
static const struct hp_symbol *find_by_base(const struct build_binary *binary, const char *file,
					    const char *name, size_t *count)
{
	const struct hp_symbol *found = NULL;
	char base[HP_TEXT_MAX], other[HP_TEXT_MAX];

	build_base_name(name, base, sizeof(base));
	*count = 0;
	if (strcmp(base, name) == 0)
		return NULL;
	for (size_t i = 0; i < binary->elf.symbol_count; i++) {
		const struct hp_symbol *s = &binary->elf.symbols[i];

		if (s->bind != STB_LOCAL ||
		    !elf_same_source_file(file, elf_symbol_file(&binary->elf, s)))
			continue;
		build_base_name(s->name, other, sizeof(other));
		if (strcmp(other, base) != 0 || strcmp(other, s->name) == 0)
			continue;
		if (!found || found->value != s->value)
			(*count)++;
		found = s;
	}
	return found;
}

const struct hp_symbol *build_binary_find(const struct build_binary *binary, const char *file,
					  const char *name, const char **why)
{
	const struct hp_symbol *found;
	size_t count = elf_symbol_choose(&binary->elf, name, file, false, &found);

	if (count == 0 && file[0])
		found = find_by_base(binary, file, name, &count);
	*why = count > 1 ? "several definitions have that name"
			 : "it is not in the binary's symbol table";
	return count == 1 ? found : NULL;
}

const struct hp_symbol *build_binary_find_global(const struct build_binary *binary,
						 const char *name, const char **why)
{
	const struct hp_symbol *found;
	size_t count = elf_symbol_choose(&binary->elf, name, NULL, false, &found);

	*why = count > 1 ? "several global definitions have that name"
			 : "the binary defines no global of that name";
	return count == 1 ? found : NULL;
}
