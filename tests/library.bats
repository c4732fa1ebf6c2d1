#!/usr/bin/env bats
# library.bats - patches of functions inside a shared library the target has
# loaded (HOTPATCH_REPLACE_IN), not in its main executable.

bats_require_minimum_version 1.5.0
load helpers

setup() { hp_setup; }
teardown() { hp_teardown; }

@test "apply replaces a function inside a loaded shared library" {
	start_target with_lib
	apply_and_wait "$TARGET_PID" "$HP_PATCHES/demo_lib_fix.so" "$TARGET_LOG" demo '+70'
	assert_patch_mapped "$TARGET_PID" demo_lib_fix
	assert_not_traced "$TARGET_PID"
}

@test "revert restores the library function" {
	local mark
	start_target with_lib
	apply_and_wait "$TARGET_PID" "$HP_PATCHES/demo_lib_fix.so" "$TARGET_LOG" demo '+70'
	mark=$(line_count "$TARGET_LOG")
	run -0 --separate-stderr hp revert --pid "$TARGET_PID" demo_lib_fix
	wait_for_result "$TARGET_LOG" "$mark" demo '+7'
	assert_results "$TARGET_LOG" demo '+7'
	assert_target_untouched "$TARGET_PID"
	assert_no_patches "$TARGET_PID"
}

@test "apply --json names the library and the function's address inside it" {
	local address
	start_target with_lib
	run -0 --separate-stderr hp apply --json --pid "$TARGET_PID" "$HP_PATCHES/demo_lib_fix.so"
	address=$(function_address "$TARGET_PID" "$HP_TESTDATA/libs/libdemo.so" demo_value)
	json_is '.patch.functions | length == 1' \
		'.patch.functions[0].object == "libdemo.so"' \
		'.patch.functions[0].function == "demo_value"' \
		".patch.functions[0].address == \"$address\""
	wait_for_result "$TARGET_LOG" 0 demo '+70'
}

@test "list shows the library a patched function lives in" {
	start_target with_lib
	apply_and_wait "$TARGET_PID" "$HP_PATCHES/demo_lib_fix.so" "$TARGET_LOG" demo '+70'
	run -0 --separate-stderr hp list --pid "$TARGET_PID"
	[[ ${lines[0]} =~ ^demo_lib_fix([[:space:]]|$) ]]
	[[ ${lines[1]} =~ ^[[:space:]]+.*libdemo\.so ]] && [[ ${lines[1]} == *demo_value* ]] ||
		fail "list says:"$'\n'"$output"
}

@test "a patch for a library the target has not loaded is refused with exit 4 and changes nothing" {
	start_target with_lib
	run -4 --separate-stderr hp apply --pid "$TARGET_PID" "$HP_PATCHES/missing_library.so"
	assert_error_line libnotloaded.so
	assert_target_untouched "$TARGET_PID"
	assert_results "$TARGET_LOG" demo '+7'
}
