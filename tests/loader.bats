#!/usr/bin/env bats
# loader.bats - processes started later: the preloaded loader
# (libhotpatch-loader.so) applies every installed patch that fits a process
# before main runs, and a library's when it is dlopen'ed; what it applied
# is seen and reverted like any other patch; whatever is wrong with the
# store never changes how a process starts.  Each test has its own store
# (HOTPATCH_STORE) and programs with build-ids of their own.

bats_require_minimum_version 1.5.0
load helpers

setup() {
	hp_setup
	export HOTPATCH_STORE=$BATS_TEST_TMPDIR/store
	LOADER=${HP_LOADER:-$(cd "${HOTPATCH%/*}/.." && pwd)/lib/hotpatch/libhotpatch-loader.so}
	[[ -f $LOADER ]] || { fail "no loader at $LOADER: run 'make loader'"; return 1; }
	mkdir -p "$BATS_TEST_TMPDIR/patches"
	private_copy "$HP_TESTDATA/targets/once" "$BATS_TEST_TMPDIR/programs/once" || return 1
	ONCE=$BATS_TEST_TMPDIR/programs/once ONCE_ID=$PRIVATE_BUILD_ID
}
teardown() {
	hp_teardown
	rm -f "${SECURE_FILES[@]}"
	[[ -z $SECURE_DIR ]] || rmdir "$SECURE_DIR"
}

# build_patch OUT NAME OBJECT FUNCTION EXPRESSION PIN-ID: FUNCTION(value) ->
# EXPRESSION in OBJECT ("" for the program), named NAME, pinned to PIN-ID.
build_patch() {
	local out=$1 name=$2 object=$3 function=$4 expression=$5 id=$6
	cat >"${out%.so}.c" <<-EOF
		#include <hotpatch.h>
		static int fixed(int value) { return $expression; }
		HOTPATCH_REPLACE_IN("$object", $function, fixed);
		HOTPATCH_NAME("$name");
		HOTPATCH_BUILD_ID("$object", "$id");
	EOF
	cc -O2 -g -fPIC -shared -Wall -I"$HP_SOURCE/lib/include" -o "$out" "${out%.so}.c"
	chmod 644 "$out"
}

# with_loader COMMAND...: runs it as a process started later.
with_loader() {
	env LD_PRELOAD="$LOADER" "$@"
}

original_once=$'compute 1 -> 2\ncompute 2 -> 4\ncompute 3 -> 6'

@test "a program started after install runs the fix from its first call, and exits as before" {
	build_patch "$BATS_TEST_TMPDIR/patches/once_fix.so" once_fix "" compute '13 * value' "$ONCE_ID"
	run -0 hp install "$BATS_TEST_TMPDIR/patches/once_fix.so"
	[[ $output == *"no running process fits it"* ]]
	run -0 --separate-stderr "$ONCE"
	[[ $output == "$original_once" ]]
	run -0 --separate-stderr with_loader "$ONCE"
	[[ $output == $'compute 1 -> 13\ncompute 2 -> 26\ncompute 3 -> 39' ]]
	[[ -z $stderr ]]
	# What it did is said (syslog; here on stderr).
	run -0 --separate-stderr env HOTPATCH_LOADER_LOG=stderr LD_PRELOAD="$LOADER" "$ONCE"
	[[ $stderr == "hotpatch-loader["*"]: applied once_fix (sha256 "*", 1 functions)" ]]
}

@test "what the loader applied is listed, reverted live and seen by status like any other patch" {
	local pid log path
	private_copy "$HP_TESTDATA/targets/simple" "$BATS_TEST_TMPDIR/programs/simple" || return 1
	build_patch "$BATS_TEST_TMPDIR/patches/simple_fix.so" simple_fix "" compute '13 * value' \
		"$PRIVATE_BUILD_ID"
	run -0 hp install "$BATS_TEST_TMPDIR/patches/simple_fix.so"
	start_executable env LD_PRELOAD="$LOADER" "$BATS_TEST_TMPDIR/programs/simple"
	pid=$TARGET_PID log=$TARGET_LOG
	# From the very first call: the first result line is patched.
	[[ $(grep -m1 '^compute' "$log") == "compute 1 -> 13" ]]
	path=$HOTPATCH_STORE/simple_fix.so
	run -0 --separate-stderr hp list --json --pid "$pid"
	json_is '.patches | length == 1' '.patches[0].name == "simple_fix"' \
		'.patches[0].state == "applied"' ".patches[0].path == \"$path\""
	run -0 --separate-stderr hp status --json
	json_is ".processes[] | select(.pid == $pid) | [.patches[] | {name, state}] == [{\"name\": \"simple_fix\", \"state\": \"applied\"}]"
	run -0 hp revert --pid "$pid" simple_fix
	assert_results "$log" compute '*2'
	run -0 hp list --pid "$pid"
	[[ $output == *"no patches applied"* ]]
	# Reverted by hand, the process is no longer as installed.
	run -1 --separate-stderr hp status --json
	json_is ".processes[] | select(.pid == $pid) | .patches[0].state == \"not applied\""
}

@test "uninstall reverts the processes that got the patch when they started" {
	local first second
	private_copy "$HP_TESTDATA/targets/simple" "$BATS_TEST_TMPDIR/programs/simple" || return 1
	build_patch "$BATS_TEST_TMPDIR/patches/simple_fix.so" simple_fix "" compute '13 * value' \
		"$PRIVATE_BUILD_ID"
	run -0 hp install "$BATS_TEST_TMPDIR/patches/simple_fix.so"
	start_executable env LD_PRELOAD="$LOADER" "$BATS_TEST_TMPDIR/programs/simple"
	first=$TARGET_LOG
	start_executable env LD_PRELOAD="$LOADER" "$BATS_TEST_TMPDIR/programs/simple"
	second=$TARGET_LOG
	assert_results "$first" compute '*13'
	assert_results "$second" compute '*13'
	run -0 hp uninstall simple_fix
	assert_results "$first" compute '*2'
	assert_results "$second" compute '*2'
	# Out of the store and out of the index: a process starting now runs the original.
	start_executable env LD_PRELOAD="$LOADER" "$BATS_TEST_TMPDIR/programs/simple"
	[[ $(grep -m1 '^compute' "$TARGET_LOG") == "compute 1 -> 2" ]]
}

@test "a library dlopen'ed after the process started gets its installed patch as it is loaded" {
	local library=$BATS_TEST_TMPDIR/libs/libdemo.so trigger=$BATS_TEST_TMPDIR/load-now pid log
	private_copy "$HP_TESTDATA/libs/libdemo.so" "$library" || return 1
	build_patch "$BATS_TEST_TMPDIR/patches/demo_fix.so" demo_fix libdemo.so demo_value \
		'value + 70' "$PRIVATE_BUILD_ID"
	start_executable env LD_PRELOAD="$LOADER" "$HP_TESTDATA/targets/late_library" "$trigger" "$library"
	pid=$TARGET_PID log=$TARGET_LOG
	# Installed while the process runs without the library: nothing fits yet.
	run -0 hp install "$BATS_TEST_TMPDIR/patches/demo_fix.so"
	[[ $output == *"no running process fits it"* ]]
	touch "$trigger"
	wait_for_line "$log" '^loaded '
	# The first call into the library already runs the fix.
	[[ $(grep -m1 '^demo' "$log") == "demo "* ]]
	assert_results "$log" demo '+70'
	run -0 --separate-stderr awk '$1 == "demo" { print; exit }' "$log"
	[[ $output =~ ^demo\ ([0-9]+)\ -\>\ ([0-9]+)$ ]]
	((BASH_REMATCH[2] == BASH_REMATCH[1] + 70))
	run -0 --separate-stderr hp status --json
	json_is ".processes[] | select(.pid == $pid) | [.patches[] | {name, state}] == [{\"name\": \"demo_fix\", \"state\": \"applied\"}]"
	run -0 hp revert --pid "$pid" demo_fix
	assert_results "$log" demo '+7'
}

# expect_unchanged: the program starts, prints and exits exactly as without
# the loader, and the loader says why it applied nothing.
expect_unchanged() {
	local why=$1
	run -0 --separate-stderr env HOTPATCH_LOADER_LOG=stderr LD_PRELOAD="$LOADER" "$ONCE"
	[[ $output == "$original_once" ]] || { fail "output changed: $output"; return 1; }
	[[ $stderr == *"$why"* ]] || { fail "the loader said: $stderr"; return 1; }
}

@test "a garbage, untrusted, wrong-build or unfitting patch in the store never changes how a process starts" {
	local store=$HOTPATCH_STORE other
	build_patch "$BATS_TEST_TMPDIR/patches/once_fix.so" once_fix "" compute '13 * value' "$ONCE_ID"
	run -0 hp install "$BATS_TEST_TMPDIR/patches/once_fix.so"
	# Garbage in place of the installed file.
	head -c 4096 /dev/urandom >"$store/once_fix.so"
	expect_unchanged "once_fix not applied (exit 4): bad_patch"
	# A patch for another build of the program, under an index that says otherwise.
	other=$(head -c 20 /dev/urandom | od -An -tx1 | tr -d ' \n')
	build_patch "$store/once_fix.so" once_fix "" compute '13 * value' "$other"
	rm -f "$store/once_fix.c"
	expect_unchanged "once_fix not applied (exit 4): build_id_mismatch"
	# A patch for a function the program does not have.
	build_patch "$store/once_fix.so" once_fix "" no_such_function '13 * value' "$ONCE_ID"
	rm -f "$store/once_fix.c"
	expect_unchanged "once_fix not applied (exit 4): missing_symbol"
	# The store writable by others: nothing in it is trusted.
	build_patch "$store/once_fix.so" once_fix "" compute '13 * value' "$ONCE_ID"
	rm -f "$store/once_fix.c"
	chmod 0777 "$store"
	expect_unchanged "is not owned by root or is writable by others"
	chmod 0755 "$store"
	# An index that is not one.
	head -c 512 /dev/urandom >"$store/index"
	expect_unchanged "is not an index this loader reads"
	# The control: the store repaired, the loader patches.
	rm "$store/once_fix.so"
	run -0 hp install "$BATS_TEST_TMPDIR/patches/once_fix.so"
	run -0 with_loader "$ONCE"
	[[ $output == *"compute 1 -> 13"* ]]
}

@test "with nothing installed, the loader leaves no descriptor, mapping or output of its own" {
	local plain loaded
	export HOTPATCH_STORE=$BATS_TEST_TMPDIR/no-store
	run -0 --separate-stderr env HOTPATCH_LOADER_LOG=stderr LD_PRELOAD="$LOADER" "$ONCE"
	[[ $output == "$original_once" && -z $stderr ]]
	start_executable "$HP_TESTDATA/targets/simple"
	plain=$TARGET_PID
	start_executable env LD_PRELOAD="$LOADER" "$HP_TESTDATA/targets/simple"
	loaded=$TARGET_PID
	[[ $(ls "/proc/$plain/fd" | wc -l) == $(ls "/proc/$loaded/fd" | wc -l) ]]
	grep -q libhotpatch-loader "/proc/$loaded/maps"
	run -1 grep -E 'hotpatch-state|libhotpatch-apply' "/proc/$loaded/maps"
}

# A set-uid program preloads only set-uid libraries of the system's own
# folders (ld.so(8)), so the loader is copied there for this test.
@test "in a set-uid program the loader ignores HOTPATCH_STORE" {
	local system=/usr/lib/x86_64-linux-gnu name=libhotpatch-loader-test-$$.so
	[[ -d $system ]] || { fail "no $system"; return 1; }
	[[ ! -e $system/libhotpatch-apply.so ]] || { fail "$system/libhotpatch-apply.so exists already"; return 1; }
	SECURE_FILES=("$system/$name" "$system/libhotpatch-apply.so")
	install -m 4755 "$LOADER" "$system/$name"
	install -m 0644 "${LOADER%/*}/libhotpatch-apply.so" "$system/libhotpatch-apply.so"
	build_patch "$BATS_TEST_TMPDIR/patches/once_fix.so" once_fix "" compute '13 * value' "$ONCE_ID"
	run -0 hp install "$BATS_TEST_TMPDIR/patches/once_fix.so"
	# Somewhere another user may run it from.
	SECURE_DIR=$(mktemp -d /tmp/hotpatch-setuid.XXXXXX)
	SECURE_FILES+=("$SECURE_DIR/once")
	chmod 0755 "$SECURE_DIR"
	install -m 4755 "$ONCE" "$SECURE_DIR/once"
	# The control: run by its owner (no secure execution) it is patched.
	run -0 env LD_PRELOAD="$name" "$SECURE_DIR/once" preloaded
	[[ $output == *"compute 1 -> 13"* && $output == *"preloaded $name"* ]]
	# Run by another user, set-uid: the loader is there, the store named in
	# the environment is not used.
	run -0 setpriv --reuid=65534 --regid=65534 --clear-groups env LD_PRELOAD="$name" \
		"$SECURE_DIR/once" preloaded
	[[ $output == "$original_once"$'\n'"preloaded $name" ]]
}

@test "a long index (more than fits the loader's stack buffer) is read whole: the patch listed last still applies" {
	local index=$HOTPATCH_STORE/index
	build_patch "$BATS_TEST_TMPDIR/patches/once_fix.so" once_fix "" compute '13 * value' "$ONCE_ID"
	run -0 hp install "$BATS_TEST_TMPDIR/patches/once_fix.so"
	# 120 other patches listed first, pinned to builds nobody runs: 6 KiB.
	{
		head -n1 "$index"
		for i in $(seq 1 120); do
			printf 'other_%d %s\n' "$i" "$(head -c 20 /dev/urandom | od -An -tx1 | tr -d ' \n')"
		done
		tail -n +2 "$index"
	} >"$index.new"
	chmod 644 "$index.new" && mv "$index.new" "$index"
	(($(stat -c %s "$index") > 4096)) || fail "the index is only $(stat -c %s "$index") bytes"
	run -0 --separate-stderr env HOTPATCH_LOADER_LOG=stderr LD_PRELOAD="$LOADER" "$ONCE"
	[[ $output == $'compute 1 -> 13\ncompute 2 -> 26\ncompute 3 -> 39' ]]
	[[ $stderr == "hotpatch-loader["*"]: applied once_fix "* ]]
}

@test "status says failed, and why, for a process the loader tried a patch in and could not apply it" {
	local store=$HOTPATCH_STORE program=$BATS_TEST_TMPDIR/programs/simple tried tried_log plain
	private_copy "$HP_TESTDATA/targets/simple" "$program" || return 1
	build_patch "$BATS_TEST_TMPDIR/patches/simple_fix.so" simple_fix "" compute '13 * value' \
		"$PRIVATE_BUILD_ID"
	run -0 hp install "$BATS_TEST_TMPDIR/patches/simple_fix.so"
	# The installed copy replaced by one for a function the program lacks.
	build_patch "$store/simple_fix.so" simple_fix "" no_such_function '13 * value' "$PRIVATE_BUILD_ID"
	rm -f "$store/simple_fix.c"
	start_executable env LD_PRELOAD="$LOADER" "$program"
	tried=$TARGET_PID tried_log=$TARGET_LOG
	start_executable "$program"
	plain=$TARGET_PID
	assert_results "$TARGET_LOG" compute '*2'
	run -1 --separate-stderr hp status --json
	json_is ".processes[] | select(.pid == $tried) | .patches == [{\"name\": \"simple_fix\", \"state\": \"failed\", \"installed\": true, \"fixes\": [], \"excluded\": [], \"reason\": .patches[0].reason}]" \
		".processes[] | select(.pid == $tried) | .patches[0].reason | startswith(\"missing_symbol: \")" \
		".processes[] | select(.pid == $plain) | [.patches[] | {state, reason}] == [{\"state\": \"not applied\", \"reason\": null}]"
	run -1 hp status
	[[ $output == *"$tried"*"simple_fix"*"failed"*"missing_symbol: "* ]] || fail "status says:"$'\n'"$output"
	# status only read the loader's table: the process runs on as it was.
	assert_results "$tried_log" compute '*2'
}
