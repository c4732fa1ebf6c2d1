#!/usr/bin/env bats
# refusals.bats - patches that do not fit the target are refused with exit 4,
# one stderr line naming what is wrong, and the target exactly as it was.

bats_require_minimum_version 1.5.0
load helpers

setup() { hp_setup; }
teardown() { hp_teardown; }

# refuse_on_simple PATCH NEEDLE...: apply PATCH to the simple target, expect
# exit 4 and an error line naming every NEEDLE, and the target unchanged.
refuse_on_simple() {
	local patch=$1
	shift
	start_target simple
	run -4 --separate-stderr hp apply --pid "$TARGET_PID" "$HP_PATCHES/$patch"
	assert_error_line "$@"
	assert_target_untouched "$TARGET_PID"
	assert_results "$TARGET_LOG" compute '*2'
	assert_results "$TARGET_LOG" adjust '+1'
	assert_no_patches "$TARGET_PID"
}

@test "a file of text that is not ELF is refused with exit 4" {
	refuse_on_simple garbage.so garbage.so
}

@test "an empty file is refused with exit 4" {
	refuse_on_simple empty.so empty.so
}

@test "an ELF file cut off after its header is refused with exit 4" {
	refuse_on_simple truncated.so truncated.so
}

@test "a patch built for another machine is refused with exit 4" {
	refuse_on_simple wrongmachine.so wrongmachine.so
}

@test "a shared object without a replacement table is refused with exit 4" {
	refuse_on_simple no_table.so no_table.so
}

@test "a patch naming a function the target lacks is refused with exit 4" {
	refuse_on_simple missing_function.so no_such_function
}

@test "a patch for a library the target has not loaded is refused with exit 4" {
	refuse_on_simple missing_library.so libnotloaded.so
}

@test "a patch for libdemo.so is refused with exit 4 by a target that does not load it" {
	refuse_on_simple demo_lib_fix.so libdemo.so
}

@test "a function too short for a 5-byte jump is refused with exit 4" {
	start_target unpatchable
	run -4 --separate-stderr hp apply --pid "$TARGET_PID" "$HP_PATCHES/tiny_fix.so"
	assert_error_line tiny_function
	assert_target_untouched "$TARGET_PID"
	wait_for_line_after "$TARGET_LOG" "$(line_count "$TARGET_LOG")" '^tiny -> 0 neighbour -> 7$'
	assert_results "$TARGET_LOG" loop '+0'
}

@test "a function whose code branches into its first 5 bytes is refused with exit 4" {
	start_target unpatchable
	run -4 --separate-stderr hp apply --pid "$TARGET_PID" "$HP_PATCHES/loop_fix.so"
	assert_error_line loop_function
	assert_target_untouched "$TARGET_PID"
	assert_results "$TARGET_LOG" loop '+0'
}

@test "a patch with one function that fits and one that does not changes neither" {
	start_target unpatchable
	run -4 --separate-stderr hp apply --pid "$TARGET_PID" "$HP_PATCHES/compute_and_tiny.so"
	assert_error_line tiny_function
	assert_target_untouched "$TARGET_PID"
	assert_results "$TARGET_LOG" compute '*2'
	wait_for_line_after "$TARGET_LOG" "$(line_count "$TARGET_LOG")" '^tiny -> 0 neighbour -> 7$'
}

@test "the target with unpatchable functions still accepts a patch of one that fits" {
	start_target unpatchable
	apply_and_wait "$TARGET_PID" "$HP_PATCHES/compute_v1.so" "$TARGET_LOG" compute '*3'
	assert_results "$TARGET_LOG" loop '+0'
	wait_for_line_after "$TARGET_LOG" "$(line_count "$TARGET_LOG")" '^tiny -> 0 neighbour -> 7$'
}
