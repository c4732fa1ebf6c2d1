#!/usr/bin/env bats
# apply.bats - `hotpatch apply` replaces functions of a running process: the
# target's own output shows the new code running, and the tool leaves it
# untraced with the patch mapped.

bats_require_minimum_version 1.5.0
load helpers

setup() { hp_setup; }
teardown() { hp_teardown; }

@test "apply replaces a function of a running process and its output changes" {
	start_target simple
	apply_and_wait "$TARGET_PID" "$HP_PATCHES/compute_v1.so" "$TARGET_LOG" compute '*3'
	assert_results "$TARGET_LOG" adjust '+1'
	assert_patch_mapped "$TARGET_PID" compute_v1
	assert_not_traced "$TARGET_PID"
}

@test "apply replaces two functions with one patch" {
	start_target simple
	apply_and_wait "$TARGET_PID" "$HP_PATCHES/two_functions.so" "$TARGET_LOG" compute '*4'
	assert_results "$TARGET_LOG" adjust '+2'
	assert_patch_mapped "$TARGET_PID" two_functions
	assert_not_traced "$TARGET_PID"
}

@test "apply patches a non-PIE executable" {
	start_target simple_nopie
	apply_and_wait "$TARGET_PID" "$HP_PATCHES/compute_v1.so" "$TARGET_LOG" compute '*3'
	assert_results "$TARGET_LOG" adjust '+1'
	assert_not_traced "$TARGET_PID"
}

@test "a second patch of the same function takes over from the first" {
	start_target simple
	apply_and_wait "$TARGET_PID" "$HP_PATCHES/compute_v1.so" "$TARGET_LOG" compute '*3'
	[[ $output != *", over "* ]] || fail "the first patch takes over from nothing:"$'\n'"$output"
	# check and apply say whose replacement the new one takes over from.
	run -0 --separate-stderr hp check --json --pid "$TARGET_PID" "$HP_PATCHES/compute_v2.so"
	json_is '.patch.functions[0].over == "compute_v1"'
	apply_and_wait "$TARGET_PID" "$HP_PATCHES/compute_v2.so" "$TARGET_LOG" compute '*5'
	[[ $output =~ compute\ at\ 0x[0-9a-f]+\ -\>\ 0x[0-9a-f]+\ \([a-z]+,\ over\ compute_v1\) ]] ||
		fail "apply does not say it takes over from compute_v1:"$'\n'"$output"
	assert_patch_mapped "$TARGET_PID" compute_v1
	assert_patch_mapped "$TARGET_PID" compute_v2
	assert_not_traced "$TARGET_PID"
}

@test "patches of different functions apply side by side" {
	start_target simple
	apply_and_wait "$TARGET_PID" "$HP_PATCHES/compute_v1.so" "$TARGET_LOG" compute '*3'
	apply_and_wait "$TARGET_PID" "$HP_PATCHES/adjust_fix.so" "$TARGET_LOG" adjust '+3'
	assert_results "$TARGET_LOG" compute '*3'
}

@test "a patch that declares HOTPATCH_NAME is mapped under that name" {
	start_target simple
	apply_and_wait "$TARGET_PID" "$HP_PATCHES/named.so" "$TARGET_LOG" compute '*7'
	assert_patch_mapped "$TARGET_PID" fix-compute-7
	refute_patch_mapped "$TARGET_PID" named
}

@test "apply fails with exit 1 for a pid that does not exist" {
	local pid
	pid=$(dead_pid)
	run -1 --separate-stderr hp apply --pid "$pid" "$HP_PATCHES/compute_v1.so"
	assert_error_line "$pid"
}

@test "apply fails with exit 1 when another tracer holds the target, and leaves it running" {
	start_target simple
	start_tool tracer "$TARGET_PID"
	wait_for_line "$TOOL_LOG" "^tracing pid=$TARGET_PID\$"
	run -1 --separate-stderr hp apply --pid "$TARGET_PID" "$HP_PATCHES/compute_v1.so"
	assert_error_line "$TARGET_PID"
	kill -KILL "$TOOL_PID"
	wait "$TOOL_PID" || true
	assert_target_untouched "$TARGET_PID"
	assert_results "$TARGET_LOG" compute '*2'
}
