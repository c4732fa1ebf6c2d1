/* build_tree.c - the private workspace of `hotpatch build`: a 0700 temporary
 * directory holding two copies of the source tree (the original and the one
 * the diff is applied to) and the objects compiled from them.  The operator's
 * tree is only read; links that lead out of it are refused. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "arch/arch.h"
#include "build/build.h"

#define TREE_DEPTH_MAX 64
#define TREE_FILES_MAX 200000u
#define TOOL_OUTPUT_MAX 8192

/* What copying one tree needs to know at every level. */
struct copy {
	char source_root[PATH_MAX];	/* resolved */
	char copy_root[PATH_MAX];
	size_t files;
	struct hp_error *error;
};

static int copy_directory(struct copy *copy, int from, int to, const char *relative,
			  unsigned depth);

static int copy_file(struct copy *copy, int from, int to, const char *name,
		     const char *relative)
{
	char buffer[65536];
	struct stat status;
	int in = openat(from, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC), out = -1;
	int result = HP_OK;
	ssize_t got = 0;

	if (in < 0 || fstat(in, &status) != 0)
		result = hp_fail_errno(copy->error, HP_FAILED, "cannot read %s", relative);
	if (result == HP_OK) {
		out = openat(to, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
			     (status.st_mode & 0700) | 0600);
		if (out < 0)
			result = hp_fail_errno(copy->error, HP_FAILED, "cannot copy %s", relative);
	}
	while (result == HP_OK && (got = read(in, buffer, sizeof(buffer))) != 0) {
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0 || trust_write_all(out, buffer, (size_t)got) != (size_t)got)
			result = hp_fail_errno(copy->error, HP_FAILED, "cannot copy %s", relative);
	}
	if (out >= 0 && close(out) != 0 && result == HP_OK)
		result = hp_fail_errno(copy->error, HP_FAILED, "cannot copy %s", relative);
	if (in >= 0)
		close(in);
	return result;
}

/* A link is recreated when it leads to a place inside the tree: relative
 * links as they are, absolute ones to the same place in the copy. */
static int copy_link(struct copy *copy, int from, int to, const char *name,
		     const char *relative)
{
	char text[PATH_MAX], whole[2 * PATH_MAX], resolved[PATH_MAX], moved[2 * PATH_MAX];
	size_t root_length = strlen(copy->source_root);
	ssize_t length = readlinkat(from, name, text, sizeof(text) - 1);

	if (length < 0)
		return hp_fail_errno(copy->error, HP_FAILED, "cannot read the link %s", relative);
	text[length] = '\0';
	snprintf(whole, sizeof(whole), "%s/%s", copy->source_root, relative);
	/* A link to nothing leads nowhere a compiler could read: build trees
	 * are full of them (staging directories of packaging), so it is left
	 * out rather than refused. */
	if (!realpath(whole, resolved)) {
		if (errno == ENOENT)
			return HP_OK;
		return hp_fail_errno(copy->error, HP_USAGE, "cannot follow the link %s", relative);
	}
	if (strncmp(resolved, copy->source_root, root_length) != 0 ||
	    (resolved[root_length] != '/' && resolved[root_length] != '\0')) {
		hp_hint(copy->error, "copy what it points to into the tree, or remove the link");
		return hp_fail(copy->error, HP_USAGE,
			       "the link %s in the source tree leads outside it",
			       relative);
	}
	if (text[0] == '/') {
		snprintf(moved, sizeof(moved), "%s%s", copy->copy_root, resolved + root_length);
		if (strlen(moved) >= sizeof(text))
			return hp_fail(copy->error, HP_FAILED, "the link %s is too long", relative);
		hp_copy_string(text, sizeof(text), moved);
	}
	if (symlinkat(text, to, name) != 0)
		return hp_fail_errno(copy->error, HP_FAILED, "cannot copy the link %s", relative);
	return HP_OK;
}

static int copy_entry(struct copy *copy, int from, int to, const char *name,
		      const char *relative, unsigned depth)
{
	struct stat status;
	int result = HP_OK, sub_from, sub_to;

	if (fstatat(from, name, &status, AT_SYMLINK_NOFOLLOW) != 0)
		return hp_fail_errno(copy->error, HP_FAILED, "cannot read %s", relative);
	if (++copy->files > TREE_FILES_MAX)
		return hp_fail(copy->error, HP_USAGE, "the source tree has more than %u files",
			       TREE_FILES_MAX);
	if (S_ISREG(status.st_mode))
		return copy_file(copy, from, to, name, relative);
	if (S_ISLNK(status.st_mode))
		return copy_link(copy, from, to, name, relative);
	if (!S_ISDIR(status.st_mode))
		return HP_OK;	/* sockets, fifos and devices are no source */
	if (mkdirat(to, name, 0700) != 0)
		return hp_fail_errno(copy->error, HP_FAILED, "cannot copy %s", relative);
	sub_from = openat(from, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	sub_to = openat(to, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (sub_from < 0 || sub_to < 0)
		result = hp_fail_errno(copy->error, HP_FAILED, "cannot copy %s", relative);
	else
		result = copy_directory(copy, sub_from, sub_to, relative, depth + 1);
	if (sub_from >= 0)
		close(sub_from);
	if (sub_to >= 0)
		close(sub_to);
	return result;
}

/* Takes ownership of nothing: `from` and `to` stay open. */
static int copy_directory(struct copy *copy, int from, int to, const char *relative,
			  unsigned depth)
{
	int listed = dup(from), result = HP_OK;
	DIR *directory = listed >= 0 ? fdopendir(listed) : NULL;
	struct dirent *entry;

	if (depth > TREE_DEPTH_MAX) {
		if (directory)
			closedir(directory);
		else if (listed >= 0)
			close(listed);
		return hp_fail(copy->error, HP_USAGE, "the source tree is deeper than %d levels",
			       TREE_DEPTH_MAX);
	}
	if (!directory) {
		if (listed >= 0)
			close(listed);
		return hp_fail_errno(copy->error, HP_FAILED, "cannot list %s",
				     relative[0] ? relative : copy->source_root);
	}
	while (result == HP_OK && (errno = 0, entry = readdir(directory)) != NULL) {
		char path[PATH_MAX];

		/* Version control data is no source and can be large. */
		if (!strcmp(entry->d_name, ".") || !strcmp(entry->d_name, "..") ||
		    !strcmp(entry->d_name, ".git"))
			continue;
		if ((size_t)snprintf(path, sizeof(path), "%s%s%s", relative, relative[0] ? "/" : "",
				     entry->d_name) >= sizeof(path))
			result = hp_fail(copy->error, HP_USAGE, "a path in the source tree is too long");
		else
			result = copy_entry(copy, from, to, entry->d_name, path, depth);
	}
	if (result == HP_OK && errno != 0)
		result = hp_fail_errno(copy->error, HP_FAILED, "cannot list %s",
				       relative[0] ? relative : copy->source_root);
	closedir(directory);
	return result;
}

static int copy_tree(const char *source, const char *destination, struct hp_error *error)
{
	struct copy copy = { .error = error };
	int from = -1, to = -1, result = HP_OK;

	if (!realpath(source, copy.source_root))
		return hp_fail_errno(error, HP_USAGE, "cannot read the source tree %s", source);
	hp_copy_string(copy.copy_root, sizeof(copy.copy_root), destination);
	if (mkdir(destination, 0700) != 0)
		return hp_fail_errno(error, HP_FAILED, "cannot make %s", destination);
	from = open(copy.source_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	to = open(destination, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (from < 0)
		result = hp_fail_errno(error, HP_USAGE, "cannot read the source tree %s", source);
	else if (to < 0)
		result = hp_fail_errno(error, HP_FAILED, "cannot open %s", destination);
	else
		result = copy_directory(&copy, from, to, "", 0);
	if (from >= 0)
		close(from);
	if (to >= 0)
		close(to);
	return result;
}

/* The places around the tree as the compiler sees them from a copy: the
 * copy sits at the tree's own absolute path under `mirror`, and every
 * other entry of each directory above it is a link to the real one, so a
 * relative path that leaves the tree (#include "../common/log.h",
 * -I../include) reaches what it reaches from the tree itself, while one
 * that comes back in (../src/x.h) reaches the copy.  Makes every directory
 * down to the tree's parent; the copy itself is copy_tree's. */
static int mirror_ancestry(const char *tree, const char *mirror, struct hp_error *error)
{
	char real[PATH_MAX], made[PATH_MAX], link_path[PATH_MAX];
	const char *next = tree;
	int status = HP_OK;

	hp_copy_string(made, sizeof(made), mirror);
	while (status == HP_OK && *next == '/') {
		const char *end = strchr(next + 1, '/');
		size_t length = end ? (size_t)(end - next) : strlen(next);
		size_t real_length = (size_t)(next - tree);
		DIR *directory;
		struct dirent *entry;
		unsigned entries = 0;

		/* `real` is the directory above the component at `next`. */
		memcpy(real, tree, real_length);
		real[real_length] = '\0';
		if (real_length == 0)
			hp_copy_string(real, sizeof(real), "/");
		directory = opendir(real);
		while (directory && status == HP_OK && (entry = readdir(directory)) != NULL) {
			/* A huge directory (a home of thousands) is not worth it. */
			if (++entries > TREE_FILES_MAX)
				break;
			if (!strcmp(entry->d_name, ".") || !strcmp(entry->d_name, "..") ||
			    (strlen(entry->d_name) == length - 1 &&
			     !strncmp(entry->d_name, next + 1, length - 1)))
				continue;
			if ((size_t)snprintf(link_path, sizeof(link_path), "%s/%s", made,
					     entry->d_name) >= sizeof(link_path))
				continue;
			snprintf(real + real_length, sizeof(real) - real_length, "/%s", entry->d_name);
			if (symlink(real, link_path) != 0)
				status = hp_fail_errno(error, HP_FAILED, "cannot make %s", link_path);
			real[real_length] = '\0';
			if (real_length == 0)
				hp_copy_string(real, sizeof(real), "/");
		}
		if (directory)
			closedir(directory);
		if (!end)
			break;
		/* Down one level: the mirror's directory of that component. */
		if (strlen(made) + length >= sizeof(made))
			return hp_fail(error, HP_USAGE, "the source tree's path is too long");
		strncat(made, next, length);
		if (status == HP_OK && mkdir(made, 0700) != 0)
			status = hp_fail_errno(error, HP_FAILED, "cannot make %s", made);
		next = end;
	}
	return status;
}

/* A copy of the tree at its own path under `mirror` (see mirror_ancestry);
 * `copy` receives where. */
static int copy_tree_mirrored(const char *source, const char *mirror, char *copy, size_t size,
			      struct hp_error *error)
{
	char tree[PATH_MAX];
	int status;

	if (!realpath(source, tree))
		return hp_fail_errno(error, HP_USAGE, "cannot read the source tree %s", source);
	if (strcmp(tree, "/") == 0)
		return hp_fail(error, HP_USAGE, "the source tree cannot be /");
	if ((size_t)snprintf(copy, size, "%s%s", mirror, tree) >= size)
		return hp_fail(error, HP_USAGE, "the source tree's path %s is too long", tree);
	if (mkdir(mirror, 0700) != 0)
		return hp_fail_errno(error, HP_FAILED, "cannot make %s", mirror);
	status = mirror_ancestry(tree, mirror, error);
	if (status == HP_OK)
		status = copy_tree(tree, copy, error);
	return status;
}

/* How far one patch attempt got: files it could not find, and the first
 * thing that went wrong ("slots.c: Hunk #1 FAILED at 43."). */
struct attempt {
	char output[TOOL_OUTPUT_MAX / 2];
	unsigned missing;
	char problem[HP_TEXT_MAX];
};

static void judge_attempt(struct attempt *attempt)
{
	static const char *const problems[] = { "FAILED", "can't find file", "Reversed",
						"malformed", "Only garbage", "misordered" };
	char file[HP_TEXT_MAX] = "", copy[TOOL_OUTPUT_MAX / 2];

	attempt->missing = 0;
	attempt->problem[0] = '\0';
	hp_copy_string(copy, sizeof(copy), attempt->output);
	for (char *save = NULL, *line = strtok_r(copy, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		bool problem = false;

		if (strncmp(line, "checking file ", 14) == 0) {
			hp_copy_string(file, sizeof(file), line + 14);
			continue;
		}
		attempt->missing += strstr(line, "can't find file") != NULL;
		for (size_t i = 0; i < HP_ARRAY_SIZE(problems); i++)
			problem |= strstr(line, problems[i]) != NULL;
		if (!problem || attempt->problem[0])
			continue;
		/* "1 out of 1 hunk FAILED" says less than the hunk's own line. */
		if (strstr(line, " out of "))
			continue;
		if (file[0] && strncmp(line, "Hunk", 4) == 0)
			snprintf(attempt->problem, sizeof(attempt->problem), "%.120s: %.120s", file, line);
		else
			hp_copy_string(attempt->problem, sizeof(attempt->problem), line);
	}
	/* Ours is the sentence: patch's full stop would end it early. */
	while (attempt->problem[0] && attempt->problem[strlen(attempt->problem) - 1] == '.')
		attempt->problem[strlen(attempt->problem) - 1] = '\0';
}

/* patch with -p1, else -p0; a dry run first, so a failed attempt leaves
 * nothing half applied.  When neither fits, the one that got furthest is
 * reported: -p1 when it found the files (its failed hunk is the news), not
 * -p0's "No file to patch". */
static int apply_diff(struct build_tree *tree, const char *diff, struct hp_error *error)
{
	static const char *const levels[] = { "-p1", "-p0" };
	struct attempt attempts[HP_ARRAY_SIZE(levels)];
	char absolute[PATH_MAX], output[TOOL_OUTPUT_MAX / 2];
	int exit_status = 0, status;
	size_t best = 0;

	if (!realpath(diff, absolute))
		return hp_fail_errno(error, HP_USAGE, "cannot read the diff %s", diff);
	for (size_t i = 0; i < HP_ARRAY_SIZE(levels); i++) {
		const char *dry[] = { "patch", "--batch", "--forward", "--dry-run",
				      levels[i], "-i",	   absolute,	NULL };
		const char *real[] = { "patch", "--batch", "--forward", "--no-backup-if-mismatch",
				       "-s", levels[i], "-i", absolute, NULL };

		status = build_run(dry, tree->fixed, attempts[i].output, sizeof(attempts[i].output),
				   &exit_status, error);
		if (status != HP_OK)
			return status;
		judge_attempt(&attempts[i]);
		if (attempts[i].missing < attempts[best].missing)
			best = i;
		if (exit_status != 0)
			continue;
		status = build_run(real, tree->fixed, output, sizeof(output), &exit_status, error);
		if (status != HP_OK || exit_status == 0)
			return status;
		/* The dry run fitted and the real one did not: that is the news. */
		hp_copy_string(attempts[i].output, sizeof(attempts[i].output), output);
		judge_attempt(&attempts[i]);
		best = i;
		break;
	}
	hp_error_file(error, diff);
	hp_detail(error, "patch %s: %s", levels[best], attempts[best].output);
	hp_hint(error, "the diff must apply to --source as it is (made with diff -u or git diff)");
	if (attempts[best].problem[0])
		return hp_fail(error, HP_FAILED,
			       "the diff %s does not apply to the source tree (patch %s): %s", diff,
			       levels[best], attempts[best].problem);
	return hp_fail(error, HP_FAILED, "the diff %s does not apply to the source tree (patch %s)",
		       diff, levels[best]);
}

int build_tree_apply_diff(struct build_tree *tree, const char *diff, struct hp_error *error)
{
	return apply_diff(tree, diff, error);
}

int build_tree_prepare(struct build_tree *tree, const char *source, const char *diff,
		       struct hp_error *error)
{
	const char *temporary = getenv("TMPDIR");
	char mirror[PATH_MAX], fixed_mirror[PATH_MAX];
	int status;

	if (!temporary || !*temporary)
		temporary = "/tmp";
	if ((size_t)snprintf(tree->root, sizeof(tree->root), "%s/hotpatch-build.XXXXXX",
			     temporary) >= sizeof(tree->root) - 16)
		return hp_fail(error, HP_USAGE, "TMPDIR is too long");
	if (!mkdtemp(tree->root)) {
		tree->root[0] = '\0';
		return hp_fail_errno(error, HP_FAILED, "cannot make a directory in %s", temporary);
	}
	snprintf(mirror, sizeof(mirror), "%s/orig", tree->root);
	snprintf(fixed_mirror, sizeof(fixed_mirror), "%s/fixed", tree->root);
	snprintf(tree->objects, sizeof(tree->objects), "%s/objects", tree->root);
	if (mkdir(tree->objects, 0700) != 0)
		return hp_fail_errno(error, HP_FAILED, "cannot make %s", tree->objects);
	status = copy_tree_mirrored(source, mirror, tree->orig, sizeof(tree->orig), error);
	if (status == HP_OK)
		status = copy_tree_mirrored(source, fixed_mirror, tree->fixed, sizeof(tree->fixed),
					    error);
	if (status == HP_OK)
		status = apply_diff(tree, diff, error);
	return status;
}

static int remember_source(struct build_tree *tree, const char *relative, struct hp_error *error)
{
	char **sources = realloc(tree->sources, (tree->source_count + 1) * sizeof(*sources));
	bool *in_orig = realloc(tree->in_orig, (tree->source_count + 1) * sizeof(*in_orig));
	char path[2 * PATH_MAX];

	if (sources)
		tree->sources = sources;
	if (in_orig)
		tree->in_orig = in_orig;
	if (!sources || !in_orig || !(sources[tree->source_count] = strdup(relative)))
		return hp_fail(error, HP_FAILED, "out of memory listing sources");
	snprintf(path, sizeof(path), "%s/%s", tree->orig, relative);
	in_orig[tree->source_count++] = access(path, F_OK) == 0;
	return HP_OK;
}

static bool ends_with(const char *text, const char *suffix)
{
	size_t length = strlen(text), suffix_length = strlen(suffix);

	return length >= suffix_length && strcmp(text + length - suffix_length, suffix) == 0;
}

static bool same_contents(const char *a, const char *b)
{
	FILE *one = fopen(a, "rb"), *two = one ? fopen(b, "rb") : NULL;
	bool same = one && two;
	int c;

	while (same && (c = getc(one)) != EOF)
		same = c == getc(two);
	if (same)
		same = getc(two) == EOF;
	if (one)
		fclose(one);
	if (two)
		fclose(two);
	return same;
}

/* `path` ends with `relative`, at a component boundary. */
static bool ends_with_path(const char *path, const char *relative)
{
	size_t length = strlen(path), tail = strlen(relative);

	return length >= tail && strcmp(path + length - tail, relative) == 0 &&
	       (length == tail || path[length - tail - 1] == '/');
}

/* A source of the binary (see build_tree_changed_sources): a tests/main.c
 * beside the program's app/main.c is not one. */
static bool in_binary(const struct build_tree *tree, const struct build_binary *binary,
		      const char *relative)
{
	if (tree->commands)
		return build_commands_find(tree->commands, relative) != NULL;
	if (!binary)
		return true;
	if (binary->source_count) {
		/* Either way round: -ffile-prefix-map can leave DWARF paths
		 * shorter than the tree's. */
		for (size_t i = 0; i < binary->source_count; i++)
			if (ends_with_path(binary->sources[i], relative) ||
			    ends_with_path(relative, binary->sources[i]))
				return true;
		return false;
	}
	if (binary->elf.file_count == 0)
		return true;
	for (size_t i = 0; i < binary->elf.file_count; i++)
		if (elf_same_source_file(relative, binary->elf.files[i]))
			return true;
	return false;
}

/* nftw offers no context pointer: one walk at a time, from this file only. */
static struct {
	struct build_tree *tree;
	const struct build_binary *binary;
	bool all_sources, other_changed;
	int status;
	struct hp_error *error;
} walk;

static int visit(const char *path, const struct stat *status, int kind, struct FTW *where)
{
	const char *relative = path + strlen(walk.tree->fixed) + 1;
	char original[2 * PATH_MAX];

	(void)status;
	(void)where;
	/* Hidden directories hold no sources of the program: version control,
	 * and quilt's .pc with the originals of Debian's patches. */
	if (kind == FTW_D && where->level > 0 && path[where->base] == '.')
		return FTW_SKIP_SUBTREE;
	if (kind != FTW_F)
		return FTW_CONTINUE;
	snprintf(original, sizeof(original), "%s/%s", walk.tree->orig, relative);
	if (walk.all_sources) {
		if (ends_with(relative, ".c") && in_binary(walk.tree, walk.binary, relative))
			walk.status = remember_source(walk.tree, relative, walk.error);
	} else if (!same_contents(original, path)) {
		if (ends_with(relative, ".c"))
			walk.status = remember_source(walk.tree, relative, walk.error);
		else
			walk.other_changed = true;
	}
	return walk.status == HP_OK ? FTW_CONTINUE : FTW_STOP;
}

static int walk_fixed(struct build_tree *tree, const struct build_binary *binary,
		      bool all_sources, bool *other_changed, struct hp_error *error)
{
	walk.tree = tree;
	walk.binary = binary;
	walk.all_sources = all_sources;
	walk.other_changed = false;
	walk.status = HP_OK;
	walk.error = error;
	if (nftw(tree->fixed, visit, 32, FTW_PHYS | FTW_ACTIONRETVAL) < 0 && walk.status == HP_OK)
		return hp_fail_errno(error, HP_FAILED, "cannot walk %s", tree->fixed);
	*other_changed = walk.other_changed;
	return walk.status;
}

static int read_binary_sources(struct build_binary *binary, struct hp_error *error)
{
	if (binary->sources_read)
		return HP_OK;
	binary->sources_read = true;
	return build_dwarf_source_paths(binary->path, &binary->sources, &binary->source_count,
					error);
}

/* Whether the binary says it was built from `relative`: its symbol table's
 * file names (cheap, already read), else its DWARF source paths.  *known
 * is false when it records neither. */
static int binary_names(struct build_binary *binary, const char *relative, bool *named,
			bool *known, struct hp_error *error)
{
	int status;

	*named = false;
	*known = binary->elf.file_count > 0;
	for (size_t i = 0; i < binary->elf.file_count; i++)
		if (elf_same_source_file(relative, binary->elf.files[i])) {
			*named = true;
			return HP_OK;
		}
	status = read_binary_sources(binary, error);
	*known |= binary->source_count > 0;
	for (size_t i = 0; status == HP_OK && i < binary->source_count && !*named; i++)
		*named = ends_with_path(binary->sources[i], relative) ||
			 ends_with_path(relative, binary->sources[i]);
	return status;
}

/* A changed file the binary was not built from (a module configured out
 * of this build) cannot be patched into it: said now, by name, rather than
 * as a missing compile entry or a function the binary lacks. */
static int check_part_of_binary(const struct build_tree *tree, struct build_binary *binary,
				struct hp_error *error)
{
	int status = HP_OK;

	for (size_t i = 0; status == HP_OK && binary && i < tree->source_count; i++) {
		const char *source = tree->sources[i];
		bool named = false, known = false;

		/* A new file has no past in the binary; an entry is the build's word. */
		if (!tree->in_orig[i] ||
		    (tree->commands && build_commands_count(tree->commands, source) > 0))
			continue;
		status = binary_names(binary, source, &named, &known, error);
		if (status != HP_OK || named || !known)
			continue;
		hp_error_file(error, source);
		hp_hint(error, "a file left out of this build (a module configured out) cannot be "
			       "patched into it: leave its part out of the diff");
		if (tree->commands)
			return hp_fail(error, HP_MISFIT,
				       "%s is not part of %s: no compile entry in %s, and the "
				       "binary's symbol and DWARF file lists do not name it",
				       source, binary->path, tree->commands->path);
		return hp_fail(error, HP_MISFIT,
			       "%s is not part of %s: the binary's symbol and DWARF file lists do "
			       "not name it",
			       source, binary->path);
	}
	return status;
}

int build_tree_changed_sources(struct build_tree *tree, struct build_binary *binary,
			       struct hp_error *error)
{
	bool other_changed = false;
	int status = walk_fixed(tree, binary, false, &other_changed, error);

	if (status == HP_OK && !other_changed)
		status = check_part_of_binary(tree, binary, error);
	if (status != HP_OK || !other_changed)
		return status;
	/* A header (or anything else) changed: every source of the binary may
	 * see it (not the tree's other programs and tests).  Its DWARF paths
	 * say which those are; read only now, most fixes not needing them. */
	for (size_t i = 0; i < tree->source_count; i++)
		free(tree->sources[i]);
	tree->source_count = 0;
	if (binary && !tree->commands)
		status = read_binary_sources(binary, error);
	return status == HP_OK ? walk_fixed(tree, binary, true, &other_changed, error) : status;
}

/* The file a compiler's output says it could not include: GCC's
 * "x.c:3:10: fatal error: ../common/log.h: No such file or directory",
 * Clang's "fatal error: '../common/log.h' file not found". */
static bool missing_include(const char *output, char *file, size_t size)
{
	static const char marker[] = "fatal error: ";
	const char *at = strstr(output, marker), *start, *end;

	if (!at)
		return false;
	start = at + strlen(marker);
	if (*start == '\'' && (end = strstr(start + 1, "' file not found")) != NULL)
		start++;
	else if ((end = strstr(start, ": No such file or directory")) == NULL)
		return false;
	if (memchr(start, '\n', (size_t)(end - start)) || end == start)
		return false;
	snprintf(file, size, "%.*s", (int)(end - start), start);
	return true;
}

/* Names the missing file: a header outside --source that the compile
 * command does not reach, not a wrong --compile. */
static int refuse_missing_include(const struct build_tree *tree, const char *source, bool fixed,
				  const char *missing, const char *output, struct hp_error *error)
{
	hp_error_file(error, source);
	hp_detail(error, "%s", output);
	hp_hint(error, "a file outside --source is read where it is; give its directory with -I "
		       "(an absolute path) in %s, or make --source the directory that holds both",
		tree->commands ? "the entry of --compile-commands" : "--compile");
	return hp_fail(error, HP_FAILED, "compiling %s%s failed: %s includes %s, which was not found",
		       source, fixed ? " with the fix" : " (the original)", source, missing);
}

int build_tree_compile(const struct build_tree *tree, const char *compile, size_t index,
		       enum build_compile kind, char *object, size_t object_size,
		       struct hp_error *error)
{
	static const char *const names[] = { "orig", "fixed", "as-built" };
	char command[8192], output[TOOL_OUTPUT_MAX], missing[HP_TEXT_MAX];
	const char *source = tree->sources[index];
	bool fixed = kind == BUILD_FIXED;
	int exit_status = 0, status;

	/* For the patch, every reference becomes an absolute 64-bit one
	 * (HP_BUILD_CODE_MODEL: a movabs on x86-64, a literal-pool word on
	 * arm64): the patch can then point any of them at the binary,
	 * wherever it is loaded.  The patch's calls assume nothing about which registers
	 * the binary's functions leave alone (-fno-ipa-ra): its copies may
	 * differ from ours.  A variable the fix adds is a definition of the
	 * patch's own, never a common symbol left for the dynamic linker
	 * (-fno-common).  As built, the command alone: code as the binary
	 * has it, to compare with (even -ffunction-sections changes sizes: a
	 * jump to a function of another section cannot be made short). */
	const char *flags = kind == BUILD_AS_BUILT ? ""
						    : "-ffunction-sections -fdata-sections -fno-pic "
						      HP_BUILD_CODE_MODEL " -fno-ipa-ra -fno-common -g";

	if (!tree->commands &&
	    (size_t)snprintf(command, sizeof(command), "%s %s -c \"$1\" -o \"$2\"", compile,
			     flags) >= sizeof(command))
		return hp_fail(error, HP_USAGE, "the compile command is too long");
	snprintf(object, object_size, "%s/%s-%zu.o", tree->objects, names[kind], index);
	if (tree->commands) {
		/* Each file as the database says, and no shell. */
		struct build_invocation run = { .argv = NULL };

		status = build_commands_invocation(tree->commands, source,
						   fixed ? tree->fixed : tree->orig, flags, object,
						   &run, error);
		if (status == HP_OK)
			status = build_run((const char *const *)run.argv, run.directory, output,
					   sizeof(output), &exit_status, error);
		build_invocation_release(&run);
	} else {
		/* The file names travel as $1 and $2, never as shell text. */
		const char *argv[] = { "/bin/sh", "-c", command, "sh", source, object, NULL };

		status = build_run(argv, fixed ? tree->fixed : tree->orig, output, sizeof(output),
				   &exit_status, error);
	}
	if (status != HP_OK || exit_status == 0)
		return status;
	if (missing_include(output, missing, sizeof(missing)))
		return refuse_missing_include(tree, source, fixed, missing, output, error);
	hp_error_file(error, source);
	hp_detail(error, "%s", output);
	hp_hint(error, tree->commands ? "check its entry in --compile-commands"
				      : "check --compile (it must build the tree as the binary was built)");
	return hp_fail(error, HP_FAILED, "compiling %s%s failed", source,
		       fixed ? " with the fix" : " (the original)");
}

static int remove_entry(const char *path, const struct stat *status, int kind,
			struct FTW *where)
{
	int removed = kind == FTW_DP ? rmdir(path) : unlink(path);

	(void)status;
	(void)where;
	/* Best effort: one entry that will not go does not stop the rest. */
	(void)removed;
	return 0;
}

void build_tree_remove(struct build_tree *tree)
{
	if (tree->root[0])
		nftw(tree->root, remove_entry, 32, FTW_DEPTH | FTW_PHYS);
	for (size_t i = 0; i < tree->source_count; i++)
		free(tree->sources[i]);
	free(tree->sources);
	free(tree->in_orig);
	tree->sources = NULL;
	tree->in_orig = NULL;
	tree->source_count = 0;
	tree->root[0] = '\0';
}
