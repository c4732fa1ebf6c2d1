#!/usr/bin/env bats
# fixes.bats - one patch from several fixes: each replaced or new function is
# tagged with the fixes that changed it (HOTPATCH_FIX, hotpatch build --fix
# ID=FILE.diff), apply --exclude ID leaves a fix out, and an exclusion that
# would leave a function half fixed (another fix kept changes it too) is
# refused with exit 4, naming both fixes and the function.  list and status
# show which fixes are in effect and which excluded.  Targets: releases
# (f1, f2, f3: N + 1, N + 2, N + 3 unpatched) and testdata's service.

bats_require_minimum_version 1.5.0
load helpers

setup() { hp_setup; }
teardown() { hp_teardown; }

@test "a bundle of two fixes applies with one excluded: only the other's functions are replaced" {
	start_target releases
	run -0 --separate-stderr hp apply --pid "$TARGET_PID" --exclude fix-3 --json "$HP_PATCHES/bundle.so"
	json_is '.patch.fixes == ["fix-1"]' '.patch.excluded == ["fix-3"]' \
		'[.patch.functions[].function] == ["f1"]'
	assert_results "$TARGET_LOG" f1 '+10'
	assert_results "$TARGET_LOG" f3 '+3'
	run -0 --separate-stderr hp list --pid "$TARGET_PID" --json
	json_is '.patches[0].fixes == ["fix-1"]' '.patches[0].excluded == ["fix-3"]'
	run -0 --separate-stderr hp list --pid "$TARGET_PID"
	[[ $output == *"    fixes in effect: fix-1"$'\n'"    fixes excluded: fix-3"* ]] ||
		fail "list says:"$'\n'"$output"
	# status lists every process a patch is applied to, with its fixes.
	HOTPATCH_STORE=$BATS_TEST_TMPDIR/store run --separate-stderr hp status --json
	json_is "[.processes[] | select(.pid == $TARGET_PID) | .patches[] | [.name, .fixes, .excluded]] ==
		[[\"bundle\", [\"fix-1\"], [\"fix-3\"]]]"
	run -0 --separate-stderr hp revert --pid "$TARGET_PID"
	assert_results "$TARGET_LOG" f1 '+1'
	assert_target_untouched "$TARGET_PID"
}

@test "without --exclude every fix of a bundle is in effect" {
	start_target releases
	run -0 --separate-stderr hp apply --pid "$TARGET_PID" --json "$HP_PATCHES/bundle.so"
	json_is '.patch.fixes == ["fix-1", "fix-3"]' '.patch.excluded == []'
	assert_results "$TARGET_LOG" f1 '+10'
	assert_results "$TARGET_LOG" f3 '+30'
}

@test "an exclusion is refused with exit 4 when a kept fix changes one of its functions too" {
	start_target releases
	run -4 --separate-stderr hp apply --pid "$TARGET_PID" --exclude fix-b --json \
		"$HP_PATCHES/bundle_shared.so"
	assert_error_line fix-b fix-a f2
	json_is '.error.kind == "depends"' '.error.function == "f2"'
	run -4 --separate-stderr hp apply --pid "$TARGET_PID" --exclude fix-a "$HP_PATCHES/bundle_shared.so"
	assert_error_line fix-a fix-b f2
	run -4 --separate-stderr hp check --pid "$TARGET_PID" --exclude fix-b "$HP_PATCHES/bundle_shared.so"
	assert_error_line fix-b fix-a f2
	assert_target_untouched "$TARGET_PID"
	assert_results "$TARGET_LOG" f1 '+1'
	assert_results "$TARGET_LOG" f2 '+2'
	assert_no_patches "$TARGET_PID"
	# Both out at once: nothing is left to replace.
	run -4 --separate-stderr hp apply --pid "$TARGET_PID" --exclude fix-a --exclude fix-b \
		"$HP_PATCHES/bundle_shared.so"
	assert_error_line "leaves nothing to replace"
	run -0 --separate-stderr hp apply --pid "$TARGET_PID" "$HP_PATCHES/bundle_shared.so"
	assert_results "$TARGET_LOG" f2 '+22'
}

@test "excluding a fix the patch does not have is refused, naming the patch's fixes" {
	start_target releases
	run -4 --separate-stderr hp apply --pid "$TARGET_PID" --exclude CVE-0 "$HP_PATCHES/bundle.so"
	assert_error_line "no fix CVE-0" "fix-1 fix-3"
	run -4 --separate-stderr hp apply --pid "$TARGET_PID" --exclude fix-1 "$HP_PATCHES/release_a.so"
	assert_error_line "no fix fix-1" none
	assert_target_untouched "$TARGET_PID"
	assert_no_patches "$TARGET_PID"
}

@test "the same patch with other fixes excluded is refused; with the same ones it is applied already" {
	start_target releases
	run -0 --separate-stderr hp apply --pid "$TARGET_PID" --exclude fix-3 "$HP_PATCHES/bundle.so"
	run -0 --separate-stderr hp apply --pid "$TARGET_PID" --exclude fix-3 --json "$HP_PATCHES/bundle.so"
	json_is '.patch.state == "already applied"'
	run -4 --separate-stderr hp apply --pid "$TARGET_PID" --json "$HP_PATCHES/bundle.so"
	json_is '.error.kind == "name_conflict"'
	assert_error_line "fixes excluded: fix-3; now: none"
	assert_results "$TARGET_LOG" f3 '+3'
}

# build_service OUT STATUS OPTION...: hotpatch build of testdata's service
# into OUT, expecting exit STATUS.
build_service() {
	local out=$1 status=$2
	shift 2
	run "-$status" --separate-stderr hp build --source "$HP_SOURCE/testdata/program" \
		--compile "$(<"$HP_TESTDATA/program/compile")" \
		--binary "$HP_TESTDATA/program/service" -o "$out" "$@"
}

service_patches() {
	# apply loads only patches that nobody but root could have written.
	umask 022
	chmod go-w "$BATS_TEST_TMPDIR"
	PATCHES=$BATS_TEST_TMPDIR/patches
	mkdir -m 0755 "$PATCHES"
}

@test "build --fix tags each function with the fix that changed it, and apply --exclude leaves one out" {
	local mark
	service_patches
	build_service "$PATCHES/two.so" 0 --fix slots=$HP_SOURCE/testdata/diffs/bounds_check.diff \
		--fix levels=$HP_SOURCE/testdata/diffs/inline_fix.diff --json
	json_is '[.replace[] | select(.function == "slot_hits") | .fixes] == [["slots"]]' \
		'[.replace[] | select(.function != "slot_hits") | .fixes[]] | unique == ["levels"]' \
		'[.replace[] | select(.function == "load_level")] | length == 1'
	start_program service
	wait_for_line "$TARGET_LOG" '^load -5 -> -5$'
	run -0 --separate-stderr hp apply --pid "$TARGET_PID" --exclude levels --json "$PATCHES/two.so"
	json_is '.patch.fixes == ["slots"]' '.patch.excluded == ["levels"]' \
		'[.patch.functions[].function] == ["slot_hits"]' '.patch.ids == ["levels", "slots"]'
	mark=$(line_count "$TARGET_LOG")
	wait_for_line_after "$TARGET_LOG" "$mark" '^slot4 [0-9]+ -> -1$'
	# The excluded fix's functions run their original code.
	wait_for_line_after "$TARGET_LOG" "$(line_count "$TARGET_LOG")" '^load -5 -> -5$'
	run -0 --separate-stderr hp revert --pid "$TARGET_PID"
	run -0 --separate-stderr hp apply --pid "$TARGET_PID" --exclude slots "$PATCHES/two.so"
	mark=$(line_count "$TARGET_LOG")
	wait_for_line_after "$TARGET_LOG" "$mark" '^load -5 -> 0$'
	wait_for_line_after "$TARGET_LOG" "$mark" '^slot4 [0-9]+ -> 0$'
	assert_not_traced "$TARGET_PID"
}

@test "build --fix tags a function two fixes changed with both, and neither can be excluded alone" {
	service_patches
	build_service "$PATCHES/slots.so" 0 --fix bounds=$HP_SOURCE/testdata/diffs/bounds_check.diff \
		--fix free=$HP_SOURCE/testdata/fixes/free_slot.diff
	grep -qx 'replace: slot_hits (slots.c) \[fixes bounds free\]' <<<"$output" ||
		fail "build printed:"$'\n'"$output"
	start_program service
	run -4 --separate-stderr hp apply --pid "$TARGET_PID" --exclude free "$PATCHES/slots.so"
	assert_error_line "fix free cannot be excluded" "fix bounds" slot_hits
	assert_target_untouched "$TARGET_PID"
	run -0 --separate-stderr hp apply --pid "$TARGET_PID" "$PATCHES/slots.so"
	wait_for_line_after "$TARGET_LOG" "$(line_count "$TARGET_LOG")" '^slot4 [0-9]+ -> -2$'
}

@test "build refuses --fix without an id, with --diff, or with --id, and an id given twice" {
	service_patches
	build_service "$PATCHES/x.so" 2 --fix "$HP_SOURCE/testdata/diffs/bounds_check.diff"
	assert_error_line "--fix wants ID=FIX.diff"
	build_service "$PATCHES/x.so" 2 --fix a=$HP_SOURCE/testdata/diffs/bounds_check.diff \
		--diff "$HP_SOURCE/testdata/diffs/inline_fix.diff"
	assert_error_line "--diff or --fix, not both"
	build_service "$PATCHES/x.so" 2 --fix a=$HP_SOURCE/testdata/diffs/bounds_check.diff --id CVE-1
	assert_error_line "takes no --id"
	build_service "$PATCHES/x.so" 2 --fix a=$HP_SOURCE/testdata/diffs/bounds_check.diff \
		--fix a=$HP_SOURCE/testdata/diffs/inline_fix.diff
	assert_error_line "--fix a is given twice"
	build_service "$PATCHES/x.so" 2
	assert_error_line "needs --diff FIX.diff or --fix ID=FIX.diff"
	[[ ! -e $PATCHES/x.so ]]
}

# A bundle like testdata's (fix-1: f1 -> N + 10, fix-3: f3 -> N + 30),
# pinned to the private copy of releases that install needs.
pinned_bundle() {
	sed '/HOTPATCH_ID("fix-3");/a HOTPATCH_BUILD_ID("", "'"$1"'");' \
		"$HP_SOURCE/testdata/patches/bundle.c" >"$BATS_TEST_TMPDIR/bundle.c"
	cc -O2 -fPIC -shared -I"$HP_SOURCE/lib/include" -o "$BATS_TEST_TMPDIR/bundle.so" \
		"$BATS_TEST_TMPDIR/bundle.c" && chmod 644 "$BATS_TEST_TMPDIR/bundle.so"
}

@test "install --exclude is remembered: running processes and those started later leave the fix out, status compares" {
	local program=$BATS_TEST_TMPDIR/programs/releases running late
	export HOTPATCH_STORE=$BATS_TEST_TMPDIR/store
	private_copy "$HP_TESTDATA/targets/releases" "$program" || return 1
	pinned_bundle "$PRIVATE_BUILD_ID" || return 1
	start_executable "$program"
	running=$TARGET_PID
	run -0 --separate-stderr hp install --exclude fix-3 --json "$BATS_TEST_TMPDIR/bundle.so"
	json_is '.installed.excluded == ["fix-3"]' '.processes[0].patch.excluded == ["fix-3"]'
	[[ $(cat "$HOTPATCH_STORE/bundle.exclude") == fix-3 ]]
	assert_results "$TARGET_LOG" f1 '+10'
	assert_results "$TARGET_LOG" f3 '+3'
	# Started later: the loader leaves out what the install did.
	start_executable env LD_PRELOAD="$HP_LOADER" "$program"
	late=$TARGET_PID
	[[ $(grep -m1 '^f1 ' "$TARGET_LOG") == "f1 1 -> 11" ]] || fail "$(head -n 3 "$TARGET_LOG")"
	assert_results "$TARGET_LOG" f3 '+3'
	run -0 --separate-stderr hp status --json
	json_is '.installed[0].excluded == ["fix-3"]' \
		"[.processes[] | select(.pid == $running or .pid == $late) | .patches[] | [.state, .fixes, .excluded]] ==
		 [[\"applied\", [\"fix-1\"], [\"fix-3\"]], [\"applied\", [\"fix-1\"], [\"fix-3\"]]]"
	run -0 hp status
	[[ $output == *"leaving out: fix-3"* ]] || fail "status says:"$'\n'"$output"
	# The same patch with other exclusions is refused; with the same, nothing changes.
	run -4 --separate-stderr hp install "$BATS_TEST_TMPDIR/bundle.so"
	assert_error_line "bundle is installed leaving out fix-3; this install leaves out no fix"
	run -0 --separate-stderr hp install --exclude fix-3 --json "$BATS_TEST_TMPDIR/bundle.so"
	json_is '.installed.unchanged == true'
	# A process running the bundle with every fix is not as installed.
	run -0 hp revert --pid "$running" bundle
	run -0 hp apply --pid "$running" "$HOTPATCH_STORE/bundle.so"
	run -1 --separate-stderr hp status --json
	json_is "[.processes[] | select(.pid == $running) | .patches[0].excluded] == [[]]"
	run -0 --separate-stderr hp uninstall bundle
	[[ ! -e $HOTPATCH_STORE/bundle.exclude ]] || fail "the exclusion list outlived the patch"
	assert_results "$TARGET_LOG" f1 '+1'
}

@test "a damaged exclusion list in the store: status says so, and the loader applies nothing rather than every fix" {
	local program=$BATS_TEST_TMPDIR/programs/releases
	export HOTPATCH_STORE=$BATS_TEST_TMPDIR/store
	private_copy "$HP_TESTDATA/targets/releases" "$program" || return 1
	pinned_bundle "$PRIVATE_BUILD_ID" || return 1
	run -0 --separate-stderr hp install --exclude fix-3 "$BATS_TEST_TMPDIR/bundle.so"
	printf 'fix-3 fix=1\n' >"$HOTPATCH_STORE/bundle.exclude"
	run -1 --separate-stderr hp status --json
	json_is '.installed[0].error.kind == "bad_patch"' \
		'.installed[0].error.message | contains("bundle.exclude is not one line of fix ids")'
	start_executable env HOTPATCH_LOADER_LOG=stderr LD_PRELOAD="$HP_LOADER" "$program"
	assert_results "$TARGET_LOG" f1 '+1'
	assert_results "$TARGET_LOG" f3 '+3'
	grep -q 'bundle not applied (exit 4): bad_patch: .*bundle.exclude is not one line of fix ids' \
		"$TARGET_LOG" || fail "the loader said: $(grep hotpatch-loader "$TARGET_LOG")"
}
