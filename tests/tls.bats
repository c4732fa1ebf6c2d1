#!/usr/bin/env bats
# tls.bats - a patch reads and writes the target's own thread-local
# variables (HOTPATCH_THREAD_SYMBOL): of the executable and of a library,
# file-local and exported, each thread its own copy, in threads that
# existed before the apply and in threads started after it.
#
# targets/tls_threads: each thread prints "thread T: count C" every 5 ms,
# C its own count (a static __thread of the executable), +1 per call;
# tls_fix.so makes it +100.  targets/tls_lib_threads prints "thread T: lib
# C/S", C and S a file-local and an exported __thread of libtlscount.so,
# +1 each per call; tls_lib_fix.so makes them +100.  SIGUSR1 starts one
# more thread in both.

bats_require_minimum_version 1.5.0
load helpers

setup() { hp_setup; }
teardown() { hp_teardown; }

# thread_values LOG MARK THREAD COUNT FIELD: the first COUNT values (the
# FIELD-th number after "thread THREAD: ") printed after line MARK.
thread_values() {
	local log=$1 mark=$2 thread=$3 count=$4 field=$5 deadline=$((SECONDS + HP_WAIT_SECONDS)) values

	while :; do
		values=$(complete_lines_after "$log" "$mark" | grep "^thread $thread: " |
			sed -E 's/^thread [0-9]+: [a-z]+ //' | tr '/' ' ' | awk -v f="$field" '{print $f}' |
			head -n "$count")
		(($(printf '%s' "$values" | grep -c '^') >= count)) && break
		((SECONDS < deadline)) || { echo "no $count lines of thread $thread after line $mark" >&2; return 1; }
		sleep 0.02
	done
	printf '%s\n' "$values"
}

# assert_steps VALUES STEP [FIRST]: each value is the one before plus STEP
# (and the first is FIRST, when given).
assert_steps() {
	local values=$1 step=$2 first=${3:-} previous=""

	while read -r value; do
		if [[ -z $previous && -n $first ]]; then
			((value == first)) || { fail "the first value is $value, expected $first:"$'\n'"$values"; return 1; }
		elif [[ -n $previous ]]; then
			((value == previous + step)) ||
				{ fail "values do not go up by $step:"$'\n'"$values"; return 1; }
		fi
		previous=$value
	done <<<"$values"
}

# tls_story TARGET PATCH FIELDS: apply PATCH to TARGET; the thread started
# before goes on from its own count in steps of 100, a thread started after
# starts from 100 (its own fresh copy), for each FIELD.
tls_story() {
	local target=$1 patch=$2 fields=$3 mark values field

	start_target "$target"
	wait_for_line "$TARGET_LOG" '^thread 1: ' >/dev/null
	run -0 --separate-stderr hp apply --pid "$TARGET_PID" "$HP_PATCHES/$patch.so"
	mark=$(line_count "$TARGET_LOG")
	kill -USR1 "$TARGET_PID"
	wait_for_line_after "$TARGET_LOG" "$mark" '^thread 2: ' >/dev/null
	for field in $fields; do
		values=$(thread_values "$TARGET_LOG" "$mark" 1 10 "$field") || { fail "$values"; return 1; }
		assert_steps "$values" 100 || return 1
		values=$(thread_values "$TARGET_LOG" "$mark" 2 10 "$field") || { fail "$values"; return 1; }
		assert_steps "$values" 100 100 || return 1
	done
	assert_not_traced "$TARGET_PID"
}

@test "a patch counts in the executable's static __thread variable, each thread its own, threads started after the apply included" {
	tls_story tls_threads tls_fix 1
}

@test "a patch counts in a library's file-local and exported __thread variables, each thread its own, threads started after the apply included" {
	tls_story tls_lib_threads tls_lib_fix "1 2"
}
