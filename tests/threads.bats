#!/usr/bin/env bats
# threads.bats - multi-threaded targets: functions called in tight loops,
# a function that never leaves a stack (exit 3), threads blocked in system
# calls and a flood of signals; the target must behave as if nothing happened.

bats_require_minimum_version 1.5.0
load helpers

setup() { hp_setup; }
teardown() { hp_teardown; }

@test "apply patches a function eight threads call in tight loops, within the default timeout" {
	local mark line
	start_target threads 8
	mark=$(line_count "$TARGET_LOG")
	run -0 --separate-stderr hp apply --pid "$TARGET_PID" "$HP_PATCHES/hot_v2.so"
	line=$(hot_line_after "$TARGET_LOG" "$mark" ' v1=0 v2=8 other=0 ')
	# Each worker switched exactly once: none ran the old code after the new.
	[[ $line == *" switches=8 "* ]] || fail "workers switched back and forth: $line"
	mark=$(line_count "$TARGET_LOG")
	line=$(hot_line_after "$TARGET_LOG" "$mark" '')
	[[ $line == *" v1=0 v2=8 other=0 switches=8 "* ]] || fail "after the patch: $line"
	assert_patch_mapped "$TARGET_PID" hot_v2
	assert_not_traced "$TARGET_PID"
	assert_no_errors "$TARGET_LOG"
}

@test "revert restores a function eight threads call in tight loops" {
	local mark line
	start_target threads 8
	mark=$(line_count "$TARGET_LOG")
	run -0 --separate-stderr hp apply --pid "$TARGET_PID" "$HP_PATCHES/hot_v2.so"
	hot_line_after "$TARGET_LOG" "$mark" ' v2=8 '
	mark=$(line_count "$TARGET_LOG")
	run -0 --separate-stderr hp revert --pid "$TARGET_PID"
	line=$(hot_line_after "$TARGET_LOG" "$mark" ' v1=8 v2=0 other=0 ')
	[[ $line == *" switches=16 "* ]] || fail "workers switched back and forth: $line"
	assert_target_untouched "$TARGET_PID"
}

@test "apply succeeds while threads are started and end all the time" {
	local mark
	start_target threads 4 churn
	mark=$(line_count "$TARGET_LOG")
	run -0 --separate-stderr hp apply --pid "$TARGET_PID" "$HP_PATCHES/hot_v2.so"
	hot_line_after "$TARGET_LOG" "$mark" ' v1=0 v2=4 other=0 switches=4 .* churn_last=2$'
	assert_not_traced "$TARGET_PID"
	assert_no_errors "$TARGET_LOG"
}

@test "apply exits 3 naming thread and function when a function never leaves a thread's stack" {
	local tid
	start_target stuck
	tid=$(sed -n 's/^ready .*stuck_tid=\([0-9]*\).*/\1/p' "$TARGET_LOG")
	run -3 --separate-stderr hp apply --pid "$TARGET_PID" --timeout 1 "$HP_PATCHES/stuck_fix.so"
	assert_error_line "$tid" stuck_forever
	assert_target_untouched "$TARGET_PID"
	# tick() was in the same patch: all or nothing.
	assert_results "$TARGET_LOG" tick '+1'
	assert_no_patches "$TARGET_PID"
}

@test "a patch that leaves the stuck function alone applies while a thread is stuck" {
	start_target stuck
	apply_and_wait "$TARGET_PID" "$HP_PATCHES/tick_fix.so" "$TARGET_LOG" tick '+10'
	assert_not_traced "$TARGET_PID"
}

@test "threads blocked in read, accept, epoll_wait, nanosleep and futex waits see no difference" {
	local fifos=$BATS_TEST_TMPDIR/fifos mark port round
	mkdir "$fifos"
	start_target blocking "$fifos"
	port=$(sed -n 's/^ready .*port=\([0-9]*\).*/\1/p' "$TARGET_LOG")
	wait_threads_sleeping "$TARGET_PID" 7
	mark=$(line_count "$TARGET_LOG")

	# Twice: the apply borrows a blocked thread, the revert may too.
	for round in 1 2; do
		if ((round == 1)); then
			run -0 --separate-stderr hp apply --pid "$TARGET_PID" "$HP_PATCHES/answer_fix.so"
		else
			wait_threads_sleeping "$TARGET_PID" 7
			run -0 --separate-stderr hp revert --pid "$TARGET_PID" answer_fix
		fi
		assert_not_traced "$TARGET_PID"
		printf 'msg %d\n' "$round" >"$fifos/read.fifo"
		wait_for_line "$TARGET_LOG" "^read returned 6 data=msg $round\$"
		printf 'msg %d\n' "$round" >"/dev/tcp/127.0.0.1/$port"
		wait_for_line "$TARGET_LOG" "^accept returned data=msg $round\$"
		printf 'msg %d\n' "$round" >"$fifos/epoll.fifo"
		wait_for_line "$TARGET_LOG" "^epoll_wait returned 1 data=msg $round\$"
		printf 'cond\n' >"$fifos/ctl.fifo"
		wait_for_line "$TARGET_LOG" "^cond_wait woke value=$round\$"
		printf 'futex\n' >"$fifos/ctl.fifo"
		wait_for_line "$TARGET_LOG" "^futex woke value=$round\$"
		printf 'ping %d\n' "$round" >"$fifos/ctl.fifo"
		wait_for_line "$TARGET_LOG" "^ping $round -> $((round == 1 ? 201 : 102))\$"
	done
	# The 2-second sleep that was under way during the apply ran in full
	# (the target prints an ERROR line for a short or interrupted sleep).
	wait_for_line_after "$TARGET_LOG" "$mark" '^nanosleep returned 0 after_ms=[0-9]+$'
	assert_no_errors "$TARGET_LOG"
	[[ $(grep -c '^read returned' "$TARGET_LOG") == 2 ]]
	[[ $(grep -c '^accept returned' "$TARGET_LOG") == 2 ]]
	[[ $(grep -c '^epoll_wait returned' "$TARGET_LOG") == 2 ]]
}

@test "every queued real-time signal sent during apply reaches the target's handler" {
	local stop=$BATS_TEST_TMPDIR/stop-signals sent rt sum
	start_target signals
	start_tool signal_sender "$TARGET_PID" "$stop"
	# The flood is under way before the apply starts.
	wait_for_line "$TARGET_LOG" '^signals rt=[1-9]'
	run -0 --separate-stderr hp apply --pid "$TARGET_PID" "$HP_PATCHES/work_fix.so"
	touch "$stop"
	wait "$TOOL_PID"
	sent=$(grep '^sent rt=' "$TOOL_LOG") || fail "the sender did not finish: $(cat "$TOOL_LOG")"
	rt=$(sed -n 's/^sent rt=\([0-9]*\) .*/\1/p' <<<"$sent")
	sum=$(sed -n 's/^sent .* sum=\([0-9]*\) .*/\1/p' <<<"$sent")
	((rt >= 500))
	# Counted once each: the sum of the numbers they carried matches too.
	wait_for_line "$TARGET_LOG" "^signals rt=$rt sum=$sum usr1=[1-9][0-9]*\$"
	assert_results "$TARGET_LOG" work '*20'
	assert_not_traced "$TARGET_PID"
	assert_no_errors "$TARGET_LOG"
}
