#!/usr/bin/env bats
# store.bats - the store, install, uninstall and status: a pinned patch
# installed is kept in the store and applied to every running process it
# fits; status says where it is applied (exit 0 when everywhere it fits);
# uninstall reverts it everywhere and empties the store.  Every test has a
# store of its own (HOTPATCH_STORE) and a program with a build-id of its
# own, so that no other process on the machine fits what it installs.

bats_require_minimum_version 1.5.0
load helpers

setup() {
	hp_setup
	export HOTPATCH_STORE=$BATS_TEST_TMPDIR/store
	private_program
}
teardown() { hp_teardown; }

# private_program: a copy of testdata's simple target at $PROGRAM with a
# random build-id, and $FIX, a patch pinned to it (compute -> 13N) named
# store_fix; $UNPINNED is the same patch without the pin.
private_program() {
	local id
	PROGRAM=$BATS_TEST_TMPDIR/programs/simple
	mkdir -p "$BATS_TEST_TMPDIR/patches"
	private_copy "$HP_TESTDATA/targets/simple" "$PROGRAM" || return 1
	id=$PRIVATE_BUILD_ID
	PROGRAM_ID=$id
	FIX=$BATS_TEST_TMPDIR/patches/store_fix.so
	UNPINNED=$BATS_TEST_TMPDIR/patches/unpinned_fix.so
	build_fix "$FIX" store_fix "HOTPATCH_BUILD_ID(\"\", \"$id\");"
	build_fix "$UNPINNED" unpinned_fix ""
}

# build_fix OUT NAME PIN [FACTOR]: compute -> FACTOR*N (default 13), named
# NAME, with the line PIN.
build_fix() {
	local out=$1 name=$2 pin=$3 factor=${4:-13}
	cat >"${out%.so}.c" <<-EOF
		#include <hotpatch.h>
		static int compute_fixed(int value) { return $factor * value; }
		HOTPATCH_REPLACE(compute, compute_fixed);
		HOTPATCH_NAME("$name");
		$pin
	EOF
	cc -O2 -g -fPIC -shared -Wall -I"$HP_SOURCE/lib/include" -o "$out" "${out%.so}.c"
	chmod 644 "$out"
}

# state_of PID NAME: the state status --json (in $output) gives NAME in PID.
state_of() {
	jq -r --argjson pid "$1" --arg name "$2" \
		'.processes[] | select(.pid == $pid) | .patches[] | select(.name == $name) | .state' \
		<<<"$output"
}

@test "install applies a pinned patch to every running process it fits, and status says so" {
	local first second first_log second_log
	start_executable "$PROGRAM"
	first=$TARGET_PID first_log=$TARGET_LOG
	start_executable "$PROGRAM"
	second=$TARGET_PID second_log=$TARGET_LOG
	# Not installed yet: nothing to say about these processes, all is as installed.
	run -0 --separate-stderr hp status --json
	json_is '.command == "status"' '.ok == true' '.installed == []' \
		"[.processes[].pid] | index($first) == null"
	run -0 --separate-stderr hp install --json "$FIX"
	json_is '.command == "install"' '.ok == true' '.exit_code == 0' \
		'.installed.name == "store_fix"' '.installed.unchanged == false' \
		".installed.path == \"$HOTPATCH_STORE/store_fix.so\"" \
		"[.processes[].pid] == [$first, $second]" \
		'all(.processes[]; .ok and .patch.state == "applied")'
	assert_results "$first_log" compute '*13'
	assert_results "$second_log" compute '*13'
	[[ $(stat -c '%a' "$HOTPATCH_STORE/store_fix.so") == 644 ]]
	cmp "$FIX" "$HOTPATCH_STORE/store_fix.so"
	run -0 --separate-stderr hp status --json
	json_is '.exit_code == 0' '.installed | map(.name) == ["store_fix"]' \
		".installed[0].sha256 == \"$(sha256sum "$FIX" | cut -d' ' -f1)\""
	[[ $(state_of "$first" store_fix) == applied ]] || fail "status: $output"
	[[ $(state_of "$second" store_fix) == applied ]] || fail "status: $output"
	run -0 --separate-stderr hp status
	[[ $output == *"$first"*store_fix*applied*"$PROGRAM"* ]] || fail "status says: $output"
}

@test "a process started after install shows not applied, and status exits 1" {
	start_executable "$PROGRAM"
	run -0 --separate-stderr hp install "$FIX"
	[[ $output == *"pid $TARGET_PID: applied store_fix"* ]] || fail "install says: $output"
	# No loader yet: a process started later is not patched by itself.
	start_executable "$PROGRAM"
	assert_results "$TARGET_LOG" compute '*2'
	run -1 --separate-stderr hp status --json
	json_is '.ok == false' '.exit_code == 1'
	[[ $(state_of "$TARGET_PID" store_fix) == "not applied" ]] || fail "status: $output"
	# Installing again brings it in line.
	run -0 --separate-stderr hp install --json "$FIX"
	json_is '.installed.unchanged == true'
	assert_results "$TARGET_LOG" compute '*13'
	run -0 --separate-stderr hp status --json
	[[ $(state_of "$TARGET_PID" store_fix) == applied ]] || fail "status: $output"
}

@test "a patch that fits no running process is still installed" {
	run -0 --separate-stderr hp install --json "$FIX"
	json_is '.ok == true' '.processes == []'
	[[ -f $HOTPATCH_STORE/store_fix.so ]]
	run -0 --separate-stderr hp status --json
	json_is '.installed | map(.name) == ["store_fix"]'
}

@test "install refuses a patch that does not pin what it patches, and stores nothing" {
	start_executable "$PROGRAM"
	run -4 --separate-stderr hp install --json "$UNPINNED"
	json_is '.ok == false' '.error.kind == "unpinned"'
	[[ $stderr == *"without pinning its build-id"* ]] || fail "stderr: $stderr"
	[[ ! -e $HOTPATCH_STORE/unpinned_fix.so ]]
	assert_results "$TARGET_LOG" compute '*2'
}

@test "install twice is idempotent; another patch of that name is refused" {
	start_executable "$PROGRAM"
	run -0 --separate-stderr hp install "$FIX"
	run -0 --separate-stderr hp install --json "$FIX"
	json_is '.installed.unchanged == true' '.processes[0].patch.state == "already applied"'
	run -0 --separate-stderr hp list --pid "$TARGET_PID" --json
	json_is '.patches | length == 1'
	# Same name, other bytes.
	cp "$FIX" "$BATS_TEST_TMPDIR/other.so"
	printf 'x' >>"$BATS_TEST_TMPDIR/other.so"
	run -4 --separate-stderr hp install --json "$BATS_TEST_TMPDIR/other.so"
	json_is '.error.kind == "name_conflict"'
	cmp "$FIX" "$HOTPATCH_STORE/store_fix.so"
}

@test "uninstall reverts everywhere and empties the store" {
	local first first_log
	start_executable "$PROGRAM"
	first=$TARGET_PID first_log=$TARGET_LOG
	start_executable "$PROGRAM"
	run -0 --separate-stderr hp install "$FIX"
	assert_results "$first_log" compute '*13'
	run -0 --separate-stderr hp uninstall --json store_fix
	json_is '.command == "uninstall"' '.ok == true' \
		"[.processes[].pid] == [$first, $TARGET_PID]" \
		'all(.processes[]; .ok and .patch.name == "store_fix")'
	assert_results "$first_log" compute '*2'
	assert_results "$TARGET_LOG" compute '*2'
	[[ -z $(ls -A "$HOTPATCH_STORE") ]] || fail "store holds: $(ls -A "$HOTPATCH_STORE")"
	run -0 --separate-stderr hp status --json
	json_is '.installed == []'
	run -4 --separate-stderr hp uninstall --json store_fix
	json_is '.error.kind == "not_installed"'
}

@test "uninstall leaves alone a process where a patch of that name with other bytes is applied" {
	local other=$BATS_TEST_TMPDIR/patches/same_name.so
	build_fix "$other" store_fix "$(grep '^HOTPATCH_BUILD_ID' "${FIX%.so}.c")" 17
	start_executable "$PROGRAM"
	run -0 --separate-stderr hp install "$FIX"
	run -0 --separate-stderr hp apply --pid "$TARGET_PID" "$FIX"
	start_executable "$PROGRAM"
	run -0 --separate-stderr hp apply --pid "$TARGET_PID" "$other"
	assert_results "$TARGET_LOG" compute '*17'
	run -0 --separate-stderr hp uninstall store_fix
	assert_results "$TARGET_LOG" compute '*17'
	run -0 --separate-stderr hp list --pid "$TARGET_PID" --json
	json_is '.patches | map(.name) == ["store_fix"]'
}

@test "a garbage file in the store is reported by status, not fatal" {
	start_executable "$PROGRAM"
	run -0 --separate-stderr hp install "$FIX"
	printf 'not a patch\n' >"$HOTPATCH_STORE/garbage.so"
	run -1 --separate-stderr hp status --json
	json_is '.exit_code == 1' \
		'.installed | map(.name) == ["garbage", "store_fix"]' \
		'.installed[0].error.kind == "bad_patch"' '.installed[1].error == null'
	[[ $(state_of "$TARGET_PID" store_fix) == applied ]] || fail "status: $output"
	run -1 --separate-stderr hp status
	[[ $output == *garbage*UNREADABLE* ]] || fail "status says: $output"
	# A patch under another name than its own could not be uninstalled by it.
	rm "$HOTPATCH_STORE/garbage.so"
	cp "$FIX" "$HOTPATCH_STORE/renamed.so"
	run -1 --separate-stderr hp status --json
	json_is '.installed | map(.name) == ["renamed", "store_fix"]' \
		'.installed[0].error.message | test("holds the patch store_fix")'
}

@test "a signed patch is installed with its signature, and applies where signatures are required" {
	local config=$BATS_TEST_TMPDIR/config keys=$BATS_TEST_TMPDIR/keys
	chmod go-w "$BATS_TEST_TMPDIR"
	mkdir -p "$config/keys" "$keys"
	chmod 0755 "$config" "$config/keys"
	chmod 0700 "$keys"
	export HOTPATCH_CONFIG_DIR=$config
	run -0 --separate-stderr hp keygen --out "$keys/release"
	install -m 0644 "$keys/release.pub" "$config/keys/release.pub"
	run -0 --separate-stderr hp sign --key "$keys/release.key" "$FIX"
	touch "$config/require-signature"
	start_executable "$PROGRAM"
	run -0 --separate-stderr hp install --json "$FIX"
	json_is '.processes[0].ok == true'
	cmp "$FIX.sig" "$HOTPATCH_STORE/store_fix.so.sig"
	assert_results "$TARGET_LOG" compute '*13'
	run -0 --separate-stderr hp status --json
	json_is '.installed[0].error == null'
	run -0 --separate-stderr hp uninstall store_fix
	[[ -z $(ls -A "$HOTPATCH_STORE") ]] || fail "store holds: $(ls -A "$HOTPATCH_STORE")"
}

@test "install of a cumulative patch takes the older patches over and uninstalls those it replaces" {
	local other=$BATS_TEST_TMPDIR/patches/other_build.so release=$BATS_TEST_TMPDIR/patches/release.so
	local adjust=$BATS_TEST_TMPDIR/patches/store_adjust.so
	start_executable "$PROGRAM"
	cat >"${adjust%.so}.c" <<-EOF
		#include <hotpatch.h>
		static int adjust_fixed(int value) { return value + 5; }
		HOTPATCH_REPLACE(adjust, adjust_fixed);
		HOTPATCH_NAME("store_adjust");
		HOTPATCH_BUILD_ID("", "$PROGRAM_ID");
	EOF
	cc -O2 -g -fPIC -shared -Wall -I"$HP_SOURCE/lib/include" -o "$adjust" "${adjust%.so}.c"
	chmod 644 "$adjust"
	# Pinned to another build: no process here fits it, and it stays.
	build_fix "$other" other_build 'HOTPATCH_BUILD_ID("", "0123456789abcdef");'
	build_fix "$release" release "HOTPATCH_BUILD_ID(\"\", \"$PROGRAM_ID\"); HOTPATCH_CUMULATIVE();" 17
	run -0 --separate-stderr hp install "$FIX"
	run -0 --separate-stderr hp install "$adjust"
	run -0 --separate-stderr hp install "$other"
	assert_results "$TARGET_LOG" compute '*13'
	assert_results "$TARGET_LOG" adjust '+5'
	run -0 --separate-stderr hp install --json "$release"
	json_is '.ok == true' '.installed.cumulative == true' \
		'.installed.replaced == ["store_adjust", "store_fix"]' \
		"[.processes[] | [.pid, .patch.state, .patch.replaced]] == [[$TARGET_PID, \"applied\", [\"store_fix\", \"store_adjust\"]]]"
	assert_results "$TARGET_LOG" compute '*17'
	assert_results "$TARGET_LOG" adjust '+1'
	[[ ! -e $HOTPATCH_STORE/store_fix.so && ! -e $HOTPATCH_STORE/store_adjust.so ]] ||
		fail "still in the store: $(ls "$HOTPATCH_STORE")"
	[[ -e $HOTPATCH_STORE/other_build.so && -e $HOTPATCH_STORE/release.so ]] ||
		fail "the store holds: $(ls "$HOTPATCH_STORE")"
	run -0 --separate-stderr hp status --json
	json_is "[.processes[] | select(.pid == $TARGET_PID) | .patches[] | [.name, .state]] == [[\"release\", \"applied\"]]"
	run -0 --separate-stderr hp list --pid "$TARGET_PID" --json
	json_is '[.patches[].name] == ["release"]'
}

@test "install --exclude leaves a fix out wherever it applies, and refuses an exclusion apply would refuse" {
	local bundle=$BATS_TEST_TMPDIR/patches/store_bundle.so
	start_executable "$PROGRAM"
	cat >"${bundle%.so}.c" <<-EOF
		#include <hotpatch.h>
		static int compute_fixed(int value) { return 13 * value; }
		static int adjust_fixed(int value) { return value + 5; }
		HOTPATCH_REPLACE(compute, compute_fixed);
		HOTPATCH_REPLACE(adjust, adjust_fixed);
		HOTPATCH_FIX(compute, "fix-compute");
		HOTPATCH_FIX(adjust, "fix-adjust");
		HOTPATCH_NAME("store_bundle");
		HOTPATCH_BUILD_ID("", "$PROGRAM_ID");
	EOF
	cc -O2 -g -fPIC -shared -Wall -I"$HP_SOURCE/lib/include" -o "$bundle" "${bundle%.so}.c"
	chmod 644 "$bundle"
	run -4 --separate-stderr hp install --exclude fix-none "$bundle"
	assert_error_line "no fix fix-none"
	[[ ! -e $HOTPATCH_STORE/store_bundle.so ]] || fail "stored after a refused exclusion"
	run -0 --separate-stderr hp install --exclude fix-adjust --json "$bundle"
	json_is "[.processes[] | [.pid, .patch.fixes, .patch.excluded]] == [[$TARGET_PID, [\"fix-compute\"], [\"fix-adjust\"]]]"
	assert_results "$TARGET_LOG" compute '*13'
	assert_results "$TARGET_LOG" adjust '+1'
	run -0 --separate-stderr hp status --json
	json_is "[.processes[] | select(.pid == $TARGET_PID) | .patches[] | [.name, .state, .fixes, .excluded]] ==
		[[\"store_bundle\", \"applied\", [\"fix-compute\"], [\"fix-adjust\"]]]"
	run -0 --separate-stderr hp status
	[[ $output == *"fixes in effect: fix-compute; excluded: fix-adjust"* ]] || fail "status says:"$'\n'"$output"
}
