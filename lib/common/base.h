/* common/base.h - the error record, time, fault points: what every subsystem uses. */
#ifndef HOTPATCH_COMMON_BASE_H
#define HOTPATCH_COMMON_BASE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "engine.h"

#define HP_MUST_CHECK __attribute__((warn_unused_result))
#define HP_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define HP_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define HP_PAGE_SIZE 4096u
#define HP_PATH_MAX 4096

/* ---- error.c: filling struct hp_error ---- */
int hp_fail(struct hp_error *error, enum hp_status status, const char *format, ...)
	HP_PRINTF(3, 4);
/* Like hp_fail, for a kind more precise than the status (which follows
 * from the kind). */
int hp_fail_as(struct hp_error *error, enum hp_error_kind kind, const char *format, ...)
	HP_PRINTF(3, 4);
/* Names the kind of a failure already made, unless a step nearer to the
 * cause named one; a kind of another exit code is ignored. */
void hp_error_classify(struct hp_error *error, enum hp_error_kind kind);
/* Like hp_fail, appending ": strerror(errno)" and keeping errno. */
int hp_fail_errno(struct hp_error *error, enum hp_status status, const char *format, ...)
	HP_PRINTF(3, 4);
void hp_hint(struct hp_error *error, const char *format, ...) HP_PRINTF(2, 3);
void hp_error_function(struct hp_error *error, const char *function);
void hp_error_file(struct hp_error *error, const char *file);
/* Appends one line to error->detail (backtraces and the like). */
void hp_detail(struct hp_error *error, const char *format, ...) HP_PRINTF(2, 3);
/* Folds a clean-up step's outcome into `status`: the step's error (kept
 * apart in `step_error`) becomes the reported one only when nothing failed
 * before it, so a clean-up never hides the failure that caused it. */
int hp_first_failure(int status, struct hp_error *error, int step,
		     const struct hp_error *step_error) HP_MUST_CHECK;
/* Bounded copy that always terminates. */
void hp_copy_string(char *destination, size_t size, const char *source);
/* The last component of a path. */
const char *hp_base_name(const char *path);

/* ---- clock.c: time and deadlines ---- */
double hp_now(void);
/* Seconds left before `deadline`, never negative. */
double hp_remaining(double deadline);
void hp_sleep(double seconds);

/* ---- fault.c: failure points for the rollback tests (test build only) ---- */
/* True when HOTPATCH_FAULT names `step` and this is a test build. */
bool hp_fault(const char *step);
int hp_fault_fail(struct hp_error *error, const char *step);

#endif
