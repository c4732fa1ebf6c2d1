#!/usr/bin/env bash
# soak.sh - apply and revert a patch over and over on a busy target while a
# signal flood goes on, killing hotpatch with SIGKILL at random instants in
# between; then check that the target is alive, untraced, its own checks
# clean, every signal counted once, and its state exactly "patched" or "not
# patched" as hotpatch list says.  Short in `make check`, long with `make soak`.
#
#   HOTPATCH=... HP_TESTDATA=... [HP_PATCHES=...] SOAK_CYCLES=200 SOAK_KILLS=40 tests/soak/soak.sh
set -uo pipefail

hotpatch=${HOTPATCH:?HOTPATCH names the hotpatch binary}
testdata=${HP_TESTDATA:?HP_TESTDATA names the built testdata}
cycles=${SOAK_CYCLES:-200}
kills=${SOAK_KILLS:-40}
patch=${HP_PATCHES:-$testdata/patches}/hot_v2.so
work=$(mktemp -d "${TMPDIR:-/tmp}/hotpatch-soak.XXXXXX") || exit 1
log=$work/target.log
target_pid='' sender_pid=''

cleanup() {
	[[ -n $sender_pid ]] && kill "$sender_pid" 2>/dev/null
	[[ -n $target_pid ]] && kill -KILL "$target_pid" 2>/dev/null
	wait 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

fail() {
	echo "soak: FAILED: $*" >&2
	grep '^ERROR' "$log" | head -n 5 >&2
	tail -n 5 "$log" >&2
	exit 1
}

alive() { kill -0 "$target_pid" 2>/dev/null && ! grep -q '^State:.*[ZX]' "/proc/$target_pid/status"; }

# The last report line after asking for a fresh one.
report() {
	local before
	before=$(grep -c '^soak ' "$log")
	kill -USR2 "$target_pid"
	for _ in $(seq 100); do
		(($(grep -c '^soak ' "$log") > before)) && break
		sleep 0.02
	done
	grep '^soak ' "$log" | tail -n 1
}

field() { sed -n "s/.* $1=\([0-9]*\).*/\1/p" <<<"$2"; }

# What the target holds: mappings, those that hotpatch makes (patch objects,
# the state, anonymous code pages: stub and trampolines), open descriptors,
# resident KiB.
footprint() {
	local maps=/proc/$target_pid/maps
	echo "$(wc -l <"$maps") $(awk '/hotpatch/ || ($2 ~ /x/ && NF == 5)' "$maps" | wc -l)" \
		"$(find "/proc/$target_pid/fd" -mindepth 1 -maxdepth 1 | wc -l)" \
		"$(awk '/^VmRSS:/ {print $2}' "/proc/$target_pid/status")"
}

# The target's own alarm: long enough for the cycles here, longer where
# the caller says so (an emulated processor).
lifetime=$((cycles / 2 + 600))
((${HP_TARGET_LIFETIME:-0} > lifetime)) && lifetime=$HP_TARGET_LIFETIME
HP_TARGET_LIFETIME=$lifetime "$testdata/targets/soak" </dev/null >"$log" 2>&1 &
target_pid=$!
for _ in $(seq 200); do grep -q '^ready' "$log" && break; sleep 0.02; done
grep -q '^ready' "$log" || fail "the target did not start"
"$testdata/tools/signal_sender" "$target_pid" "$work/stop" >"$work/sender.log" 2>&1 &
sender_pid=$!

# must COMMAND ARGS...: hotpatch COMMAND, which must succeed.  Exit 3
# (threads in the way until the timeout) is tried again, up to 5 times: on
# arm64 a thread in a leaf function is waited for rather than moved, and
# the soak's workers spend their lives in one.
must() {
	local try status
	for ((try = 1; try <= 5; try++)); do
		"$hotpatch" "$@" >/dev/null 2>"$work/err"
		status=$?
		((status == 3)) || return "$status"
	done
	return 3
}

# The footprint to return to: after one clean apply and revert (which takes
# the state mapping and stub page out again).
must apply --pid "$target_pid" "$patch" || fail "first apply: $(cat "$work/err")"
must revert --pid "$target_pid" || fail "first revert: $(cat "$work/err")"
read -r start_maps start_ours start_fds start_rss < <(footprint)
cp "/proc/$target_pid/maps" "$work/maps.start"

applied=0 killed=0 busy=0
for ((cycle = 1; cycle <= cycles; cycle++)); do
	if ((RANDOM % cycles < kills)); then
		# Kill a command at a random instant of its run: 0 to 40 ms.
		if ((applied)); then command=revert; else command=apply; fi
		if [[ $command == apply ]]; then
			"$hotpatch" apply --pid "$target_pid" "$patch" >/dev/null 2>&1 &
		else
			"$hotpatch" revert --pid "$target_pid" >/dev/null 2>&1 &
		fi
		victim=$!
		sleep "0.0$(printf '%02d' $((RANDOM % 40)))"
		kill -KILL "$victim" 2>/dev/null && killed=$((killed + 1))
		wait "$victim" 2>/dev/null
		alive || fail "the target died after hotpatch $command was killed (cycle $cycle)"
		# Whatever state that left, list tells it and revert repairs it;
		# anything else the next command takes back.
		if "$hotpatch" list --pid "$target_pid" | grep -q '(applied\|(incomplete'; then
			must revert --pid "$target_pid" ||
				fail "revert after a kill: $(cat "$work/err")"
		fi
		applied=0
		continue
	fi
	if ((applied)); then
		"$hotpatch" revert --pid "$target_pid" >/dev/null 2>"$work/err"
	else
		"$hotpatch" apply --pid "$target_pid" "$patch" >/dev/null 2>"$work/err"
	fi
	case $? in
	0) applied=$((1 - applied)) ;;
	3) busy=$((busy + 1)) ;;
	*) fail "cycle $cycle: $(cat "$work/err")" ;;
	esac
	alive || fail "the target died at cycle $cycle"
done

touch "$work/stop"
wait "$sender_pid" || fail "the signal sender failed: $(cat "$work/sender.log")"
sender_pid=''
sent=$(tail -n 1 "$work/sender.log")
sleep 0.5
line=$(report)
[[ -n $line ]] || fail "no report from the target"
[[ $(field bad "$line") == 0 ]] || fail "the target's own checks failed: $line"
# Queued real-time signals arrive each exactly once; SIGUSR1, a standard
# signal, may merge with one already pending, so it can only count fewer.
for counter in rt sum; do
	[[ $(field "$counter" "$line") == $(field "$counter" " $sent") ]] ||
		fail "signals: the target counted $line, the sender $sent"
done
(($(field usr1 "$line") <= $(field usr1 " $sent"))) ||
	fail "signals: the target counted more SIGUSR1 than were sent: $line, $sent"
grep -q '^TracerPid:[[:space:]]*0$' "/proc/$target_pid/status" || fail "the target is still traced"
listing=$("$hotpatch" list --pid "$target_pid")
if ((applied)); then
	grep -q '(applied' <<<"$listing" || fail "list lost the patch: $listing"
	[[ $(field v2 "$line") == 4 ]] || fail "patched, but not every worker runs it: $line"
else
	grep -q 'no patches applied' <<<"$listing" || fail "list shows a patch: $listing"
	[[ $(field v1 "$line") == 4 ]] || fail "not patched, but a worker runs the patch: $line"
fi
# Nothing piles up: unpatched again, after one more apply and revert that
# take back whatever the last kills left, the footprint is where it started
# (RSS within 8 MiB); then patched as before.
if ((applied)); then
	must revert --pid "$target_pid" || fail "last revert: $(cat "$work/err")"
fi
must apply --pid "$target_pid" "$patch" || fail "last apply: $(cat "$work/err")"
must revert --pid "$target_pid" || fail "last revert: $(cat "$work/err")"
read -r end_maps end_ours end_fds end_rss < <(footprint)
leftovers=$("$hotpatch" list --pid "$target_pid" | grep -c '^leftover' || true)
# Mappings of ours and descriptors exactly as before; a few more mappings in
# all are glibc's per-thread malloc arenas (two each, at most eight per
# core), made once by dlopen on a thread that had none.
((end_ours == start_ours && end_fds == start_fds && end_maps - start_maps <= 32 &&
	end_rss - start_rss < 8192 && leftovers == 0)) ||
	fail "the target kept what killed commands left: mappings $start_maps -> $end_maps (of hotpatch's $start_ours -> $end_ours), descriptors $start_fds -> $end_fds, RSS $start_rss -> $end_rss KiB, $leftovers leftovers"$'\n'"$(diff "$work/maps.start" "/proc/$target_pid/maps")"$'\n'"$("$hotpatch" list --pid "$target_pid" --json)"
if ((applied)); then
	must apply --pid "$target_pid" "$patch" || fail "last apply: $(cat "$work/err")"
	sleep 0.2
fi
echo "soak: footprint mappings $start_maps -> $end_maps (of hotpatch's $start_ours -> $end_ours), descriptors $start_fds -> $end_fds, RSS $start_rss -> $end_rss KiB"
echo "soak: $cycles cycles, $killed hotpatch processes killed with SIGKILL, $busy busy; target alive, untraced, bad=0, signals $sent"
