#!/usr/bin/env bash
# cumulative.sh - what a cumulative release costs: for 1, 10 and 100 older
# patches applied to the benchmark target (one function each, older_J.so),
# the time `hotpatch apply` of a cumulative release replacing the same
# functions takes (cumulative_N.so: it takes them all over in one stop, then
# unloads them), against a plain apply of a patch of as many functions on
# the unpatched target (patch_N.so) in the same run, and both stops as
# hotpatch reports them (blackout_us).  Medians over RUNS runs.  It only
# prints: no figure fails.
#
#   OUT=build/bench HOTPATCH=build/hotpatch bench/cumulative.sh
#
# Environment: RUNS (5), OLDER_COUNTS ("1 10 100"), THREADS (2: the target's
# main thread and its spinner), HOTPATCH_TIMEOUT (10 seconds).  OUT holds
# bench_target, older_J.so, cumulative_N.so and patch_N.so (bench/Makefile).
set -uo pipefail

: "${OUT:?OUT must name the directory bench/Makefile built into}"
: "${HOTPATCH:?HOTPATCH must name the hotpatch binary}"
runs=${RUNS:-5}
older_counts=${OLDER_COUNTS:-1 10 100}
threads=${THREADS:-2}
timeout=${HOTPATCH_TIMEOUT:-10}
work=$(mktemp -d "${TMPDIR:-/tmp}/hotpatch-cumulative.XXXXXX") || exit 1
target_pid=
notes=()

# shellcheck source=bench/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

start_target() {
	local reply
	coproc TARGET { exec "$OUT/bench_target" "$threads"; }
	# shellcheck disable=SC2153 # TARGET_PID is set by coproc
	target_pid=$TARGET_PID
	IFS= read -r -t 120 reply <&"${TARGET[0]}" && [[ $reply == ready ]]
}

# hp COMMAND ARGS...: hotpatch with --json; the document in $document, the
# exit status returned.
hp() {
	local command=$1
	shift
	document=$("$HOTPATCH" "$command" --json --timeout "$timeout" --pid "$target_pid" "$@" \
		2>"$work/stderr")
}

# field NAME: a number of the last document.
field() { jq -r ".$1" <<<"$document"; }

# one_count N: RUNS times, N older patches then the cumulative release
# (timed), reverted; a plain patch of N functions (timed), reverted.
one_count() {
	local count=$1 run j failed=0
	local cumulative_ms=() cumulative_us=() plain_ms=() plain_us=()

	for ((run = 0; run < runs; run++)); do
		for ((j = 0; j < count; j++)); do
			hp apply "$OUT/older_$j.so" || { failed=1; break; }
		done
		if ((failed)) || ! hp apply "$OUT/cumulative_$count.so"; then
			notes+=("older=$count run $run: $(head -n 1 "$work/stderr")")
			return 1
		fi
		if [[ $(jq -r '.patch.replaced | length' <<<"$document") != "$count" ]]; then
			notes+=("older=$count run $run: took over $(jq -c '.patch.replaced' <<<"$document")")
		fi
		cumulative_ms+=("$(field elapsed_ms)") cumulative_us+=("$(field blackout_us)")
		hp revert || { notes+=("older=$count run $run: revert: $(head -n 1 "$work/stderr")"); return 1; }
		hp apply "$OUT/patch_$count.so" || { notes+=("older=$count run $run: plain apply: $(head -n 1 "$work/stderr")"); return 1; }
		plain_ms+=("$(field elapsed_ms)") plain_us+=("$(field blackout_us)")
		hp revert || { notes+=("older=$count run $run: revert: $(head -n 1 "$work/stderr")"); return 1; }
	done
	awk -v n="$count" -v cm="$(printf '%s\n' "${cumulative_ms[@]}" | median)" \
		-v cu="$(printf '%s\n' "${cumulative_us[@]}" | median)" \
		-v pm="$(printf '%s\n' "${plain_ms[@]}" | median)" \
		-v pu="$(printf '%s\n' "${plain_us[@]}" | median)" 'BEGIN {
		printf "%6s %16.2f %13.2f %9.1f %21.0f %18.0f %15.1f\n", n, cm, pm, cm / pm, cu, pu, cu / pu
	}'
}

cat <<EOF

cumulative releases: medians over $runs runs, $threads threads
  older                the older patches applied first, one function each
  cumulative_apply_ms  hotpatch apply of a cumulative release replacing the same
                       functions: it takes them over in one stop, then unloads them
  plain_apply_ms       hotpatch apply of a plain patch of as many functions, unpatched target
  ratio                cumulative_apply_ms / plain_apply_ms
  *_blackout_us        the stop hotpatch reports (blackout_us), and their ratio

 older cumulative_apply_ms plain_apply_ms     ratio cumulative_blackout_us plain_blackout_us blackout_ratio
EOF
if ! start_target; then
	echo "cumulative.sh: the target did not start" >&2
	exit 0
fi
for count in $older_counts; do
	one_count "$count" || break
done
print_notes
exit 0
