#!/usr/bin/env bats
# list.bats - `hotpatch list` reports what the target itself records: one line
# per patch, newest first, and an indented line per replaced function.

bats_require_minimum_version 1.5.0
load helpers

setup() { hp_setup; }
teardown() { hp_teardown; }

@test "list says no patches applied for a process never patched" {
	start_target simple
	run -0 --separate-stderr hp list --pid "$TARGET_PID"
	[[ $output == "no patches applied" ]]
	assert_target_untouched "$TARGET_PID"
	assert_results "$TARGET_LOG" compute '*2'
}

@test "list shows patches newest first, each followed by an indented line per function" {
	start_target simple
	apply_and_wait "$TARGET_PID" "$HP_PATCHES/compute_v1.so" "$TARGET_LOG" compute '*3'
	apply_and_wait "$TARGET_PID" "$HP_PATCHES/two_functions.so" "$TARGET_LOG" compute '*4'
	run -0 --separate-stderr hp list --pid "$TARGET_PID"
	[[ ${#lines[@]} == 5 ]] || fail "expected 5 lines, got:"$'\n'"$output"
	[[ ${lines[0]} =~ ^two_functions([[:space:]]|$) ]]
	[[ ${lines[1]} =~ ^[[:space:]]+.*(compute|adjust) ]]
	[[ ${lines[2]} =~ ^[[:space:]]+.*(compute|adjust) ]]
	[[ "${lines[1]}${lines[2]}" == *compute* && "${lines[1]}${lines[2]}" == *adjust* ]]
	[[ ${lines[3]} =~ ^compute_v1([[:space:]]|$) ]]
	[[ ${lines[4]} =~ ^[[:space:]]+.*compute ]]
	assert_not_traced "$TARGET_PID"
}

@test "list shows the name a patch declared" {
	start_target simple
	apply_and_wait "$TARGET_PID" "$HP_PATCHES/named.so" "$TARGET_LOG" compute '*7'
	run -0 --separate-stderr hp list --pid "$TARGET_PID"
	[[ ${lines[0]} =~ ^fix-compute-7([[:space:]]|$) ]]
}

@test "list says no patches applied again after every patch was reverted" {
	start_target simple
	apply_and_wait "$TARGET_PID" "$HP_PATCHES/compute_v1.so" "$TARGET_LOG" compute '*3'
	run -0 --separate-stderr hp revert --pid "$TARGET_PID"
	assert_no_patches "$TARGET_PID"
}

@test "patches are recorded per process" {
	local patched patched_log
	start_target simple
	patched=$TARGET_PID patched_log=$TARGET_LOG
	apply_and_wait "$patched" "$HP_PATCHES/compute_v1.so" "$patched_log" compute '*3'
	start_target simple
	assert_no_patches "$TARGET_PID"
	assert_results "$TARGET_LOG" compute '*2'
	run -0 --separate-stderr hp list --pid "$patched"
	[[ ${lines[0]} =~ ^compute_v1([[:space:]]|$) ]]
}

@test "list fails with exit 1 for a pid that does not exist" {
	local pid
	pid=$(dead_pid)
	run -1 --separate-stderr hp list --pid "$pid"
	assert_error_line "$pid"
}

@test "apply says both warnings when the post-apply hook failed in a worker whose master lacks the patch" {
	local worker patch=$BATS_TEST_TMPDIR/hook_fails.so
	cat >"${patch%.so}.c" <<-'EOF'
		#include <hotpatch.h>
		static int fixed(int value) { return 3 * value; }
		HOTPATCH_REPLACE(compute, fixed);
		static int fails(void) { return 5; }
		HOTPATCH_POST_APPLY(fails);
	EOF
	cc -O2 -fPIC -shared -I"$HP_SOURCE/lib/include" -o "$patch" "${patch%.so}.c" && chmod 644 "$patch"
	start_target forks
	worker=$(grep -m1 '^ready pid=' "$TARGET_LOG" | sed 's/.* worker=//')
	HP_STARTED_PIDS+=("$worker")
	run -0 --separate-stderr hp apply --pid "$worker" --json "$patch"
	json_is '.patch.warning | test("^its post-apply hook returned 5; its parent pid [0-9]+, the same program, does not have it")'
}

@test "list warns that a worker's patch will not reach workers its master forks later, until the master has it" {
	local worker
	start_target forks
	worker=$(grep -m1 '^ready pid=' "$TARGET_LOG" | sed 's/.* worker=//')
	HP_STARTED_PIDS+=("$worker")
	run -0 --separate-stderr hp apply --pid "$worker" "$HP_PATCHES/compute_v1.so"
	[[ $output == *"warning: its parent pid $TARGET_PID, the same program, does not have it"* ]] ||
		fail "apply did not warn: $output"
	run -0 --separate-stderr hp list --pid "$worker" --json
	json_is ".patches[0].warning | test(\"parent pid $TARGET_PID\")"
	run -0 --separate-stderr hp apply --pid "$TARGET_PID" "$HP_PATCHES/compute_v1.so"
	[[ $output != *warning:* ]] || fail "the master has no parent of its program, yet: $output"
	run -0 --separate-stderr hp list --pid "$worker" --json
	json_is '.patches[0].warning == null'
}
