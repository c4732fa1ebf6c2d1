/* build_commands.c - a compilation database (compile_commands.json, as CMake,
 * bear and compiledb write it) for `hotpatch build`: each source compiled
 * with its own command, in its own directory, mapped into a tree copy.  It
 * reads the database and makes argv vectors; it runs nothing (build_run.c
 * does) and never hands a command to a shell. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <wordexp.h>

#include "build/build.h"

/* Large projects write databases of tens of megabytes; anything beyond
 * these bounds is not a database a build of one program needs. */
#define COMMANDS_FILE_MAX (256u << 20)
#define COMMANDS_ENTRIES_MAX 200000u
#define COMMAND_WORDS_MAX 4096u

static int read_bounded(const char *path, char **text, size_t *length, struct hp_error *error)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), result = HP_OK;
	struct stat status;
	size_t used = 0;

	*text = NULL;
	if (fd < 0 || fstat(fd, &status) != 0)
		result =
		    hp_fail_errno(error, HP_USAGE, "cannot read the compilation database %s", path);
	else if (!S_ISREG(status.st_mode) || (uint64_t)status.st_size > COMMANDS_FILE_MAX)
		result = hp_fail(error, HP_USAGE,
				 "the compilation database %s is not a file of at most %u MiB",
				 path, COMMANDS_FILE_MAX >> 20);
	/* One byte more than the size: a file that grew is seen to have. */
	else if (!(*text = malloc((size_t)status.st_size + 1)))
		result = hp_fail(error, HP_FAILED, "out of memory reading %s", path);
	while (result == HP_OK && used <= (size_t)status.st_size) {
		ssize_t got = read(fd, *text + used, (size_t)status.st_size + 1 - used);

		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			result = hp_fail_errno(error, HP_USAGE,
					       "cannot read the compilation database %s", path);
		if (got <= 0)
			break;
		used += (size_t)got;
	}
	if (result == HP_OK && used != (size_t)status.st_size)
		result = hp_fail(error, HP_USAGE, "the compilation database %s changed while read",
				 path);
	if (result != HP_OK) {
		free(*text);
		*text = NULL;
	}
	*length = used;
	if (fd >= 0)
		close(fd);
	return result;
}

/* `path` (absolute, resolved) relative to the root, or NULL outside it. */
static const char *inside(const struct build_commands *commands, const char *path)
{
	size_t length = strlen(commands->root);

	if (strncmp(path, commands->root, length) != 0)
		return NULL;
	if (path[length] == '\0')
		return path + length;
	return path[length] == '/' ? path + length + 1 : NULL;
}

static int add_word(struct build_command *entry, const char *word, struct hp_error *error)
{
	char **words;

	if (entry->word_count == COMMAND_WORDS_MAX)
		return hp_fail(error, HP_USAGE, "a command has more than %u words",
			       COMMAND_WORDS_MAX);
	words = realloc(entry->words, (entry->word_count + 1) * sizeof(*words));
	if (!words)
		return hp_fail(error, HP_FAILED, "out of memory reading the compilation database");
	entry->words = words;
	if (!(words[entry->word_count] = strdup(word)))
		return hp_fail(error, HP_FAILED, "out of memory reading the compilation database");
	entry->word_count++;
	return HP_OK;
}

/* A "command" string is split as the shell would split it, but nothing in
 * it is run: $(...) and `...` are refused, as are undefined variables. */
static int split_command(struct build_command *entry, const char *command, struct hp_error *error)
{
	wordexp_t words;
	int status = wordexp(command, &words, WRDE_NOCMD | WRDE_UNDEF);

	if (status != 0) {
		if (status != WRDE_NOSPACE)
			return hp_fail(error, HP_USAGE,
				       "the command of %s is not plain shell words "
				       "(command substitution, an undefined variable or "
				       "a special character)",
				       entry->file_text);
		wordfree(&words);
		return hp_fail(error, HP_FAILED, "out of memory reading the compilation database");
	}
	status = HP_OK;
	for (size_t i = 0; status == HP_OK && i < words.we_wordc; i++)
		status = add_word(entry, words.we_wordv[i], error);
	wordfree(&words);
	return status;
}

static const char *text_of(json_t *object, const char *key)
{
	json_t *value = json_object_get(object, key);

	return json_is_string(value) ? json_string_value(value) : NULL;
}

/* The joined words, for checks of flags (build_plan.c's -fno-ipa-ra). */
static int join_words(struct build_command *entry, struct hp_error *error)
{
	size_t length = 1;

	for (size_t i = 0; i < entry->word_count; i++)
		length += strlen(entry->words[i]) + 1;
	entry->text = malloc(length);
	if (!entry->text)
		return hp_fail(error, HP_FAILED, "out of memory reading the compilation database");
	entry->text[0] = '\0';
	for (size_t i = 0; i < entry->word_count; i++) {
		if (i > 0)
			strcat(entry->text, " ");
		strcat(entry->text, entry->words[i]);
	}
	return HP_OK;
}

/* Reads one entry; one whose file is not in the tree (or does not exist)
 * is kept without a source and never used. */
static int read_entry(struct build_commands *commands, struct build_command *entry, json_t *item,
		      size_t number, struct hp_error *error)
{
	const char *directory = text_of(item, "directory"), *file = text_of(item, "file");
	const char *command = text_of(item, "command");
	json_t *arguments = json_object_get(item, "arguments");
	char joined[2 * PATH_MAX], resolved[PATH_MAX];
	const char *relative;
	int status = HP_OK;

	if (!json_is_object(item) || !directory || !file || (!command && !json_is_array(arguments)))
		return hp_fail(error, HP_USAGE,
			       "entry %zu of %s has no directory, file and command or arguments",
			       number, commands->path);
	if (directory[0] != '/')
		return hp_fail(error, HP_USAGE, "entry %zu of %s: the directory %s is not absolute",
			       number, commands->path, directory);
	if (!(entry->file_text = strdup(file)) || !(entry->directory_text = strdup(directory)))
		return hp_fail(error, HP_FAILED, "out of memory reading the compilation database");
	if (json_is_array(arguments)) {
		size_t i;
		json_t *word;

		json_array_foreach (arguments, i, word) {
			if (!json_is_string(word))
				return hp_fail(error, HP_USAGE,
					       "entry %zu of %s: an argument is not a string",
					       number, commands->path);
			if ((status = add_word(entry, json_string_value(word), error)) != HP_OK)
				return status;
		}
	} else if ((status = split_command(entry, command, error)) != HP_OK) {
		return status;
	}
	if (entry->word_count == 0)
		return hp_fail(error, HP_USAGE, "entry %zu of %s has an empty command", number,
			       commands->path);
	if ((status = join_words(entry, error)) != HP_OK)
		return status;
	snprintf(joined, sizeof(joined), "%s/%s", directory, file);
	if (!realpath(file[0] == '/' ? file : joined, resolved) ||
	    !(relative = inside(commands, resolved)) || !*relative)
		return HP_OK;
	if (!(entry->source = strdup(relative)))
		return hp_fail(error, HP_FAILED, "out of memory reading the compilation database");
	/* A directory outside the tree cannot be mapped into the copies. */
	if (realpath(directory, resolved) && (relative = inside(commands, resolved)) &&
	    !(entry->directory = strdup(relative)))
		return hp_fail(error, HP_FAILED, "out of memory reading the compilation database");
	return HP_OK;
}

/* The entry's file as it wrote it: joined to its directory when relative. */
static void entry_path(const struct build_command *entry, char *path, size_t size)
{
	if (entry->file_text[0] == '/')
		hp_copy_string(path, size, entry->file_text);
	else
		snprintf(path, size, "%s/%s", entry->directory_text, entry->file_text);
}

/* Where the tree was when the database was written, for a `path` outside
 * it that names a file the tree has at the same place below its top:
 * /build/nginx-1.22.1 for /build/nginx-1.22.1/src/core/nginx.c when
 * ROOT/src/core/nginx.c exists (the longest such tail).  "" when none. */
static void old_root(const struct build_commands *commands, const char *path, char *old,
		     size_t size)
{
	char candidate[2 * PATH_MAX];

	old[0] = '\0';
	for (const char *slash = strchr(path, '/'); slash; slash = strchr(slash + 1, '/')) {
		if (!slash[1] || slash == path)
			continue;
		snprintf(candidate, sizeof(candidate), "%s/%s", commands->root, slash + 1);
		if (access(candidate, F_OK) != 0)
			continue;
		snprintf(old, size, "%.*s", (int)(slash - path), path);
		return;
	}
}

/* A tree copied or moved since its build keeps the old paths in the
 * database: the hint says how to rewrite them. */
static void hint_moved(const struct build_commands *commands, const char *old,
		       struct hp_error *error)
{
	if (old[0])
		hp_hint(error, "if the tree was moved or copied since the build, rewrite the "
			       "database's paths: sed 's#%s#%s#g' %s >moved.json",
			old, commands->root, commands->path);
	else
		hp_hint(error, "make the database from the build of the binary in --source "
			       "(bear -- make, cmake -DCMAKE_EXPORT_COMPILE_COMMANDS=ON)");
}

/* A database none of whose files is in the tree describes another tree
 * (or this one before it moved): said once, before anything compiles. */
static int check_some_inside(const struct build_commands *commands, struct hp_error *error)
{
	char path[2 * PATH_MAX], old[2 * PATH_MAX];

	if (commands->count == 0)
		return HP_OK;
	for (size_t i = 0; i < commands->count; i++)
		if (commands->entries[i].source)
			return HP_OK;
	entry_path(&commands->entries[0], path, sizeof(path));
	old_root(commands, path, old, sizeof(old));
	hp_error_file(error, commands->path);
	hint_moved(commands, old, error);
	return hp_fail(error, HP_MISFIT,
		       "no entry of %s is a file in --source %s: its first names %s, outside it",
		       commands->path, commands->root, path);
}

int build_commands_load(struct build_commands *commands, const char *path, const char *source,
			struct hp_error *error)
{
	json_error_t parse_error;
	json_t *root = NULL, *item;
	size_t length = 0, index;
	char *text;
	int status = HP_OK;

	hp_copy_string(commands->path, sizeof(commands->path), path);
	if (!realpath(source, commands->root))
		return hp_fail_errno(error, HP_USAGE, "cannot read the source tree %s", source);
	if ((status = read_bounded(path, &text, &length, error)) != HP_OK)
		return status;
	root = json_loadb(text, length, JSON_REJECT_DUPLICATES, &parse_error);
	free(text);
	if (!json_is_array(root)) {
		hp_error_file(error, path);
		if (root)
			status = hp_fail(error, HP_USAGE,
					 "%s is no compilation database (a JSON array of entries)",
					 path);
		else
			status =
			    hp_fail(error, HP_USAGE, "%s is no compilation database: %s (line %d)",
				    path, parse_error.text, parse_error.line);
		json_decref(root);
		return status;
	}
	if (json_array_size(root) > COMMANDS_ENTRIES_MAX)
		status = hp_fail(error, HP_USAGE, "%s has more than %u entries", path,
				 COMMANDS_ENTRIES_MAX);
	if (status == HP_OK && json_array_size(root) > 0 &&
	    !(commands->entries = calloc(json_array_size(root), sizeof(*commands->entries))))
		status = hp_fail(error, HP_FAILED, "out of memory reading %s", path);
	json_array_foreach (root, index, item) {
		if (status != HP_OK)
			break;
		commands->count++;
		status = read_entry(commands, &commands->entries[index], item, index + 1, error);
	}
	json_decref(root);
	if (status != HP_OK)
		hp_error_file(error, path);
	if (status == HP_OK)
		status = check_some_inside(commands, error);
	return status;
}

void build_commands_release(struct build_commands *commands)
{
	for (size_t i = 0; i < commands->count; i++) {
		struct build_command *entry = &commands->entries[i];

		for (size_t w = 0; w < entry->word_count; w++)
			free(entry->words[w]);
		free(entry->words);
		free(entry->text);
		free(entry->file_text);
		free(entry->directory_text);
		free(entry->source);
		free(entry->directory);
	}
	free(commands->entries);
	commands->entries = NULL;
	commands->count = 0;
}

/* The first entry of a source wins: a file compiled twice (for a static
 * and a shared library, say) is compiled as its first entry says, and
 * build_match.c refuses it if that is not how the binary has it. */
static bool entry_for(const struct build_command *entry, const char *relative)
{
	return entry->source && strcmp(entry->source, relative) == 0;
}

const struct build_command *build_commands_find(const struct build_commands *commands,
						const char *relative)
{
	for (size_t i = 0; i < commands->count; i++)
		if (entry_for(&commands->entries[i], relative) && !commands->entries[i].rejected)
			return &commands->entries[i];
	return NULL;
}

size_t build_commands_count(const struct build_commands *commands, const char *relative)
{
	size_t count = 0;

	for (size_t i = 0; i < commands->count; i++)
		count += entry_for(&commands->entries[i], relative);
	return count;
}

void build_commands_reject(struct build_commands *commands, const char *relative)
{
	for (size_t i = 0; i < commands->count; i++)
		if (entry_for(&commands->entries[i], relative) && !commands->entries[i].rejected) {
			commands->entries[i].rejected = true;
			return;
		}
}

static int push(struct build_invocation *run, const char *word, struct hp_error *error)
{
	char **argv = realloc(run->argv, (run->count + 2) * sizeof(*argv));

	if (!argv)
		return hp_fail(error, HP_FAILED, "out of memory making a compile command");
	run->argv = argv;
	if (!(argv[run->count] = strdup(word)))
		return hp_fail(error, HP_FAILED, "out of memory making a compile command");
	argv[++run->count] = NULL;
	return HP_OK;
}

/* The original tree's path in an argument (-I/src/include, /src/config.h)
 * becomes the copy's, so the fixed copy compiles with its own headers. */
static int push_moved(struct build_invocation *run, const struct build_commands *commands,
		      const char *word, const char *copy_root, struct hp_error *error)
{
	static const char *const prefixes[] = {"",	     "-I",	 "-isystem", "-iquote",
					       "-idirafter", "-include", "-imacros"};
	size_t root_length = strlen(commands->root);

	for (size_t i = HP_ARRAY_SIZE(prefixes); i-- > 0;) {
		size_t length = strlen(prefixes[i]);
		const char *rest = word + length + root_length;
		char moved[3 * PATH_MAX];

		if (strncmp(word, prefixes[i], length) != 0 ||
		    strncmp(word + length, commands->root, root_length) != 0 ||
		    (*rest != '/' && *rest != '\0'))
			continue;
		if ((size_t)snprintf(moved, sizeof(moved), "%s%s%s", prefixes[i], copy_root,
				     rest) >= sizeof(moved))
			return hp_fail(error, HP_USAGE, "the argument %s is too long", word);
		return push(run, moved, error);
	}
	return push(run, word, error);
}

/* Whether `word` names the entry's source file: as written, or as a path
 * (relative to the entry's directory) to the same file. */
/* -MF, -MT and -MQ take the next word. */
static bool is_dependency_option_with_argument(const char *word)
{
	return strcmp(word, "-MF") == 0 || strcmp(word, "-MT") == 0 || strcmp(word, "-MQ") == 0;
}

static bool is_source(const struct build_command *entry, const char *word, const char *source_path)
{
	char joined[2 * PATH_MAX], resolved[PATH_MAX];

	if (strcmp(word, entry->file_text) == 0)
		return true;
	if (word[0] == '-')
		return false;
	snprintf(joined, sizeof(joined), "%s/%s", entry->directory_text, word);
	return realpath(word[0] == '/' ? word : joined, resolved) &&
	       strcmp(resolved, source_path) == 0;
}

/* No entry for `relative`: perhaps one names it where the tree was built
 * (a copy of the tree whose database still points at the original). */
static int refuse_missing(const struct build_commands *commands, const char *relative,
			  struct hp_error *error)
{
	char path[2 * PATH_MAX], old[2 * PATH_MAX];

	hp_error_file(error, relative);
	for (size_t i = 0; i < commands->count; i++) {
		const struct build_command *entry = &commands->entries[i];
		size_t length, tail = strlen(relative);

		if (entry->source)
			continue;
		entry_path(entry, path, sizeof(path));
		length = strlen(path);
		if (length <= tail || path[length - tail - 1] != '/' ||
		    strcmp(path + length - tail, relative) != 0)
			continue;
		old_root(commands, path, old, sizeof(old));
		hint_moved(commands, old, error);
		return hp_fail(error, HP_MISFIT,
			       "the entry in %s for %s names %s, outside --source %s", commands->path,
			       relative, path, commands->root);
	}
	hp_hint(error, "make the database from the build of the binary (bear -- make, "
		       "cmake -DCMAKE_EXPORT_COMPILE_COMMANDS=ON)");
	return hp_fail(error, HP_MISFIT, "no entry in %s for %s", commands->path, relative);
}

int build_commands_invocation(const struct build_commands *commands, const char *relative,
			      const char *copy_root, const char *extra, const char *object,
			      struct build_invocation *run, struct hp_error *error)
{
	const struct build_command *entry = build_commands_find(commands, relative);
	char source_path[PATH_MAX + 8], argument[3 * PATH_MAX], flags[512];
	int status = HP_OK;

	if (!entry)
		return refuse_missing(commands, relative, error);
	if (!entry->directory) {
		hp_error_file(error, relative);
		hp_hint(error, "build in a directory inside --source");
		return hp_fail(error, HP_MISFIT,
			       "the entry in %s for %s compiles in %s, outside "
			       "the source tree",
			       commands->path, relative, entry->directory_text);
	}
	if ((size_t)snprintf(run->directory, sizeof(run->directory), "%s%s%s", copy_root,
			     entry->directory[0] ? "/" : "",
			     entry->directory) >= sizeof(run->directory))
		return hp_fail(error, HP_USAGE, "the directory of %s is too long", relative);
	snprintf(source_path, sizeof(source_path), "%s/%s", commands->root, relative);
	for (size_t i = 0; status == HP_OK && i < entry->word_count; i++) {
		const char *word = entry->words[i];

		/* What we set ourselves: the output, compile only, the source.
		 * Dependency files (-MD, -MF FILE, ...) would be written where
		 * the original build keeps them, in the operator's tree. */
		if (i > 0 && (strcmp(word, "-o") == 0 || is_dependency_option_with_argument(word))) {
			i++;
			continue;
		}
		if (i > 0 && (strncmp(word, "-o", 2) == 0 || strcmp(word, "-c") == 0 ||
			      strncmp(word, "-M", 2) == 0 || strncmp(word, "-Wp,-M", 6) == 0 ||
			      is_source(entry, word, source_path)))
			continue;
		status = push_moved(run, commands, word, copy_root, error);
	}
	/* Our flags are plain words, separated by spaces. */
	hp_copy_string(flags, sizeof(flags), extra ? extra : "");
	for (char *save = NULL, *flag = strtok_r(flags, " ", &save); status == HP_OK && flag;
	     flag = strtok_r(NULL, " ", &save))
		status = push(run, flag, error);
	/* An absolute source path as the original build wrote it: __FILE__
	 * must read the same in both copies (and as in the binary). */
	if (status == HP_OK && entry->file_text[0] == '/') {
		size_t length = strlen(entry->file_text), tail = strlen(relative);

		if (length > tail + 1 && strcmp(entry->file_text + length - tail, relative) == 0 &&
		    entry->file_text[length - tail - 1] == '/') {
			snprintf(argument, sizeof(argument), "-fmacro-prefix-map=%s=%.*s",
				 copy_root, (int)(length - tail - 1), entry->file_text);
			status = push(run, argument, error);
		}
		snprintf(argument, sizeof(argument), "%s/%s", copy_root, relative);
	} else {
		hp_copy_string(argument, sizeof(argument), entry->file_text);
	}
	if (status == HP_OK)
		status = push(run, "-c", error);
	if (status == HP_OK)
		status = push(run, argument, error);
	if (status == HP_OK)
		status = push(run, "-o", error);
	if (status == HP_OK)
		status = push(run, object, error);
	return status;
}

void build_invocation_release(struct build_invocation *run)
{
	for (size_t i = 0; i < run->count; i++)
		free(run->argv[i]);
	free(run->argv);
	run->argv = NULL;
	run->count = 0;
}

const char *build_commands_text(const struct build_commands *commands, const char *relative)
{
	const struct build_command *entry =
	    commands ? build_commands_find(commands, relative) : NULL;

	return entry ? entry->text : NULL;
}
