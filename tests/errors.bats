#!/usr/bin/env bats
# errors.bats - every failure says which failure it was: with --json an
# "error" object whose "kind" is one of the documented words (hotpatch(1),
# ERRORS) and whose exit_code is the kind's, "errno" where a system call
# failed, and null (not "" or 0) for what does not concern the failure.  The
# target is left as it was in every case.

bats_require_minimum_version 1.5.0
load helpers

setup() { hp_setup; }
teardown() {
	[[ -z ${LOCK_HOLDER:-} ]] || kill "$LOCK_HOLDER" 2>/dev/null || true
	hp_teardown
}

# fails_as CODE KIND ARGS...: runs hotpatch --json ARGS, which must exit CODE
# with an error of KIND and the prose line on stderr.
fails_as() {
	local code=$1 kind=$2
	shift 2
	run "-$code" --separate-stderr hp "$@" --json
	json_is '.ok == false' ".exit_code == $code" ".error.kind == \"$kind\"" \
		'.error.message | type == "string" and length > 0'
	assert_error_line
}

@test "kind usage: a malformed command line" {
	fails_as 2 usage list --pid 12abc
}

@test "kind no_process: a dead pid, and the patch file named by no field of the error" {
	local pid
	pid=$(dead_pid)
	fails_as 1 no_process apply --pid "$pid" "$HP_PATCHES/compute_v1.so"
	json_is ".pid == $pid" '.error.file == null' '.error.function == null' '.error.tid == null' \
		'.error.detail == null' '.error.blockers == []'
}

@test "kind not_permitted: an unprivileged user cannot read a root process, with its errno" {
	start_target simple
	run -1 --separate-stderr setpriv --reuid=65534 --regid=65534 --clear-groups \
		"$HOTPATCH" list --json --pid "$TARGET_PID"
	json_is '.error.kind == "not_permitted"' '.error.errno_name == "EACCES" or .error.errno_name == "EPERM"' \
		'.error.errno | type == "number"'
	assert_target_untouched "$TARGET_PID"
}

@test "kind locked: another hotpatch holds the process" {
	start_target simple
	# The lock is an abstract socket name; holding it is what a running command does.
	python3 -c 'import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind("\0hotpatch-" + sys.argv[1])
print("held", flush=True)
time.sleep(600)' "$TARGET_PID" >"$BATS_TEST_TMPDIR/lock" &
	LOCK_HOLDER=$!
	wait_for_line "$BATS_TEST_TMPDIR/lock" '^held$'
	fails_as 1 locked apply --pid "$TARGET_PID" "$HP_PATCHES/compute_v1.so"
	assert_target_untouched "$TARGET_PID"
	assert_results "$TARGET_LOG" compute '*2'
}

# Starts `apply stuck_fix.so` with a long timeout in the background and
# waits until it has seized the target (it then waits for the busy thread).
start_waiting_apply() {
	"$HOTPATCH" apply --json --timeout 100 --pid "$TARGET_PID" "$HP_PATCHES/stuck_fix.so" \
		>"$BATS_TEST_TMPDIR/out" 2>"$BATS_TEST_TMPDIR/err" &
	APPLY_PID=$!
	for _ in $(seq 200); do
		[[ $(awk '/^TracerPid:/ {print $2}' "/proc/$TARGET_PID/status") == "$APPLY_PID" ]] && return 0
		sleep 0.05
	done
	fail "apply never seized the target"
}

# wait_for_apply CODE: the background apply ended with CODE; its JSON in $output.
wait_for_apply() {
	local code=0
	wait "$APPLY_PID" || code=$?
	output=$(cat "$BATS_TEST_TMPDIR/out")
	[[ $code == "$1" ]] || fail "apply exited $code, not $1:"$'\n'"$output"$'\n'"$(cat "$BATS_TEST_TMPDIR/err")"
}

@test "kind interrupted: SIGINT to hotpatch while it waits, the target unchanged" {
	start_target stuck
	start_waiting_apply
	kill -INT "$APPLY_PID"
	wait_for_apply 1
	json_is '.error.kind == "interrupted"'
	assert_target_untouched "$TARGET_PID"
}

@test "kind target_exited: the target dies while apply waits" {
	start_target stuck
	start_waiting_apply
	kill -KILL "$TARGET_PID"
	wait_for_apply 1
	json_is '.error.kind == "target_exited"'
}

@test "kind busy: every blocker as a structured element, the detail whole and with its newlines" {
	local tid
	start_target stuck
	tid=$(sed -n 's/^ready .*stuck_tid=\([0-9]*\).*/\1/p' "$TARGET_LOG")
	fails_as 3 busy apply --pid "$TARGET_PID" --timeout 1 "$HP_PATCHES/stuck_fix.so"
	json_is ".error.blockers | length == 1" \
		".error.blockers[0] | .tid == $tid and .reason == \"returning\" and .function == \"stuck_forever\" and .frame >= 1" \
		'.error.blockers[0].backtrace | length > 1' \
		".error.blockers[0] | .backtrace[.frame] | test(\"stuck_forever\")"
	# The JSON detail is the prose detail, byte for byte.
	[[ $(jq -r '.error.detail' <<<"$output") == "$(sed 1d <<<"$stderr")" ]] ||
		fail "detail differs from stderr"
	assert_target_untouched "$TARGET_PID"
}

@test "a busy failure of many threads loses nothing: every thread in blockers, the detail not cut" {
	start_target stuck 8
	fails_as 3 busy apply --pid "$TARGET_PID" --timeout 1 "$HP_PATCHES/stuck_fix.so"
	json_is '.error.blockers | length == 8' \
		'[.error.blockers[].function] | all(. == "stuck_forever")' \
		'[.error.blockers[].tid] | unique | length == 8' \
		'.error.detail | contains("\n")'
	[[ $(jq -r '.error.detail' <<<"$output") == "$(sed 1d <<<"$stderr")" ]] ||
		fail "the JSON detail is not the prose detail"
	[[ $(jq -r '.error.detail | length' <<<"$output") -gt 1023 ]] ||
		fail "the detail is not longer than the old 1023-byte cut: the test does not test it"
	assert_target_untouched "$TARGET_PID"
}

@test "kind untrusted: a patch file others may write" {
	start_target simple
	cp "$HP_PATCHES/compute_v1.so" "$BATS_TEST_TMPDIR/open.so"
	chmod 666 "$BATS_TEST_TMPDIR/open.so"
	fails_as 4 untrusted apply --pid "$TARGET_PID" "$BATS_TEST_TMPDIR/open.so"
	json_is ".error.file == \"$BATS_TEST_TMPDIR/open.so\""
	assert_target_untouched "$TARGET_PID"
}

@test "kind bad_patch: a file that is not a patch, its name kept whole in UTF-8 or as U+FFFD" {
	start_target simple
	cp "$HP_PATCHES/garbage.so" "$BATS_TEST_TMPDIR/fix-é.so"
	fails_as 4 bad_patch apply --pid "$TARGET_PID" "$BATS_TEST_TMPDIR/fix-é.so"
	json_is '.error.file | endswith("/fix-é.so")' '.error.message | contains("fix-é.so")'
	cp "$HP_PATCHES/garbage.so" "$BATS_TEST_TMPDIR/fix-"$'\xff'".so"
	fails_as 4 bad_patch apply --pid "$TARGET_PID" "$BATS_TEST_TMPDIR/fix-"$'\xff'".so"
	json_is '.error.file | endswith("/fix-\ufffd.so")'
	assert_target_untouched "$TARGET_PID"
}

@test "kind build_id_mismatch: a patch pinned to another build" {
	start_target simple
	fails_as 4 build_id_mismatch apply --pid "$TARGET_PID" "$HP_PATCHES/pinned_other.so"
	assert_target_untouched "$TARGET_PID"
}

@test "kind missing_object: a patch for a library the process has not loaded" {
	start_target simple
	fails_as 4 missing_object apply --pid "$TARGET_PID" "$HP_PATCHES/missing_library.so"
	assert_target_untouched "$TARGET_PID"
}

@test "kind missing_symbol: a function or variable the process does not have" {
	start_target simple
	fails_as 4 missing_symbol apply --pid "$TARGET_PID" "$HP_PATCHES/missing_function.so"
	json_is '.error.function == "no_such_function"'
	fails_as 4 missing_symbol check --pid "$TARGET_PID" "$HP_PATCHES/missing_symbol.so"
	assert_target_untouched "$TARGET_PID"
}

@test "kind cannot_patch: a function too short for a jump" {
	start_target unpatchable
	fails_as 4 cannot_patch apply --pid "$TARGET_PID" "$HP_PATCHES/tiny_fix.so"
	json_is '.error.function == "tiny_function"'
	assert_target_untouched "$TARGET_PID"
}

@test "kind load_failed: the process's dynamic loader refuses the patch; a found function is not named" {
	start_target simple
	fails_as 4 load_failed apply --pid "$TARGET_PID" "$HP_PATCHES/unloadable.so"
	json_is '.error.message | contains("defined_nowhere")' '.error.function == null'
	assert_target_untouched "$TARGET_PID"
	assert_results "$TARGET_LOG" compute '*2'
}

@test "kind not_applied: revert with nothing to revert, or a name not applied" {
	start_target simple
	fails_as 4 not_applied revert --pid "$TARGET_PID"
	apply_and_wait "$TARGET_PID" "$HP_PATCHES/compute_v1.so" "$TARGET_LOG" compute '*3'
	fails_as 4 not_applied revert --pid "$TARGET_PID" no_such_patch
	assert_results "$TARGET_LOG" compute '*3'
}

@test "kind depends: revert of a patch a later one builds on" {
	start_target simple
	apply_and_wait "$TARGET_PID" "$HP_PATCHES/compute_v1.so" "$TARGET_LOG" compute '*3'
	run -0 --separate-stderr hp apply --pid "$TARGET_PID" "$HP_PATCHES/compute_v2.so"
	fails_as 4 depends revert --pid "$TARGET_PID" compute_v1
	json_is '.error.hint | contains("compute_v2")'
}

@test "kind output: stdout that cannot be written fails the command, saying so" {
	start_target simple
	run -1 --separate-stderr bash -c '"$0" list --json --pid "$1" >/dev/full' "$HOTPATCH" "$TARGET_PID"
	assert_error_line "cannot write the output of list"
	run -0 --separate-stderr bash -c '"$0" list --json --pid "$1" >/dev/null' "$HOTPATCH" "$TARGET_PID"
	run -1 --separate-stderr bash -c '"$0" --help >/dev/full' "$HOTPATCH"
	run -1 --separate-stderr bash -c '"$0" --version >/dev/full' "$HOTPATCH"
}

@test "check reports null for what it cannot know: the replacement, the load address, the sequence" {
	start_target simple
	run -0 --separate-stderr hp check --json --pid "$TARGET_PID" "$HP_PATCHES/compute_v1.so"
	json_is '.patch.load_address == null' '.patch.sequence == null' \
		'.patch.functions[0].replacement == null' '.patch.functions[0].over == null' \
		'.patch.functions[0].address | test("^0x[0-9a-f]+$")'
}

@test "every kind hotpatch can print is documented in the man page" {
	local kind kinds
	kinds=$(grep -oE '\[HP_KIND_[A-Z_]+\] = \{ "[a-z_]+"' "$HP_SOURCE/lib/common/error.c" |
		sed -E 's/.*"([a-z_]+)"/\1/' | sort -u)
	(($(wc -l <<<"$kinds") > 10)) || fail "no error kinds found in lib/common/error.c"
	for kind in $kinds; do
		grep -qE "^\.B $kind\$|^\.IP \\\\fB$kind\\\\fR|\\\\fB$kind\\\\fR" "$HP_SOURCE/man/hotpatch.1" ||
			fail "hotpatch(1) does not document the error kind $kind"
	done
}
