/* error.c - filling the error record that every engine function returns
 * through.  It formats text only; it never prints and never exits. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

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

static HP_PRINTF(4, 0) int fail_with(struct hp_error *error, enum hp_status status,
				      const char *suffix, const char *format, va_list arguments)
{
	int used = vsnprintf(error->message, sizeof(error->message), format, arguments);

	if (suffix && used >= 0 && (size_t)used < sizeof(error->message))
		snprintf(error->message + used, sizeof(error->message) - (size_t)used, ": %s",
			 suffix);
	error->status = status;
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

int hp_fail_errno(struct hp_error *error, enum hp_status status, const char *format, ...)
{
	const char *reason = strerror(errno);
	va_list arguments;
	int result;

	va_start(arguments, format);
	result = fail_with(error, status, reason, format, arguments);
	va_end(arguments);
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
