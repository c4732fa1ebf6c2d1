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
load thread_helpers

setup() { hp_setup; }
teardown() { hp_teardown; }

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
