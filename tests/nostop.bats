#!/usr/bin/env bats
# nostop.bats - apply --gates: without stopping every thread at once
# (lib/runtime/transition.c): each thread checked alone and moved to the
# new code by itself, never held at a gate.  Eight threads hammer the replaced
# function and count their switches (a worker that ran the new code and then
# the old again counts one more); hotpatch killed at every step leaves a
# target that runs on, untraced, with the old code or the new, never both.

bats_require_minimum_version 1.5.0
load helpers

setup() { hp_setup; }
teardown() { hp_teardown; }

# A worker whose last call returned 1 (old) or 2 (new) after the mark.
settled_line() {
	hot_line_after "$TARGET_LOG" "$1" "$2"
}

# revert_incomplete LINE_AFTER PATTERN: list says a killed apply left the
# patch incomplete; revert takes it out, the target's lines (LINE_AFTER
# MARK PATTERN) settle on PATTERN, and list --json shows no patch and no
# leftover that cannot be taken back.
revert_incomplete() {
	local mark
	run -0 --separate-stderr hp list --pid "$TARGET_PID"
	[[ $output == *incomplete* ]] || { fail "list says:"$'\n'"$output"; return 1; }
	run -0 --separate-stderr hp revert --pid "$TARGET_PID"
	mark=$(line_count "$TARGET_LOG")
	"$1" "$mark" "$2" >/dev/null || return 1
	run -0 --separate-stderr hp list --pid "$TARGET_PID" --json
	json_is '.patches == []' '[.leftovers[] | select(.reclaimable == false)] == []'
}

# revert_killed_and_reapply LINE_AFTER PATTERN MAPS PATCH: after a kill half
# way through an apply, revert takes the patch out (the target's lines
# settle on PATTERN) and every page of ours with it (anonymous code and
# shared mappings are MAPS again), and a new apply of PATCH goes through
# gates.
revert_killed_and_reapply() {
	revert_incomplete "$1" "$2" || return 1
	json_is '.leftovers == []' || return 1
	assert_target_untouched "$TARGET_PID" || return 1
	[[ $(maps_of_code "$TARGET_PID") == "$3" ]] ||
		{ fail "anonymous code or shared mappings differ:"$'\n'"$(maps_of_code "$TARGET_PID")"; return 1; }
	run -0 --separate-stderr hp apply --pid "$TARGET_PID" --json "$4" || return 1
	json_is '.stop == "gates"'
}

@test "apply goes through gates while eight threads hammer the function, each switching once" {
	local mark line
	start_target threads 8
	mark=$(line_count "$TARGET_LOG")
	run -0 --separate-stderr hp apply --pid "$TARGET_PID" --gates --json "$HP_PATCHES/hot_v2.so"
	json_is '.stop == "gates"' '.stop_all_reason == null' '.threads >= 9'
	line=$(settled_line "$mark" ' v1=0 v2=8 other=0 ')
	[[ $line == *" switches=8 "* ]] || fail "workers switched back and forth: $line"
	# Long after: still each once, the calls going on.
	sleep 0.3
	mark=$(line_count "$TARGET_LOG")
	settled_line "$mark" ' v1=0 v2=8 other=0 switches=8 ' >/dev/null
	assert_patch_mapped "$TARGET_PID" hot_v2
	assert_not_traced "$TARGET_PID"
	assert_no_errors "$TARGET_LOG"
	# Revert (a global stop) takes gate and patch out together.
	mark=$(line_count "$TARGET_LOG")
	run -0 --separate-stderr hp revert --pid "$TARGET_PID"
	line=$(settled_line "$mark" ' v1=8 v2=0 other=0 ')
	[[ $line == *" switches=16 "* ]] || fail "workers switched back and forth: $line"
	assert_target_untouched "$TARGET_PID"
}

@test "gates are the default; with --stop-all, apply stops every thread at once and says so" {
	local mark
	start_target threads 8
	mark=$(line_count "$TARGET_LOG")
	run -0 --separate-stderr hp apply --pid "$TARGET_PID" --json "$HP_PATCHES/hot_v2.so"
	json_is '.stop == "gates"' '.stop_all_reason == null'
	settled_line "$mark" ' v1=0 v2=8 other=0 switches=8 ' >/dev/null
	mark=$(line_count "$TARGET_LOG")
	run -0 --separate-stderr hp revert --pid "$TARGET_PID"
	# Each worker back on the old code before the next apply: one that had
	# not called in between would count a switch less.
	settled_line "$mark" ' v1=8 v2=0 other=0 switches=16 ' >/dev/null
	mark=$(line_count "$TARGET_LOG")
	run -0 --separate-stderr hp apply --pid "$TARGET_PID" --stop-all --json "$HP_PATCHES/hot_v2.so"
	json_is '.stop == "stop-all"' '.stop_all_reason == "--stop-all"'
	run -2 --separate-stderr hp apply --pid "$TARGET_PID" --gates --stop-all "$HP_PATCHES/hot_v2.so"
	settled_line "$mark" ' v1=0 v2=8 other=0 switches=24 ' >/dev/null
	assert_not_traced "$TARGET_PID"
}

@test "apply goes through gates while threads are started and end all the time" {
	local mark
	start_target threads 4 churn
	mark=$(line_count "$TARGET_LOG")
	run -0 --separate-stderr hp apply --pid "$TARGET_PID" --gates --json "$HP_PATCHES/hot_v2.so"
	json_is '.stop == "gates"'
	settled_line "$mark" ' v1=0 v2=4 other=0 switches=4 .* churn_last=2$' >/dev/null
	assert_not_traced "$TARGET_PID"
	assert_no_errors "$TARGET_LOG"
}

@test "threads that nearly never leave the function are patched too, each switching once" {
	local mark line
	start_target threads 8 resident
	mark=$(line_count "$TARGET_LOG")
	run -0 --separate-stderr hp apply --pid "$TARGET_PID" --gates --timeout 4 --json "$HP_PATCHES/hot_v2.so"
	# Gates, or, when they are still in the way after a quarter of the
	# timeout, a global stop that moves them out.
	json_is '.stop == "gates" or (.stop_all_reason | test("in the way"))' '.attempts >= 1'
	line=$(settled_line "$mark" ' v1=0 v2=8 other=0 ')
	[[ $line == *" switches=8 "* ]] || fail "workers switched back and forth: $line"
	assert_not_traced "$TARGET_PID"
	assert_no_errors "$TARGET_LOG"
}

@test "threads asleep in the kernel are moved without a stop; each switches once when woken" {
	local mark line
	# Eight workers made one call each and wait for work: asleep all
	# through the apply.
	start_target threads 8 waiting
	run -0 --separate-stderr hp apply --pid "$TARGET_PID" --json "$HP_PATCHES/hot_v2.so"
	json_is '.stop == "gates"' '.threads_asleep >= 8'
	mark=$(line_count "$TARGET_LOG")
	kill -USR1 "$TARGET_PID"
	line=$(settled_line "$mark" ' v1=0 v2=8 other=0 ')
	[[ $line == *" switches=8 "* ]] || fail "workers switched back and forth: $line"
	assert_not_traced "$TARGET_PID"
	# And back, the same way.
	run -0 --separate-stderr hp revert --pid "$TARGET_PID" --json
	json_is '.stop == "gates"' '.threads_asleep >= 8'
	mark=$(line_count "$TARGET_LOG")
	kill -USR1 "$TARGET_PID"
	settled_line "$mark" ' v1=8 v2=0 other=0 switches=16 ' >/dev/null
	assert_target_untouched "$TARGET_PID"
	assert_no_errors "$TARGET_LOG"
}

@test "where the kernel keeps no schedstat, threads asleep are counted by their context switches and moved without a stop" {
	local mark
	start_target threads 8 waiting
	HOTPATCH_FAULT=no-schedstat run -0 --separate-stderr hp apply --pid "$TARGET_PID" --json "$HP_PATCHES/hot_v2.so"
	json_is '.stop == "gates"' '.threads_asleep >= 8'
	mark=$(line_count "$TARGET_LOG")
	kill -USR1 "$TARGET_PID"
	settled_line "$mark" ' v1=0 v2=8 other=0 switches=8 ' >/dev/null
	HOTPATCH_FAULT=no-schedstat run -0 --separate-stderr hp revert --pid "$TARGET_PID" --json
	json_is '.stop == "gates"' '.threads_asleep >= 8'
	mark=$(line_count "$TARGET_LOG")
	kill -USR1 "$TARGET_PID"
	settled_line "$mark" ' v1=8 v2=0 other=0 switches=16 ' >/dev/null
	assert_target_untouched "$TARGET_PID"
	assert_no_errors "$TARGET_LOG"
}

@test "three hundred threads asleep, more than one read of /proc/PID/task lists: every one is counted and moved" {
	local mark tasks
	start_target threads 300 waiting
	tasks=$(find "/proc/$TARGET_PID/task" -mindepth 1 -maxdepth 1 | wc -l)
	# The workers, the main thread and the one that prints.
	((tasks == 302)) || fail "the target has $tasks threads, not 302"
	run -0 --separate-stderr hp apply --pid "$TARGET_PID" --json "$HP_PATCHES/hot_v2.so"
	json_is '.stop == "gates"' ".threads == $tasks" '.threads_asleep >= 300'
	mark=$(line_count "$TARGET_LOG")
	kill -USR1 "$TARGET_PID"
	settled_line "$mark" ' v1=0 v2=300 other=0 switches=300 ' >/dev/null
	run -0 --separate-stderr hp revert --pid "$TARGET_PID" --json
	json_is '.stop == "gates"' ".threads == $tasks" '.threads_asleep >= 300'
	mark=$(line_count "$TARGET_LOG")
	kill -USR1 "$TARGET_PID"
	settled_line "$mark" ' v1=300 v2=0 other=0 switches=600 ' >/dev/null
	assert_target_untouched "$TARGET_PID"
	assert_no_errors "$TARGET_LOG"
}

@test "threads that nap between calls, asleep and awake all through apply, each switch once" {
	local mark line round switches=0
	# Every 20 us asleep: a worker looked at asleep may wake before its
	# byte is exchanged, and then must stay on the old code until checked.
	start_target threads 8 napping
	for round in 1 2 3; do
		run -0 --separate-stderr hp apply --pid "$TARGET_PID" --json "$HP_PATCHES/hot_v2.so"
		json_is '.stop == "gates"'
		switches=$((switches + 8))
		mark=$(line_count "$TARGET_LOG")
		line=$(settled_line "$mark" ' v1=0 v2=8 other=0 ')
		[[ $line == *" switches=$switches "* ]] || fail "round $round, after apply: $line"
		run -0 --separate-stderr hp revert --pid "$TARGET_PID"
		switches=$((switches + 8))
		mark=$(line_count "$TARGET_LOG")
		line=$(settled_line "$mark" ' v1=8 v2=0 other=0 ')
		[[ $line == *" switches=$switches "* ]] || fail "round $round, after revert: $line"
	done
	assert_target_untouched "$TARGET_PID"
	assert_no_errors "$TARGET_LOG"
}

@test "a thread asleep inside the replaced function is never moved while there: apply gives up (exit 3)" {
	local mark
	# Each worker waits inside hot() for work that does not come: seen where
	# it sleeps, its stack holds the old body, so it is not moved asleep;
	# stopped, it cannot be moved out either.  Were it taken for clear
	# asleep, the apply would succeed.  (--allow-suspended: the scan for
	# coroutines would see those frames' return addresses and send the
	# apply to the global stop at once.)
	start_target threads 8 dozing
	run -3 --separate-stderr hp apply --pid "$TARGET_PID" --timeout 2 --allow-suspended --json \
		"$HP_PATCHES/hot_v2.so"
	json_is '.error.kind == "busy"' '.error.message | test("8 threads .* in the way.*into hot")'
	assert_target_untouched "$TARGET_PID"
	# Woken, each returns from the old hot() and waits in it again: three
	# calls each, all of the old code.
	mark=$(line_count "$TARGET_LOG")
	kill -USR1 "$TARGET_PID"
	settled_line "$mark" ' v1=8 v2=0 other=0 switches=0 calls=24$' >/dev/null
	assert_no_errors "$TARGET_LOG"
}

# entry_bytes PID ADDRESS: the 5 bytes at ADDRESS (0x...) in PID, in hex.
entry_bytes() {
	dd if="/proc/$1/mem" bs=5 count=1 skip=$(($2)) iflag=skip_bytes status=none | od -An -tx1 | tr -d ' \n'
}

@test "a function whose first instruction is shorter than the jump goes through gates: its first byte alone becomes a jump, to a landing" {
	local mark line maps_before address before after
	# threads_plain's hot() starts with a 1-byte push: a thread stopped
	# right after it goes on through bytes that the punned jump leaves as
	# they were.  Eight threads hammer it.
	start_target threads_plain 8
	maps_before=$(maps_of_code "$TARGET_PID")
	address=$(nm "$HP_TESTDATA/targets/threads_plain" | awk '$3 == "hot" { print $1 }')
	address=$(printf '0x%x' $((0x$(awk -v t="$(readlink -f "$HP_TESTDATA/targets/threads_plain")" \
		'$6 == t { split($1, r, "-"); print r[1]; exit }' "/proc/$TARGET_PID/maps") + 0x$address)))
	before=$(entry_bytes "$TARGET_PID" "$address")
	run -0 --separate-stderr hp apply --pid "$TARGET_PID" --gates --json "$HP_PATCHES/hot_v2.so"
	json_is '.stop == "gates"' '.stop_all_reason == null' '.patch.functions[0].jump == "gate"' \
		".patch.functions[0].jump_address == \"$address\""
	after=$(entry_bytes "$TARGET_PID" "$address")
	[[ ${after:0:2} == e9 && ${after:2} == "${before:2}" ]] ||
		fail "not one byte made a jump: $before -> $after"
	mark=$(line_count "$TARGET_LOG")
	line=$(settled_line "$mark" ' v1=0 v2=8 other=0 ')
	[[ $line == *" switches=8 "* ]] || fail "workers switched back and forth: $line"
	assert_not_traced "$TARGET_PID"
	# Back through the gates: the byte as it was, the landing page gone.
	mark=$(line_count "$TARGET_LOG")
	run -0 --separate-stderr hp revert --pid "$TARGET_PID" --json
	json_is '.stop == "gates"'
	line=$(settled_line "$mark" ' v1=8 v2=0 other=0 ')
	[[ $line == *" switches=16 "* ]] || fail "workers switched back and forth: $line"
	[[ $(entry_bytes "$TARGET_PID" "$address") == "$before" ]] || fail "the entry is not as it was"
	[[ $(maps_of_code "$TARGET_PID") == "$maps_before" ]] ||
		fail "anonymous code or shared mappings differ:"$'\n'"$(maps_of_code "$TARGET_PID")"
	assert_target_untouched "$TARGET_PID"
	assert_no_errors "$TARGET_LOG"
}

@test "hotpatch killed half way through a transition over a punned entry: each worker keeps one version, and revert takes the landing back" {
	local mark line maps_before
	start_target threads_plain 8
	maps_before=$(maps_of_code "$TARGET_PID")
	HOTPATCH_FAULT=kill-in-transition run -137 --separate-stderr \
		hp apply --pid "$TARGET_PID" --gates "$HP_PATCHES/hot_v2.so"
	assert_not_traced "$TARGET_PID"
	mark=$(line_count "$TARGET_LOG")
	line=$(settled_line "$mark" ' v1=[0-8] v2=[0-8] other=0 ')
	[[ $line =~ \ v1=([0-9]+)\ v2=([0-9]+)\  ]] && ((BASH_REMATCH[1] + BASH_REMATCH[2] == 8)) ||
		fail "a worker between versions: $line"
	[[ $line == *" switches=${BASH_REMATCH[2]} "* ]] || fail "workers switched back and forth: $line"
	revert_killed_and_reapply settled_line ' v1=8 v2=0 other=0 ' "$maps_before" \
		"$HP_PATCHES/hot_v2.so"
	assert_no_errors "$TARGET_LOG"
}

@test "a failure at each step of the gates' way leaves eight hammering threads on the old code" {
	local step mark line switches=0
	# A command per step: longer than a target's default life on a busy machine.
	HP_TARGET_LIFETIME=1800 start_target threads 8
	HOTPATCH_FAULT=list-steps run -1 --separate-stderr hp apply --pid "$TARGET_PID" --json \
		"$HP_PATCHES/hot_v2.so"
	for step in $(jq -r '.error.detail' <<<"$output" | awk '$1 == "rollback" || $1 == "commit" { print $2 }'); do
		HOTPATCH_FAULT=$step run -1 --separate-stderr hp apply --pid "$TARGET_PID" --gates \
			"$HP_PATCHES/hot_v2.so"
		assert_error_line "injected fault at step $step" || fail "the fault at $step did not fire"
		assert_target_untouched "$TARGET_PID" || fail "after the fault at $step"
		mark=$(line_count "$TARGET_LOG")
		line=$(settled_line "$mark" ' v1=8 v2=0 other=0 ') || fail "after the fault at $step"
		# Before the threads move, none ran the patch.  A failure after
		# they moved brings each back the way it went, at a moment it was
		# out of both versions: once there and once back, never a call
		# that mixed them (other=0).
		[[ $step == stop-threads || $step == write-jumps ]] && switches=$((switches + 16))
		[[ $line == *" switches=$switches "* ]] ||
			fail "after the fault at $step, workers switched $line (expected $switches)"
	done
	run -0 --separate-stderr hp apply --pid "$TARGET_PID" --gates --json "$HP_PATCHES/hot_v2.so"
	json_is '.stop == "gates"'
	assert_no_errors "$TARGET_LOG"
}

# kill_each_apply_step TARGET: hotpatch killed after each step of an apply
# through gates on TARGET (eight workers calling hot()): every worker runs
# one version, and whatever the kill left, revert puts right.
kill_each_apply_step() {
	local step mark line steps count=0
	HP_TARGET_LIFETIME=1800 start_target "$1" 8
	HOTPATCH_FAULT=list-steps run -1 --separate-stderr hp apply --pid "$TARGET_PID" --json \
		"$HP_PATCHES/hot_v2.so"
	steps=$(jq -r '.error.detail' <<<"$output" | awk '{ print $2 }')
	for step in $steps kill-in-write; do
		[[ $step == kill-in-write ]] || step=kill-after-$step
		HOTPATCH_FAULT=$step run -137 --separate-stderr hp apply --pid "$TARGET_PID" --gates \
			"$HP_PATCHES/hot_v2.so"
		assert_not_traced "$TARGET_PID" || fail "after $step"
		# Every worker runs one version, each switched at most once.  (A
		# worker given the new code switches at its next call: at the
		# lowest priority, on a busy machine, that may come a while later.)
		mark=$(line_count "$TARGET_LOG")
		line=$(settled_line "$mark" ' (v1=8 v2=0|v1=0 v2=8) other=0 ') || fail "after $step"
		[[ $line == *" v1=8 v2=0 "*" switches=$count "* || $line == *" v1=0 v2=8 "* ]] ||
			fail "after $step, the workers mix versions: $line"
		if [[ $line == *" v1=0 v2=8 "* ]]; then
			count=$((count + 8))
			[[ $line == *" switches=$count "* ]] || fail "after $step, workers switched back and forth: $line"
		fi
		# Whatever the kill left recorded, revert puts it right.
		if hp list --pid "$TARGET_PID" | grep -q '(applied\|(incomplete\|incomplete'; then
			run -0 --separate-stderr hp revert --pid "$TARGET_PID" || fail "revert after $step"
			if [[ $line == *" v1=0 v2=8 "* ]]; then
				count=$((count + 8))
			fi
		fi
		mark=$(line_count "$TARGET_LOG")
		line=$(settled_line "$mark" ' v1=8 v2=0 other=0 ') || fail "after revert after $step"
		[[ $line == *" switches=$count "* ]] || fail "after $step and revert: $line"
		run -0 --separate-stderr hp list --pid "$TARGET_PID" --json
		json_is '[.leftovers[] | select(.reclaimable == false)] == []' || fail "after $step"
	done
	run -0 --separate-stderr hp apply --pid "$TARGET_PID" --gates --json "$HP_PATCHES/hot_v2.so"
	json_is '.stop == "gates"'
	assert_not_traced "$TARGET_PID"
	assert_no_errors "$TARGET_LOG"
}

@test "hotpatch killed after each step of apply: the target runs on, old or new code, never both" {
	kill_each_apply_step threads
}

@test "hotpatch killed after each step of an apply over a punned entry: old or new code, never both" {
	kill_each_apply_step threads_plain
}

@test "hotpatch stopped half way through holds no caller; killed there, each worker keeps one version" {
	local mark line calls_before calls_after
	start_target threads 8
	# Stopped by itself half way through (half the threads moved to the new
	# code, the others not yet): no gate waits, so every worker keeps calling.
	HOTPATCH_FAULT=stop-in-transition "$HOTPATCH" apply --pid "$TARGET_PID" --gates \
		"$HP_PATCHES/hot_v2.so" >/dev/null 2>&1 &
	local held=$!
	local deadline=$((SECONDS + HP_WAIT_SECONDS))
	until [[ $(awk '{ print $3 }' "/proc/$held/stat" 2>/dev/null) == T ]]; do
		((SECONDS < deadline)) || fail "hotpatch never stopped in the transition"
		sleep 0.02
	done
	sleep 0.2
	calls_before=$(tail -1 "$TARGET_LOG" | sed -n 's/.* calls=\([0-9]*\).*/\1/p')
	sleep 0.3
	calls_after=$(tail -1 "$TARGET_LOG" | sed -n 's/.* calls=\([0-9]*\).*/\1/p')
	((calls_after - calls_before >= 8)) || fail "calls were held: $calls_before -> $calls_after"
	kill -KILL "$held"
	wait "$held" || true
	# Killed: each worker stays on the version it had, switched at most once
	# (a worker moved switches at its next call, which may come late).
	mark=$(line_count "$TARGET_LOG")
	line=$(settled_line "$mark" ' v1=[1-7] v2=[1-7] other=0 ')
	[[ $line =~ \ v1=([0-9]+)\ v2=([0-9]+)\  ]] || fail "no counts: $line"
	((BASH_REMATCH[2] >= 1 && BASH_REMATCH[1] >= 1)) || fail "not half way: $line"
	[[ $line == *" switches=${BASH_REMATCH[2]} "* ]] || fail "workers switched back and forth: $line"
	assert_not_traced "$TARGET_PID"
	revert_incomplete settled_line ' v1=8 v2=0 other=0 '
	run -0 --separate-stderr hp apply --pid "$TARGET_PID" --gates --json "$HP_PATCHES/hot_v2.so"
	json_is '.stop == "gates"'
	assert_no_errors "$TARGET_LOG"
}

@test "revert goes through gates too: eight hammering threads each switch back once; --stop-all is honoured" {
	local mark line
	start_target threads 8
	run -0 --separate-stderr hp apply --pid "$TARGET_PID" --json "$HP_PATCHES/hot_v2.so"
	json_is '.stop == "gates"'
	mark=$(line_count "$TARGET_LOG")
	settled_line "$mark" ' v1=0 v2=8 other=0 switches=8 ' >/dev/null
	run -0 --separate-stderr hp revert --pid "$TARGET_PID" --json
	json_is '.stop == "gates"' '.stop_all_reason == null' '.threads >= 9'
	mark=$(line_count "$TARGET_LOG")
	line=$(settled_line "$mark" ' v1=8 v2=0 other=0 ')
	[[ $line == *" switches=16 "* ]] || fail "workers switched back and forth: $line"
	assert_target_untouched "$TARGET_PID"
	# With --stop-all, every thread at once, as before gates.
	mark=$(line_count "$TARGET_LOG")
	run -0 --separate-stderr hp apply --pid "$TARGET_PID" --json "$HP_PATCHES/hot_v2.so"
	settled_line "$mark" ' v1=0 v2=8 other=0 switches=24 ' >/dev/null
	run -2 --separate-stderr hp revert --pid "$TARGET_PID" --gates --stop-all
	run -0 --separate-stderr hp revert --pid "$TARGET_PID" --stop-all --json
	json_is '.stop == "stop-all"' '.stop_all_reason == "--stop-all"'
	mark=$(line_count "$TARGET_LOG")
	settled_line "$mark" ' v1=8 v2=0 other=0 switches=32 ' >/dev/null
	assert_target_untouched "$TARGET_PID"
	assert_no_errors "$TARGET_LOG"
}

@test "a failure at each step of a revert through gates leaves eight hammering threads on the new code" {
	local step mark line switches=8
	HP_TARGET_LIFETIME=1800 start_target threads 8
	run -0 --separate-stderr hp apply --pid "$TARGET_PID" --json "$HP_PATCHES/hot_v2.so"
	json_is '.stop == "gates"'
	HOTPATCH_FAULT=list-steps run -1 --separate-stderr hp revert --pid "$TARGET_PID" --json
	# From the first step that moves a thread (rollback.bats fails every
	# step of revert, through gates too, on a target of one thread).
	for step in $(jq -r '.error.detail' <<<"$output" |
		      awk '$2 == "move-back" { on = 1 } on && ($1 == "rollback" || $1 == "commit") { print $2 }'); do
		HOTPATCH_FAULT=$step run -1 --separate-stderr hp revert --pid "$TARGET_PID"
		assert_error_line "injected fault at step $step" || fail "the fault at $step did not fire"
		assert_not_traced "$TARGET_PID" || fail "after the fault at $step"
		run -0 --separate-stderr hp list --pid "$TARGET_PID" --json
		json_is '.patches[0].state == "applied"' || fail "after the fault at $step"
		mark=$(line_count "$TARGET_LOG")
		line=$(settled_line "$mark" ' v1=0 v2=8 other=0 ') || fail "after the fault at $step"
		# Once the threads went back, a failure brings each to the new code
		# again, at a moment it was out of both: there and back once each.
		[[ $step == move-back || $step == stop-threads || $step == restore ]] &&
			switches=$((switches + 16))
		[[ $line == *" switches=$switches "* ]] ||
			fail "after the fault at $step, workers switched $line (expected $switches)"
	done
	run -0 --separate-stderr hp revert --pid "$TARGET_PID" --json
	json_is '.stop == "gates"'
	mark=$(line_count "$TARGET_LOG")
	settled_line "$mark" " v1=8 v2=0 other=0 switches=$((switches + 8)) " >/dev/null
	assert_target_untouched "$TARGET_PID"
	assert_no_errors "$TARGET_LOG"
}

# kill_each_revert_step TARGET: hotpatch killed after each step of a revert
# through gates on TARGET: each worker keeps one version, a revert finishes.
kill_each_revert_step() {
	local step mark line steps count=0 back
	HP_TARGET_LIFETIME=1800 start_target "$1" 8
	HOTPATCH_FAULT=list-steps run -1 --separate-stderr hp revert --pid "$TARGET_PID" --json
	# The steps that change what a thread runs or what the target holds
	# (steps.bats kills every step of revert on a target of one thread).
	steps="move-back stop-threads restore drain-gates unload forget"
	for step in $steps; do
		jq -e --arg step "$step" '.error.detail | test("(^|\n)[a-z]+ " + $step + "($|\n)")' \
			<<<"$output" >/dev/null || fail "revert has no step $step"
	done
	for step in $steps kill-in-transition; do
		[[ $step == kill-in-transition ]] || step=kill-after-$step
		run -0 --separate-stderr hp apply --pid "$TARGET_PID" --json "$HP_PATCHES/hot_v2.so"
		json_is '.stop == "gates"' || fail "apply before $step"
		count=$((count + 8))
		mark=$(line_count "$TARGET_LOG")
		settled_line "$mark" " v1=0 v2=8 other=0 switches=$count " >/dev/null || fail "before $step"
		HOTPATCH_FAULT=$step run -137 --separate-stderr hp revert --pid "$TARGET_PID"
		assert_not_traced "$TARGET_PID" || fail "after $step"
		# Each worker runs one version: those that went back switched once
		# (at their next call: killed half way through, some did).
		mark=$(line_count "$TARGET_LOG")
		if [[ $step == kill-in-transition ]]; then
			line=$(settled_line "$mark" ' v1=[1-7] v2=[1-7] other=0 ') || fail "after $step"
		else
			line=$(settled_line "$mark" ' other=0 ') || fail "after $step"
		fi
		[[ $line =~ \ v1=([0-9]+)\ v2=([0-9]+)\  ]] || fail "after $step, no counts: $line"
		back=${BASH_REMATCH[1]}
		((back + BASH_REMATCH[2] == 8)) || fail "after $step: $line"
		[[ $step != kill-in-transition ]] || ((back >= 1 && BASH_REMATCH[2] >= 1)) ||
			fail "not half way: $line"
		count=$((count + back))
		[[ $line == *" switches=$count "* ]] || fail "after $step, workers switched back and forth: $line"
		# Whatever the kill left recorded, revert finishes it.
		if hp list --pid "$TARGET_PID" | grep -q '(applied\|(incomplete'; then
			run -0 --separate-stderr hp revert --pid "$TARGET_PID" || fail "revert after $step"
		fi
		count=$((count + 8 - back))
		mark=$(line_count "$TARGET_LOG")
		line=$(settled_line "$mark" ' v1=8 v2=0 other=0 ') || fail "after revert after $step"
		[[ $line == *" switches=$count "* ]] || fail "after $step and revert: $line"
		run -0 --separate-stderr hp list --pid "$TARGET_PID" --json
		json_is '.patches == []' '[.leftovers[] | select(.reclaimable == false)] == []' ||
			fail "after $step"
	done
	assert_not_traced "$TARGET_PID"
	assert_no_errors "$TARGET_LOG"
}

@test "hotpatch killed after each step of a revert through gates: each worker keeps one version, a revert finishes" {
	kill_each_revert_step threads
}

@test "hotpatch killed after each step of a revert over a punned entry: each worker keeps one version, a revert finishes" {
	kill_each_revert_step threads_plain
}

# The target's anonymous code and shared mappings: the gates' code and
# table, and any other page of ours.  (A text page that a jump was written
# into may stay split off: that is the kernel's.)
maps_of_code() { awk '(NF == 5 && $2 ~ /x/) || $2 ~ /s/ { print $1, $2, $6 }' "/proc/$1/maps"; }

# A line of the many target after MARK matching PATTERN (ERE).
many_line_after() {
	wait_for_line_after "$TARGET_LOG" "$1" "^many workers=.*$2"
}

@test "64 functions, more than one page of gates holds: apply and revert go through gates while four threads call them all, never a torn round" {
	local mark maps_before
	start_target many 4
	maps_before=$(maps_of_code "$TARGET_PID")
	mark=$(line_count "$TARGET_LOG")
	run -0 --separate-stderr hp apply --pid "$TARGET_PID" --json "$HP_PATCHES/many_fix.so"
	json_is '.stop == "gates"' '.stop_all_reason == null'
	many_line_after "$mark" ' old=0 new=4 other=0 torn=0 ' >/dev/null
	run -0 --separate-stderr hp list --pid "$TARGET_PID" --json
	json_is '.patches[0].functions | length == 64' \
		'[.patches[0].functions[].jump] | unique == ["gate"]'
	mark=$(line_count "$TARGET_LOG")
	run -0 --separate-stderr hp revert --pid "$TARGET_PID" --json
	json_is '.stop == "gates"'
	many_line_after "$mark" ' old=4 new=0 other=0 torn=0 ' >/dev/null
	# The gates' code pages and their table are gone with the patch.
	assert_target_untouched "$TARGET_PID"
	[[ $(maps_of_code "$TARGET_PID") == "$maps_before" ]] ||
		fail "anonymous code or shared mappings differ:"$'\n'"$(maps_of_code "$TARGET_PID")"
	assert_no_errors "$TARGET_LOG"
}

@test "hotpatch killed half way through a transition over 64 gates: no torn round, and revert takes the pages of gates back" {
	local mark line maps_before
	start_target many 4
	maps_before=$(maps_of_code "$TARGET_PID")
	HOTPATCH_FAULT=kill-in-transition run -137 --separate-stderr \
		hp apply --pid "$TARGET_PID" --gates "$HP_PATCHES/many_fix.so"
	assert_not_traced "$TARGET_PID"
	# Each worker on one version, whichever its byte says.
	mark=$(line_count "$TARGET_LOG")
	line=$(many_line_after "$mark" ' old=[1-3] new=[1-3] other=0 torn=0 ')
	[[ $line =~ \ old=([0-9]+)\ new=([0-9]+)\  ]] && ((BASH_REMATCH[1] + BASH_REMATCH[2] == 4)) ||
		fail "a worker between versions: $line"
	# Killed once 3 of the 5 threads had moved: some workers on each side.
	((BASH_REMATCH[1] >= 1 && BASH_REMATCH[2] >= 1)) || fail "not half way: $line"
	revert_killed_and_reapply many_line_after ' old=4 new=0 other=0 torn=0 ' "$maps_before" \
		"$HP_PATCHES/many_fix.so"
	assert_no_errors "$TARGET_LOG"
}
