# common.sh - sourced by run.sh, pauses.sh and cumulative.sh: stopping their
# bench_target (a coprocess, TARGET, whose pid is target_pid) and removing
# their work directory ($work) however they end, and the median of numbers
# on standard input ("-" for none).

stop_target() {
	[[ -n $target_pid ]] || return 0
	if [[ -n ${TARGET[1]-} ]]; then
		{ printf 'quit\n' >&"${TARGET[1]}"; } 2>/dev/null
	fi
	for _ in 1 2 3 4 5 6 7 8 9 10; do
		kill -0 "$target_pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$target_pid" 2>/dev/null
	wait "$target_pid" 2>/dev/null
	target_pid=
}

# shellcheck disable=SC2317 # called by the trap
cleanup() {
	stop_target
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

median() {
	sort -g | awk 'NF { v[++n] = $1 }
		END { if (n == 0) print "-"; else if (n % 2) print v[(n + 1) / 2];
		      else print (v[n / 2] + v[n / 2 + 1]) / 2 }'
}
