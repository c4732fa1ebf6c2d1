/* output.c - the two printers: prose for people, one JSON document (jansson)
 * for scripts.  Strings that come from the target or a file are made valid
 * UTF-8 text before they reach JSON; the error line always goes to stderr. */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "cmd.h"

int exit_code_for(int status)
{
	return status >= HP_MISFIT && status <= HP_OK ? -status : 1;
}

/* Replaces bytes that are not printable ASCII, so any name is valid JSON. */
static json_t *text(const char *value)
{
	char clean[1024];
	size_t i;

	for (i = 0; value[i] && i + 1 < sizeof(clean); i++)
		clean[i] = (value[i] >= 0x20 && value[i] < 0x7f) ? value[i] : '?';
	clean[i] = '\0';
	return json_string(clean);
}

/* A copy of `value` on one line: control characters (from a file name,
 * say) become '?', so the error stays one line and cannot drive a terminal. */
static const char *one_line(const char *value, char *clean, size_t size)
{
	size_t i;

	for (i = 0; value[i] && i + 1 < size; i++)
		clean[i] = ((unsigned char)value[i] < 0x20 || value[i] == 0x7f) ? '?' : value[i];
	clean[i] = '\0';
	return clean;
}

/* "CVE-1 CVE-2" as a JSON array. */
static json_t *id_list(const char *ids)
{
	char clean[HP_TEXT_MAX];
	json_t *list = json_array();

	one_line(ids, clean, sizeof(clean));
	for (char *id = strtok(clean, " "); id; id = strtok(NULL, " "))
		json_array_append_new(list, json_string(id));
	return list;
}

static json_t *address(uint64_t value)
{
	char buffer[32];

	snprintf(buffer, sizeof(buffer), "0x%" PRIx64, value);
	return json_string(buffer);
}

static json_t *references_json(const struct hp_patch_report *patch)
{
	json_t *references = json_array();

	for (size_t i = 0; i < patch->reference_count; i++) {
		const struct hp_reference_report *r = &patch->references[i];

		json_array_append_new(references,
				      json_pack("{s:o, s:o, s:o, s:o}", "object", text(r->object),
						"file", text(r->file), "symbol", text(r->symbol),
						"address", address(r->address)));
	}
	return references;
}

static json_t *patch_json(const struct hp_patch_report *patch, bool with_references)
{
	json_t *functions = json_array(), *document;

	for (size_t i = 0; i < patch->function_count; i++) {
		const struct hp_function_report *f = &patch->functions[i];

		json_array_append_new(functions,
				      json_pack("{s:o, s:o, s:o, s:o, s:o, s:s, s:o}", "object",
						text(f->object), "function", text(f->function),
						"address", address(f->address), "jump_address",
						address(f->jump_address), "replacement",
						address(f->replacement), "jump",
						f->jump_kind[0] ? f->jump_kind : "none", "over",
						text(f->over)));
	}
	document = json_pack("{s:o, s:s, s:o, s:o, s:o, s:o, s:I, s:o}", "name",
			     text(patch->name), "state", patch->state, "path", text(patch->path),
			     "description", text(patch->description), "ids", id_list(patch->ids),
			     "load_address", address(patch->load_address), "sequence",
			     (json_int_t)patch->sequence, "functions", functions);
	json_object_set_new(document, "warning", text(patch->warning));
	json_object_set_new(document, "run",
			    patch->next_step[0] ? text(patch->next_step) : json_null());
	if (with_references)
		json_object_set_new(document, "references", references_json(patch));
	return document;
}

/* What apply, check and sign read: the hash of its bytes and who signed
 * ("none", the audit record's word, when nobody did). */
static json_t *identity_json(const struct hp_patch_identity *identity)
{
	return json_pack("{s:o, s:s, s:s}", "name", text(identity->name), "sha256",
			 identity->sha256, "signer", identity->signer[0] ? identity->signer : "none");
}

static void emit(json_t *document)
{
	json_dumpf(document, stdout, JSON_COMPACT);
	fputc('\n', stdout);
	json_decref(document);
}

static void print_patch_human(const struct hp_patch_report *patch)
{
	char clean[HP_TEXT_MAX];

	printf("%s  (%s, %zu function%s)\n", one_line(patch->name, clean, sizeof(clean)),
	       patch->state, patch->function_count, patch->function_count == 1 ? "" : "s");
	if (patch->description[0])
		printf("    description: %s\n", one_line(patch->description, clean, sizeof(clean)));
	if (patch->ids[0])
		printf("    fixes: %s\n", one_line(patch->ids, clean, sizeof(clean)));
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

static void print_human(const struct output *output, const struct hp_result *result)
{
	print_leftovers_human(result);
	if (strcmp(output->command, "list") == 0) {
		if (result->patch_count == 0)
			printf("no patches applied\n");
		for (size_t i = 0; i < result->patch_count; i++)
			print_patch_human(&result->patches[i]);
		return;
	}
	if (result->patch_count == 0)
		return;
	if (strcmp(output->command, "check") == 0)
		printf("patch %s fits pid %d\n", result->patches[0].name, output->pid);
	else
		printf("%s %s in pid %d (%u thread%s, stopped %.0f us)\n",
		       strcmp(output->command, "apply") == 0 ? "applied" : "reverted",
		       result->patches[0].name, output->pid, result->thread_count,
		       result->thread_count == 1 ? "" : "s", result->blackout_seconds * 1e6);
	print_patch_human(&result->patches[0]);
}

static json_t *leftovers_json(const struct hp_result *result)
{
	json_t *leftovers = json_array();

	for (size_t i = 0; i < result->leftover_count; i++) {
		const struct hp_leftover_report *leftover = &result->leftovers[i];

		json_array_append_new(leftovers,
				      json_pack("{s:s, s:o, s:o, s:b, s:o}", "kind", leftover->kind,
						"name", text(leftover->name), "address",
						address(leftover->address), "reclaimed",
						leftover->reclaimed, "reason", text(leftover->reason)));
	}
	return leftovers;
}

static json_t *interrupted_json(const struct hp_interrupted_command *killed)
{
	if (!killed->command[0])
		return json_null();
	return json_pack("{s:o, s:i, s:I}", "command", text(killed->command), "hotpatch_pid",
			 (int)killed->pid, "started", (json_int_t)killed->started);
}

void print_success(const struct output *output, const struct hp_result *result)
{
	json_t *document;

	if (!output->json) {
		print_human(output, result);
		return;
	}
	document = json_pack("{s:s, s:b, s:i, s:i}", "command", output->command, "ok", 1,
			     "exit_code", 0, "pid", output->pid);
	if (strcmp(output->command, "list") == 0) {
		json_t *patches = json_array();

		for (size_t i = 0; i < result->patch_count; i++)
			json_array_append_new(patches, patch_json(&result->patches[i], false));
		json_object_set_new(document, "patches", patches);
	} else {
		if (result->patch_count)
			json_object_set_new(document, "patch",
				    patch_json(&result->patches[0],
					       strcmp(output->command, "revert") != 0));
		json_object_set_new(document, "attempts", json_integer(result->attempts));
		json_object_set_new(document, "threads", json_integer(result->thread_count));
		json_object_set_new(document, "blackout_us",
				    json_real(result->blackout_seconds * 1e6));
		if (result->patch_file.sha256[0])
			json_object_set_new(document, "patch_file",
					    identity_json(&result->patch_file));
	}
	json_object_set_new(document, "leftovers", leftovers_json(result));
	json_object_set_new(document, "interrupted", interrupted_json(&result->interrupted));
	json_object_set_new(document, "elapsed_ms", json_real(result->elapsed_seconds * 1e3));
	emit(document);
}

void print_failure(const struct output *output, const struct hp_error *error, int exit_code)
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
	if (!output->json)
		return;
	emit(json_pack("{s:s, s:b, s:i, s:i, s:{s:o, s:i, s:o, s:o, s:o, s:o}}", "command",
		       output->command ? output->command : "", "ok", 0, "exit_code", exit_code,
		       "pid", output->pid, "error", "message", text(error->message), "tid",
		       (int)error->tid, "function", text(error->function), "file", text(error->file),
		       "hint", text(error->hint), "detail", text(error->detail)));
}

void print_signing(const struct output *output, const struct hp_signing *result)
{
	const bool keygen = strcmp(output->command, "keygen") == 0;
	json_t *document;

	if (!output->json) {
		if (keygen)
			printf("key %s: secret key %s (keep it private), public key %s (install it "
			       "in /etc/hotpatch/keys/ where patches are applied)\n",
			       result->key_id, result->secret_key, result->public_key);
		else
			printf("signed %s (sha256 %s) with key %s: %s\n", result->patch.name,
			       result->patch.sha256, result->key_id, result->signature);
		return;
	}
	document = json_pack("{s:s, s:b, s:i, s:s}", "command", output->command, "ok", 1,
			     "exit_code", 0, "key_id", result->key_id);
	if (keygen) {
		json_object_set_new(document, "secret_key", text(result->secret_key));
		json_object_set_new(document, "public_key", text(result->public_key));
	} else {
		json_object_set_new(document, "signature", text(result->signature));
		json_object_set_new(document, "patch_file", identity_json(&result->patch));
	}
	emit(document);
}

static const char *const build_kinds[] = { "replace", "new", "warning" };

static void print_build_human(const struct hp_build_request *request,
			      const struct hp_build_result *result)
{
	char function[HP_TEXT_MAX], file[HP_TEXT_MAX], text[2 * HP_TEXT_MAX];

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
		putchar('\n');
	}
	printf("wrote %s (%zu function%s, %zu reference%s into %s)\n", request->output,
	       result->function_count, result->function_count == 1 ? "" : "s",
	       result->reference_count, result->reference_count == 1 ? "" : "s", request->binary);
}

void print_build(const struct output *output, const struct hp_build_request *request,
		 const struct hp_build_result *result)
{
	json_t *document, *lists[3];

	if (!output->json) {
		print_build_human(request, result);
		return;
	}
	for (size_t k = 0; k < 3; k++)
		lists[k] = json_array();
	for (size_t i = 0; i < result->line_count; i++) {
		const struct hp_build_line *line = &result->lines[i];

		if (line->kind == HP_BUILD_WARNING)
			json_array_append_new(lists[line->kind], text(line->text));
		else
			json_array_append_new(lists[line->kind],
					      json_pack("{s:o, s:o, s:o}", "function",
							text(line->function), "file", text(line->file),
							"inlines", text(line->text)));
	}
	document = json_pack("{s:s, s:b, s:i, s:o, s:o, s:o, s:I, s:I, s:o, s:o, s:o}", "command",
			     "build", "ok", 1, "exit_code", 0, "output", text(request->output),
			     "binary", text(request->binary), "build_id", text(result->build_id),
			     "functions", (json_int_t)result->function_count, "references",
			     (json_int_t)result->reference_count, "replace", lists[0], "new",
			     lists[1], "warnings", lists[2]);
	emit(document);
}
