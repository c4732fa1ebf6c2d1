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

# Each round starts the program once in every setting, in turn.
results=$("$STARTS" "$count" "HOTPATCH_STORE=$work/none" \
	"HOTPATCH_STORE=$work/none LD_PRELOAD=$LOADER" \
	"HOTPATCH_STORE=$work/one LD_PRELOAD=$LOADER" \
	"HOTPATCH_STORE=$work/fifty LD_PRELOAD=$LOADER" -- "$program" quiet) || exit 1
fitting=$("$STARTS" "$fit_count" "HOTPATCH_STORE=$work/none" \
	"HOTPATCH_STORE=$work/fit LD_PRELOAD=$LOADER" -- "$program" quiet) || exit 1

# row LABEL "CPU WALL" "BASE-CPU BASE-WALL"
row() {
	local cpu wall base_cpu base_wall
	read -r cpu wall <<<"$2"
	read -r base_cpu base_wall <<<"$3"
	printf '  %-34s cpu %6s us %+6d us x%-5s   wall %6s us %+6d us\n' "$1" "$cpu" \
		$((cpu - base_cpu)) "$(awk -v a="$cpu" -v b="$base_cpu" 'BEGIN { printf "%.2f", a / b }')" \
		"$wall" $((wall - base_wall))
}

mapfile -t line <<<"$results"
mapfile -t fit <<<"$fitting"
echo "loader start cost: medians of $count starts of a tiny program, interleaved; the"
echo "processor time it used (user + system) and the wall time, in microseconds, each with"
echo "its difference (and ratio) to the starts without the loader of the same rounds"
row "no loader" "${line[0]}" "${line[0]}"
row "loader, nothing installed" "${line[1]}" "${line[0]}"
row "loader, 1 installed, none fits" "${line[2]}" "${line[0]}"
row "loader, 50 installed, none fits" "${line[3]}" "${line[0]}"
echo "(median of $fit_count rounds)"
row "no loader" "${fit[0]}" "${fit[0]}"
row "loader, 1 installed that fits" "${fit[1]}" "${fit[0]}"
