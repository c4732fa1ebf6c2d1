#!/usr/bin/env bats
# revert.bats - `hotpatch revert` takes patches out again, newest first by
# default, and refuses to take out one that a later patch stacks on.

bats_require_minimum_version 1.5.0
load helpers

setup() { hp_setup; }
teardown() { hp_teardown; }

# revert_and_wait PID LOG NAME RELATION [PATCH]: reverts (the newest, or PATCH)
# and waits until the target's results follow RELATION again.
revert_and_wait() {
	local pid=$1 log=$2 name=$3 relation=$4 mark
	shift 4
	mark=$(line_count "$log")
	run -0 --separate-stderr hp revert --pid "$pid" "$@"
	wait_for_result "$log" "$mark" "$name" "$relation"
	assert_results "$log" "$name" "$relation"
}

@test "revert without a name takes out the newest patch and restores the original code" {
	start_target simple
	apply_and_wait "$TARGET_PID" "$HP_PATCHES/compute_v1.so" "$TARGET_LOG" compute '*3'
	revert_and_wait "$TARGET_PID" "$TARGET_LOG" compute '*2'
	refute_patch_mapped "$TARGET_PID" compute_v1
	assert_target_untouched "$TARGET_PID"
	assert_no_patches "$TARGET_PID"
}

@test "revert restores both functions of a two-function patch" {
	start_target simple
	apply_and_wait "$TARGET_PID" "$HP_PATCHES/two_functions.so" "$TARGET_LOG" compute '*4'
	revert_and_wait "$TARGET_PID" "$TARGET_LOG" compute '*2' two_functions
	assert_results "$TARGET_LOG" adjust '+1'
	assert_no_patches "$TARGET_PID"
}

@test "stacked patches of one function revert newest first back to the original" {
	start_target simple
	apply_and_wait "$TARGET_PID" "$HP_PATCHES/compute_v1.so" "$TARGET_LOG" compute '*3'
	apply_and_wait "$TARGET_PID" "$HP_PATCHES/compute_v2.so" "$TARGET_LOG" compute '*5'
	revert_and_wait "$TARGET_PID" "$TARGET_LOG" compute '*3'
	refute_patch_mapped "$TARGET_PID" compute_v2
	assert_patch_mapped "$TARGET_PID" compute_v1
	revert_and_wait "$TARGET_PID" "$TARGET_LOG" compute '*2'
	assert_target_untouched "$TARGET_PID"
	assert_no_patches "$TARGET_PID"
}

@test "revert by name takes out an older patch that no later patch depends on" {
	start_target simple
	apply_and_wait "$TARGET_PID" "$HP_PATCHES/compute_v1.so" "$TARGET_LOG" compute '*3'
	apply_and_wait "$TARGET_PID" "$HP_PATCHES/adjust_fix.so" "$TARGET_LOG" adjust '+3'
	revert_and_wait "$TARGET_PID" "$TARGET_LOG" compute '*2' compute_v1
	assert_results "$TARGET_LOG" adjust '+3'
	run -0 --separate-stderr hp list --pid "$TARGET_PID"
	[[ ${lines[0]} == adjust_fix* ]]
	[[ $output != *compute_v1* ]]
}

@test "revert refuses with exit 4 to take out a patch that a later patch stacks on" {
	start_target simple
	apply_and_wait "$TARGET_PID" "$HP_PATCHES/compute_v1.so" "$TARGET_LOG" compute '*3'
	apply_and_wait "$TARGET_PID" "$HP_PATCHES/compute_v2.so" "$TARGET_LOG" compute '*5'
	run -4 --separate-stderr hp revert --pid "$TARGET_PID" compute_v1
	assert_error_line compute_v1
	assert_not_traced "$TARGET_PID"
	assert_results "$TARGET_LOG" compute '*5'
	run -0 --separate-stderr hp list --pid "$TARGET_PID"
	[[ ${lines[0]} == compute_v2* ]]
	[[ $output == *compute_v1* ]]
}

@test "revert by the name a patch declared" {
	start_target simple
	apply_and_wait "$TARGET_PID" "$HP_PATCHES/named.so" "$TARGET_LOG" compute '*7'
	revert_and_wait "$TARGET_PID" "$TARGET_LOG" compute '*2' fix-compute-7
	assert_target_untouched "$TARGET_PID"
}

@test "revert of a patch name that is not applied fails with exit 4 and changes nothing" {
	start_target simple
	apply_and_wait "$TARGET_PID" "$HP_PATCHES/compute_v1.so" "$TARGET_LOG" compute '*3'
	run -4 --separate-stderr hp revert --pid "$TARGET_PID" no_such_patch
	assert_error_line no_such_patch
	assert_not_traced "$TARGET_PID"
	assert_results "$TARGET_LOG" compute '*3'
	assert_patch_mapped "$TARGET_PID" compute_v1
}

@test "revert with nothing applied fails with exit 4 and leaves the target untouched" {
	start_target simple
	run -4 --separate-stderr hp revert --pid "$TARGET_PID"
	assert_error_line "$TARGET_PID"
	assert_target_untouched "$TARGET_PID"
	assert_results "$TARGET_LOG" compute '*2'
}

@test "a patch can be applied again after it was reverted" {
	start_target simple
	apply_and_wait "$TARGET_PID" "$HP_PATCHES/compute_v1.so" "$TARGET_LOG" compute '*3'
	revert_and_wait "$TARGET_PID" "$TARGET_LOG" compute '*2'
	apply_and_wait "$TARGET_PID" "$HP_PATCHES/compute_v1.so" "$TARGET_LOG" compute '*3'
	assert_not_traced "$TARGET_PID"
}

@test "revert fails with exit 1 for a pid that does not exist" {
	local pid
	pid=$(dead_pid)
	run -1 --separate-stderr hp revert --pid "$pid"
	assert_error_line "$pid"
}

# mem_bytes PID ADDRESS COUNT: COUNT bytes of PID's memory at ADDRESS, in hex.
mem_bytes() {
	dd if="/proc/$1/mem" bs=1 count="$3" skip=$(($2)) iflag=skip_bytes status=none |
		od -An -tx1 | tr -d ' \n'
}

# Revert rewrites every jump site with the bytes it holds before it stops the
# target (so that the stop pays no first write): only bytes that are its own.
@test "revert refuses, writing nothing, when a jump was overwritten by something else" {
	local jump foreign=cccccccccc original escaped='' i
	start_target simple
	apply_and_wait "$TARGET_PID" "$HP_PATCHES/compute_v1.so" "$TARGET_LOG" compute '*3'
	run -0 --separate-stderr hp list --json --pid "$TARGET_PID"
	jump=$(jq -r '.patches[0].functions[0].jump_address' <<<"$output")
	# Stopped, the target runs none of the foreign bytes while they are there.
	kill -STOP "$TARGET_PID"
	original=$(mem_bytes "$TARGET_PID" "$jump" 5)
	printf '\xcc\xcc\xcc\xcc\xcc' |
		dd of="/proc/$TARGET_PID/mem" bs=1 seek=$((jump)) oflag=seek_bytes conv=notrunc status=none
	run -1 --separate-stderr hp revert --pid "$TARGET_PID"
	assert_error_line compute "changed by something else"
	[[ $(mem_bytes "$TARGET_PID" "$jump" 5) == "$foreign" ]] ||
		fail "revert wrote over the foreign bytes: $(mem_bytes "$TARGET_PID" "$jump" 5)"
	# Put our jump back: the patch is still applied and reverts as usual.
	for ((i = 0; i < ${#original}; i += 2)); do
		escaped+="\\x${original:i:2}"
	done
	printf '%b' "$escaped" |
		dd of="/proc/$TARGET_PID/mem" bs=1 seek=$((jump)) oflag=seek_bytes conv=notrunc status=none
	kill -CONT "$TARGET_PID"
	assert_not_traced "$TARGET_PID"
	assert_patch_mapped "$TARGET_PID" compute_v1
	revert_and_wait "$TARGET_PID" "$TARGET_LOG" compute '*2'
	assert_no_patches "$TARGET_PID"
}
