#!/usr/bin/env bats
# build_tls.bats - `hotpatch build` on fixes whose functions use
# thread-local variables, of the program and of its library: the patch
# reads and writes the running process's own variables, in every thread,
# threads started after the apply included, at -O0 and -O2, PIE or not.
#
# testdata/thread_locals/counters (see counters.c) prints, every 5 ms from
# each thread T,
#   thread T: counts C/V/R/S/L/H
# each its own count of calls: C, V, R and S counted by count_calls() in
# `calls` (static), `visits` (a global of that file), `rounds` (another
# file's) and `lib_seen` (libthreadcount.so's), +1 each (+100 with
# counters.diff); L and H by the library's lib_count() in `lib_calls`
# (static) and `lib_hits` (exported), +1 each (+100 with
# threadcount.diff).  SIGUSR1 starts one more thread.

bats_require_minimum_version 1.5.0
load helpers
load thread_helpers

setup() {
	hp_setup
	COUNTERS=$HP_TESTDATA/thread_locals
	[[ -x $COUNTERS/O0/counters && -x $COUNTERS/dlopen_counter ]] ||
		{ fail "no counters program in $COUNTERS: run 'make testdata'"; return 1; }
	COUNTER_SOURCE=$HP_SOURCE/testdata/thread_locals
	# apply loads only patches that nobody but root could have written.
	umask 022
	chmod go-w "$BATS_TEST_TMPDIR"
	PATCH_DIR=$BATS_TEST_TMPDIR/patches
	mkdir -m 0755 "$PATCH_DIR"
}

teardown() { hp_teardown; }

# build_program LEVEL [-nopie]: the patch of counters.diff for
# LEVEL/counters (or counters-nopie), PATCH; it must build.
build_program() {
	local level=$1 variant=${2:-}

	BINARY=$COUNTERS/$level/counters$variant
	PATCH=$PATCH_DIR/counters-$level$variant.so
	run -0 --separate-stderr hp build --source "$COUNTER_SOURCE" \
		--diff "$COUNTER_SOURCE/counters.diff" \
		--compile "$(<"$COUNTERS/$level/compile$variant")" --binary "$BINARY" -o "$PATCH" --json
	json_is '.ok == true' '[.replace[].function] == ["count_calls"]' '.new == []' \
		'.references == 3'
}

# build_library LEVEL: the patch of threadcount.diff for
# LEVEL/libthreadcount.so, PATCH; it must build.
build_library() {
	local level=$1

	BINARY=$COUNTERS/$level/libthreadcount.so
	PATCH=$PATCH_DIR/threadcount-$level.so
	run -0 --separate-stderr hp build --source "$COUNTER_SOURCE" \
		--diff "$COUNTER_SOURCE/threadcount.diff" \
		--compile "$(<"$COUNTERS/$level/compile-lib")" --binary "$BINARY" \
		--object libthreadcount.so -o "$PATCH" --json
	json_is '.ok == true' '[.replace[].function] == ["lib_count"]' '.new == []' \
		'.references == 2'
}

# last_value_before LOG MARK THREAD FIELD: the FIELD-th count of the last
# line THREAD printed up to line MARK.
last_value_before() {
	head -n "$2" "$1" | grep "^thread $3: counts [0-9/]*$" | tail -n 1 |
		sed -E 's/^thread [0-9]+: counts //' | tr '/' ' ' | awk -v f="$4" '{print $f}'
}

# assert_counting MARK STEPS [FIRSTS]: after line MARK of the target's log,
# thread 1 (started before) and thread 2 (started after line MARK) each
# count in steps of STEPS (one per field, "100 100 100 100 1 1"): thread 1
# goes on from its own count (its first value after MARK is its last
# before plus the old step or the new one: a call on either side of the
# apply), thread 2 starts from its own fresh copies (first value = step).
assert_counting() {
	local mark=$1 steps=($2) field values before first

	for field in 1 2 3 4 5 6; do
		values=$(thread_values "$TARGET_LOG" "$mark" 1 10 "$field") || { fail "$values"; return 1; }
		before=$(last_value_before "$TARGET_LOG" "$mark" 1 "$field")
		first=${values%%$'\n'*}
		[[ -n $before ]] && ((first == before + 1 || first == before + ${steps[field - 1]})) ||
			{ fail "field $field of thread 1 went from '$before' to $first"; return 1; }
		assert_steps "$(tail -n +2 <<<"$values")" "${steps[field - 1]}" || return 1
		values=$(thread_values "$TARGET_LOG" "$mark" 2 10 "$field") || { fail "$values"; return 1; }
		assert_steps "$values" "${steps[field - 1]}" "${steps[field - 1]}" || return 1
	done
}

# apply_story PROGRAM STEPS: start PROGRAM, apply PATCH, start thread 2,
# and check that both threads count in their own variables in STEPS.
apply_story() {
	local program=$1 steps=$2 mark

	start_executable "$program" || return 1
	wait_for_line "$TARGET_LOG" '^thread 1: counts ' >/dev/null || return 1
	run -0 --separate-stderr hp apply --pid "$TARGET_PID" "$PATCH" || return 1
	mark=$(line_count "$TARGET_LOG")
	kill -USR1 "$TARGET_PID"
	wait_for_line_after "$TARGET_LOG" "$mark" '^thread 2: ' >/dev/null || return 1
	assert_counting "$mark" "$steps" || return 1
	assert_not_traced "$TARGET_PID"
}

@test "-O0: a fixed function of the program counts in its own, another file's and a library's thread-local variables, each thread its own, threads started after the apply included" {
	build_program O0
	apply_story "$BINARY" "100 100 100 100 1 1"
}

@test "-O2: a fixed function of the program counts in its own, another file's and a library's thread-local variables, each thread its own" {
	build_program O2
	apply_story "$BINARY" "100 100 100 100 1 1"
}

@test "-O0, not PIE: a fixed function of the program counts in its thread-local variables, each thread its own" {
	build_program O0 -nopie
	apply_story "$BINARY" "100 100 100 100 1 1"
}

@test "-O2, not PIE: a fixed function of the program counts in its thread-local variables, each thread its own" {
	build_program O2 -nopie
	apply_story "$BINARY" "100 100 100 100 1 1"
}

@test "-O0: a fixed function of a library counts in the library's file-local and exported thread-local variables, each thread its own" {
	build_library O0
	apply_story "$COUNTERS/O0/counters" "1 1 1 1 100 100"
}

@test "-O2: a fixed function of a library counts in the library's file-local and exported thread-local variables, each thread its own" {
	build_library O2
	apply_story "$COUNTERS/O2/counters" "1 1 1 1 100 100"
}

@test "after a revert each thread counts on in its own variables with the old code" {
	local mark

	build_program O2
	apply_story "$BINARY" "100 100 100 100 1 1"
	run -0 --separate-stderr hp revert --pid "$TARGET_PID"
	mark=$(line_count "$TARGET_LOG")
	kill -USR1 "$TARGET_PID"
	wait_for_line_after "$TARGET_LOG" "$mark" '^thread 3: ' >/dev/null
	for thread in 1 2; do
		values=$(thread_values "$TARGET_LOG" "$mark" "$thread" 10 1) || { fail "$values"; return 1; }
		assert_steps "$(tail -n +2 <<<"$values")" 1
	done
	values=$(thread_values "$TARGET_LOG" "$mark" 3 10 1) || { fail "$values"; return 1; }
	assert_steps "$values" 1 1
}

@test "a library loaded with dlopen keeps its thread-local variables where the patch's code cannot reach them: apply refuses with exit 4 naming one, and nothing changes" {
	local mark values

	build_library O2
	start_executable "$COUNTERS/dlopen_counter" "$BINARY"
	wait_for_line "$TARGET_LOG" '^thread 1: counts ' >/dev/null
	run -4 --separate-stderr hp apply --pid "$TARGET_PID" "$PATCH" --json
	json_is '.ok == false' '.exit_code == 4' '.error.function == "lib_calls" or .error.function == "lib_hits"' \
		'.error.message | test("dlopen")'
	mark=$(line_count "$TARGET_LOG")
	for field in 1 2; do
		values=$(thread_values "$TARGET_LOG" "$mark" 1 10 "$field") || { fail "$values"; return 1; }
		assert_steps "$values" 1
	done
	refute_patch_mapped "$TARGET_PID" threadcount-O2
	assert_not_traced "$TARGET_PID"
}
