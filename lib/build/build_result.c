/* build_result.c - what `hotpatch build` reports: a line per replaced or new
 * function and per warning, added by every step that finds one, and the
 * result released.  It decides nothing and prints nothing. */
#include <stdlib.h>
#include <string.h>

#include "build/build.h"

int build_result_line(struct hp_build_result *result, enum hp_build_line_kind kind,
		      const char *function, const char *file, const char *text)
{
	struct hp_build_line *lines = realloc(result->lines,
					      (result->line_count + 1) * sizeof(*lines));

	if (!lines)
		return HP_FAILED;
	result->lines = lines;
	memset(&lines[result->line_count], 0, sizeof(*lines));
	lines[result->line_count].kind = kind;
	hp_copy_string(lines[result->line_count].function, HP_TEXT_MAX, function);
	hp_copy_string(lines[result->line_count].file, HP_TEXT_MAX, file);
	hp_copy_string(lines[result->line_count].text, 2 * HP_TEXT_MAX, text);
	result->line_count++;
	return HP_OK;
}

void hp_build_result_release(struct hp_build_result *result)
{
	free(result->lines);
	memset(result, 0, sizeof(*result));
}
