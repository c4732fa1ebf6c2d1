# common.sh - sourced by run.sh, pauses.sh and cumulative.sh: stopping their
# bench_target (a coprocess, TARGET, whose pid is target_pid) and removing
# their work directory ($work) however they end, the median of numbers on
# standard input ("-" for none), the sites floor rewrites, and the notes
# (failures and oddities, in the array notes) printed after the figures.

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

# write_sites COUNT FILE: the run-time address of bench_fn_0000 .. COUNT-1 and
# the jump size ($jump_size), one per line, as floor reads them.  The target
# ($target_binary) is PIE: add the load address of its first mapping to the
# offsets nm printed ($symbol_offsets).
write_sites() {
	local count=$1 file=$2 base i

	base=$(awk -v path="$target_binary" '$6 == path && $3 ~ /^0+$/ { sub(/-.*/, "", $1); print $1; exit }' \
		"/proc/$target_pid/maps")
	[[ -n $base ]] || return 1
	for ((i = 0; i < count; i++)); do
		printf '%x %d\n' $((0x$base + 0x${symbol_offsets[i]})) "$jump_size"
	done >"$file"
}

print_notes() {
	((${#notes[@]})) || return 0
	echo
	echo "notes:"
	printf '  %s\n' "${notes[@]}"
}
