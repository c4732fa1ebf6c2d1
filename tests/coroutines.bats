#!/usr/bin/env bats
# coroutines.bats - functions suspended on coroutine stacks (makecontext/
# swapcontext), which no thread's stack shows: apply, check and revert wait
# for them and exit 3 naming them, go ahead once they have returned, and
# are not kept out by stale copies of a return address below where a thread
# or a coroutine now waits.

bats_require_minimum_version 1.5.0
load helpers

setup() { hp_setup; }
teardown() { hp_teardown; }

# release_parker EXPECTED: lets the parked coroutine return (SIGUSR1) and
# waits for it to finish with result EXPECTED.
release_parker() {
	local mark
	mark=$(line_count "$TARGET_LOG")
	kill -USR1 "$TARGET_PID"
	wait_for_line_after "$TARGET_LOG" "$mark" "^parker done -> $1\$" >/dev/null
}

# word_at PID ADDRESS: the 64-bit word at ADDRESS in PID, in decimal.
word_at() {
	python3 -c '
import struct, sys
with open("/proc/%s/mem" % sys.argv[1], "rb") as memory:
    memory.seek(int(sys.argv[2], 0))
    print(struct.unpack("<Q", memory.read(8))[0])' "$1" "$2"
}

@test "apply and check exit 3 naming a function a coroutine is suspended in, and apply once it returned" {
	start_target coroutines
	run -3 --separate-stderr hp check --pid "$TARGET_PID" --timeout 1 "$HP_PATCHES/step_fix.so"
	assert_error_line step "suspended on a coroutine stack"
	run -3 --separate-stderr hp apply --pid "$TARGET_PID" --timeout 1 "$HP_PATCHES/step_fix.so"
	assert_error_line "pid $TARGET_PID" step "suspended on a coroutine stack"
	assert_target_untouched "$TARGET_PID"
	assert_no_patches "$TARGET_PID"
	assert_results "$TARGET_LOG" tick '+1'
	# The coroutine went on in the code it was suspended in.
	release_parker 1
	apply_and_wait "$TARGET_PID" "$HP_PATCHES/step_fix.so" "$TARGET_LOG" tick '+100'
	assert_not_traced "$TARGET_PID"
}

@test "the JSON of the refusal names the suspended function and where its return address is" {
	local blocker
	start_target coroutines
	run -3 --separate-stderr hp apply --json --pid "$TARGET_PID" --timeout 1 "$HP_PATCHES/step_fix.so"
	[[ $(jq -r '.error.kind' <<<"$output") == busy ]] || fail "not busy: $output"
	[[ $(jq -r '.error.function' <<<"$output") == step ]] || fail "function: $output"
	blocker=$(jq -c '.error.blockers[0]' <<<"$output")
	[[ $(jq -r '.reason' <<<"$blocker") == suspended ]] || fail "blocker: $blocker"
	[[ $(jq -r '.tid' <<<"$blocker") == null ]] || fail "blocker: $blocker"
	[[ $(jq -r '.function' <<<"$blocker") == step ]] || fail "blocker: $blocker"
	[[ $(jq -r '.saved_at' <<<"$blocker") == 0x* ]] || fail "blocker: $blocker"
	[[ $(jq -r '.backtrace[0]' <<<"$blocker") == "step+0x"* ]] || fail "blocker: $blocker"
	# Where that return address is: on the coroutine's own stack, which is
	# no thread's stack.
	python3 - "$TARGET_PID" "$(jq -r '.saved_at' <<<"$blocker")" <<-'EOF' || fail "saved_at in a thread's stack: $blocker"
		import sys
		at = int(sys.argv[2], 16)
		for line in open("/proc/%s/maps" % sys.argv[1]):
		    low, high = (int(x, 16) for x in line.split()[0].split("-"))
		    if low <= at < high:
		        sys.exit(1 if line.rstrip().endswith("[stack]") else 0)
		sys.exit(1)
	EOF
	assert_target_untouched "$TARGET_PID"
}

@test "revert exits 3 while a coroutine is suspended in the replacement, and reverts once it returned" {
	local mark
	start_target coroutines
	release_parker 1
	apply_and_wait "$TARGET_PID" "$HP_PATCHES/step_fix.so" "$TARGET_LOG" tick '+100'
	mark=$(line_count "$TARGET_LOG")
	kill -USR2 "$TARGET_PID"
	wait_for_line_after "$TARGET_LOG" "$mark" '^parked in fixed step$' >/dev/null
	run -3 --separate-stderr hp revert --pid "$TARGET_PID" --timeout 1
	assert_error_line "pid $TARGET_PID" step_fix "suspended on a coroutine stack"
	assert_patch_mapped "$TARGET_PID" step_fix
	assert_results "$TARGET_LOG" tick '+100'
	release_parker 100
	mark=$(line_count "$TARGET_LOG")
	run -0 --separate-stderr hp revert --pid "$TARGET_PID"
	wait_for_result "$TARGET_LOG" "$mark" tick '+1'
	assert_results "$TARGET_LOG" tick '+1'
	assert_target_untouched "$TARGET_PID"
}

@test "return addresses left below where a thread and a coroutine now wait keep no patch out" {
	local stale spinner_stale value spinner_value step size
	start_target coroutines
	release_parker 1
	stale=$(sed -n 's/^ready .* stale=\(0x[0-9a-f]*\).*/\1/p' "$TARGET_LOG")
	spinner_stale=$(sed -n 's/^ready .* spinner_stale=\(0x[0-9a-f]*\).*/\1/p' "$TARGET_LOG")
	# Both words are return addresses into step (its call to note), left far
	# below where the main thread sleeps between ticks, and below where the
	# spinner coroutine, which called step once, now yields.
	run -0 --separate-stderr hp check --json --pid "$TARGET_PID" "$HP_PATCHES/step_fix.so"
	step=$(jq -r '.patch.functions[0].address' <<<"$output")
	size=$(nm -S "$HP_TESTDATA/targets/coroutines" | awk '$4 == "step" {print $2}')
	value=$(word_at "$TARGET_PID" "$stale")
	spinner_value=$(word_at "$TARGET_PID" "$spinner_stale")
	((value > step && value < step + 0x$size)) || fail "no return address into step at $stale: $value"
	((spinner_value > step && spinner_value < step + 0x$size)) ||
		fail "no return address into step at $spinner_stale: $spinner_value"
	apply_and_wait "$TARGET_PID" "$HP_PATCHES/step_fix.so" "$TARGET_LOG" tick '+100'
	# They were there all along: nothing overwrites them.
	(($(word_at "$TARGET_PID" "$stale") == value)) || fail "the main thread's copy changed"
	(($(word_at "$TARGET_PID" "$spinner_stale") == spinner_value)) || fail "the spinner's copy changed"
	assert_not_traced "$TARGET_PID"
}

@test "--allow-suspended replaces a function a coroutine is suspended in" {
	start_target coroutines
	run -0 --separate-stderr hp apply --json --allow-suspended --pid "$TARGET_PID" --timeout 1 \
		"$HP_PATCHES/step_fix.so"
	[[ $(jq -r '.suspended_scan.scans' <<<"$output") == 0 ]] || fail "scanned: $output"
	assert_results "$TARGET_LOG" tick '+100'
	# What the option risks: the coroutine comes back into the old code.
	release_parker 1
	assert_not_traced "$TARGET_PID"
}
