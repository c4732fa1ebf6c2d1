#!/usr/bin/env bats
# check.bats - `hotpatch check` decides everything apply would, with the same
# exit codes, and never changes the process.

bats_require_minimum_version 1.5.0
load helpers

setup() { hp_setup; }
teardown() { hp_teardown; }

@test "check accepts a patch that fits and leaves the process unchanged" {
	start_target simple
	run -0 --separate-stderr hp check --pid "$TARGET_PID" "$HP_PATCHES/two_functions.so"
	assert_target_untouched "$TARGET_PID"
	assert_results "$TARGET_LOG" compute '*2'
	assert_results "$TARGET_LOG" adjust '+1'
	assert_no_patches "$TARGET_PID"
}

@test "check leaves the patches already applied as they were" {
	start_target simple
	apply_and_wait "$TARGET_PID" "$HP_PATCHES/compute_v1.so" "$TARGET_LOG" compute '*3'
	run -0 --separate-stderr hp check --pid "$TARGET_PID" "$HP_PATCHES/compute_v2.so"
	assert_not_traced "$TARGET_PID"
	refute_patch_mapped "$TARGET_PID" compute_v2
	assert_results "$TARGET_LOG" compute '*3'
	run -0 --separate-stderr hp list --pid "$TARGET_PID"
	[[ ${#lines[@]} == 2 && ${lines[0]} =~ ^compute_v1([[:space:]]|$) ]] || fail "list says:"$'\n'"$output"
}

@test "check accepts a patch of a library function" {
	start_target with_lib
	run -0 --separate-stderr hp check --pid "$TARGET_PID" "$HP_PATCHES/demo_lib_fix.so"
	assert_target_untouched "$TARGET_PID"
	assert_results "$TARGET_LOG" demo '+7'
}

@test "check refuses with exit 4 a patch naming a function the target lacks" {
	start_target simple
	run -4 --separate-stderr hp check --pid "$TARGET_PID" "$HP_PATCHES/missing_function.so"
	assert_error_line no_such_function
	assert_target_untouched "$TARGET_PID"
	assert_results "$TARGET_LOG" compute '*2'
}

@test "check refuses with exit 4 a file that is not a patch" {
	start_target simple
	run -4 --separate-stderr hp check --pid "$TARGET_PID" "$HP_PATCHES/garbage.so"
	assert_error_line garbage.so
	assert_target_untouched "$TARGET_PID"
}

@test "check refuses with exit 4 a function too short for a jump" {
	start_target unpatchable
	run -4 --separate-stderr hp check --pid "$TARGET_PID" "$HP_PATCHES/tiny_fix.so"
	assert_error_line tiny_function
	assert_target_untouched "$TARGET_PID"
}

@test "check exits 3 naming thread and function when a function never leaves a stack" {
	local tid
	start_target stuck
	tid=$(sed -n 's/^ready .*stuck_tid=\([0-9]*\).*/\1/p' "$TARGET_LOG")
	run -3 --separate-stderr hp check --pid "$TARGET_PID" --timeout 1 "$HP_PATCHES/stuck_fix.so"
	assert_error_line "$tid" stuck_forever
	assert_target_untouched "$TARGET_PID"
	assert_results "$TARGET_LOG" tick '+1'
}

@test "check fails with exit 1 for a pid that does not exist" {
	local pid
	pid=$(dead_pid)
	run -1 --separate-stderr hp check --pid "$pid" "$HP_PATCHES/compute_v1.so"
	assert_error_line "$pid"
}
