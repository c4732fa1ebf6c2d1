#!/usr/bin/env bats
# leftovers.bats - nothing a killed hotpatch leaves in a target piles up: the
# test build dies by SIGKILL at a chosen step (HOTPATCH_FAULT=kill-...), list
# shows what was left and why, and the next apply or revert takes it back, so
# the target's mappings and descriptors return to where they were.

bats_require_minimum_version 1.5.0
load helpers

setup() { hp_setup; }
teardown() { hp_teardown; }

mapping_count() { wc -l <"/proc/$1/maps"; }
descriptor_count() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 | wc -l; }

# baseline PID: one clean apply and revert first (the last revert takes the
# state mapping and the stub page out again), then the counts to return to.
baseline() {
	run -0 --separate-stderr hp apply --pid "$1" "$HP_PATCHES/compute_v1.so" || return 1
	run -0 --separate-stderr hp revert --pid "$1" || return 1
	BASE_MAPPINGS=$(mapping_count "$1")
	BASE_DESCRIPTORS=$(descriptor_count "$1")
}

assert_back_to_baseline() {
	local mappings descriptors
	mappings=$(mapping_count "$1")
	descriptors=$(descriptor_count "$1")
	((mappings == BASE_MAPPINGS)) ||
		{ fail "$mappings mappings, $BASE_MAPPINGS before:"$'\n'"$(cat "/proc/$1/maps")"; return 1; }
	((descriptors == BASE_DESCRIPTORS)) ||
		{ fail "$descriptors descriptors, $BASE_DESCRIPTORS before:"$'\n'"$(ls -l "/proc/$1/fd")"; return 1; }
}

# killed_at STEP COMMAND ARGS...: runs hotpatch with the test build dying at
# STEP, which must kill it (exit 137); the target is left running, untraced.
killed_at() {
	local step=$1
	shift
	HOTPATCH_FAULT=$step run -137 --separate-stderr hp "$@" || return 1
	assert_not_traced "$TARGET_PID"
}

# A clean apply and revert now: the patch works, and everything is back.
assert_apply_revert_clean() {
	apply_and_wait "$TARGET_PID" "$HP_PATCHES/compute_v1.so" "$TARGET_LOG" compute '*3' || return 1
	local applied=$output
	run -0 --separate-stderr hp revert --pid "$TARGET_PID" || return 1
	assert_back_to_baseline "$TARGET_PID" || return 1
	assert_no_patches "$TARGET_PID" || return 1
	output=$applied
}

@test "apply killed after loading, more times than there once were load names, then applies" {
	start_target simple
	baseline "$TARGET_PID"
	for _ in $(seq 20); do
		killed_at kill-after-load apply --pid "$TARGET_PID" "$HP_PATCHES/compute_v1.so"
	done
	# Each apply took back the one before it: one object is left.
	run -0 --separate-stderr hp list --pid "$TARGET_PID" --json
	json_is '.patches == []' '.leftovers | length == 1' \
		'.leftovers[0] | .kind == "object" and .name == "compute_v1" and .reclaimed == false' \
		'.interrupted.command == "apply"'
	run -0 --separate-stderr hp list --pid "$TARGET_PID"
	[[ $output == *"leftover object compute_v1 at 0x"*"never recorded"* ]] || fail "list says: $output"
	[[ $output == *"an earlier apply (hotpatch pid "*") was killed"* ]] || fail "list says: $output"
	assert_apply_revert_clean
	[[ $output == *"reclaimed object compute_v1 at 0x"* ]] || fail "apply did not say what it took back: $output"
	assert_results "$TARGET_LOG" adjust '+1'
}

@test "apply killed with its trampoline page mapped leaves a record that the next apply takes back" {
	start_target simple
	baseline "$TARGET_PID"
	killed_at kill-after-trampoline apply --pid "$TARGET_PID" --stop-all "$HP_PATCHES/compute_v1.so"
	killed_at kill-after-trampoline apply --pid "$TARGET_PID" --stop-all "$HP_PATCHES/compute_v1.so"
	run -0 --separate-stderr hp list --pid "$TARGET_PID" --json
	json_is '.patches == []' '[.leftovers[] | select(.kind == "record")] | length == 1'
	assert_results "$TARGET_LOG" compute '*2'
	run -0 --separate-stderr hp apply --pid "$TARGET_PID" --json "$HP_PATCHES/compute_v1.so"
	json_is '.leftovers | length == 1' '.leftovers[0] | .kind == "record" and .reclaimed'
	run -0 --separate-stderr hp revert --pid "$TARGET_PID"
	assert_back_to_baseline "$TARGET_PID"
}

@test "apply killed with the patch's memfd open: the descriptor is closed by the next apply" {
	start_target simple
	baseline "$TARGET_PID"
	killed_at kill-in-load apply --pid "$TARGET_PID" "$HP_PATCHES/compute_v1.so"
	(($(descriptor_count "$TARGET_PID") == BASE_DESCRIPTORS + 1)) || fail "no descriptor was left open"
	run -0 --separate-stderr hp list --pid "$TARGET_PID" --json
	json_is '.leftovers | length == 1' '.leftovers[0].kind == "descriptor"'
	assert_apply_revert_clean
	[[ $output == *"reclaimed descriptor at 0x"* ]] || fail "apply did not say what it took back: $output"
}

@test "revert killed between restoring the code and unloading: the next revert takes the patch out" {
	start_target simple
	baseline "$TARGET_PID"
	apply_and_wait "$TARGET_PID" "$HP_PATCHES/compute_v1.so" "$TARGET_LOG" compute '*3'
	killed_at kill-after-report revert --pid "$TARGET_PID"
	wait_for_result "$TARGET_LOG" "$(line_count "$TARGET_LOG")" compute '*2'
	run -0 --separate-stderr hp list --pid "$TARGET_PID" --json
	json_is '.patches == []' '.interrupted.command == "revert"' \
		'.leftovers[0] | .kind == "record" and .name == "compute_v1" and (.reason | test("reverted"))'
	# Nothing is applied, so revert refuses, but only after taking it back.
	run -4 --separate-stderr hp revert --pid "$TARGET_PID"
	assert_error_line "no patch is applied to pid $TARGET_PID"
	assert_back_to_baseline "$TARGET_PID"
	run -0 --separate-stderr hp list --pid "$TARGET_PID" --json
	json_is '.leftovers == []' '.interrupted == null' '.patches == []'
	assert_apply_revert_clean
}

@test "a command killed while taking back leftovers leaves nothing the next one cannot take" {
	start_target simple
	baseline "$TARGET_PID"
	killed_at kill-after-load apply --pid "$TARGET_PID" "$HP_PATCHES/compute_v1.so"
	killed_at kill-in-reclaim apply --pid "$TARGET_PID" "$HP_PATCHES/compute_v1.so"
	assert_apply_revert_clean
}

@test "killed while moving busy threads: the next apply succeeds and nothing piles up" {
	local mark line
	start_target threads 8 resident
	run -0 --separate-stderr hp apply --pid "$TARGET_PID" "$HP_PATCHES/hot_v2.so"
	run -0 --separate-stderr hp revert --pid "$TARGET_PID"
	BASE_MAPPINGS=$(mapping_count "$TARGET_PID")
	BASE_DESCRIPTORS=$(descriptor_count "$TARGET_PID")
	for _ in 1 2 3; do
		killed_at kill-in-move apply --pid "$TARGET_PID" --stop-all "$HP_PATCHES/hot_v2.so"
		mark=$(line_count "$TARGET_LOG")
		hot_line_after "$TARGET_LOG" "$mark" ' v1=8 v2=0 other=0 ' >/dev/null
	done
	mark=$(line_count "$TARGET_LOG")
	run -0 --separate-stderr hp apply --pid "$TARGET_PID" "$HP_PATCHES/hot_v2.so"
	line=$(hot_line_after "$TARGET_LOG" "$mark" ' v1=0 v2=8 other=0 ')
	run -0 --separate-stderr hp revert --pid "$TARGET_PID"
	assert_back_to_baseline "$TARGET_PID"
	assert_not_traced "$TARGET_PID"
	assert_no_errors "$TARGET_LOG"
}

@test "a state mapping that a killed hotpatch never wrote is taken over, not refused" {
	start_target simple
	killed_at kill-in-state apply --pid "$TARGET_PID" "$HP_PATCHES/compute_v1.so"
	grep -q 'memfd:hotpatch-state' "/proc/$TARGET_PID/maps" || fail "no state mapping was left"
	apply_and_wait "$TARGET_PID" "$HP_PATCHES/compute_v1.so" "$TARGET_LOG" compute '*3'
	(($(grep -c 'memfd:hotpatch-state' "/proc/$TARGET_PID/maps") == 1)) ||
		fail "more than one state mapping:"$'\n'"$(grep hotpatch "/proc/$TARGET_PID/maps")"
	run -0 --separate-stderr hp revert --pid "$TARGET_PID"
	(($(grep -c 'memfd:hotpatch-state' "/proc/$TARGET_PID/maps") == 0)) ||
		fail "a state mapping stayed:"$'\n'"$(grep hotpatch "/proc/$TARGET_PID/maps")"
}
