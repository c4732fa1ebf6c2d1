# thread_helpers.bash - reading what each thread of a counting target
# printed ("thread T: WORD A/B/..." lines), for tls.bats and build_tls.bats.

# thread_values LOG MARK THREAD COUNT FIELD: the first COUNT values (the
# FIELD-th number after "thread THREAD: ") printed after line MARK.
thread_values() {
	local log=$1 mark=$2 thread=$3 count=$4 field=$5 deadline=$((SECONDS + HP_WAIT_SECONDS)) values

	while :; do
		values=$(complete_lines_after "$log" "$mark" | grep "^thread $thread: " |
			sed -E 's/^thread [0-9]+: [a-z]+ //' | tr '/' ' ' | awk -v f="$field" '{print $f}' |
			head -n "$count")
		(($(printf '%s' "$values" | grep -c '^') >= count)) && break
		((SECONDS < deadline)) || { echo "no $count lines of thread $thread after line $mark" >&2; return 1; }
		sleep 0.02
	done
	printf '%s\n' "$values"
}

# assert_steps VALUES STEP [FIRST]: each value is the one before plus STEP
# (and the first is FIRST, when given).
assert_steps() {
	local values=$1 step=$2 first=${3:-} previous=""

	while read -r value; do
		if [[ -z $previous && -n $first ]]; then
			((value == first)) || { fail "the first value is $value, expected $first:"$'\n'"$values"; return 1; }
		elif [[ -n $previous ]]; then
			((value == previous + step)) ||
				{ fail "values do not go up by $step:"$'\n'"$values"; return 1; }
		fi
		previous=$value
	done <<<"$values"
}
