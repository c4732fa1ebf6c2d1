#!/usr/bin/env bats
# consistency.bats - threads in the way: busy threads moved out of a function
# while the others stay stopped, stacks that cannot be unwound (refused unless
# the operator allows them), and the exit-3 error naming every thread.

bats_require_minimum_version 1.5.0
load helpers

setup() { hp_setup; }
teardown() { hp_teardown; }

@test "apply moves eight threads that nearly never leave a function out of it, in one attempt" {
	local mark line
	# resident: the workers spin inside hot() itself; resuming and retrying
	# would almost never find all eight outside at once.  The test build's
	# single-attempt mode allows no retry: only moving the threads can work.
	start_target threads 8 resident
	mark=$(line_count "$TARGET_LOG")
	HOTPATCH_FAULT=single-attempt run -0 --separate-stderr \
		hp apply --pid "$TARGET_PID" --json "$HP_PATCHES/hot_v2.so"
	json_is '.attempts == 1'
	line=$(hot_line_after "$TARGET_LOG" "$mark" ' v1=0 v2=8 other=0 ')
	[[ $line == *" switches=8 "* ]] || fail "workers switched back and forth: $line"
	assert_patch_mapped "$TARGET_PID" hot_v2
	assert_not_traced "$TARGET_PID"
	assert_no_errors "$TARGET_LOG"
}

@test "revert moves threads out of the replacement the same way, and no breakpoint is left behind" {
	local mark line
	start_target threads 8 resident
	mark=$(line_count "$TARGET_LOG")
	HOTPATCH_FAULT=single-attempt run -0 --separate-stderr \
		hp apply --pid "$TARGET_PID" "$HP_PATCHES/hot_v2.so"
	# Every worker ran the new code (at the lowest priority, on a busy
	# machine, one may not have called again before the revert).
	hot_line_after "$TARGET_LOG" "$mark" ' v1=0 v2=8 other=0 switches=8 ' >/dev/null
	HOTPATCH_FAULT=single-attempt run -0 --separate-stderr \
		hp revert --pid "$TARGET_PID" --json
	json_is '.attempts == 1'
	mark=$(line_count "$TARGET_LOG")
	line=$(hot_line_after "$TARGET_LOG" "$mark" ' v1=8 v2=0 other=0 ')
	[[ $line == *" switches=16 "* ]] || fail "workers switched back and forth: $line"
	# A breakpoint left in a debug register would kill the target with
	# SIGTRAP at the next return: it must keep running, untraced.
	sleep 0.2
	mark=$(line_count "$TARGET_LOG")
	hot_line_after "$TARGET_LOG" "$mark" ' v1=8 v2=0 other=0 switches=16 ' >/dev/null
	assert_not_traced "$TARGET_PID"
	assert_no_patches "$TARGET_PID"
	assert_no_errors "$TARGET_LOG"
}

@test "a thread in code without unwind information keeps apply out with exit 3 naming it" {
	local tid code
	start_target jit
	tid=$(sed -n 's/^ready .*jit_tid=\([0-9]*\).*/\1/p' "$TARGET_LOG")
	code=$(sed -n 's/^ready .*jit_code=0x\([0-9a-f]*\).*/\1/p' "$TARGET_LOG")
	run -3 --separate-stderr hp apply --pid "$TARGET_PID" --timeout 1 "$HP_PATCHES/tick_fix.so"
	assert_error_line "thread $tid" "no unwind information" "0x${code:0:8}"
	[[ $stderr == *--allow-unreliable-stacks* ]] || fail "no hint at the option: $stderr"
	assert_target_untouched "$TARGET_PID"
	assert_results "$TARGET_LOG" tick '+1'
	assert_no_patches "$TARGET_PID"
}

@test "check refuses a stack that cannot be unwound and accepts it with --allow-unreliable-stacks" {
	start_target jit
	run -3 --separate-stderr hp check --pid "$TARGET_PID" --timeout 1 "$HP_PATCHES/tick_fix.so"
	assert_error_line "no unwind information"
	run -0 --separate-stderr hp check --pid "$TARGET_PID" --timeout 1 --allow-unreliable-stacks \
		"$HP_PATCHES/tick_fix.so"
	assert_target_untouched "$TARGET_PID"
	assert_no_patches "$TARGET_PID"
}

@test "--allow-unreliable-stacks applies past a thread in code without unwind information" {
	start_target jit
	local mark
	mark=$(line_count "$TARGET_LOG")
	run -0 --separate-stderr hp apply --pid "$TARGET_PID" --allow-unreliable-stacks \
		"$HP_PATCHES/tick_fix.so"
	wait_for_result "$TARGET_LOG" "$mark" tick '+10'
	assert_results "$TARGET_LOG" tick '+10'
	assert_not_traced "$TARGET_PID"
}

@test "exit 3 names every thread in the way, each with a symbolized backtrace" {
	local tids tid
	start_target stuck 3
	tids=$(sed -n 's/^ready .*stuck_tids=\([0-9,]*\).*/\1/p' "$TARGET_LOG")
	run -3 --separate-stderr hp apply --pid "$TARGET_PID" --timeout 1 "$HP_PATCHES/stuck_fix.so"
	assert_error_line "3 threads of pid $TARGET_PID are in the way"
	for tid in ${tids//,/ }; do
		assert_error_line "thread $tid will return into stuck_forever"
		grep -q "^thread $tid: #0 .* stuck_forever+0x[0-9a-f]* (stuck)" <<<"$stderr" ||
			fail "no backtrace through stuck_forever for thread $tid: $stderr"
	done
	assert_target_untouched "$TARGET_PID"
	assert_results "$TARGET_LOG" tick '+1'
	assert_no_patches "$TARGET_PID"
}

@test "the JSON error of exit 3 carries every thread in the way" {
	local tids tid
	start_target stuck 2
	tids=$(sed -n 's/^ready .*stuck_tids=\([0-9,]*\).*/\1/p' "$TARGET_LOG")
	run -3 --separate-stderr hp apply --pid "$TARGET_PID" --timeout 1 --json \
		"$HP_PATCHES/stuck_fix.so"
	for tid in ${tids//,/ }; do
		json_is ".error.message | contains(\"thread $tid \")"
		json_is ".error.detail | contains(\"thread $tid: #0\")"
	done
	assert_target_untouched "$TARGET_PID"
}

@test "apply never runs dlopen on a thread inside the dynamic loader, and says so with exit 3" {
	# The only thread sleeps in nanosleep inside a dl_iterate_phdr callback,
	# holding the loader's lock: dlopen there could deadlock.
	start_target loader_busy
	run -3 --separate-stderr hp apply --pid "$TARGET_PID" --timeout 1 "$HP_PATCHES/tick_fix.so"
	assert_error_line "no thread of pid $TARGET_PID is outside the dynamic loader"
	assert_target_untouched "$TARGET_PID"
	assert_results "$TARGET_LOG" tick '+1'
	assert_no_patches "$TARGET_PID"
}
