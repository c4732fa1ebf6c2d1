#!/usr/bin/env bash
# pauses.sh - how long the target's own threads pause during one apply, for
# the three ways of making it in the same run on the same target: the floor
# (floor.c: stop every thread, unwind, write, resume), `hotpatch apply
# --stop-all` (every thread stopped at once) and `hotpatch apply --gates` (gates,
# each thread checked alone; its JSON says "stop": "gates" or why not).
# Three threads of bench_target measure themselves: the spinner (spinning
# in code the patch leaves alone: its longest gap), an idle thread (how late
# it wakes from 1 ms sleeps) and a caller of the replaced function (how much
# longer than its 200 us sleep one round of call-and-sleep takes).  Each
# apply's revert is measured too (a patch applied through gates is reverted
# through them, one applied --stop-all with every thread stopped); "quiet" is the same measures
# with nothing done, over as long as the gates' apply took (the machine's
# own noise).  Medians over RUNS runs, in microseconds, and each way's ratio
# to the floor.  It only prints: no figure
# fails.
#
#   OUT=build/bench HOTPATCH=build/hotpatch bench/pauses.sh
#
# Environment: RUNS (5), THREAD_COUNTS ("2 16 128 1024"), FUNCTION_COUNTS
# ("1 100 1000"), HOTPATCH_TIMEOUT (10 seconds).
set -uo pipefail

: "${OUT:?OUT must name the directory bench/Makefile built into}"
: "${HOTPATCH:?HOTPATCH must name the hotpatch binary}"
runs=${RUNS:-5}
thread_counts=${THREAD_COUNTS:-2 16 128 1024}
function_counts=${FUNCTION_COUNTS:-1 100 1000}
timeout=${HOTPATCH_TIMEOUT:-10}
target_binary=$(readlink -f "$OUT/bench_target")
jump_size=6

work=$(mktemp -d "${TMPDIR:-/tmp}/hotpatch-pauses.XXXXXX") || exit 1
target_pid=
notes=()

# shellcheck source=bench/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

ask() {
	reply=
	printf '%s\n' "$1" >&"${TARGET[1]}" || return 1
	IFS= read -r -t 60 reply <&"${TARGET[0]}" || return 1
	[[ $reply != error* ]]
}

start_target() {
	coproc TARGET { exec "$target_binary" "$1"; }
	# shellcheck disable=SC2153 # TARGET_PID is set by coproc
	target_pid=$TARGET_PID
	if ! IFS= read -r -t 120 reply <&"${TARGET[0]}" || [[ $reply != ready ]]; then
		notes+=("threads=$1: the target did not start (${reply:-no answer})")
		stop_target
		return 1
	fi
	sleep 0.3
}

# measured WAY: reads the three pauses after one way's work into
# spin_WAY, idle_WAY and caller_WAY (arrays of microseconds).
measured() {
	local way=$1 idle caller
	ask gap || return 1
	eval "spin_$way+=(\"$((reply / 1000))\")"
	ask pauses || return 1
	idle=${reply#idle=}
	idle=${idle%% *}
	caller=${reply##*caller=}
	eval "idle_$way+=(\"$((idle / 1000))\")"
	eval "caller_$way+=(\"$((caller / 1000))\")"
}

# apply_way WAY OPTIONS...: one apply, measured, then its revert.
apply_way() {
	local way=$1 json status
	shift
	ask reset || return 1
	json=$("$HOTPATCH" apply --json --timeout "$timeout" --pid "$target_pid" "$@" \
		"$OUT/patch_$count.so" 2>"$work/stderr")
	status=$?
	measured "$way" || return 1
	if ((status != 0)); then
		notes+=("threads=$threads functions=$count $way: apply failed (exit $status): $(head -1 "$work/stderr")")
		return 0
	fi
	[[ $way != gates ]] || modes+=("$(jq -r '.stop + (if .stop_all_reason then " (" + .stop_all_reason + ")" else "" end)' <<<"$json")")
	[[ $way != gates ]] || gates_seconds=$(jq -r '.elapsed_ms / 1000' <<<"$json")
	ask reset || return 1
	json=$("$HOTPATCH" revert --json --timeout "$timeout" --pid "$target_pid" 2>"$work/stderr")
	status=$?
	measured "back_$way" || return 1
	((status == 0)) ||
		notes+=("threads=$threads functions=$count $way: revert failed: $(head -1 "$work/stderr")")
	[[ $way != gates ]] || modes_back+=("$(jq -r '.stop // "failed"' <<<"$json")")
}

one_shape() {
	local sites=$work/sites run way
	local spin_floor=() idle_floor=() caller_floor=() spin_stopall=() idle_stopall=()
	local caller_stopall=() spin_gates=() idle_gates=() caller_gates=() modes=()
	local spin_quiet=() idle_quiet=() caller_quiet=() gates_seconds=0.3
	local spin_back_stopall=() idle_back_stopall=() caller_back_stopall=() spin_back_gates=()
	local idle_back_gates=() caller_back_gates=() modes_back=()

	write_sites "$count" "$sites" || return 1
	for ((run = 0; run < runs; run++)); do
		ask reset || return 1
		"$OUT/floor" "$target_pid" -f "$sites" >/dev/null 2>"$work/stderr" ||
			notes+=("threads=$threads floor failed: $(head -1 "$work/stderr")")
		measured floor || return 1
		apply_way stopall --stop-all || return 1
		apply_way gates --gates || return 1
		# The machine's own noise: the same measures over as long as the
		# gates' apply took, with nothing done to the target.
		ask reset || return 1
		sleep "$gates_seconds"
		measured quiet || return 1
	done
	for way in floor stopall gates quiet back_stopall back_gates; do
		for kind in spin idle caller; do
			eval "m_${way}_$kind=\$(printf '%s\n' \"\${${kind}_$way[@]}\" | median)"
		done
	done
	# shellcheck disable=SC2154 # m_* are set by the eval above
	awk -v t="$threads" -v f="$count" \
		-v fs="$m_floor_spin" -v fi="$m_floor_idle" -v fc="$m_floor_caller" \
		-v ss="$m_stopall_spin" -v si="$m_stopall_idle" -v sc="$m_stopall_caller" \
		-v gs="$m_gates_spin" -v gi="$m_gates_idle" -v gc="$m_gates_caller" \
		-v qs="$m_quiet_spin" -v qi="$m_quiet_idle" -v qc="$m_quiet_caller" \
		-v bss="$m_back_stopall_spin" -v bsi="$m_back_stopall_idle" -v bsc="$m_back_stopall_caller" \
		-v bgs="$m_back_gates_spin" -v bgi="$m_back_gates_idle" -v bgc="$m_back_gates_caller" \
		-v mode="$(printf '%s\n' "${modes[@]}" | sort | uniq -c | awk '{ $1 = $1 "x"; print }' | paste -sd, -)" \
		-v back="$(printf '%s\n' "${modes_back[@]}" | sort | uniq -c | awk '{ $1 = $1 "x"; print }' | paste -sd, -)" '
		function r(v, floor) { return (v == "-" || floor == "-" || v <= 0) ? "-" : sprintf("%.1f", floor / v) }
		BEGIN {
			printf "%7s %9s | %7s %7s %7s | %7s %7s %7s | %7s %7s %7s | %8s %8s %8s | %7s %7s %7s | %s\n",
				t, f, fs, fi, fc, ss, si, sc, gs, gi, gc, r(gs, fs), r(gi, fi), r(gc, fc),
				qs, qi, qc, mode
			printf "%7s %9s | %23s | %7s %7s %7s | %7s %7s %7s | %8s %8s %8s | %23s | revert: %s\n",
				"", "revert", "", bss, bsi, bsc, bgs, bgi, bgc, r(bgs, fs), r(bgi, fi), r(bgc, fc),
				"", back
		}'
}

cat <<EOF
hotpatch bench, pauses: medians over $runs runs, microseconds
  spin    the longest gap of a thread spinning in code the patch leaves alone
  idle    how late an idle thread (1 ms sleeps) woke at worst
  caller  how much longer than its 200 us sleep a round of a thread calling
          the replaced function took at worst
  floor: bare ptrace work (stop all, unwind, write, resume); stop-all:
  hotpatch apply --stop-all; gates: hotpatch apply --gates (per-thread checks)
  each row's "revert" line: the same measures over the revert of each way's
  apply (the floor is the apply's: its revert is the same bare work)
  floor/gates: how many times shorter the gates' pause is than the floor's
  (the machine's own noise, a few hundred us on a loaded 2-core VM, bounds it)

  quiet: the same measures with nothing done, over as long as the gates'
  apply took: the floor under which no pause can be told from the noise

                  |          floor        |        stop-all       |         gates         |       floor/gates        |          quiet        |
threads functions |    spin    idle  caller |    spin    idle  caller |    spin    idle  caller |     spin     idle   caller |    spin    idle  caller | gates' way
EOF

mapfile -t symbol_offsets < <(nm --defined-only "$target_binary" |
	awk '$3 ~ /^bench_fn_[0-9][0-9][0-9][0-9]$/ { print $3, $1 }' | sort | awk '{ print $2 }')
for threads in $thread_counts; do
	start_target "$threads" || continue
	for count in $function_counts; do
		one_shape || { notes+=("threads=$threads: the target stopped answering"); break; }
	done
	if ask errors && [[ $reply != 0 ]]; then
		notes+=("threads=$threads: $reply calls returned a wrong result")
	fi
	stop_target
done
print_notes
exit 0
