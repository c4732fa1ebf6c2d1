/* print_text.c - the prose printers: what a person reads.  Every name that
 * comes from the target or a file is put on one line without control
 * characters, so it cannot forge a line or drive a terminal.  A failure
 * is one "hotpatch:" line on stderr, then its detail lines. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cmd.h"

/* "2026-05-01T12:00:00Z"; false for 0, which means unknown. */
bool utc_time(uint64_t seconds, char *buffer, size_t size)
{
	time_t value = (time_t)seconds;
	struct tm parts;

	return seconds && gmtime_r(&value, &parts) &&
	       strftime(buffer, size, "%Y-%m-%dT%H:%M:%SZ", &parts) > 0;
}

/* A copy of `value` on one line: control characters (from a file name,
 * say) become '?', so the error stays one line and cannot drive a terminal. */
const char *one_line(const char *value, char *clean, size_t size)
{
	size_t i;

	for (i = 0; value[i] && i + 1 < size; i++)
		clean[i] = ((unsigned char)value[i] < 0x20 || value[i] == 0x7f) ? '?' : value[i];
	clean[i] = '\0';
	return clean;
}

/* "sequence 3, applied 2026-05-01T12:00:00Z, from /srv/fix.so, sha256 ...":
 * what tells two copies of a patch apart.  check has no sequence or time. */
static void print_origin_human(const struct hp_patch_report *patch)
{
	char when[32], path[sizeof(patch->path)];

	if (patch->sequence)
		printf("sequence %" PRIu64 ", applied %s, ", patch->sequence,
		       utc_time(patch->applied, when, sizeof(when)) ? when : "at an unknown time");
	printf("from %s, sha256 %s",
	       patch->path[0] ? one_line(patch->path, path, sizeof(path)) : "an unknown path",
	       patch->sha256[0] ? patch->sha256 : "unknown");
}

static void print_patch_human(const struct hp_patch_report *patch)
{
	char clean[HP_TEXT_MAX];

	printf("%s  (%s, %zu function%s)  ", one_line(patch->name, clean, sizeof(clean)),
	       patch->state, patch->function_count, patch->function_count == 1 ? "" : "s");
	print_origin_human(patch);
	putchar('\n');
	if (patch->description[0])
		printf("    description: %s\n", one_line(patch->description, clean, sizeof(clean)));
	if (patch->ids[0])
		printf("    fixes: %s\n", one_line(patch->ids, clean, sizeof(clean)));
	/* A patch of several fixes (HOTPATCH_FIX): which are in, which left out. */
	if (patch->fixes[0] || patch->excluded[0]) {
		char excluded[HP_FIXES_MAX], in_effect[HP_FIXES_MAX];

		printf("    fixes in effect: %s\n",
		       patch->fixes[0] ? one_line(patch->fixes, in_effect, sizeof(in_effect)) : "none");
		if (patch->excluded[0])
			printf("    fixes excluded: %s\n",
			       one_line(patch->excluded, excluded, sizeof(excluded)));
	}
	if (patch->cumulative) {
		/* Names from the target's memory, as many as there are. */
		printf("    cumulative%s", patch->replaced ? ", takes over: " : "");
		for (const char *c = patch->replaced ? patch->replaced : ""; *c; c++)
			putchar((unsigned char)*c < 0x20 || *c == 0x7f ? '?' : *c);
		putchar('\n');
	}
	if (patch->warning[0])
		printf("    warning: %s\n", one_line(patch->warning, clean, sizeof(clean)));
	if (patch->next_step[0])
		printf("    run: %s (a killed hotpatch wrote only some of its jumps)\n",
		       one_line(patch->next_step, clean, sizeof(clean)));
	for (size_t i = 0; i < patch->function_count; i++) {
		const struct hp_function_report *f = &patch->functions[i];

		char object[HP_TEXT_MAX], over[HP_PATCH_NAME_MAX + 16] = "";

		/* Names from the target's memory: one line, no terminal escapes. */
		one_line(f->object, object, sizeof(object));
		one_line(f->function, clean, sizeof(clean));
		if (f->over[0])
			snprintf(over, sizeof(over), ", over %s", f->over);
		one_line(over, over, sizeof(over));
		/* check loads nothing: no replacement address, a predicted jump. */
		if (f->replacement)
			printf("    %s%s%s at 0x%" PRIx64 " -> 0x%" PRIx64 " (%s%s)\n", object,
			       object[0] ? ":" : "", clean, f->address, f->replacement,
			       f->jump_kind[0] ? f->jump_kind : "not loaded", over);
		else
			printf("    %s%s%s at 0x%" PRIx64 " (%s%s)\n", object, object[0] ? ":" : "",
			       clean, f->address, f->jump_kind[0] ? f->jump_kind : "not loaded", over);
	}
	for (size_t i = 0; i < patch->reference_count; i++) {
		const struct hp_reference_report *r = &patch->references[i];
		char object[HP_TEXT_MAX], file[HP_TEXT_MAX];

		printf("    uses %s%s%s%s%s at 0x%" PRIx64 "\n",
		       one_line(r->object, object, sizeof(object)), r->object[0] ? ":" : "",
		       one_line(r->symbol, clean, sizeof(clean)), r->file[0] ? " of " : "",
		       one_line(r->file, file, sizeof(file)), r->address);
	}
}

/* What killed commands left behind: taken back (apply, revert), or still
 * there and why (every command that looked). */
static void print_leftovers_human(const struct hp_result *result)
{
	const struct hp_interrupted_command *killed = &result->interrupted;
	char name[HP_PATCH_NAME_MAX], reason[HP_TEXT_MAX];

	if (killed->command[0])
		printf("an earlier %s (hotpatch pid %d) was killed at work on this process\n",
		       one_line(killed->command, name, sizeof(name)), (int)killed->pid);
	for (size_t i = 0; i < result->leftover_count; i++) {
		const struct hp_leftover_report *leftover = &result->leftovers[i];

		printf("%s %s%s%s at 0x%" PRIx64 ": %s\n",
		       leftover->reclaimed ? "reclaimed" : "leftover", leftover->kind,
		       leftover->name[0] ? " " : "", one_line(leftover->name, name, sizeof(name)),
		       leftover->address, one_line(leftover->reason, reason, sizeof(reason)));
	}
}

/* list while another command works on the process: what is shown is the
 * state before that command ends ("in progress": what it has begun). */
static void print_at_work_human(const struct hp_result *result)
{
	const struct hp_interrupted_command *working = &result->working;
	char name[HP_PATCH_NAME_MAX], since[32];

	if (!result->at_work)
		return;
	if (!working->command[0]) {
		printf("another hotpatch command is at work on this process; this is the state "
		       "before it ends\n");
		return;
	}
	printf("%s (hotpatch pid %d) is at work on this process since %s; this is the state "
	       "before it ends\n",
	       one_line(working->command, name, sizeof(name)), (int)working->pid,
	       utc_time(working->started, since, sizeof(since)) ? since : "an unknown time");
}

void print_list_text(const struct output *output, const struct invocation *invocation,
		     const struct outcome *outcome)
{
	const struct hp_result *result = &outcome->engine;

	(void)output;
	(void)invocation;
	print_leftovers_human(result);
	print_at_work_human(result);
	if (result->patch_count == 0)
		printf("no patches applied\n");
	for (size_t i = 0; i < result->patch_count; i++)
		print_patch_human(&result->patches[i]);
}

/* apply and revert: what was done, in how long a stop. */
void print_change_text(const struct output *output, const struct invocation *invocation,
		       const struct outcome *outcome)
{
	const struct hp_result *result = &outcome->engine;
	char name[HP_PATCH_NAME_MAX];

	print_leftovers_human(result);
	if (result->patch_count == 0)
		return;
	if (strcmp(result->patches[0].state, "already applied") == 0)
		printf("%s is already applied in pid %d; nothing changed\n",
		       one_line(result->patches[0].name, name, sizeof(name)), output->pid);
	else
		printf("%s %s in pid %d (%u thread%s, stopped %.0f us)\n",
		       invocation->command->engine == hp_apply ? "applied" : "reverted",
		       one_line(result->patches[0].name, name, sizeof(name)), output->pid,
		       result->thread_count, result->thread_count == 1 ? "" : "s",
		       result->blackout_seconds * 1e6);
	print_patch_human(&result->patches[0]);
}

void print_check_text(const struct output *output, const struct invocation *invocation,
		      const struct outcome *outcome)
{
	const struct hp_result *result = &outcome->engine;
	char name[HP_PATCH_NAME_MAX];

	(void)invocation;
	print_leftovers_human(result);
	if (result->patch_count == 0)
		return;
	printf("patch %s fits pid %d\n", one_line(result->patches[0].name, name, sizeof(name)),
	       output->pid);
	print_patch_human(&result->patches[0]);
}

void print_failure_text(const struct hp_error *error)
{
	char message[sizeof(error->message)], hint[sizeof(error->hint)];

	if (error->hint[0])
		fprintf(stderr, "hotpatch: %s; %s\n",
			one_line(error->message, message, sizeof(message)),
			one_line(error->hint, hint, sizeof(hint)));
	else
		fprintf(stderr, "hotpatch: %s\n", one_line(error->message, message, sizeof(message)));
	if (error->detail[0])
		fprintf(stderr, "%s\n", error->detail);
}

/* keygen and sign: where the keys or the signature went. */
void print_signing_text(const struct output *output, const struct invocation *invocation,
			const struct outcome *outcome)
{
	const struct hp_signing *result = &outcome->signing;
	char name[HP_PATCH_NAME_MAX], path[HP_TEXT_MAX], other[HP_TEXT_MAX];

	(void)output;
	if (invocation->out)
		printf("key %s: secret key %s (keep it private), public key %s (install it "
		       "in /etc/hotpatch/keys/ where patches are applied)\n",
		       result->key_id, one_line(result->secret_key, path, sizeof(path)),
		       one_line(result->public_key, other, sizeof(other)));
	else
		printf("signed %s (sha256 %s) with key %s: %s\n",
		       one_line(result->patch.name, name, sizeof(name)), result->patch.sha256,
		       result->key_id, one_line(result->signature, path, sizeof(path)));
}

static const char *const build_kinds[] = { "replace", "new", "warning" };

void print_build_text(const struct output *output, const struct invocation *invocation,
		      const struct outcome *outcome)
{
	const struct hp_build_request *request = &invocation->build;
	const struct hp_build_result *result = &outcome->build;
	char function[HP_TEXT_MAX], file[HP_TEXT_MAX], text[2 * HP_TEXT_MAX];

	(void)output;
	for (size_t i = 0; i < result->line_count; i++) {
		const struct hp_build_line *line = &result->lines[i];

		one_line(line->text, text, sizeof(text));
		if (line->kind == HP_BUILD_WARNING) {
			printf("warning: %s\n", text);
			continue;
		}
		printf("%s: %s (%s)", build_kinds[line->kind],
		       one_line(line->function, function, sizeof(function)),
		       one_line(line->file, file, sizeof(file)));
		if (text[0])
			printf(" [inlines %s]", text);
		if (line->fixes[0])
			printf(" [fixes %s]", line->fixes);
		putchar('\n');
	}
	printf("wrote %s (%zu function%s, %zu reference%s into %s)\n", request->output,
	       result->function_count, result->function_count == 1 ? "" : "s",
	       result->reference_count, result->reference_count == 1 ? "" : "s", request->binary);
}
