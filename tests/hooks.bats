#!/usr/bin/env bats
# hooks.bats - a patch's own functions run in the target when it is applied
# and reverted (HOTPATCH_PRE_APPLY, _POST_APPLY, _PRE_REVERT, _POST_REVERT):
# each once, at its moment; a pre-apply hook that refuses cancels the apply
# with nothing changed (exit 4); a hook past its time limit fails the
# command without taking the patch from under its thread.  The cache target
# prints lookup N -> R (2N unpatched) and how often each hook ran.

bats_require_minimum_version 1.5.0
load helpers

setup() { hp_setup; }
teardown() { hp_teardown; }

# hooks_line_after MARK: the target's first "hooks" line after line MARK.
hooks_line_after() {
	wait_for_line_after "$TARGET_LOG" "$1" '^hooks '
}

@test "a fix that fills its cache in its post-apply hook: the hook runs exactly once, after the jumps" {
	local mark line
	start_target cache
	run -0 --separate-stderr hp apply --pid "$TARGET_PID" --json "$HP_PATCHES/cache_fix.so"
	json_is '.patch.warning == null'
	assert_results "$TARGET_LOG" lookup '*3' 20
	mark=$(line_count "$TARGET_LOG")
	# Many calls later, the cache answers them, and no hook ran again.
	wait_for_line_after "$TARGET_LOG" "$mark" '^hooks pre_apply=1 post_apply=1 pre_revert=0 post_revert=0 cache_hits=[1-9][0-9]{2,}$'
	run -0 --separate-stderr hp revert --pid "$TARGET_PID"
	assert_results "$TARGET_LOG" lookup '*2'
	mark=$(line_count "$TARGET_LOG")
	line=$(hooks_line_after "$mark")
	[[ $line == "hooks pre_apply=1 post_apply=1 pre_revert=1 post_revert=1 "* ]] ||
		fail "the hooks ran: $line"
	assert_target_untouched "$TARGET_PID"
	assert_no_patches "$TARGET_PID"
}

@test "a pre-apply hook that refuses cancels the apply with exit 4 and nothing changed" {
	local mark line
	start_target cache
	run -4 --separate-stderr hp apply --pid "$TARGET_PID" --json "$HP_PATCHES/hook_refuse.so"
	assert_error_line "pre-apply hook of patch hook_refuse returned 7" "nothing was changed"
	json_is '.error.kind == "misfit"'
	assert_target_untouched "$TARGET_PID"
	refute_patch_mapped "$TARGET_PID" hook_refuse
	assert_no_patches "$TARGET_PID"
	assert_results "$TARGET_LOG" lookup '*2'
	mark=$(line_count "$TARGET_LOG")
	line=$(hooks_line_after "$mark")
	[[ $line == "hooks pre_apply=1 post_apply=0 "* ]] || fail "the hooks ran: $line"
	# The process is as it was: another patch goes in as usual.
	run -0 --separate-stderr hp apply --pid "$TARGET_PID" "$HP_PATCHES/cache_fix.so"
	assert_results "$TARGET_LOG" lookup '*3'
}

@test "a pre-revert hook that refuses keeps the patch applied, with exit 4" {
	local mark line
	start_target cache
	run -0 --separate-stderr hp apply --pid "$TARGET_PID" "$HP_PATCHES/hook_keep.so"
	assert_results "$TARGET_LOG" lookup '*5'
	run -4 --separate-stderr hp revert --pid "$TARGET_PID"
	assert_error_line "pre-revert hook of patch hook_keep returned 3" "stays applied"
	assert_not_traced "$TARGET_PID"
	assert_results "$TARGET_LOG" lookup '*5'
	assert_patch_mapped "$TARGET_PID" hook_keep
	mark=$(line_count "$TARGET_LOG")
	line=$(hooks_line_after "$mark")
	[[ $line == "hooks pre_apply=0 post_apply=0 pre_revert=1 post_revert=0 "* ]] ||
		fail "the hooks ran: $line"
}

@test "check does not run the hooks" {
	local mark line
	start_target cache
	run -0 --separate-stderr hp check --pid "$TARGET_PID" "$HP_PATCHES/hook_refuse.so"
	mark=$(line_count "$TARGET_LOG")
	line=$(hooks_line_after "$mark")
	[[ $line == "hooks pre_apply=0 post_apply=0 "* ]] || fail "the hooks ran: $line"
}

@test "a hook past its time limit fails the apply; the patch stays loaded until the hook returns" {
	local mark
	start_target cache
	run -1 --separate-stderr hp apply --pid "$TARGET_PID" "$HP_PATCHES/hook_slow.so"
	assert_error_line "pre-apply hook of patch hook_slow did not return within 5 s"
	assert_not_traced "$TARGET_PID"
	assert_results "$TARGET_LOG" lookup '*2'
	# The hook returns on its own (it counts itself then), and the next
	# command takes the patch back.
	wait_for_line "$TARGET_LOG" '^hooks pre_apply=1 '
	mark=$(line_count "$TARGET_LOG")
	hooks_line_after "$((mark + 4))" >/dev/null
	run -0 --separate-stderr hp apply --pid "$TARGET_PID" --json "$HP_PATCHES/cache_fix.so"
	json_is '[.leftovers[] | select(.reclaimed) | .name] == ["hook_slow"]'
	refute_patch_mapped "$TARGET_PID" hook_slow
	assert_results "$TARGET_LOG" lookup '*3'
	assert_not_traced "$TARGET_PID"
}
