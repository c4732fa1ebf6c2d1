#!/usr/bin/env bats
# cumulative.bats - a cumulative patch (HOTPATCH_CUMULATIVE, hotpatch build
# --cumulative) takes over every patch applied before it, in the same stop:
# a function both replace goes from the older replacement to the new one, a
# function only older patches replace gets its original code back, and the
# older patches are unloaded.  Reverting it restores the original code of
# everything.  The releases target (testdata/targets/releases.c) prints
# f1, f2 and f3 (N + 1, N + 2, N + 3 unpatched) and counts calls of
# checked() that lost a fix they had seen.

bats_require_minimum_version 1.5.0
load helpers

# Loops of applies on a loaded machine outlast a target's default 120 s.
setup() {
	hp_setup
	export HP_TARGET_LIFETIME=600
}
teardown() { hp_teardown; }

# stack_a_and_b: release_a (f1 +10) and release_b (f2 +20) applied, stacked.
stack_a_and_b() {
	apply_and_wait "$TARGET_PID" "$HP_PATCHES/release_a.so" "$TARGET_LOG" f1 '+10' || return 1
	apply_and_wait "$TARGET_PID" "$HP_PATCHES/release_b.so" "$TARGET_LOG" f2 '+20' || return 1
	assert_patch_mapped "$TARGET_PID" release_a
	assert_patch_mapped "$TARGET_PID" release_b
}

# assert_records NAMES: list --json shows exactly these patches (a jq array).
assert_records() {
	run -0 --separate-stderr hp list --pid "$TARGET_PID" --json || return 1
	json_is "[.patches[].name] == $1" '.leftovers == []'
}

# checks_line_after MARK: the first "checks" line of the target after MARK.
checks_line_after() {
	wait_for_line_after "$TARGET_LOG" "$1" '^checks threads='
}

@test "a cumulative patch takes over the older ones: their functions back to the original, the older objects unloaded" {
	start_target releases
	stack_a_and_b
	run -0 --separate-stderr hp apply --pid "$TARGET_PID" --json "$HP_PATCHES/release_c.so"
	json_is '.patch.name == "release_c"' '.patch.cumulative == true' \
		'.patch.replaced == ["release_a", "release_b"]' \
		'[.patch.functions[] | [.function, .over]] | sort == [["f2", "release_b"], ["f3", null]]'
	# f1: only release_a fixed it, so it runs its original code again.
	assert_results "$TARGET_LOG" f1 '+1'
	assert_results "$TARGET_LOG" f2 '+21'
	assert_results "$TARGET_LOG" f3 '+30'
	refute_patch_mapped "$TARGET_PID" release_a
	refute_patch_mapped "$TARGET_PID" release_b
	assert_patch_mapped "$TARGET_PID" release_c
	assert_records '["release_c"]'
	json_is '.patches[0].cumulative == true' '.patches[0].state == "applied"'
	run -0 --separate-stderr hp list --pid "$TARGET_PID"
	[[ $output == *"cumulative"* ]] || fail "list says:"$'\n'"$output"
	assert_not_traced "$TARGET_PID"
}

@test "reverting a cumulative patch restores the original code of every function" {
	start_target releases
	stack_a_and_b
	run -0 --separate-stderr hp apply --pid "$TARGET_PID" "$HP_PATCHES/release_c.so"
	assert_results "$TARGET_LOG" f2 '+21'
	run -0 --separate-stderr hp revert --pid "$TARGET_PID"
	assert_results "$TARGET_LOG" f1 '+1'
	assert_results "$TARGET_LOG" f2 '+2'
	assert_results "$TARGET_LOG" f3 '+3'
	assert_target_untouched "$TARGET_PID"
	assert_no_patches "$TARGET_PID"
	[[ -z $(grep hotpatch "/proc/$TARGET_PID/maps" || true) ]] ||
		fail "left in the maps:"$'\n'"$(grep hotpatch "/proc/$TARGET_PID/maps")"
}

@test "a cumulative patch over nothing applies as any patch does, and again over itself changes nothing" {
	start_target releases
	apply_and_wait "$TARGET_PID" "$HP_PATCHES/release_c.so" "$TARGET_LOG" f3 '+30'
	run -0 --separate-stderr hp apply --pid "$TARGET_PID" --json "$HP_PATCHES/release_c.so"
	json_is '.patch.state == "already applied"'
	assert_records '["release_c"]'
	assert_results "$TARGET_LOG" f1 '+1'
}

# Eight threads call checked() without pause; each counts an unfixed result
# after a fixed one as bad.  Upgrading from one cumulative release to the
# next rewrites the one's jump into the other's in one stop, so no call in
# between runs the original code, back and forth.
@test "cumulative upgrades back and forth under 8 busy threads never run the unfixed code" {
	local mark line
	start_target releases 8
	run -0 --separate-stderr hp apply --pid "$TARGET_PID" "$HP_PATCHES/checked_v1.so"
	mark=$(line_count "$TARGET_LOG")
	wait_for_line_after "$TARGET_LOG" "$mark" '^checks threads=8 fixed=8 '
	for round in 1 2 3 4 5; do
		run -0 --separate-stderr hp apply --pid "$TARGET_PID" --json "$HP_PATCHES/checked_v2.so"
		json_is '.patch.replaced == ["checked_v1"]'
		assert_results "$TARGET_LOG" f1 '+50' 2
		run -0 --separate-stderr hp apply --pid "$TARGET_PID" --json "$HP_PATCHES/checked_v1.so"
		json_is '.patch.replaced == ["checked_v2"]'
		assert_results "$TARGET_LOG" f1 '+1' 2
		assert_records '["checked_v1"]'
	done
	mark=$(line_count "$TARGET_LOG")
	line=$(checks_line_after "$mark")
	[[ $line =~ bad=0$ ]] || fail "calls lost their fix: $line"
	[[ $line == *" fixed=8 "* ]] || fail "not every thread saw the fix: $line"
	assert_not_traced "$TARGET_PID"
}

# The check can fail: taking the fix out and putting the next one in with
# two commands leaves a gap the busy threads fall into.
@test "the checker sees a fix lost between a revert and the next apply" {
	local mark line
	start_target releases 8
	run -0 --separate-stderr hp apply --pid "$TARGET_PID" "$HP_PATCHES/checked_v1.so"
	mark=$(line_count "$TARGET_LOG")
	wait_for_line_after "$TARGET_LOG" "$mark" '^checks threads=8 fixed=8 '
	run -0 --separate-stderr hp revert --pid "$TARGET_PID"
	mark=$(line_count "$TARGET_LOG")
	line=$(wait_for_line_after "$TARGET_LOG" "$mark" '^checks threads=8 fixed=8 calls=[0-9]+ bad=[1-9]')
	run -0 --separate-stderr hp apply --pid "$TARGET_PID" "$HP_PATCHES/checked_v2.so"
	assert_not_traced "$TARGET_PID"
}

@test "a failure at each step of a cumulative apply up to its commit leaves the older patches as they were" {
	local step steps count=0
	start_target releases
	stack_a_and_b
	HOTPATCH_FAULT=list-steps run -1 --separate-stderr hp apply --pid "$TARGET_PID" --json \
		"$HP_PATCHES/release_c.so"
	steps=$(jq -r '.error.detail' <<<"$output" | awk '$1 != "finish" { print $2 }')
	for step in $steps; do
		HOTPATCH_FAULT=$step run -1 --separate-stderr hp apply --pid "$TARGET_PID" \
			"$HP_PATCHES/release_c.so"
		assert_error_line "injected fault at step $step" || fail "the fault at $step did not fire"
		assert_not_traced "$TARGET_PID" || fail "after the fault at $step"
		refute_patch_mapped "$TARGET_PID" release_c || fail "after the fault at $step"
		assert_results "$TARGET_LOG" f1 '+10' 3 || fail "after the fault at $step"
		assert_results "$TARGET_LOG" f2 '+20' 3 || fail "after the fault at $step"
		assert_results "$TARGET_LOG" f3 '+3' 3 || fail "after the fault at $step"
		assert_records '["release_b", "release_a"]' || fail "after the fault at $step"
		count=$((count + 1))
	done
	((count >= 10)) || fail "only $count steps"
	run -0 --separate-stderr hp apply --pid "$TARGET_PID" "$HP_PATCHES/release_c.so"
	assert_results "$TARGET_LOG" f1 '+1'
	assert_records '["release_c"]'
}

# Killed after the commit, before the older records are rewritten: they
# still stand under the new one, as stacked patches do, and everything
# reverts back to the original code.
@test "a cumulative apply killed after its commit leaves patches that revert to the original code" {
	start_target releases
	stack_a_and_b
	HOTPATCH_FAULT=kill-after-resume-threads run -137 --separate-stderr hp apply \
		--pid "$TARGET_PID" "$HP_PATCHES/release_c.so"
	assert_not_traced "$TARGET_PID"
	assert_results "$TARGET_LOG" f2 '+21'
	assert_results "$TARGET_LOG" f3 '+30'
	run -0 --separate-stderr hp revert --pid "$TARGET_PID" release_c
	assert_results "$TARGET_LOG" f2 '+20'
	run -0 --separate-stderr hp revert --pid "$TARGET_PID" release_b
	run -0 --separate-stderr hp revert --pid "$TARGET_PID" release_a
	assert_results "$TARGET_LOG" f1 '+1'
	assert_results "$TARGET_LOG" f2 '+2'
	assert_results "$TARGET_LOG" f3 '+3'
	assert_target_untouched "$TARGET_PID"
	assert_no_patches "$TARGET_PID"
}

# Killed once the older records say "reverted" but before their objects are
# unloaded: the next command takes them back as a killed revert's.
@test "a cumulative apply killed while unloading the older patches leaves them for the next command" {
	start_target releases
	stack_a_and_b
	HOTPATCH_FAULT=kill-in-take-over run -137 --separate-stderr hp apply \
		--pid "$TARGET_PID" "$HP_PATCHES/release_c.so"
	assert_not_traced "$TARGET_PID"
	assert_results "$TARGET_LOG" f1 '+1'
	assert_results "$TARGET_LOG" f2 '+21'
	run -0 --separate-stderr hp list --pid "$TARGET_PID" --json
	json_is '[.patches[].name] == ["release_c"]' \
		'[.leftovers[] | select(.kind == "record") | .name] | sort == ["release_a", "release_b"]'
	run -0 --separate-stderr hp revert --pid "$TARGET_PID" --json
	json_is '[.leftovers[] | select(.reclaimed) | .name] | sort == ["release_a", "release_b"]'
	assert_results "$TARGET_LOG" f1 '+1'
	assert_results "$TARGET_LOG" f2 '+2'
	assert_results "$TARGET_LOG" f3 '+3'
	assert_target_untouched "$TARGET_PID"
	assert_no_patches "$TARGET_PID"
}

# build_service_patch OUT DIFF [OPTION...]: hotpatch build of testdata's
# service with testdata/diffs/DIFF.diff into OUT, expecting exit 0.
build_service_patch() {
	local out=$1 diff=$2
	shift 2
	run -0 --separate-stderr hp build --source "$HP_SOURCE/testdata/program" \
		--diff "$HP_SOURCE/testdata/diffs/$diff.diff" --compile "$(<"$HP_TESTDATA/program/compile")" \
		--binary "$HP_TESTDATA/program/service" -o "$out" "$@"
}

@test "hotpatch build --cumulative makes a patch that takes over the one applied before it" {
	local patches=$BATS_TEST_TMPDIR/patches
	# apply loads only patches that nobody but root could have written.
	umask 022
	chmod go-w "$BATS_TEST_TMPDIR"
	mkdir -m 0755 "$patches"
	build_service_patch "$patches/levels.so" inline_fix
	build_service_patch "$patches/release.so" bounds_check --cumulative
	start_program service
	wait_for_line "$TARGET_LOG" '^load -5 -> -5$'
	run -0 --separate-stderr hp apply --pid "$TARGET_PID" "$patches/levels.so"
	wait_for_line_after "$TARGET_LOG" "$(line_count "$TARGET_LOG")" '^load -5 -> 0$'
	run -0 --separate-stderr hp apply --pid "$TARGET_PID" --json "$patches/release.so"
	json_is '.patch.cumulative == true' '.patch.replaced == ["levels"]'
	mark=$(line_count "$TARGET_LOG")
	wait_for_line_after "$TARGET_LOG" "$mark" '^slot4 [0-9]+ -> -1$'
	# The clamp only the older patch fixed is the service's own again.
	wait_for_line_after "$TARGET_LOG" "$mark" '^load -5 -> -5$'
	refute_patch_mapped "$TARGET_PID" levels
	assert_records '["release"]'
	assert_not_traced "$TARGET_PID"
}
