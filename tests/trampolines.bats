#!/usr/bin/env bats
# trampolines.bats - what a killed hotpatch leaves on threads' stacks and in
# the process's maps: a thread it left on its way out of a function returns
# through one of our return trampolines, and the stack check unwinds through
# it to where the thread really returns; an incomplete patch says what puts
# it right; and once nothing of ours is left, neither is our state, so the
# maps of a process whose last patch was reverted read as never patched.

bats_require_minimum_version 1.5.0
load helpers

setup() { hp_setup; }
teardown() { hp_teardown; }

descriptor_count() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 | wc -l; }
# Mappings named by us, and anonymous code (our stub and trampoline pages).
ours_count() { awk '/hotpatch/ || ($2 ~ /x/ && NF == 5)' "/proc/$1/maps" | wc -l; }

# remember_maps PID: the maps and descriptor count to come back to.
remember_maps() {
	cp "/proc/$1/maps" "$BATS_TEST_TMPDIR/maps.before"
	DESCRIPTORS_BEFORE=$(descriptor_count "$1")
}

assert_maps_as_before() {
	diff "$BATS_TEST_TMPDIR/maps.before" "/proc/$1/maps" >"$BATS_TEST_TMPDIR/maps.diff" ||
		{ fail "the maps changed:"$'\n'"$(cat "$BATS_TEST_TMPDIR/maps.diff")"; return 1; }
	(($(descriptor_count "$1") == DESCRIPTORS_BEFORE)) ||
		{ fail "descriptors: $(ls -l "/proc/$1/fd")"; return 1; }
}

# The stuck target's thread never leaves stuck_forever(): an apply of
# stuck_fix killed while moving it leaves its return address pointing at a
# return trampoline of our stub page for good.
kill_while_moving_stuck_thread() {
	start_target stuck
	STUCK_TID=$(sed -n 's/^ready .*stuck_tid=\([0-9]*\).*/\1/p' "$TARGET_LOG")
	HOTPATCH_FAULT=kill-in-move run -137 --separate-stderr \
		hp apply --pid "$TARGET_PID" --timeout 2 "$HP_PATCHES/stuck_fix.so" || return 1
	assert_not_traced "$TARGET_PID"
}

@test "a thread a killed apply left in a return trampoline does not keep other patches out" {
	local mark
	kill_while_moving_stuck_thread
	# tick() is on no stack: it applies and reverts as in a process never
	# touched, the stuck thread's stack unwound through the trampoline.
	apply_and_wait "$TARGET_PID" "$HP_PATCHES/tick_fix.so" "$TARGET_LOG" tick '+10'
	mark=$(line_count "$TARGET_LOG")
	run -0 --separate-stderr hp revert --pid "$TARGET_PID" tick_fix
	wait_for_result "$TARGET_LOG" "$mark" tick '+1'
	assert_results "$TARGET_LOG" tick '+1'
	assert_not_traced "$TARGET_PID"
	assert_no_errors "$TARGET_LOG"
}

@test "a stack through a return trampoline is judged by its real frames" {
	kill_while_moving_stuck_thread
	# The thread is still in stuck_forever: in the way, and said so, not
	# "cannot be unwound".
	run -3 --separate-stderr hp check --pid "$TARGET_PID" --timeout 1 "$HP_PATCHES/stuck_fix.so"
	assert_error_line "thread $STUCK_TID will return into stuck_forever"
	[[ $stderr != *"cannot be unwound"* ]] || fail "the stack was not unwound: $stderr"
	grep -q "^thread $STUCK_TID: .* stuck_forever+0x[0-9a-f]* (stuck) #3 0x[0-9a-f]* (return trampoline of hotpatch) #4 stay+0x[0-9a-f]* (stuck)" <<<"$stderr" ||
		fail "no backtrace through the trampoline to stay(): $stderr"
	run -3 --separate-stderr hp apply --pid "$TARGET_PID" --timeout 1 --json "$HP_PATCHES/stuck_fix.so"
	assert_error_line "thread $STUCK_TID will return into stuck_forever"
	json_is ".error.blockers[0] | .tid == $STUCK_TID and .reason == \"returning\" and .function == \"stuck_forever\"" \
		'.error.blockers[0].backtrace | any(test("return trampoline of hotpatch"))' \
		'.error.blockers[0].backtrace | any(test("^stay\\+"))'
	assert_results "$TARGET_LOG" tick '+1'
}

@test "the state and stub page stay while a thread will still return through a trampoline" {
	kill_while_moving_stuck_thread
	apply_and_wait "$TARGET_PID" "$HP_PATCHES/tick_fix.so" "$TARGET_LOG" tick '+10'
	run -0 --separate-stderr hp revert --pid "$TARGET_PID"
	# The stub page holds the trampoline the stuck thread returns through.
	(($(grep -c 'memfd:hotpatch-state' "/proc/$TARGET_PID/maps") == 1)) ||
		fail "the state went while a thread returns through its stub page: $(grep hotpatch "/proc/$TARGET_PID/maps")"
	assert_not_traced "$TARGET_PID"
	assert_results "$TARGET_LOG" tick '+1'
}

@test "list says what to run for a patch a killed apply left incomplete" {
	local mark
	start_target simple
	remember_maps "$TARGET_PID"
	HOTPATCH_FAULT=kill-in-write run -137 --separate-stderr \
		hp apply --pid "$TARGET_PID" "$HP_PATCHES/two_functions.so"
	assert_not_traced "$TARGET_PID"
	run -0 --separate-stderr hp list --pid "$TARGET_PID" --json
	json_is '.patches | length == 1' \
		'.patches[0] | .name == "two_functions" and .state == "incomplete"' \
		".patches[0].run == \"hotpatch revert --pid $TARGET_PID two_functions\""
	run -0 --separate-stderr hp list --pid "$TARGET_PID"
	grep -qx "    run: hotpatch revert --pid $TARGET_PID two_functions (a killed hotpatch wrote only some of its jumps)" <<<"$output" ||
		fail "list does not say what to run: $output"
	# What it says to run puts the process right.
	mark=$(line_count "$TARGET_LOG")
	run -0 --separate-stderr hp revert --pid "$TARGET_PID" two_functions
	wait_for_result "$TARGET_LOG" "$mark" adjust '+1'
	assert_results "$TARGET_LOG" compute '*2'
	assert_results "$TARGET_LOG" adjust '+1'
	assert_no_patches "$TARGET_PID"
	assert_maps_as_before "$TARGET_PID"
}

@test "an applied patch has no command to run in list" {
	start_target simple
	apply_and_wait "$TARGET_PID" "$HP_PATCHES/compute_v1.so" "$TARGET_LOG" compute '*3'
	run -0 --separate-stderr hp list --pid "$TARGET_PID" --json
	json_is '.patches[0] | .state == "applied" and .run == null'
	run -0 --separate-stderr hp list --pid "$TARGET_PID"
	[[ $output != *"run:"* ]] || fail "list says to run something: $output"
}

@test "after the last revert the process's maps read as never patched" {
	start_target simple
	remember_maps "$TARGET_PID"
	apply_and_wait "$TARGET_PID" "$HP_PATCHES/compute_v1.so" "$TARGET_LOG" compute '*3'
	grep -q 'memfd:hotpatch-state' "/proc/$TARGET_PID/maps" || fail "no state while applied"
	run -0 --separate-stderr hp revert --pid "$TARGET_PID"
	assert_maps_as_before "$TARGET_PID"
	run -0 --separate-stderr hp list --pid "$TARGET_PID" --json
	json_is '.patches == []' '.leftovers == []' '.interrupted == null'
	assert_no_patches "$TARGET_PID"
	# And patching works again from scratch.
	apply_and_wait "$TARGET_PID" "$HP_PATCHES/compute_v1.so" "$TARGET_LOG" compute '*3'
	run -0 --separate-stderr hp revert --pid "$TARGET_PID"
	assert_results "$TARGET_LOG" compute '*2'
	assert_maps_as_before "$TARGET_PID"
	assert_no_errors "$TARGET_LOG"
}

@test "while another patch stays applied, reverting one keeps the state" {
	start_target simple
	apply_and_wait "$TARGET_PID" "$HP_PATCHES/compute_v1.so" "$TARGET_LOG" compute '*3'
	apply_and_wait "$TARGET_PID" "$HP_PATCHES/adjust_fix.so" "$TARGET_LOG" adjust '+3'
	run -0 --separate-stderr hp revert --pid "$TARGET_PID" compute_v1
	grep -q 'memfd:hotpatch-state' "/proc/$TARGET_PID/maps" || fail "the state went with a patch applied"
	run -0 --separate-stderr hp list --pid "$TARGET_PID" --json
	json_is '[.patches[].name] == ["adjust_fix"]'
	assert_results "$TARGET_LOG" adjust '+3'
}

@test "an interrupted apply, once taken back, leaves no state either" {
	start_target simple
	remember_maps "$TARGET_PID"
	HOTPATCH_FAULT=kill-after-load run -137 --separate-stderr \
		hp apply --pid "$TARGET_PID" "$HP_PATCHES/compute_v1.so"
	# Nothing is applied: revert says so, after taking everything back.
	run -4 --separate-stderr hp revert --pid "$TARGET_PID"
	assert_error_line "no patch is applied to pid $TARGET_PID"
	assert_maps_as_before "$TARGET_PID"
	assert_no_patches "$TARGET_PID"
}

@test "a failed apply leaves no state in a process never patched" {
	start_target stuck
	remember_maps "$TARGET_PID"
	run -3 --separate-stderr hp apply --pid "$TARGET_PID" --timeout 1 "$HP_PATCHES/stuck_fix.so"
	assert_maps_as_before "$TARGET_PID"
	assert_results "$TARGET_LOG" tick '+1'
}

@test "killed between removing the state and the stub page: the next command takes the page back" {
	start_target simple
	remember_maps "$TARGET_PID"
	apply_and_wait "$TARGET_PID" "$HP_PATCHES/compute_v1.so" "$TARGET_LOG" compute '*3'
	HOTPATCH_FAULT=kill-in-remove-state run -137 --separate-stderr hp revert --pid "$TARGET_PID"
	assert_not_traced "$TARGET_PID"
	assert_results "$TARGET_LOG" compute '*2'
	run -0 --separate-stderr hp list --pid "$TARGET_PID" --json
	json_is '.patches == []' '.leftovers | length == 1' \
		'.leftovers[0] | .kind == "stub page" and .reclaimed == false'
	run -4 --separate-stderr hp revert --pid "$TARGET_PID"
	assert_maps_as_before "$TARGET_PID"
	apply_and_wait "$TARGET_PID" "$HP_PATCHES/compute_v1.so" "$TARGET_LOG" compute '*3'
	run -0 --separate-stderr hp revert --pid "$TARGET_PID"
	assert_maps_as_before "$TARGET_PID"
	assert_no_errors "$TARGET_LOG"
}

@test "eight busy threads: after apply and revert nothing of ours stays mapped" {
	local mark
	start_target threads 8 resident
	remember_maps "$TARGET_PID"
	OURS_BEFORE=$(ours_count "$TARGET_PID")
	run -0 --separate-stderr hp apply --pid "$TARGET_PID" "$HP_PATCHES/hot_v2.so"
	run -0 --separate-stderr hp revert --pid "$TARGET_PID"
	mark=$(line_count "$TARGET_LOG")
	hot_line_after "$TARGET_LOG" "$mark" ' v1=8 v2=0 other=0 ' >/dev/null
	# dlopen on a thread may give it a malloc arena of its own; of ours
	# (named, or anonymous code: the stub and trampoline pages), nothing.
	(($(ours_count "$TARGET_PID") == OURS_BEFORE)) ||
		fail "$(diff "$BATS_TEST_TMPDIR/maps.before" "/proc/$TARGET_PID/maps")"
	run -0 --separate-stderr hp list --pid "$TARGET_PID" --json
	json_is '.patches == []' '.leftovers == []'
	assert_not_traced "$TARGET_PID"
	assert_no_errors "$TARGET_LOG"
}
