/* build_source.c - whether the source text of one function differs between
 * the two trees.  Needed for functions that exist only inlined (a static
 * inline in a header, say): no object code of their own to compare, yet
 * their callers elsewhere carry their old copy.  The text runs from the
 * line DWARF names as the declaration to the brace that closes the body;
 * comments and literals are skipped while counting braces. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "build/build.h"

#define SOURCE_MAX (8u << 20)

static char *read_text(const char *path, size_t *size)
{
	FILE *file = fopen(path, "rb");
	char *text = NULL;
	size_t used = 0;

	if (!file)
		return NULL;
	text = malloc(SOURCE_MAX + 1);
	if (text)
		used = fread(text, 1, SOURCE_MAX, file);
	if (text && (ferror(file) || used == SOURCE_MAX)) {
		free(text);
		text = NULL;
	}
	fclose(file);
	if (text) {
		text[used] = '\0';
		*size = used;
	}
	return text;
}

/* Where the function declared at `line` ends: just past its closing brace. */
static size_t body_end(const char *text, size_t size, size_t start)
{
	enum { CODE, LINE_COMMENT, BLOCK_COMMENT, STRING, CHARACTER } state = CODE;
	unsigned depth = 0;
	bool opened = false;

	for (size_t i = start; i < size; i++) {
		char c = text[i], next = i + 1 < size ? text[i + 1] : '\0';

		if (state == LINE_COMMENT && c == '\n')
			state = CODE;
		else if (state == BLOCK_COMMENT && c == '*' && next == '/')
			state = CODE, i++;
		else if ((state == STRING || state == CHARACTER) && c == '\\')
			i++;
		else if ((state == STRING && c == '"') || (state == CHARACTER && c == '\''))
			state = CODE;
		else if (state != CODE)
			continue;
		else if (c == '/' && next == '/')
			state = LINE_COMMENT;
		else if (c == '/' && next == '*')
			state = BLOCK_COMMENT, i++;
		else if (c == '"')
			state = STRING;
		else if (c == '\'')
			state = CHARACTER;
		else if (c == ';' && !opened)
			return i + 1;	/* a declaration without a body */
		else if (c == '{')
			depth++, opened = true;
		else if (c == '}' && depth > 0 && --depth == 0)
			return i + 1;
	}
	return size;
}

/* The function's text, from the start of `line`; NULL if unreadable. */
static char *function_text(const char *path, unsigned line, size_t *length)
{
	size_t size = 0, start = 0, end;
	char *text = read_text(path, &size), *copy;

	for (unsigned at = 1; text && at < line && start < size; start++)
		if (text[start] == '\n')
			at++;
	if (!text || start >= size) {
		free(text);
		return NULL;
	}
	end = body_end(text, size, start);
	copy = malloc(end - start + 1);
	if (copy) {
		memcpy(copy, text + start, end - start);
		copy[end - start] = '\0';
		*length = end - start;
	}
	free(text);
	return copy;
}

bool build_source_function_changed(const char *orig_path, unsigned orig_line,
				   const char *fixed_path, unsigned fixed_line)
{
	size_t orig_length = 0, fixed_length = 0;
	char *before, *after;
	bool changed;

	/* A file in neither copy (a #line of generated code naming its
	 * grammar, say) is one the diff cannot have changed. */
	if (access(orig_path, F_OK) != 0 && access(fixed_path, F_OK) != 0)
		return false;
	before = function_text(orig_path, orig_line, &orig_length);
	after = function_text(fixed_path, fixed_line, &fixed_length);
	/* Otherwise unreadable counts as changed: a warning too many beats one
	 * missing. */
	changed = !before || !after || orig_length != fixed_length ||
		  memcmp(before, after, orig_length) != 0;

	free(before);
	free(after);
	return changed;
}
