#!/usr/bin/env bash
# apply_latency.sh - wall time and blackout of one `hotpatch apply` (and its
# revert) on the busy multi-threaded test target, for several thread counts.
# Prints medians over RUNS runs.  Usage: apply_latency.sh HOTPATCH TESTDATA
set -euo pipefail
hotpatch=$1 testdata=$2 runs=${RUNS:-7}

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

printf '%-8s %14s %14s %14s\n' threads apply_ms blackout_us revert_ms
for threads in ${THREAD_COUNTS:-2 100}; do
	"$testdata/targets/threads" "$threads" >/dev/null &
	pid=$!
	sleep 0.5
	applies=() blackouts=() reverts=()
	for ((run = 0; run < runs; run++)); do
		json=$("$hotpatch" apply --json --pid "$pid" "$testdata/patches/hot_v2.so")
		applies+=("$(jq -r .elapsed_ms <<<"$json")")
		blackouts+=("$(jq -r .blackout_us <<<"$json")")
		json=$("$hotpatch" revert --json --pid "$pid")
		reverts+=("$(jq -r .elapsed_ms <<<"$json")")
	done
	kill "$pid"
	wait "$pid" 2>/dev/null || true
	printf '%-8s %14.2f %14.0f %14.2f\n' "$threads" \
		"$(printf '%s\n' "${applies[@]}" | median)" \
		"$(printf '%s\n' "${blackouts[@]}" | median)" \
		"$(printf '%s\n' "${reverts[@]}" | median)"
done
