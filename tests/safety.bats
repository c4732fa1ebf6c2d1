#!/usr/bin/env bats
# safety.bats - hotpatch killed with SIGKILL at its most delicate instants
# (the test build kills itself there, on HOTPATCH_FAULT): the target must go
# on as if nothing happened, untraced, and accept the patch afterwards.

bats_require_minimum_version 1.5.0
load helpers

setup() { hp_setup; }
teardown() { hp_teardown; }

# killed_apply FAULT PATCH: apply with the fault; hotpatch must die of SIGKILL.
killed_apply() {
	HOTPATCH_FAULT=$1 run -137 --separate-stderr hp apply --pid "$TARGET_PID" "$2"
}

@test "killed in the first system call of a process, the borrowed thread gets itself back" {
	# A fresh target has no page of ours yet: the first call goes through
	# libc's syscall instruction, with a signal frame to return through.
	start_target simple
	killed_apply kill-in-first-syscall "$HP_PATCHES/compute_v1.so"
	assert_not_traced "$TARGET_PID"
	assert_results "$TARGET_LOG" compute '*2'
	assert_results "$TARGET_LOG" adjust '+1'
	apply_and_wait "$TARGET_PID" "$HP_PATCHES/compute_v1.so" "$TARGET_LOG" compute '*3'
	assert_no_errors "$TARGET_LOG"
}

@test "killed inside the remote dlopen, the borrowed thread finishes it and returns by itself" {
	start_target simple
	killed_apply kill-in-call "$HP_PATCHES/compute_v1.so"
	assert_not_traced "$TARGET_PID"
	assert_results "$TARGET_LOG" compute '*2'
	apply_and_wait "$TARGET_PID" "$HP_PATCHES/compute_v1.so" "$TARGET_LOG" compute '*3'
	assert_no_errors "$TARGET_LOG"
}

@test "killed while busy threads are on their way out, they return through their trampolines" {
	local mark line
	start_target threads 8 resident
	HOTPATCH_FAULT=kill-in-move run -137 --separate-stderr \
		hp apply --pid "$TARGET_PID" --stop-all "$HP_PATCHES/hot_v2.so"
	assert_not_traced "$TARGET_PID"
	mark=$(line_count "$TARGET_LOG")
	line=$(hot_line_after "$TARGET_LOG" "$mark" ' v1=8 v2=0 other=0 ')
	[[ $line == *" switches=0 "* ]] || fail "workers ran the patch: $line"
	# Whatever the kill left recorded, revert puts it right; then apply works.
	if hp list --pid "$TARGET_PID" | grep -q '(applied\|(incomplete'; then
		run -0 --separate-stderr hp revert --pid "$TARGET_PID"
	fi
	mark=$(line_count "$TARGET_LOG")
	run -0 --separate-stderr hp apply --pid "$TARGET_PID" "$HP_PATCHES/hot_v2.so"
	line=$(hot_line_after "$TARGET_LOG" "$mark" ' v1=0 v2=8 other=0 ')
	assert_not_traced "$TARGET_PID"
	assert_no_errors "$TARGET_LOG"
}
