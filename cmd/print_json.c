/* print_json.c - the JSON printers (jansson): one document on stdout per
 * command, success or failure.  Text is carried whole: RFC 8259 escaping
 * (jansson's), no length limit, and UTF-8 kept; only bytes that are not
 * UTF-8 (JSON cannot hold them) become U+FFFD.  A value the command could
 * not know, or that does not concern it, is null. */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"

/* The length of the well-formed UTF-8 sequence at `s`, or 0. */
static size_t utf8_sequence(const unsigned char *s)
{
	unsigned int code;
	size_t length;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		length = 2, code = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		length = 3, code = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		length = 4, code = s[0] & 0x07;
	else
		return 0;
	for (size_t i = 1; i < length; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		code = (code << 6) | (s[i] & 0x3f);
	}
	/* Overlong forms, surrogates and beyond U+10FFFF are not UTF-8. */
	if ((length == 3 && code < 0x800) || (length == 4 && code < 0x10000) ||
	    (code >= 0xd800 && code <= 0xdfff) || code > 0x10ffff)
		return 0;
	return length;
}

json_t *json_text(const char *value)
{
	const unsigned char *s = (const unsigned char *)value;
	size_t length = strlen(value), used = 0;
	json_t *text = json_stringn(value, length);
	char *clean;

	if (text)
		return text;
	clean = malloc(3 * length + 1);	/* U+FFFD is 3 bytes for each bad one */
	if (!clean)
		return json_null();
	for (size_t i = 0; i < length;) {
		size_t sequence = utf8_sequence(s + i);

		if (sequence) {
			memcpy(clean + used, s + i, sequence);
			used += sequence;
			i += sequence;
		} else {
			memcpy(clean + used, "\xef\xbf\xbd", 3);
			used += 3;
			i++;
		}
	}
	text = json_stringn(clean, used);
	free(clean);
	return text ? text : json_null();
}

/* A text that may be absent: "" is null. */
static json_t *maybe_text(const char *value)
{
	return value[0] ? json_text(value) : json_null();
}

static json_t *address(uint64_t value)
{
	char buffer[32];

	snprintf(buffer, sizeof(buffer), "0x%" PRIx64, value);
	return json_string(buffer);
}

static json_t *maybe_number(uint64_t value)
{
	return value ? json_integer((json_int_t)value) : json_null();
}

static json_t *maybe_address(uint64_t value)
{
	return value ? address(value) : json_null();
}

/* "CVE-1 CVE-2" as a JSON array. */
json_t *json_id_list(const char *ids)
{
	json_t *list = json_array();

	for (const char *id = ids; *id;) {
		size_t length = strcspn(id, " ");
		char *one = strndup(id, length);

		if (length && one)
			json_array_append_new(list, json_text(one));
		free(one);
		id += length;
		id += strspn(id, " ");
	}
	return list;
}

void json_emit(json_t *document)
{
	if (!document)
		return;
	json_dumpf(document, stdout, JSON_COMPACT);
	fputc('\n', stdout);
	json_decref(document);
}

static json_t *references_json(const struct hp_patch_report *patch)
{
	json_t *references = json_array();

	for (size_t i = 0; i < patch->reference_count; i++) {
		const struct hp_reference_report *r = &patch->references[i];

		json_array_append_new(references,
				      json_pack("{s:o, s:o, s:o, s:o}", "object", json_text(r->object),
						"file", json_text(r->file), "symbol",
						json_text(r->symbol), "address", address(r->address)));
	}
	return references;
}

/* check loads nothing: the replacement, the load address and the sequence
 * number are unknown there, hence null. */
static json_t *patch_json(const struct hp_patch_report *patch, bool with_references)
{
	json_t *functions = json_array(), *document;
	char applied[32];

	for (size_t i = 0; i < patch->function_count; i++) {
		const struct hp_function_report *f = &patch->functions[i];

		json_array_append_new(functions,
				      json_pack("{s:o, s:o, s:o, s:o, s:o, s:s, s:o}", "object",
						json_text(f->object), "function",
						json_text(f->function), "address",
						address(f->address), "jump_address",
						maybe_address(f->jump_address), "replacement",
						maybe_address(f->replacement), "jump",
						f->jump_kind[0] ? f->jump_kind : "none", "over",
						maybe_text(f->over)));
	}
	document = json_pack("{s:o, s:s, s:o, s:o, s:o, s:o, s:o, s:o}", "name",
			     json_text(patch->name), "state", patch->state, "path",
			     maybe_text(patch->path), "description", json_text(patch->description),
			     "ids", json_id_list(patch->ids), "load_address",
			     maybe_address(patch->load_address), "sequence",
			     patch->sequence ? json_integer((json_int_t)patch->sequence)
					     : json_null(),
			     "functions", functions);
	/* Unknown (check, or a record an older hotpatch wrote): null. */
	json_object_set_new(document, "sha256", maybe_text(patch->sha256));
	json_object_set_new(document, "applied", utc_time(patch->applied, applied, sizeof(applied))
							 ? json_string(applied)
							 : json_null());
	json_object_set_new(document, "applied_epoch", maybe_number(patch->applied));
	json_object_set_new(document, "warning", maybe_text(patch->warning));
	json_object_set_new(document, "run", maybe_text(patch->next_step));
	json_object_set_new(document, "cumulative", json_boolean(patch->cumulative));
	json_object_set_new(document, "fixes", json_id_list(patch->fixes));
	json_object_set_new(document, "excluded", json_id_list(patch->excluded));
	/* apply and check of a cumulative patch: the older ones it takes over. */
	if (with_references)
		json_object_set_new(document, "replaced",
				    json_id_list(patch->replaced ? patch->replaced : ""));
	if (with_references)
		json_object_set_new(document, "references", references_json(patch));
	return document;
}

/* What apply, check and sign read: the hash of its bytes and who signed
 * ("none", the audit record's word, when nobody did). */
static json_t *identity_json(const struct hp_patch_identity *identity)
{
	return json_pack("{s:o, s:s, s:s}", "name", json_text(identity->name), "sha256",
			 identity->sha256, "signer", identity->signer[0] ? identity->signer : "none");
}

static json_t *leftovers_json(const struct hp_result *result)
{
	json_t *leftovers = json_array();

	for (size_t i = 0; i < result->leftover_count; i++) {
		const struct hp_leftover_report *leftover = &result->leftovers[i];

		json_array_append_new(leftovers,
				      json_pack("{s:s, s:o, s:o, s:b, s:o}", "kind", leftover->kind,
						"name", maybe_text(leftover->name), "address",
						address(leftover->address), "reclaimed",
						leftover->reclaimed, "reason",
						json_text(leftover->reason)));
	}
	return leftovers;
}

static json_t *interrupted_json(const struct hp_interrupted_command *killed)
{
	if (!killed->command[0])
		return json_null();
	return json_pack("{s:o, s:i, s:I}", "command", json_text(killed->command),
			 "hotpatch_pid", (int)killed->pid, "started", (json_int_t)killed->started);
}

/* list: the command at work now, its fields null until it has noted itself. */
static json_t *at_work_json(const struct hp_result *result)
{
	const struct hp_interrupted_command *working = &result->working;

	if (!result->at_work)
		return json_null();
	return json_pack("{s:o, s:o, s:o}", "command", maybe_text(working->command),
			 "hotpatch_pid", maybe_number((uint64_t)working->pid), "started",
			 maybe_number(working->started));
}

static json_t *pid_json(const struct output *output)
{
	return output->pid > 0 ? json_integer(output->pid) : json_null();
}

static json_t *success_head(const struct output *output)
{
	return json_pack("{s:s, s:b, s:i, s:o}", "command", output->command, "ok", 1, "exit_code",
			 0, "pid", pid_json(output));
}

/* What every command about a process says of killed commands and time. */
static void add_common(json_t *document, const struct hp_result *result)
{
	json_object_set_new(document, "leftovers", leftovers_json(result));
	json_object_set_new(document, "interrupted", interrupted_json(&result->interrupted));
	json_object_set_new(document, "elapsed_ms", json_real(result->elapsed_seconds * 1e3));
}

void print_list_json(const struct output *output, const struct invocation *invocation,
		     const struct outcome *outcome)
{
	const struct hp_result *result = &outcome->engine;
	json_t *document = success_head(output), *patches = json_array();

	(void)invocation;
	for (size_t i = 0; i < result->patch_count; i++)
		json_array_append_new(patches, patch_json(&result->patches[i], false));
	json_object_set_new(document, "patches", patches);
	json_object_set_new(document, "at_work", at_work_json(result));
	add_common(document, result);
	json_emit(document);
}

/* The memory scans for suspended coroutines: how many, what the last read. */
static json_t *scan_json(const struct hp_scan_report *scan)
{
	return json_pack("{s:i, s:I, s:I, s:b, s:f}", "scans", (int)scan->scans, "bytes",
			 (json_int_t)scan->bytes, "bytes_left", (json_int_t)scan->bytes_left,
			 "complete", scan->scans == 0 || scan->complete, "elapsed_ms",
			 scan->seconds * 1e3);
}

/* apply, revert and check. */
void print_change_json(const struct output *output, const struct invocation *invocation,
		       const struct outcome *outcome)
{
	const struct hp_result *result = &outcome->engine;
	json_t *document = success_head(output);

	if (result->patch_count)
		json_object_set_new(document, "patch",
				    patch_json(&result->patches[0],
					       invocation->command->engine != hp_revert));
	json_object_set_new(document, "attempts", json_integer(result->attempts));
	json_object_set_new(document, "threads", json_integer(result->thread_count));
	json_object_set_new(document, "blackout_us", json_real(result->blackout_seconds * 1e6));
	if (result->stop_mode[0])
		json_object_set_new(document, "stop", json_string(result->stop_mode));
	if (result->stop_mode[0] && result->stop_all_reason[0])
		json_object_set_new(document, "stop_all_reason",
				    json_string(result->stop_all_reason));
	if (result->stop_mode[0])
		json_object_set_new(document, "threads_asleep",
				    json_integer(result->threads_asleep));
	json_object_set_new(document, "suspended_scan", scan_json(&result->suspended_scan));
	if (result->patch_file.sha256[0])
		json_object_set_new(document, "patch_file", identity_json(&result->patch_file));
	add_common(document, result);
	json_emit(document);
}

void print_signing_json(const struct output *output, const struct invocation *invocation,
			const struct outcome *outcome)
{
	const struct hp_signing *result = &outcome->signing;
	json_t *document = json_pack("{s:s, s:b, s:i, s:s}", "command", output->command, "ok", 1,
				     "exit_code", 0, "key_id", result->key_id);

	if (invocation->out) {
		json_object_set_new(document, "secret_key", json_text(result->secret_key));
		json_object_set_new(document, "public_key", json_text(result->public_key));
	} else {
		json_object_set_new(document, "signature", json_text(result->signature));
		json_object_set_new(document, "patch_file", identity_json(&result->patch));
	}
	json_emit(document);
}

void print_build_json(const struct output *output, const struct invocation *invocation,
		      const struct outcome *outcome)
{
	const struct hp_build_request *request = &invocation->build;
	const struct hp_build_result *result = &outcome->build;
	json_t *lists[3];

	(void)output;
	for (size_t k = 0; k < 3; k++)
		lists[k] = json_array();
	for (size_t i = 0; i < result->line_count; i++) {
		const struct hp_build_line *line = &result->lines[i];

		if (line->kind == HP_BUILD_WARNING)
			json_array_append_new(lists[line->kind], json_text(line->text));
		else
			json_array_append_new(lists[line->kind],
					      json_pack("{s:o, s:o, s:o, s:o}", "function",
							json_text(line->function), "file",
							json_text(line->file), "inlines",
							json_text(line->text), "fixes",
							json_id_list(line->fixes)));
	}
	json_emit(json_pack("{s:s, s:b, s:i, s:o, s:o, s:o, s:I, s:I, s:o, s:o, s:o}", "command",
			    "build", "ok", 1, "exit_code", 0, "output", json_text(request->output),
			    "binary", json_text(request->binary), "build_id",
			    maybe_text(result->build_id), "functions",
			    (json_int_t)result->function_count, "references",
			    (json_int_t)result->reference_count, "replace", lists[0], "new",
			    lists[1], "warnings", lists[2]));
}

static json_t *blockers_json(const struct hp_error *error)
{
	json_t *blockers = json_array();

	for (size_t i = 0; i < error->blocker_count; i++) {
		const struct hp_blocker_report *b = &error->blockers[i];
		json_t *backtrace = json_array();
		bool unwinding = strcmp(b->reason, "unwinding") == 0;
		bool suspended = strcmp(b->reason, "suspended") == 0;

		for (size_t f = 0; f < b->frame_count; f++)
			json_array_append_new(backtrace, json_text(b->frames[f]));
		json_array_append_new(
			blockers,
			json_pack("{s:o, s:s, s:o, s:o, s:o, s:o, s:o, s:o}", "tid",
				  b->tid > 0 ? json_integer(b->tid) : json_null(), "reason",
				  b->reason, "function", maybe_text(b->function), "frame",
				  unwinding || suspended ? json_null()
							 : json_integer((json_int_t)b->frame),
				  "saved_at", suspended ? maybe_address(b->saved_at) : json_null(),
				  "unknown_ip", unwinding ? maybe_address(b->unknown_ip) : json_null(),
				  "unwind_error",
				  unwinding && b->unwind_error ? json_integer(b->unwind_error)
							       : json_null(),
				  "backtrace", backtrace));
	}
	return blockers;
}

static json_t *error_json(const struct hp_error *error)
{
	const char *errno_name = error->error_number ? strerrorname_np(error->error_number) : NULL;

	return json_pack("{s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "kind",
			 hp_error_kind_of(error), "message", json_text(error->message), "errno",
			 error->error_number ? json_integer(error->error_number) : json_null(),
			 "errno_name", errno_name ? json_string(errno_name) : json_null(), "tid",
			 error->tid > 0 ? json_integer(error->tid) : json_null(), "function",
			 maybe_text(error->function), "file", maybe_text(error->file), "hint",
			 maybe_text(error->hint), "detail", maybe_text(error->detail), "blockers",
			 blockers_json(error));
}

void print_failure(const struct output *output, const struct hp_error *error, int exit_code)
{
	print_failure_text(error);
	if (!output->json)
		return;
	json_emit(json_pack("{s:s, s:b, s:i, s:o, s:o}", "command", output->command, "ok", 0,
			    "exit_code", exit_code, "pid", pid_json(output), "error",
			    error_json(error)));
}
