#!/usr/bin/env bash
# loader.sh - what the preloaded loader costs a process at start: the median
# start-to-exit time of a tiny program (testdata's once, "quiet") without
# the loader, and with it over a store holding nothing, 1 and 50 installed
# patches that do not fit it, and 1 that does (applied at every start).
# Each figure is also given as the difference to the run without the
# loader, measured in the same run.  It only prints: no figure fails.
#
#   HOTPATCH=build/hotpatch HP_TESTDATA=build/testdata LOADER=build/lib/hotpatch/libhotpatch-loader.so \
#     STARTS=build/bench/starts HOTPATCH_INCLUDE=lib/include bench/loader.sh
#
# Environment: COUNT (starts per figure, 1000), FIT_COUNT (starts with a
# fitting patch, 200).
set -uo pipefail

: "${HOTPATCH:?}" "${HP_TESTDATA:?}" "${LOADER:?}" "${STARTS:?}" "${HOTPATCH_INCLUDE:?}"
count=${COUNT:-1000}
fit_count=${FIT_COUNT:-200}
work=$(mktemp -d "${TMPDIR:-/tmp}/hotpatch-loader.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT TERM
chmod 0755 "$work"
program=$work/once
cp "$HP_TESTDATA/targets/once" "$program"
id=$(readelf -n "$program" | sed -n 's/.*Build ID: //p')

# patch NAME PIN: compute -> 13N, pinned to PIN.
patch() {
	cat >"$work/$1.c" <<-EOF
		#include <hotpatch.h>
		static int fixed(int value) { return 13 * value; }
		HOTPATCH_REPLACE(compute, fixed);
		HOTPATCH_NAME("$1");
		HOTPATCH_BUILD_ID("", "$2");
	EOF
	cc -O2 -fPIC -shared -I"$HOTPATCH_INCLUDE" -o "$work/$1.so" "$work/$1.c" && chmod 0644 "$work/$1.so"
}

# install STORE NAME PIN
install_into() {
	patch "$2" "$3" && HOTPATCH_STORE=$1 "$HOTPATCH" install "$work/$2.so" >/dev/null
}

random_id() { head -c 20 /dev/urandom | od -An -tx1 | tr -d ' \n'; }

mkdir -p "$work/none"
install_into "$work/one" other_1 "$(random_id)" || exit 1
for i in $(seq 1 50); do
	install_into "$work/fifty" "other_$i" "$(random_id)" || exit 1
done
install_into "$work/fit" once_fix "$id" || exit 1

# measure LABEL STORE COUNT [LD_PRELOAD]
measure() {
	env HOTPATCH_STORE="$2" ${4:+LD_PRELOAD="$4"} "$STARTS" "$3" "$program" quiet
}

read -r base base_p90 < <(measure "" "$work/none" "$count") || exit 1
echo "loader start cost (median of $count starts of a tiny program, microseconds; vs no loader in the same run)"
printf '  %-34s %6s us  (p90 %s)\n' "no loader" "$base" "$base_p90"
for store in none one fifty fit; do
	n=$count label=""
	case $store in
	none) label="loader, nothing installed" ;;
	one) label="loader, 1 installed, none fits" ;;
	fifty) label="loader, 50 installed, none fits" ;;
	fit) label="loader, 1 installed that fits" n=$fit_count ;;
	esac
	read -r median p90 < <(measure "$label" "$work/$store" "$n" "$LOADER") || exit 1
	printf '  %-34s %6s us  (p90 %s)  %+d us  x%s\n' "$label" "$median" "$p90" \
		$((median - base)) "$(awk -v a="$median" -v b="$base" 'BEGIN { printf "%.2f", a / b }')"
done
