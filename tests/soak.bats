#!/usr/bin/env bats
# soak.bats - the short form of the soak test (tests/soak/soak.sh; `make soak`
# runs the long one): apply and revert over and over on a busy, blocking,
# signal-flooded target, with hotpatch killed by SIGKILL at random instants.

bats_require_minimum_version 1.5.0
load helpers

setup() { hp_setup; }
teardown() { hp_teardown; }

@test "the target survives 150 apply/revert cycles and 40 SIGKILLs of hotpatch, exactly patched or not" {
	run -0 env SOAK_CYCLES=150 SOAK_KILLS=40 HOTPATCH="$HOTPATCH" HP_TESTDATA="$HP_TESTDATA" HP_PATCHES="$HP_PATCHES" \
		"$HP_SOURCE/tests/soak/soak.sh"
	[[ $output == *"soak: 150 cycles,"* ]] || fail "no summary: $output"
}
