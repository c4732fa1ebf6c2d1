#!/usr/bin/env bats
# soak.bats - the short form of the soak test (tests/soak/soak.sh; `make soak`
# runs the long one): apply and revert over and over on a busy, blocking,
# signal-flooded target, with hotpatch killed by SIGKILL at random instants.

bats_require_minimum_version 1.5.0
load helpers

setup() { hp_setup; }
teardown() { hp_teardown; }

# HP_SOAK_CYCLES and HP_SOAK_KILLS make it shorter where a cycle is slow
# (the emulated arm64 machine: scripts/aarch64/check).
@test "the target survives apply/revert cycles (150) and SIGKILLs of hotpatch (40), exactly patched or not" {
	local cycles=${HP_SOAK_CYCLES:-150} kills=${HP_SOAK_KILLS:-40}
	run -0 env SOAK_CYCLES="$cycles" SOAK_KILLS="$kills" HOTPATCH="$HOTPATCH" HP_TESTDATA="$HP_TESTDATA" \
		HP_PATCHES="$HP_PATCHES" "$HP_SOURCE/tests/soak/soak.sh"
	[[ $output == *"soak: $cycles cycles,"* ]] || fail "no summary: $output"
}
