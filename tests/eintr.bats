#!/usr/bin/env bats
# eintr.bats - a thread that hotpatch borrows for its remote calls, stops,
# or moves out of a replaced function, must never see its blocking system
# call fail with EINTR or end early.  The eintr_waits target exits with a
# line "EINTR in KIND" or "ERROR ..." as soon as one does.

bats_require_minimum_version 1.5.0
load helpers

# Every kind of wait the target has; the timed ones can also be moved.
KINDS=(epoll_wait epoll_wait_timeout epoll_pwait epoll_pwait2 poll ppoll select pselect
	semop semtimedop io_getevents nanosleep clock_nanosleep read futex futex_timeout)
TIMED_KINDS=(epoll_wait_timeout epoll_pwait epoll_pwait2 poll ppoll select pselect
	semtimedop io_getevents nanosleep clock_nanosleep futex_timeout)

setup() {
	hp_setup
	SEMAPHORES=()
}

# The target's System V semaphore sets outlive it: removed here.
teardown() {
	local id
	hp_teardown
	for id in "${SEMAPHORES[@]}"; do
		ipcrm -s "$id" 2>/dev/null || true
	done
}

start_waits() {
	start_target eintr_waits "$@" || return 1
	SEMAPHORES+=("$(sed -n 's/^ready .*sem=\([0-9]*\).*/\1/p' "$TARGET_LOG")")
}

# assert_waits_untouched: the target lives, untraced, and no wait ended.
assert_waits_untouched() {
	local bad
	assert_not_traced "$TARGET_PID" || return 1
	bad=$(grep -E '^(EINTR|ERROR)' "$TARGET_LOG" || true)
	[[ -z $bad ]] || { fail "a wait was cut short:"$'\n'"$bad"; return 1; }
}

# apply_revert_rounds ROUNDS [ENV...]: applies and reverts eintr_compute_fix,
# checking each time that compute() changed.
apply_revert_rounds() {
	local rounds=$1 round mark
	shift
	for ((round = 1; round <= rounds; round++)); do
		mark=$(line_count "$TARGET_LOG")
		run -0 --separate-stderr timeout -k 5 "$HP_COMMAND_SECONDS" env "$@" "$HOTPATCH" apply --pid "$TARGET_PID" \
			"$HP_PATCHES/eintr_compute_fix.so" || return 1
		wait_for_result "$TARGET_LOG" "$mark" compute '*3' || return 1
		mark=$(line_count "$TARGET_LOG")
		run -0 --separate-stderr timeout -k 5 "$HP_COMMAND_SECONDS" env "$@" "$HOTPATCH" revert --pid "$TARGET_PID" || return 1
		wait_for_result "$TARGET_LOG" "$mark" compute '*2' || return 1
	done
}

@test "a thread borrowed in any kind of blocking wait resumes it without EINTR, through apply and revert" {
	local kind tid
	for kind in "${KINDS[@]}"; do
		start_waits "$kind"
		tid=$(sed -n "s/^waiting $kind tid=\([0-9]*\)\$/\1/p" "$TARGET_LOG")
		[[ -n $tid ]] || fail "no tid for $kind"
		# The test build borrows the thread it is told to first.
		apply_revert_rounds 2 HOTPATCH_FAULT="borrow-tid-$tid" ||
			fail "with $kind borrowed: $stderr"
		assert_waits_untouched || fail "with $kind borrowed"
		kill -KILL "$TARGET_PID"
		wait "$TARGET_PID" 2>/dev/null || true
	done
}

@test "every kind of wait at once sees nothing of three applies and reverts" {
	start_waits all
	apply_revert_rounds 3
	assert_waits_untouched
	assert_no_patches "$TARGET_PID"
}

@test "threads waiting with a timeout inside a replaced function are moved out, and no wait ends early" {
	local mark kind
	start_waits moved "${TIMED_KINDS[@]}"
	# One attempt only: the threads cannot be found outside the function,
	# so apply and revert succeed only by moving every one of them out.
	mark=$(line_count "$TARGET_LOG")
	HOTPATCH_FAULT=single-attempt run -0 --separate-stderr \
		hp apply --pid "$TARGET_PID" --json "$HP_PATCHES/eintr_wait_fix.so"
	json_is '.attempts == 1'
	for kind in "${TIMED_KINDS[@]}"; do
		wait_for_result "$TARGET_LOG" "$mark" "$kind" '*3'
	done
	mark=$(line_count "$TARGET_LOG")
	HOTPATCH_FAULT=single-attempt run -0 --separate-stderr hp revert --pid "$TARGET_PID"
	for kind in "${TIMED_KINDS[@]}"; do
		wait_for_result "$TARGET_LOG" "$mark" "$kind" '*2'
	done
	assert_waits_untouched
}

@test "threads that wait without end inside a replaced function keep apply out (exit 3) and see no EINTR" {
	# Nothing wakes them (no waker thread in stuck mode; with one, a wake
	# landing just before an attempt lets them all leave, and apply rightly
	# succeeds): every attempt interrupts them, tries to move them, and puts
	# them back.
	start_waits stuck epoll_wait semop read futex
	run -3 --separate-stderr hp apply --pid "$TARGET_PID" --timeout 1 "$HP_PATCHES/eintr_wait_fix.so"
	assert_error_line wait_step
	assert_target_untouched "$TARGET_PID"
	assert_waits_untouched
}
