#!/usr/bin/env bats
# records.bats - what the target records of each applied patch tells copies
# apart (the path hotpatch resolved, the sha256 of the bytes loaded, the time,
# the sequence number revert can pick one by), records an older hotpatch wrote
# still read, and list works while another command is at work on the process.

bats_require_minimum_version 1.5.0
load helpers

setup() { hp_setup; HELD_PID=; }
teardown() {
	[[ -z $HELD_PID ]] || kill -KILL "$HELD_PID" 2>/dev/null || true
	hp_teardown
}

# held_at STEP COMMAND ARGS...: runs the test build of hotpatch in the
# background; it stops itself (SIGSTOP) at STEP.  Sets HELD_PID once it is
# stopped there.
held_at() {
	local step=$1 state deadline=$((SECONDS + HP_WAIT_SECONDS))
	shift
	HOTPATCH_FAULT=$step "$HOTPATCH" "$@" >"$BATS_TEST_TMPDIR/held.out" 2>"$BATS_TEST_TMPDIR/held.err" &
	HELD_PID=$!
	while :; do
		state=$(awk '{ print $3 }' "/proc/$HELD_PID/stat" 2>/dev/null) ||
			{ fail "hotpatch $* ended before $step:"$'\n'"$(cat "$BATS_TEST_TMPDIR/held.err")"; return 1; }
		[[ $state != T ]] || return 0
		((SECONDS < deadline)) || { fail "hotpatch $* never stopped at $step"; return 1; }
		sleep 0.02
	done
}

# let_go EXIT: lets the held hotpatch go on and expects EXIT from it.
let_go() {
	local code=0
	kill -CONT "$HELD_PID"
	wait "$HELD_PID" || code=$?
	HELD_PID=
	((code == $1)) || { fail "hotpatch exited $code, not $1:"$'\n'"$(cat "$BATS_TEST_TMPDIR/held.err")"; return 1; }
}

@test "list tells two copies of a patch apart: resolved path, sha256, time and sequence" {
	local directory before after sha
	start_target simple
	directory=$BATS_TEST_TMPDIR/copies
	mkdir -p "$directory/sub"
	cp "$HP_PATCHES/compute_v1.so" "$directory/compute_v1.so"
	chmod 644 "$directory/compute_v1.so"
	ln -s "$directory/compute_v1.so" "$directory/sub/link.so"
	sha=$(sha256sum "$directory/compute_v1.so" | cut -d' ' -f1)
	before=$(date +%s)
	# Typed relative, then through a link and "..": both recorded as resolved.
	(cd "$directory" && run -0 --separate-stderr hp apply --pid "$TARGET_PID" compute_v1.so)
	(cd "$directory/sub" && run -0 --separate-stderr hp apply --pid "$TARGET_PID" ../sub/link.so)
	after=$(date +%s)
	run -0 --separate-stderr hp list --pid "$TARGET_PID" --json
	printf '%s\n' "$output" >"$BATS_TEST_TMPDIR/list.json"
	jq -e --arg path "$(realpath "$directory/compute_v1.so")" --arg sha "$sha" \
		--argjson before "$before" --argjson after "$after" '
		(.patches | length) == 2 and
		([.patches[].sequence] == [2, 1]) and
		all(.patches[]; .path == $path and .sha256 == $sha and
			.applied_epoch >= $before and .applied_epoch <= $after and
			(.applied | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$")) and
			(.applied | fromdateiso8601) == .applied_epoch)' \
		"$BATS_TEST_TMPDIR/list.json" || fail "list --json says:"$'\n'"$output"
	run -0 --separate-stderr hp list --pid "$TARGET_PID"
	# Named after the file name as typed; found where the link led.
	[[ ${lines[0]} == "link  (applied, 1 function)  sequence 2, applied "*", from $(realpath "$directory/compute_v1.so"), sha256 $sha" ]] ||
		fail "list says:"$'\n'"$output"
	[[ ${lines[2]} == "compute_v1  (applied, 1 function)  sequence 1, "* ]] || fail "list says:"$'\n'"$output"
}

@test "revert --sequence takes back the patch of that number, and only it" {
	start_target simple
	apply_and_wait "$TARGET_PID" "$HP_PATCHES/compute_v1.so" "$TARGET_LOG" compute '*3'
	apply_and_wait "$TARGET_PID" "$HP_PATCHES/adjust_fix.so" "$TARGET_LOG" adjust '+3'
	run -0 --separate-stderr hp revert --pid "$TARGET_PID" --sequence 1 --json
	jq -e '.patch.name == "compute_v1" and .patch.sequence == 1' <<<"$output" || fail "revert says:"$'\n'"$output"
	assert_results "$TARGET_LOG" compute '*2'
	assert_results "$TARGET_LOG" adjust '+3'
	run -0 --separate-stderr hp list --pid "$TARGET_PID" --json
	jq -e '[.patches[] | [.name, .sequence]] == [["adjust_fix", 2]]' <<<"$output" || fail "list says:"$'\n'"$output"
	assert_not_traced "$TARGET_PID"
}

@test "revert --sequence refuses a number nothing applied has, and a name besides" {
	start_target simple
	apply_and_wait "$TARGET_PID" "$HP_PATCHES/compute_v1.so" "$TARGET_LOG" compute '*3'
	run -4 --separate-stderr hp revert --pid "$TARGET_PID" --sequence 7
	assert_error_line "sequence number 7" "pid $TARGET_PID"
	run -2 --separate-stderr hp revert --pid "$TARGET_PID" --sequence 1 compute_v1
	run -2 --separate-stderr hp revert --pid "$TARGET_PID" --sequence 0
	run -2 --separate-stderr hp list --pid "$TARGET_PID" --sequence 1
	assert_results "$TARGET_LOG" compute '*3'
}

@test "records an older hotpatch wrote are read, unknowns as null, and reverted" {
	start_target simple
	# The test build writes the state as the previous version did.
	mark=$(line_count "$TARGET_LOG")
	HOTPATCH_FAULT=state-old-layout run -0 --separate-stderr hp apply --pid "$TARGET_PID" "$HP_PATCHES/compute_v1.so"
	wait_for_result "$TARGET_LOG" "$mark" compute '*3'
	run -0 --separate-stderr hp list --pid "$TARGET_PID" --json
	jq -e '.patches | length == 1 and .[0].name == "compute_v1" and .[0].sequence == 1 and
		.[0].path == null and .[0].sha256 == null and .[0].applied == null and
		.[0].applied_epoch == null' <<<"$output" || fail "list says:"$'\n'"$output"
	run -0 --separate-stderr hp list --pid "$TARGET_PID"
	[[ ${lines[0]} == "compute_v1  (applied, 1 function)  sequence 1, applied at an unknown time, from an unknown path, sha256 unknown" ]] ||
		fail "list says:"$'\n'"$output"
	# A later patch goes on top (the state is rewritten as this version's).
	apply_and_wait "$TARGET_PID" "$HP_PATCHES/adjust_fix.so" "$TARGET_LOG" adjust '+3'
	run -0 --separate-stderr hp list --pid "$TARGET_PID" --json
	jq -e '[.patches[] | [.name, .sequence, (.sha256 != null)]] ==
		[["adjust_fix", 2, true], ["compute_v1", 1, false]]' <<<"$output" || fail "list says:"$'\n'"$output"
	run -0 --separate-stderr hp revert --pid "$TARGET_PID" --sequence 1
	assert_results "$TARGET_LOG" compute '*2'
	assert_results "$TARGET_LOG" adjust '+3'
	assert_not_traced "$TARGET_PID"
}

@test "records of the previous version (8 bytes saved a function) are read whole and reverted" {
	start_target simple
	# The test build writes the state as version 4 did.
	mark=$(line_count "$TARGET_LOG")
	HOTPATCH_FAULT=state-version-4 run -0 --separate-stderr hp apply --pid "$TARGET_PID" "$HP_PATCHES/compute_v1.so"
	wait_for_result "$TARGET_LOG" "$mark" compute '*3'
	run -0 --separate-stderr hp list --pid "$TARGET_PID" --json
	jq -e '.patches | length == 1 and .[0].name == "compute_v1" and .[0].sequence == 1 and
		.[0].state == "applied" and .[0].sha256 != null and .[0].path != null' <<<"$output" ||
		fail "list says:"$'\n'"$output"
	# The bytes it saved put the function back (the state is rewritten as
	# this version's).
	run -0 --separate-stderr hp revert --pid "$TARGET_PID" --sequence 1
	assert_results "$TARGET_LOG" compute '*2'
	run -0 --separate-stderr hp list --pid "$TARGET_PID" --json
	jq -e '.patches == []' <<<"$output" || fail "list says:"$'\n'"$output"
	apply_and_wait "$TARGET_PID" "$HP_PATCHES/compute_v1.so" "$TARGET_LOG" compute '*3'
	assert_not_traced "$TARGET_PID"
}

@test "records of version 5 (no fixes, hooks or cumulative flag) are read and reverted" {
	start_target simple
	# The test build writes the state as version 5 did.
	mark=$(line_count "$TARGET_LOG")
	HOTPATCH_FAULT=state-version-5 run -0 --separate-stderr hp apply --pid "$TARGET_PID" "$HP_PATCHES/compute_v1.so"
	wait_for_result "$TARGET_LOG" "$mark" compute '*3'
	HOTPATCH_FAULT=state-version-5 run -0 --separate-stderr hp apply --pid "$TARGET_PID" "$HP_PATCHES/adjust_fix.so"
	assert_results "$TARGET_LOG" adjust '+3'
	run -0 --separate-stderr hp list --pid "$TARGET_PID" --json
	jq -e '[.patches[] | [.name, .sequence, .state, .cumulative, (.sha256 != null)]] ==
		[["adjust_fix", 2, "applied", false, true], ["compute_v1", 1, "applied", false, true]]' \
		<<<"$output" || fail "list says:"$'\n'"$output"
	# Reverted from them (the state is rewritten as this version's).
	run -0 --separate-stderr hp revert --pid "$TARGET_PID" --sequence 1
	assert_results "$TARGET_LOG" compute '*2'
	assert_results "$TARGET_LOG" adjust '+3'
	run -0 --separate-stderr hp revert --pid "$TARGET_PID"
	assert_results "$TARGET_LOG" adjust '+1'
	assert_no_patches "$TARGET_PID"
	assert_not_traced "$TARGET_PID"
}

@test "list succeeds while an apply is at work, showing the state before it ends" {
	start_target simple
	apply_and_wait "$TARGET_PID" "$HP_PATCHES/compute_v1.so" "$TARGET_LOG" compute '*3'
	held_at stop-after-return-thread apply --pid "$TARGET_PID" "$HP_PATCHES/adjust_fix.so"
	run -0 --separate-stderr hp list --pid "$TARGET_PID"
	[[ ${lines[0]} == "apply (hotpatch pid $HELD_PID) is at work on this process since "* ]] ||
		fail "list says:"$'\n'"$output"
	[[ ${lines[1]} == "adjust_fix  (in progress, 1 function)  sequence 2, "* ]] || fail "list says:"$'\n'"$output"
	[[ ${lines[3]} == "compute_v1  (applied, 1 function)  sequence 1, "* ]] || fail "list says:"$'\n'"$output"
	[[ $output != *leftover* && $output != *killed* ]] || fail "list says:"$'\n'"$output"
	run -0 --separate-stderr hp list --pid "$TARGET_PID" --json
	jq -e --argjson pid "$HELD_PID" '.at_work.command == "apply" and .at_work.hotpatch_pid == $pid and
		.leftovers == [] and .interrupted == null and
		[.patches[] | [.name, .state]] == [["adjust_fix", "in progress"], ["compute_v1", "applied"]]' \
		<<<"$output" || fail "list says:"$'\n'"$output"
	let_go 0
	assert_results "$TARGET_LOG" adjust '+3'
	run -0 --separate-stderr hp list --pid "$TARGET_PID" --json
	jq -e '.at_work == null and [.patches[] | [.name, .state]] ==
		[["adjust_fix", "applied"], ["compute_v1", "applied"]]' <<<"$output" || fail "list says:"$'\n'"$output"
	assert_not_traced "$TARGET_PID"
}

@test "list shows whole records while a write of the state is held half done" {
	start_target simple
	apply_and_wait "$TARGET_PID" "$HP_PATCHES/compute_v1.so" "$TARGET_LOG" compute '*3'
	apply_and_wait "$TARGET_PID" "$HP_PATCHES/adjust_fix.so" "$TARGET_LOG" adjust '+3'
	# Reverting the older one rewrites every record: held after the records,
	# before the header that names them.
	held_at stop-in-state-write revert --pid "$TARGET_PID" --sequence 1
	run -0 --separate-stderr hp list --pid "$TARGET_PID" --json
	jq -e '.at_work.command == "revert" and
		[.patches[] | [.name, .sequence, .state]] == [["adjust_fix", 2, "applied"]]' \
		<<<"$output" || fail "list says:"$'\n'"$output"
	let_go 0
	run -0 --separate-stderr hp list --pid "$TARGET_PID" --json
	jq -e '.at_work == null and [.patches[] | [.name, .sequence]] == [["adjust_fix", 2]]' \
		<<<"$output" || fail "list says:"$'\n'"$output"
	assert_results "$TARGET_LOG" compute '*2'
	assert_not_traced "$TARGET_PID"
}
