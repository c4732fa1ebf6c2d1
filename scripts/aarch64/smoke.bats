#!/usr/bin/env bats
# smoke.bats - what `make check-aarch64` runs first in the arm64 machine,
# before any of hotpatch: that ptrace and /proc/PID/mem behave there as the
# engine needs (smoke.c), that the cross-built testdata runs, and that the
# machine's compiler builds a patch (hotpatch build and some tests compile
# inside it).  Environment: that of `make bats`, plus AARCH64_SMOKE (the
# cross-built smoke.c).

load ../../tests/helpers

setup() {
	HP_STARTED_PIDS=()
	HP_START_COUNT=0
}

teardown() {
	hp_teardown
}

@test "this is an arm64 machine" {
	run uname -m
	[[ $output == aarch64 ]] || fail "uname -m says $output"
}

@test "the machine's init reaps orphans: no zombie stays for the tests to trip on" {
	local orphan state i
	orphan=$(bash -c 'sleep 0.1 </dev/null >/dev/null 2>&1 & echo $!')
	for ((i = 0; i < 1000; i++)); do
		state=$(awk '{print $3}' "/proc/$orphan/stat" 2>/dev/null) || state=gone
		[[ $state == gone ]] && return 0
		sleep 0.02
	done
	fail "orphan $orphan still there, state $state"
}

@test "ptrace: a running thread seized and interrupted, its registers read, its text rewritten through /proc/PID/mem and run at once" {
	[[ -x ${AARCH64_SMOKE:-} ]] || fail "no smoke program at ${AARCH64_SMOKE:-(AARCH64_SMOKE unset)}"
	run timeout -k 5 120 "$AARCH64_SMOKE"
	printf '%s\n' "$output"
	((status == 0)) || fail "smoke exited $status"
	[[ $output == *"ok 7 after the detach"* ]] || fail "the worker never ran the rewritten instruction"
}

@test "the cross-built testdata runs: simple computes 2N" {
	start_target simple
	wait_for_result "$TARGET_LOG" 0 compute '*2'
}

@test "the cross-built testdata runs: with_lib finds libdemo.so through its rpath" {
	local target
	target=$(cd "$HP_TESTDATA/targets" && ls with_lib* | head -n 1)
	[[ -n $target ]] || fail "no with_lib target in $HP_TESTDATA/targets"
	start_target "$target"
	grep -q libdemo.so "/proc/$TARGET_PID/maps" || fail "libdemo.so not mapped in $target"
}

@test "the machine's cc builds a patch for it" {
	run cc -O2 -g -fPIC -shared -Wall -I"$HP_SOURCE/lib/include" \
		-o "$BATS_TEST_TMPDIR/compute_v1.so" "$HP_SOURCE/testdata/patches/compute_v1.c"
	((status == 0)) || fail "cc failed: $output"
	run readelf -h "$BATS_TEST_TMPDIR/compute_v1.so"
	[[ $output == *AArch64* ]] || fail "not an arm64 object: $output"
}
