#!/usr/bin/env bash
# run.sh - the figures of `make bench`.  For each thread count and patch size:
# how long `hotpatch apply` takes, how long the target is stopped as hotpatch
# reports it and as a spinning thread inside the target sees it, and the same
# observation for the floor (floor.c: only the ptrace work any tool must do)
# on the same target in the same run; the same two figures for the `hotpatch
# revert` that follows each apply, against the same floor; then what a call
# through a patched function costs.  Medians over RUNS runs.  It only prints:
# no figure fails.
#
#   OUT=build/bench HOTPATCH=build/hotpatch bench/run.sh
#
# Environment: RUNS (5), THREAD_COUNTS ("2 16 128 1024"), FUNCTION_COUNTS
# ("1 100 1000"), CALLS (20000000), HOTPATCH_TIMEOUT (10 seconds).
# OUT holds bench_target, floor and patch_N.so (bench/Makefile builds them).
set -uo pipefail

: "${OUT:?OUT must name the directory bench/Makefile built into}"
: "${HOTPATCH:?HOTPATCH must name the hotpatch binary}"
runs=${RUNS:-5}
thread_counts=${THREAD_COUNTS:-2 16 128 1024}
function_counts=${FUNCTION_COUNTS:-1 100 1000}
calls=${CALLS:-20000000}
timeout=${HOTPATCH_TIMEOUT:-10}
target_binary=$(readlink -f "$OUT/bench_target")
floor_binary=$OUT/floor
# floor rewrites as many bytes per function as hotpatch's jump takes: the
# indirect jump it writes when the patch is out of the direct jump's reach
# (x86-64: 6 bytes, out of rel32's; arm64: ldr x16 + br x16, 8 bytes).
case $(uname -m) in
aarch64) jump_size=8 ;;
*) jump_size=6 ;;
esac

work=$(mktemp -d "${TMPDIR:-/tmp}/hotpatch-bench.XXXXXX") || exit 1
target_pid=
notes=()      # failures and oddities, printed after the table
call_lines=() # the call-cost lines, printed after the table

# shellcheck source=bench/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

note() { notes+=("$*"); }

# median: the middle of the numbers on stdin (mean of the two middle ones for
# an even count), or "-" when there are none.
# ask COMMAND: sends one command to the target; its one-line answer goes to
# $reply.  Fails when the target does not answer within a minute.
ask() {
	reply=
	printf '%s\n' "$1" >&"${TARGET[1]}" || return 1
	IFS= read -r -t 60 reply <&"${TARGET[0]}" || return 1
	[[ $reply != error* ]]
}

start_target() {
	local threads=$1

	coproc TARGET { exec "$target_binary" "$threads"; }
	# shellcheck disable=SC2153 # TARGET_PID is set by coproc
	target_pid=$TARGET_PID
	if ! IFS= read -r -t 120 reply <&"${TARGET[0]}" || [[ $reply != ready ]]; then
		note "threads=$threads: the target did not start (${reply:-no answer})"
		stop_target
		return 1
	fi
	sleep 0.3 # let thread start-up settle
}

# apply_patch COUNT: `hotpatch apply --json`; sets apply_json and apply_exit.
apply_patch() {
	apply_json=$("$HOTPATCH" apply --json --timeout "$timeout" --pid "$target_pid" \
		"$OUT/patch_$1.so" 2>"$work/stderr")
	apply_exit=$?
}

# revert_patch: takes the newest patch back out; sets revert_json, fails
# with a note.
revert_patch() {
	local status message

	revert_json=$("$HOTPATCH" revert --json --timeout "$timeout" --pid "$target_pid" \
		2>"$work/stderr")
	status=$?
	((status == 0)) && return 0
	message=$(jq -r '.error.message // empty' <<<"$revert_json" 2>/dev/null)
	note "threads=$threads: hotpatch revert failed (exit $status): ${message:-$(head -1 "$work/stderr")}"
	return 1
}

failure_message() {
	local message

	message=$(jq -r '.error.message // empty' <<<"$apply_json" 2>/dev/null)
	[[ -n $message ]] || message=$(head -1 "$work/stderr")
	printf '%s' "${message:-no message}"
}

# measure_calls: RUNS times `calls $calls`; sets calls_median, the median
# ns per call.  (Not in a $(...) subshell: the coprocess is talked to here.)
measure_calls() {
	local values=() run

	for ((run = 0; run < runs; run++)); do
		ask "calls $calls" || return 1
		values+=("$reply")
	done
	calls_median=$(printf '%s\n' "${values[@]}" | median)
}

call_cost() {
	local unpatched patched

	measure_calls || { note "threads=$threads: calls got no answer"; return 1; }
	unpatched=$calls_median
	apply_patch 1
	if ((apply_exit != 0)); then
		note "threads=$threads: call cost: hotpatch apply patch_1 failed (exit $apply_exit): $(failure_message)"
		call_lines+=("$(printf 'calls threads=%-5s unpatched %.3f ns  patched -  (apply failed)' \
			"$threads" "$unpatched")")
		return 0
	fi
	measure_calls || { note "threads=$threads: calls got no answer"; return 1; }
	patched=$calls_median
	revert_patch || return 1
	call_lines+=("$(awk -v t="$threads" -v u="$unpatched" -v p="$patched" 'BEGIN {
		printf "calls threads=%-5s unpatched %.3f ns  patched %.3f ns  difference %+.3f ns per call", t, u, p, p - u }')")
}

# one_shape COUNT: RUNS times floor, apply, revert and idle window; prints
# the row.  Fails only when the target can no longer be trusted.
one_shape() {
	local count=$1 sites=$work/sites_$1 run failed=0
	local applies=() blackouts=() observed=() floors=() floor_selves=() idles=() attempts=()
	local revert_blackouts=() revert_observed=()
	local line start end wall fields elapsed blackout tries seen

	write_sites "$count" "$sites" || { note "threads=$threads: cannot find the target's load address"; return 1; }
	for ((run = 0; run < runs; run++)); do
		# The floor, observed by the spinner and by itself.
		ask reset || return 1
		if line=$("$floor_binary" "$target_pid" -f "$sites" 2>"$work/stderr"); then
			ask gap || return 1
			floors+=("$reply")
			floor_selves+=("$(sed -n 's/.*elapsed_us=\([0-9.]*\).*/\1/p' <<<"$line")")
			if [[ $line != *" incomplete=0 missed_reads=0 "* ]]; then
				note "threads=$threads functions=$count run $run: floor: $line"
			fi
		else
			note "threads=$threads functions=$count run $run: floor failed: $(head -1 "$work/stderr")"
			ask gap || return 1
		fi

		# hotpatch, observed by the spinner and by itself.
		ask reset || return 1
		start=$EPOCHREALTIME
		apply_patch "$count"
		end=$EPOCHREALTIME
		ask gap || return 1
		if ((apply_exit == 0)); then
			observed+=("$reply")
			fields=$(jq -r '[.elapsed_ms, .blackout_us, .attempts, .threads] | @tsv' <<<"$apply_json")
			read -r elapsed blackout tries seen <<<"$fields"
			applies+=("$elapsed") blackouts+=("$blackout") attempts+=("$tries")
			# bench_target N: N threads, plus the idle one and the caller
			# that measure pauses (pauses.sh).
			if [[ $seen != "$((threads + 2))" ]]; then
				note "threads=$threads functions=$count run $run: hotpatch saw $seen threads"
			fi
			# The revert, observed the same way as the apply.
			ask reset || return 1
			revert_patch || return 1
			ask gap || return 1
			revert_observed+=("$reply")
			revert_blackouts+=("$(jq -r '.blackout_us' <<<"$revert_json")")
		else
			failed=$((failed + 1))
			note "threads=$threads functions=$count run $run: hotpatch apply failed (exit $apply_exit): $(failure_message)"
		fi

		# Noise reference: the spinner, idle, for as long as the apply took.
		ask reset || return 1
		wall=$(awk -v s="$start" -v e="$end" 'BEGIN { printf "%.6f", e - s }')
		sleep "$wall"
		ask gap || return 1
		idles+=("$reply")
	done

	local apply_ms blackout_us observed_us floor_us floor_self_us idle_us tries_median
	local revert_blackout_us revert_observed_us
	apply_ms=$(printf '%s\n' "${applies[@]}" | median)
	blackout_us=$(printf '%s\n' "${blackouts[@]}" | median)
	observed_us=$(printf '%s\n' "${observed[@]}" | median)
	floor_us=$(printf '%s\n' "${floors[@]}" | median)
	floor_self_us=$(printf '%s\n' "${floor_selves[@]}" | median)
	idle_us=$(printf '%s\n' "${idles[@]}" | median)
	tries_median=$(printf '%s\n' "${attempts[@]}" | median)
	revert_blackout_us=$(printf '%s\n' "${revert_blackouts[@]}" | median)
	revert_observed_us=$(printf '%s\n' "${revert_observed[@]}" | median)
	awk -v t="$threads" -v f="$count" -v a="$apply_ms" -v b="$blackout_us" -v o="$observed_us" \
		-v fl="$floor_us" -v fs="$floor_self_us" -v i="$idle_us" -v at="$tries_median" \
		-v rb="$revert_blackout_us" -v ro="$revert_observed_us" \
		-v failed="$failed" -v runs="$runs" '
		function num(v, scale, format) { return v == "-" ? "-" : sprintf(format, v / scale) }
		function ratio_of(v) { return (v == "-" || fl == "-" || fl == 0) ? "-" : sprintf("%.1f", v / fl) }
		BEGIN {
			printf "%7s %9s %9s %20s %20s %9s %13s %6s %11s %8s %6s %18s %18s %12s\n", t, f,
				num(a, 1, "%.2f"), num(b, 1, "%.0f"), num(o, 1000, "%.0f"),
				num(fl, 1000, "%.0f"), num(fs, 1, "%.0f"), ratio_of(o),
				num(i, 1000, "%.0f"), num(at, 1, "%g"), failed "/" runs,
				num(rb, 1, "%.0f"), num(ro, 1000, "%.0f"), ratio_of(ro)
		}'
}

cat <<EOF
hotpatch bench: medians over $runs runs
  apply_ms              hotpatch apply's own wall time (elapsed_ms)
  hotpatch_blackout_us  the stop hotpatch reports (blackout_us)
  observed_blackout_us  the longest pause the target's spinning thread saw during the apply
  floor_us              the same observation while floor did the bare ptrace work
                        (stop every thread, unwind every stack, write, resume)
  floor_self_us         floor's own timing of that work
  ratio                 observed_blackout_us / floor_us
  idle_gap_us           the spinner's longest pause over an idle window as long
                        as the apply: the machine's noise
  attempts              hotpatch's stop-and-check attempts;  failed: failed applies / runs
  revert_blackout_us    the stop the hotpatch revert after each apply reports
  revert_observed_us    the longest pause the spinner saw during that revert
  revert_ratio          revert_observed_us / floor_us (the same floor as ratio)
The spinner is one thread (the second): the pause it sees is its own, from
its stop to its resume, not necessarily the whole of the stopping.

threads functions  apply_ms hotpatch_blackout_us observed_blackout_us  floor_us floor_self_us  ratio idle_gap_us attempts failed revert_blackout_us revert_observed_us revert_ratio
EOF

mapfile -t symbol_offsets < <(nm --defined-only "$target_binary" |
	awk '$3 ~ /^bench_fn_[0-9][0-9][0-9][0-9]$/ { print $3, $1 }' | sort | awk '{ print $2 }')
if ((${#symbol_offsets[@]} != 1000)); then
	echo "run.sh: expected 1000 bench_fn_NNNN symbols in $target_binary, found ${#symbol_offsets[@]}" >&2
	exit 1
fi

for threads in $thread_counts; do
	start_target "$threads" || continue
	if ! call_cost; then
		note "threads=$threads: skipped: the target stopped answering or could not be restored"
		stop_target
		continue
	fi
	for count in $function_counts; do
		if ! one_shape "$count"; then
			note "threads=$threads: skipped the rest: the target stopped answering or could not be restored"
			break
		fi
	done
	if ask errors && [[ $reply != 0 ]]; then
		note "threads=$threads: $reply calls returned a wrong result"
	fi
	stop_target
done

echo
printf '%s\n' "${call_lines[@]}"
print_notes
exit 0
