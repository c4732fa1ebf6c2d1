#!/usr/bin/env bash
# many.sh - one command over many processes against the same work done one
# pid at a time, in the same run: for 1, 10 and 100 processes of a small
# multi-threaded program (testdata's threads target, 4 workers each, each
# calling the function to fix every 10 ms: WORKLOAD=busy makes them
# spin instead, which with 100 processes is 400 runnable threads), the
# wall time of `hotpatch apply --exe` and of as many `hotpatch apply --pid`
# run one after the other, and the longest stop any one process saw (from
# the JSON's blackout_us); the same for revert.  Medians over RUNS runs.  It
# only prints: no figure fails.
#
#   HOTPATCH=build/hotpatch HP_TESTDATA=build/testdata bench/many.sh
#
# Environment: RUNS (3), PROCESS_COUNTS ("1 10 100"), WORKLOAD (paced|busy).
set -uo pipefail

: "${HOTPATCH:?HOTPATCH must name the hotpatch binary}"
: "${HP_TESTDATA:?HP_TESTDATA must name the built testdata}"
runs=${RUNS:-3}
process_counts=${PROCESS_COUNTS:-1 10 100}
workload=${WORKLOAD:-paced}
[[ $workload == paced || $workload == busy ]] || { echo "many.sh: WORKLOAD is paced or busy" >&2; exit 2; }
work=$(mktemp -d "${TMPDIR:-/tmp}/hotpatch-many.XXXXXX") || exit 1
program=$work/worker
patch=$work/hot_v2.so
pids=()

stop_all() {
	((${#pids[@]})) && kill -KILL "${pids[@]}" 2>/dev/null
	for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null; done
	pids=()
}
# shellcheck disable=SC2317 # called by the trap
cleanup() { stop_all; rm -rf "$work"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# A private copy: --exe must choose these processes and no others.
export HP_TARGET_LIFETIME=${HP_TARGET_LIFETIME:-3600}
cp "$HP_TESTDATA/targets/threads" "$program"
install -m 0644 "$HP_TESTDATA/patches/hot_v2.so" "$patch"

start_all() {
	local count=$1 log
	for ((i = 0; i < count; i++)); do
		log=$work/worker.$i.log
		if [[ $workload == paced ]]; then
			"$program" 4 paced </dev/null >"$log" 2>&1 &
		else
			"$program" 4 </dev/null >"$log" 2>&1 &
		fi
		pids+=("$!")
	done
	for ((i = 0; i < count; i++)); do
		for _ in $(seq 200); do
			grep -q '^ready' "$work/worker.$i.log" 2>/dev/null && break
			sleep 0.02
		done
	done
}

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR) print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
now() { date +%s.%N; }

# One figure pair: seconds taken, the longest blackout (us) in the documents.
many() {
	local command=$1 start end
	start=$(now)
	"$HOTPATCH" "$command" --exe "$program" --json "${@:2}" >"$work/out.json" 2>/dev/null
	end=$(now)
	printf '%s %s\n' "$(echo "$end - $start" | bc)" \
		"$(jq '[.processes[].blackout_us] | max // 0' "$work/out.json")"
}

one_by_one() {
	local command=$1 start end longest=0 blackout
	start=$(now)
	for pid in "${pids[@]}"; do
		"$HOTPATCH" "$command" --pid "$pid" --json "${@:2}" >"$work/one.json" 2>/dev/null
		blackout=$(jq '.blackout_us // 0' "$work/one.json")
		longest=$(echo "if ($blackout > $longest) $blackout else $longest" | bc)
	done
	end=$(now)
	printf '%s %s\n' "$(echo "$end - $start" | bc)" "$longest"
}

printf '%s\n' "one command over N processes (threads target, 4 $workload workers each), median of $runs runs:"
printf '%-10s %-7s %12s %12s %8s %16s %16s\n' processes command "--exe s" "one-by-one s" ratio \
	"--exe max stop" "one max stop"
for count in $process_counts; do
	start_all "$count"
	for command in apply revert; do
		: >"$work/many"; : >"$work/single"
		for ((r = 0; r < runs; r++)); do
			if [[ $command == apply ]]; then
				many apply "$patch" >>"$work/many"
				"$HOTPATCH" revert --exe "$program" >/dev/null 2>&1
				one_by_one apply "$patch" >>"$work/single"
				"$HOTPATCH" revert --exe "$program" >/dev/null 2>&1
			else
				"$HOTPATCH" apply --exe "$program" "$patch" >/dev/null 2>&1
				many revert >>"$work/many"
				"$HOTPATCH" apply --exe "$program" "$patch" >/dev/null 2>&1
				one_by_one revert >>"$work/single"
			fi
		done
		many_s=$(cut -d' ' -f1 "$work/many" | median)
		single_s=$(cut -d' ' -f1 "$work/single" | median)
		printf '%-10s %-7s %12.3f %12.3f %7.2fx %13.0f us %13.0f us\n' "$count" "$command" \
			"$many_s" "$single_s" "$(echo "$single_s / $many_s" | bc -l)" \
			"$(cut -d' ' -f2 "$work/many" | median)" "$(cut -d' ' -f2 "$work/single" | median)"
	done
	stop_all
done
