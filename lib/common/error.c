/* error.c - filling the error record that every engine function returns
 * through.  It formats text only; it never prints and never exits. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/base.h"

void hp_copy_string(char *destination, size_t size, const char *source)
{
	if (size == 0)
		return;
	snprintf(destination, size, "%s", source ? source : "");
}

const char *hp_base_name(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? slash + 1 : path;
}

static const struct {
	const char *name;
	enum hp_status status;
} kinds[HP_KIND_COUNT] = {
	[HP_KIND_UNSET] = { "failed", HP_FAILED },
	[HP_KIND_FAILED] = { "failed", HP_FAILED },
	[HP_KIND_NO_PROCESS] = { "no_process", HP_FAILED },
	[HP_KIND_NOT_PERMITTED] = { "not_permitted", HP_FAILED },
	[HP_KIND_LOCKED] = { "locked", HP_FAILED },
	[HP_KIND_INTERRUPTED] = { "interrupted", HP_FAILED },
	[HP_KIND_TARGET_EXITED] = { "target_exited", HP_FAILED },
	[HP_KIND_OUTPUT] = { "output", HP_FAILED },
	[HP_KIND_USAGE] = { "usage", HP_USAGE },
	[HP_KIND_BUSY] = { "busy", HP_BUSY },
	[HP_KIND_MISFIT] = { "misfit", HP_MISFIT },
	[HP_KIND_UNTRUSTED] = { "untrusted", HP_MISFIT },
	[HP_KIND_BAD_PATCH] = { "bad_patch", HP_MISFIT },
	[HP_KIND_BUILD_ID_MISMATCH] = { "build_id_mismatch", HP_MISFIT },
	[HP_KIND_MISSING_OBJECT] = { "missing_object", HP_MISFIT },
	[HP_KIND_MISSING_SYMBOL] = { "missing_symbol", HP_MISFIT },
	[HP_KIND_CANNOT_PATCH] = { "cannot_patch", HP_MISFIT },
	[HP_KIND_LOAD_FAILED] = { "load_failed", HP_MISFIT },
	[HP_KIND_NOT_APPLIED] = { "not_applied", HP_MISFIT },
	[HP_KIND_DEPENDS] = { "depends", HP_MISFIT },
	[HP_KIND_NAME_CONFLICT] = { "name_conflict", HP_MISFIT },
	[HP_KIND_UNPINNED] = { "unpinned", HP_MISFIT },
	[HP_KIND_NOT_INSTALLED] = { "not_installed", HP_MISFIT },
};

const char *hp_error_kind_name(enum hp_error_kind kind)
{
	return kind > HP_KIND_UNSET && kind < HP_KIND_COUNT ? kinds[kind].name : "failed";
}

enum hp_status hp_error_kind_status(enum hp_error_kind kind)
{
	return kind > HP_KIND_UNSET && kind < HP_KIND_COUNT ? kinds[kind].status : HP_FAILED;
}

/* A kind set by the step that knew best wins; else the status decides. */
const char *hp_error_kind_of(const struct hp_error *error)
{
	if (error->kind > HP_KIND_UNSET && error->kind < HP_KIND_COUNT &&
	    kinds[error->kind].status == error->status)
		return kinds[error->kind].name;
	switch (error->status) {
	case HP_USAGE: return "usage";
	case HP_BUSY: return "busy";
	case HP_MISFIT: return "misfit";
	default: return "failed";
	}
}

void hp_error_classify(struct hp_error *error, enum hp_error_kind kind)
{
	if (error->kind == HP_KIND_UNSET && kinds[kind].status == error->status)
		error->kind = kind;
}

void hp_error_release(struct hp_error *error)
{
	free(error->blockers);
	error->blockers = NULL;
	error->blocker_count = 0;
}

static HP_PRINTF(4, 0) int fail_with(struct hp_error *error, enum hp_status status,
				      const char *suffix, const char *format, va_list arguments)
{
	int used = vsnprintf(error->message, sizeof(error->message), format, arguments);

	if (suffix && used >= 0 && (size_t)used < sizeof(error->message))
		snprintf(error->message + used, sizeof(error->message) - (size_t)used, ": %s",
			 suffix);
	error->status = status;
	/* A record filled before (a failure put aside) must not lend this one
	 * its kind or errno. */
	error->kind = HP_KIND_UNSET;
	error->error_number = 0;
	return status;
}

int hp_fail(struct hp_error *error, enum hp_status status, const char *format, ...)
{
	va_list arguments;
	int result;

	va_start(arguments, format);
	result = fail_with(error, status, NULL, format, arguments);
	va_end(arguments);
	return result;
}

int hp_fail_as(struct hp_error *error, enum hp_error_kind kind, const char *format, ...)
{
	va_list arguments;
	int result;

	va_start(arguments, format);
	result = fail_with(error, hp_error_kind_status(kind), NULL, format, arguments);
	va_end(arguments);
	error->kind = kind;
	return result;
}

int hp_fail_errno(struct hp_error *error, enum hp_status status, const char *format, ...)
{
	int number = errno;
	va_list arguments;
	int result;

	va_start(arguments, format);
	result = fail_with(error, status, strerror(number), format, arguments);
	va_end(arguments);
	error->error_number = number;
	return result;
}

void hp_hint(struct hp_error *error, const char *format, ...)
{
	va_list arguments;

	va_start(arguments, format);
	vsnprintf(error->hint, sizeof(error->hint), format, arguments);
	va_end(arguments);
}

void hp_error_function(struct hp_error *error, const char *function)
{
	hp_copy_string(error->function, sizeof(error->function), function);
}

void hp_error_file(struct hp_error *error, const char *file)
{
	hp_copy_string(error->file, sizeof(error->file), file);
}

void hp_detail(struct hp_error *error, const char *format, ...)
{
	size_t used = strnlen(error->detail, sizeof(error->detail));
	va_list arguments;

	if (used + 2 >= sizeof(error->detail))
		return;
	if (used > 0)
		error->detail[used++] = '\n';
	va_start(arguments, format);
	vsnprintf(error->detail + used, sizeof(error->detail) - used, format, arguments);
	va_end(arguments);
}

int hp_first_failure(int status, struct hp_error *error, int step,
		     const struct hp_error *step_error)
{
	if (status != HP_OK || step == HP_OK)
		return status;
	*error = *step_error;
	return step;
}
