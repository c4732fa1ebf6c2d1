#!/usr/bin/env bats
# steps.bats - apply, check and revert run as tables of steps, each with its
# undo (lib/runtime/steps.c): the test build lists them
# (HOTPATCH_FAULT=list-steps), docs/ARCHITECTURE.md names every one in order,
# and a failure injected at each step up to the commit, or an interruption
# between two steps, leaves the target as it was and still working.

bats_require_minimum_version 1.5.0
load helpers

setup() { hp_setup; HELD_PID=; }
teardown() {
	[[ -z $HELD_PID ]] || kill -KILL "$HELD_PID" 2>/dev/null || true
	hp_teardown
}

# list_steps COMMAND ARGS...: the steps the test build runs for COMMAND, one
# "PHASE NAME" a line (rollback, commit, finish), in STEPS.
list_steps() {
	HOTPATCH_FAULT=list-steps run -1 --separate-stderr hp "$@" --json || return 1
	STEPS=$(jq -r '.error.detail' <<<"$output") || return 1
	[[ -n $STEPS && $STEPS != null ]] || { fail "no steps listed: $output"; return 1; }
}

# The steps whose failure is rolled back: every one up to the commit.
undoable_steps() { awk '$1 != "finish" { print $2 }' <<<"$STEPS"; }

# documented_steps COMMAND: the step names of docs/ARCHITECTURE.md's table
# under "### The steps of COMMAND".
documented_steps() {
	awk -v heading="### The steps of $1" '
		$0 == heading { inside = 1; next }
		inside && /^#/ { exit }
		inside && /^\| `/ { split($0, cell, "`"); print cell[2] }' \
		"$HP_SOURCE/docs/ARCHITECTURE.md"
}

mapping_count() { wc -l <"/proc/$1/maps"; }
descriptor_count() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 | wc -l; }

# remember_counts PID / assert_same_counts PID: mappings and descriptors of
# the target are what they were (trampoline pages unmapped, memfds closed).
remember_counts() {
	BASE_MAPPINGS=$(mapping_count "$1")
	BASE_DESCRIPTORS=$(descriptor_count "$1")
}

assert_same_counts() {
	local mappings descriptors
	mappings=$(mapping_count "$1")
	descriptors=$(descriptor_count "$1")
	((mappings == BASE_MAPPINGS)) ||
		{ fail "$mappings mappings, $BASE_MAPPINGS before:"$'\n'"$(cat "/proc/$1/maps")"; return 1; }
	((descriptors == BASE_DESCRIPTORS)) ||
		{ fail "$descriptors descriptors, $BASE_DESCRIPTORS before:"$'\n'"$(ls -l "/proc/$1/fd")"; return 1; }
}

# assert_records PATCHES: list --json shows exactly these patches (a jq
# array of names), no leftover and no interrupted command.
assert_records() {
	run -0 --separate-stderr hp list --pid "$TARGET_PID" --json || return 1
	json_is "[.patches[].name] == $1" '.leftovers == []' '.interrupted == null'
}

# hold_at STEP COMMAND ARGS...: runs hotpatch in the background, stopped by
# itself (SIGSTOP) right after STEP.  Sets HELD_PID once it is stopped.
hold_at() {
	local step=$1 state deadline=$((SECONDS + HP_WAIT_SECONDS))
	shift
	HOTPATCH_FAULT=stop-after-$step "$HOTPATCH" "$@" >"$BATS_TEST_TMPDIR/held.out" \
		2>"$BATS_TEST_TMPDIR/held.err" &
	HELD_PID=$!
	while :; do
		state=$(awk '{ print $3 }' "/proc/$HELD_PID/stat" 2>/dev/null) ||
			{ fail "hotpatch $* ended before $step:"$'\n'"$(cat "$BATS_TEST_TMPDIR/held.err")"; return 1; }
		[[ $state != T ]] || return 0
		((SECONDS < deadline)) || { fail "hotpatch $* never stopped after $step"; return 1; }
		sleep 0.02
	done
}

# interrupt_held: SIGTERM to the held hotpatch, then lets it go on; it must
# exit 1, saying it was interrupted and left the target unchanged.
interrupt_held() {
	local code=0
	kill -TERM "$HELD_PID"
	kill -CONT "$HELD_PID"
	wait "$HELD_PID" || code=$?
	HELD_PID=
	((code == 1)) || { fail "hotpatch exited $code, not 1:"$'\n'"$(cat "$BATS_TEST_TMPDIR/held.err")"; return 1; }
	grep -q "^hotpatch: interrupted; pid $TARGET_PID was left unchanged" "$BATS_TEST_TMPDIR/held.err" ||
		{ fail "hotpatch said:"$'\n'"$(cat "$BATS_TEST_TMPDIR/held.err")"; return 1; }
}

@test "the test build lists the steps of apply, check and revert as docs/ARCHITECTURE.md does" {
	local command listed documented commits
	for command in apply check revert; do
		if [[ $command == revert ]]; then
			list_steps revert --pid $$
		else
			list_steps "$command" --pid $$ "$HP_PATCHES/compute_v1.so"
		fi
		listed=$(awk '{ print $2 }' <<<"$STEPS")
		documented=$(documented_steps "$command")
		[[ $listed == "$documented" ]] ||
			fail "$command runs:"$'\n'"$listed"$'\n'"docs/ARCHITECTURE.md says:"$'\n'"$documented"
		# apply and revert change the process at one step; check never does.
		commits=$(grep -c '^commit ' <<<"$STEPS" || true)
		[[ $command == check && $commits == 0 || $command != check && $commits == 1 ]] ||
			fail "$command has $commits commit steps:"$'\n'"$STEPS"
	done
}

@test "a failure at each step of apply up to its commit leaves the target as it was and still working" {
	local step count=0
	start_target simple
	# The state mapping and the stub page stay once made: make them first.
	apply_and_wait "$TARGET_PID" "$HP_PATCHES/compute_v1.so" "$TARGET_LOG" compute '*3'
	run -0 --separate-stderr hp revert --pid "$TARGET_PID"
	remember_counts "$TARGET_PID"
	list_steps apply --pid "$TARGET_PID" "$HP_PATCHES/two_functions.so"
	for step in $(undoable_steps); do
		HOTPATCH_FAULT=$step run -1 --separate-stderr hp apply --pid "$TARGET_PID" \
			"$HP_PATCHES/two_functions.so"
		assert_error_line "injected fault at step $step" || fail "the fault at $step did not fire"
		assert_target_untouched "$TARGET_PID" || fail "after the fault at $step"
		assert_same_counts "$TARGET_PID" || fail "after the fault at $step"
		assert_results "$TARGET_LOG" compute '*2' || fail "after the fault at $step"
		assert_results "$TARGET_LOG" adjust '+1' || fail "after the fault at $step"
		assert_records '[]' || fail "after the fault at $step"
		count=$((count + 1))
	done
	((count >= 10)) || fail "only $count steps of apply:"$'\n'"$STEPS"
	apply_and_wait "$TARGET_PID" "$HP_PATCHES/two_functions.so" "$TARGET_LOG" compute '*4'
	assert_results "$TARGET_LOG" adjust '+2'
	assert_no_errors "$TARGET_LOG"
}

@test "a failure at each step of check leaves the target as it was" {
	local step count=0
	start_target simple
	list_steps check --pid "$TARGET_PID" "$HP_PATCHES/two_functions.so"
	for step in $(undoable_steps); do
		HOTPATCH_FAULT=$step run -1 --separate-stderr hp check --pid "$TARGET_PID" \
			"$HP_PATCHES/two_functions.so"
		assert_error_line "injected fault at step $step" || fail "the fault at $step did not fire"
		assert_target_untouched "$TARGET_PID" || fail "after the fault at $step"
		assert_results "$TARGET_LOG" compute '*2' || fail "after the fault at $step"
		count=$((count + 1))
	done
	((count >= 4)) || fail "only $count steps of check:"$'\n'"$STEPS"
	assert_no_patches "$TARGET_PID"
	run -0 --separate-stderr hp check --pid "$TARGET_PID" "$HP_PATCHES/two_functions.so"
}

@test "a failure at each step of revert up to its commit leaves the patch applied and working" {
	local step count=0
	start_target simple
	apply_and_wait "$TARGET_PID" "$HP_PATCHES/two_functions.so" "$TARGET_LOG" compute '*4'
	remember_counts "$TARGET_PID"
	list_steps revert --pid "$TARGET_PID"
	for step in $(undoable_steps); do
		HOTPATCH_FAULT=$step run -1 --separate-stderr hp revert --pid "$TARGET_PID"
		assert_error_line "injected fault at step $step" || fail "the fault at $step did not fire"
		assert_not_traced "$TARGET_PID" || fail "after the fault at $step"
		assert_same_counts "$TARGET_PID" || fail "after the fault at $step"
		assert_results "$TARGET_LOG" compute '*4' || fail "after the fault at $step"
		assert_results "$TARGET_LOG" adjust '+2' || fail "after the fault at $step"
		assert_records '["two_functions"]' || fail "after the fault at $step"
		count=$((count + 1))
	done
	((count >= 6)) || fail "only $count steps of revert:"$'\n'"$STEPS"
	run -0 --separate-stderr hp revert --pid "$TARGET_PID"
	assert_results "$TARGET_LOG" compute '*2'
	assert_results "$TARGET_LOG" adjust '+1'
	assert_records '[]'
	assert_no_errors "$TARGET_LOG"
}

# The steps up to and with the commit: a target killed after one of them
# dies before the command is done.
steps_to_commit() { awk '$1 != "finish" { print $2 }' <<<"$STEPS"; }

# killed_after_each_step COMMAND: for each step of COMMAND up to its commit,
# a fresh target is killed right after it (with the patch applied first for
# a revert); the command meets a process being torn down and must say so.
# Killed before map-target, the first step that looks at the process, it
# may be gone (reaped by this shell) before hotpatch ever saw it: then "no
# process" is the truth too.
killed_after_each_step() {
	local command=$1 step count=0 patch=$HP_PATCHES/two_functions.so looked=0
	local -a arguments
	for step in $(steps_to_commit); do
		[[ $step != map-target ]] || looked=1
		start_target simple || return 1
		arguments=(--pid "$TARGET_PID" "$patch")
		if [[ $command == revert ]]; then
			run -0 --separate-stderr hp apply --pid "$TARGET_PID" "$patch"
			arguments=(--pid "$TARGET_PID")
		fi
		HOTPATCH_FAULT=target-killed-after-$step run -1 --separate-stderr \
			hp "$command" "${arguments[@]}" --json
		if ((looked)); then
			json_is '.error.kind == "target_exited"' \
				".error.message | startswith(\"pid $TARGET_PID exited\")" ||
				fail "killed after $step"
		else
			json_is '.error.kind == "target_exited" or .error.kind == "no_process"' \
				".error.message | test(\"^(pid $TARGET_PID exited|no process $TARGET_PID)\")" ||
				fail "killed after $step"
		fi
		count=$((count + 1))
	done
	((count >= 6)) || fail "only $count steps of $command:"$'\n'"$STEPS"
}

@test "apply whose target is killed after any step up to the commit exits 1 naming the pid as exited" {
	start_target simple
	list_steps apply --pid "$TARGET_PID" "$HP_PATCHES/two_functions.so"
	killed_after_each_step apply
}

@test "revert whose target is killed after any step up to the commit exits 1 naming the pid as exited" {
	start_target simple
	run -0 --separate-stderr hp apply --pid "$TARGET_PID" "$HP_PATCHES/two_functions.so"
	list_steps revert --pid "$TARGET_PID"
	killed_after_each_step revert
}

# Held with every thread stopped and clear, a step before the commit: were
# the flag not looked at between steps, the jumps would be written.
@test "apply interrupted between two steps rolls back and exits 1" {
	start_target simple
	hold_at stop-threads apply --pid "$TARGET_PID" "$HP_PATCHES/two_functions.so"
	interrupt_held
	assert_target_untouched "$TARGET_PID"
	assert_results "$TARGET_LOG" compute '*2'
	assert_records '[]'
	apply_and_wait "$TARGET_PID" "$HP_PATCHES/two_functions.so" "$TARGET_LOG" compute '*4'
}

@test "revert interrupted between two steps leaves the patch applied and exits 1" {
	start_target simple
	apply_and_wait "$TARGET_PID" "$HP_PATCHES/two_functions.so" "$TARGET_LOG" compute '*4'
	hold_at stop-threads revert --pid "$TARGET_PID"
	interrupt_held
	assert_not_traced "$TARGET_PID"
	assert_results "$TARGET_LOG" compute '*4'
	assert_records '["two_functions"]'
	run -0 --separate-stderr hp revert --pid "$TARGET_PID"
	assert_results "$TARGET_LOG" compute '*2'
}
