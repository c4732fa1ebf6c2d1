#!/usr/bin/env bats
# machine.bats - one command over many processes: --pid repeated, --exe PATH
# (every process of a program, also one started from a copy replaced on disk
# since) and --object PATH (every process mapping a library).  Each process
# is reported on its own (a line, or an element of "processes"), one
# failure never stops the others, and the exit code is the failures' common
# one.  And apply is idempotent: the same patch again changes nothing.

bats_require_minimum_version 1.5.0
load helpers

setup() { hp_setup; }
teardown() { hp_teardown; }

# start_copies N NAME: N processes of a private copy of testdata's target
# NAME (no other test's processes run it), at $PROGRAM; their pids in PIDS,
# their logs in LOGS.
start_copies() {
	local count=$1 name=$2
	PROGRAM=$BATS_TEST_TMPDIR/programs/$name
	mkdir -p "${PROGRAM%/*}"
	cp "$HP_TESTDATA/targets/$name" "$PROGRAM"
	PIDS=()
	LOGS=()
	for _ in $(seq "$count"); do
		start_executable "$PROGRAM"
		PIDS+=("$TARGET_PID")
		LOGS+=("$TARGET_LOG")
	done
}

@test "--exe patches every process of a program, and reverts them all" {
	local i
	start_copies 3 simple
	run -0 --separate-stderr hp apply --exe "$PROGRAM" --json "$HP_PATCHES/compute_v1.so"
	json_is '.command == "apply"' '.ok == true' '.exit_code == 0' \
		".processes | map(.pid) == [${PIDS[0]}, ${PIDS[1]}, ${PIDS[2]}]" \
		'all(.processes[]; .ok and .patch.name == "compute_v1" and .patch.state == "applied")'
	for i in 0 1 2; do
		assert_results "${LOGS[$i]}" compute '*3'
	done
	run -0 --separate-stderr hp list --exe "$PROGRAM"
	for i in 0 1 2; do
		[[ $output == *"pid ${PIDS[$i]}: 1 patch applied: compute_v1"* ]] || fail "list says: $output"
	done
	run -0 --separate-stderr hp revert --exe "$PROGRAM"
	for i in 0 1 2; do
		[[ $output == *"pid ${PIDS[$i]}: reverted compute_v1"* ]] || fail "revert says: $output"
		assert_results "${LOGS[$i]}" compute '*2'
	done
}

@test "--exe finds a process started from a copy since replaced on disk, by its build-id" {
	local program=$BATS_TEST_TMPDIR/bin/service old
	mkdir -p "$BATS_TEST_TMPDIR/bin"
	cp "$HP_TESTDATA/targets/simple" "$program"
	start_executable "$program"
	old=$TARGET_PID
	# An upgrade: a new file under the same name (the old inode is deleted).
	cp "$HP_TESTDATA/targets/simple" "$program.new"
	mv "$program.new" "$program"
	grep -q "$program (deleted)" "/proc/$old/maps" || fail "the old copy was not replaced"
	run -0 --separate-stderr hp apply --exe "$program" --json "$HP_PATCHES/compute_v1.so"
	json_is ".processes | map(.pid) == [$old]" '.processes[0].ok == true'
	assert_results "$TARGET_LOG" compute '*3'
	# Another program under that name (another build-id) is not it.
	cp "$HP_TESTDATA/targets/stuck" "$program.new"
	mv "$program.new" "$program"
	run -0 --separate-stderr hp list --exe "$program" --json
	json_is '.processes == []'
}

@test "--object patches every process mapping a library, across different programs" {
	local copy=$BATS_TEST_TMPDIR/with_lib_too first first_log second_log library
	cp "$HP_TESTDATA/targets/with_lib" "$copy"
	start_target with_lib
	first=$TARGET_PID
	first_log=$TARGET_LOG
	library=$(grep -m1 -o '/[^ ]*libdemo[^ ]*' "/proc/$first/maps")
	LD_LIBRARY_PATH=$(dirname "$library") start_executable "$copy"
	second_log=$TARGET_LOG
	start_target simple	# maps no libdemo: not chosen
	run -0 --separate-stderr hp apply --json --object "$library" "$HP_PATCHES/demo_lib_fix.so"
	json_is ".processes | length == 2" ".processes | map(.pid) | index($first) != null" \
		".processes | map(.pid) | index($TARGET_PID) == null" 'all(.processes[]; .ok)'
	assert_results "$first_log" demo '+70'
	assert_results "$second_log" demo '+70'
	assert_target_untouched "$TARGET_PID"
}

@test "one busy process fails alone: the others are patched, the exit code is its" {
	local stuck stuck_log busy
	start_target stuck
	stuck=$TARGET_PID
	stuck_log=$TARGET_LOG
	# Its only thread lives inside the dynamic loader: nobody may run dlopen.
	start_target loader_busy
	busy=$TARGET_PID
	run -3 --separate-stderr hp apply --pid "$busy" --pid "$stuck" --timeout 2 --json \
		"$HP_PATCHES/tick_fix.so"
	json_is '.ok == false' '.exit_code == 3' ".processes | map(.pid) == [$busy, $stuck]" \
		'.processes[0].exit_code == 3 and .processes[0].error.kind == "busy"' \
		'.processes[1].ok == true'
	wait_for_result "$stuck_log" "$(line_count "$stuck_log")" tick '+10'
	assert_target_untouched "$busy"
	# Different failures: exit 1.
	run -1 --separate-stderr hp apply --pid "$busy" --pid "$(dead_pid)" --timeout 1 \
		"$HP_PATCHES/tick_fix.so"
	[[ $output == *"failed (busy, exit 3)"* && $output == *"failed (no_process, exit 1)"* ]] ||
		fail "apply says: $output"
}

@test "apply is idempotent: the same patch again changes nothing; another of that name is refused" {
	start_target simple
	apply_and_wait "$TARGET_PID" "$HP_PATCHES/compute_v1.so" "$TARGET_LOG" compute '*3'
	run -0 --separate-stderr hp apply --pid "$TARGET_PID" --json "$HP_PATCHES/compute_v1.so"
	json_is '.patch.state == "already applied"' '.patch.sequence == 1'
	run -0 --separate-stderr hp apply --pid "$TARGET_PID" "$HP_PATCHES/compute_v1.so"
	[[ $output == "compute_v1 is already applied in pid $TARGET_PID; nothing changed"* ]] ||
		fail "apply says: $output"
	run -0 --separate-stderr hp list --pid "$TARGET_PID" --json
	json_is '.patches | length == 1'
	# Other bytes under the same name: exit 4, both named.
	mkdir -p "$BATS_TEST_TMPDIR/other"
	cp "$HP_PATCHES/compute_v2.so" "$BATS_TEST_TMPDIR/other/compute_v1.so"
	run -4 --separate-stderr hp apply --pid "$TARGET_PID" --json "$BATS_TEST_TMPDIR/other/compute_v1.so"
	json_is '.error.kind == "name_conflict"' '.error.message | contains("sequence 1")' \
		".error.message | contains(\"$BATS_TEST_TMPDIR/other/compute_v1.so\")"
	assert_results "$TARGET_LOG" compute '*3'
}

@test "a selector that matches nothing is a success with no process; a missing file is a usage error" {
	local program=$BATS_TEST_TMPDIR/never_started
	cp "$HP_TESTDATA/targets/simple" "$program"
	run -0 --separate-stderr hp apply --exe "$program" --json "$HP_PATCHES/compute_v1.so"
	json_is '.processes == []' '.exit_code == 0'
	run -2 --separate-stderr hp apply --exe "$BATS_TEST_TMPDIR/nothing" "$HP_PATCHES/compute_v1.so"
	assert_error_line "--exe" "nothing"
}
