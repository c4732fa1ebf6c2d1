#!/usr/bin/env bats
# rollback.bats - a failure at any step of apply leaves the target as it was:
# faults injected at every step (HOTPATCH_FAULT, test build only), the target
# killed while apply waits, and hotpatch itself told to stop.

bats_require_minimum_version 1.5.0
load helpers

setup() { hp_setup; }
teardown() { hp_teardown; }

FAULT_STEPS=(open-patch map-target plan load prepare-jumps stop-threads write-jumps record-state)

@test "apply rolls back at every injected fault and leaves the target as it was" {
	local step
	start_target simple
	for step in "${FAULT_STEPS[@]}"; do
		HOTPATCH_FAULT=$step run -1 --separate-stderr hp apply --pid "$TARGET_PID" \
			"$HP_PATCHES/two_functions.so"
		assert_error_line || fail "no error line for the fault at $step"
		assert_target_untouched "$TARGET_PID" || fail "after the fault at $step"
		assert_results "$TARGET_LOG" compute '*2' || fail "after the fault at $step"
		assert_results "$TARGET_LOG" adjust '+1' || fail "after the fault at $step"
		assert_no_patches "$TARGET_PID" || fail "after the fault at $step"
	done
	# And the process can still be patched.
	apply_and_wait "$TARGET_PID" "$HP_PATCHES/two_functions.so" "$TARGET_LOG" compute '*4'
	assert_results "$TARGET_LOG" adjust '+2'
}

@test "apply rolls back at every injected fault while eight threads call the function" {
	local step mark line way switches=0 now most
	# Two commands per step: longer than a target's default life on a busy machine.
	HP_TARGET_LIFETIME=1800 start_target threads 8
	# Every thread stopped at once: none ever ran the patch.  Through the
	# gates (the default), a fault once the threads moved to the new code
	# brings each back the same way, at a moment it is out of it: a worker
	# that called in between switched there and back (two switches), one
	# that did not (at the lowest priority, on a busy machine) none, and
	# never a call mixing the two.
	for way in --stop-all --gates; do
		for step in "${FAULT_STEPS[@]}"; do
			HOTPATCH_FAULT=$step run -1 --separate-stderr hp apply --pid "$TARGET_PID" \
				"$way" "$HP_PATCHES/hot_v2.so"
			assert_target_untouched "$TARGET_PID" || fail "after the fault at $step ($way)"
			most=0
			[[ $way == --gates && ($step == stop-threads || $step == write-jumps) ]] && most=16
			mark=$(line_count "$TARGET_LOG")
			line=$(wait_for_line_after "$TARGET_LOG" "$mark" '^hot threads=.* v1=8 v2=0 ') ||
				fail "after the fault at $step ($way) the workers stayed on the patch"
			[[ $line =~ \ other=0\ switches=([0-9]+)\  ]] ||
				fail "after the fault at $step ($way) the workers ran other code: $line"
			now=${BASH_REMATCH[1]}
			((now >= switches && now - switches <= most && (now - switches) % 2 == 0)) ||
				fail "after the fault at $step ($way) $((now - switches)) switches: $line"
			switches=$now
		done
	done
	assert_no_errors "$TARGET_LOG"
}

@test "a fault after some jumps were written in a stack of patches restores only the new ones" {
	start_target simple
	apply_and_wait "$TARGET_PID" "$HP_PATCHES/compute_v1.so" "$TARGET_LOG" compute '*3'
	HOTPATCH_FAULT=write-jumps run -1 --separate-stderr hp apply --pid "$TARGET_PID" \
		"$HP_PATCHES/two_functions.so"
	assert_not_traced "$TARGET_PID"
	refute_patch_mapped "$TARGET_PID" two_functions
	assert_results "$TARGET_LOG" compute '*3'
	assert_results "$TARGET_LOG" adjust '+1'
	run -0 --separate-stderr hp list --pid "$TARGET_PID"
	[[ ${lines[0]} =~ ^compute_v1([[:space:]]|$) && $output != *two_functions* ]] ||
		fail "list says:"$'\n'"$output"
}

# start_busy_apply: starts `hotpatch apply --timeout 30` of stuck_fix.so in
# the background against the stuck target (it can only wait and retry), and
# waits until the patch is loaded or the target is traced, whichever shows
# first.  Sets HP_APPLY_PID, HP_APPLY_OUT and HP_APPLY_ERR.
start_busy_apply() {
	local deadline=$((SECONDS + HP_WAIT_SECONDS))
	HP_APPLY_OUT=$BATS_TEST_TMPDIR/apply.out
	HP_APPLY_ERR=$BATS_TEST_TMPDIR/apply.err
	"$HOTPATCH" apply --pid "$TARGET_PID" --timeout 30 "$HP_PATCHES/stuck_fix.so" \
		</dev/null >"$HP_APPLY_OUT" 2>"$HP_APPLY_ERR" 3>&- &
	HP_APPLY_PID=$!
	HP_STARTED_PIDS+=("$HP_APPLY_PID")
	until grep -q 'memfd:hotpatch:stuck_fix' "/proc/$TARGET_PID/maps" ||
		! grep -q '^TracerPid:[[:space:]]*0$' "/proc/$TARGET_PID/status"; do
		kill -0 "$HP_APPLY_PID" 2>/dev/null || fail "apply ended early: $(cat "$HP_APPLY_ERR")"
		((SECONDS < deadline)) || fail "apply never loaded the patch"
		sleep 0.01
	done
}

@test "apply exits 1 with a clear error when the target is killed while apply waits" {
	local status=0
	start_target stuck
	start_busy_apply
	kill -KILL "$TARGET_PID"
	wait "$HP_APPLY_PID" || status=$?
	[[ $status == 1 ]] || fail "apply exited $status: $(cat "$HP_APPLY_ERR")"
	stderr=$(<"$HP_APPLY_ERR")
	assert_error_line "$TARGET_PID"
}

@test "apply stopped by SIGTERM while it waits rolls back and exits 1" {
	local status=0
	start_target stuck
	start_busy_apply
	kill -TERM "$HP_APPLY_PID"
	wait "$HP_APPLY_PID" || status=$?
	[[ $status == 1 ]] || fail "apply exited $status: $(cat "$HP_APPLY_ERR")"
	stderr=$(<"$HP_APPLY_ERR")
	assert_error_line
	assert_target_untouched "$TARGET_PID"
	assert_results "$TARGET_LOG" tick '+1'
	assert_no_patches "$TARGET_PID"
}
