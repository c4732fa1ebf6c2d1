# helpers.bash - what the bats suites share: where the tool and the built
# testdata are, starting targets in the background with their output in a log
# file, waiting for lines, and checking that a target was left as it was.
# Waits are bounded so that a broken tool cannot hang the suite, but a time
# limit never decides a verdict: every assertion is about what was printed.
#
# Environment (set by `make bats`; the defaults fit a build in ./build):
#   HOTPATCH     the hotpatch binary (the test build, with fault injection)
#   HP_TESTDATA  what `make -C testdata OUT=...` built
#   HP_SOURCE    the repository root

# Debug files come from the tests' own places, never from a debuginfod
# server the machine's profile may name.
unset DEBUGINFOD_URLS

HP_SOURCE=${HP_SOURCE:-$(cd "$BATS_TEST_DIRNAME/.." && pwd)}
HOTPATCH=${HOTPATCH:-$HP_SOURCE/build/test/hotpatch}
HP_TESTDATA=${HP_TESTDATA:-$HP_SOURCE/build/testdata}
HP_PATCHES=${HP_PATCHES:-$HP_TESTDATA/patches}
# Bounds, in seconds: one wait for a line, one run of hotpatch.
HP_WAIT_SECONDS=${HP_WAIT_SECONDS:-20}
HP_COMMAND_SECONDS=${HP_COMMAND_SECONDS:-120}

fail() {
	printf '%s\n' "$*" >&2
	return 1
}

hp_setup() {
	[[ -x $HOTPATCH ]] || { fail "no hotpatch binary at $HOTPATCH: run 'make bats'"; return 1; }
	[[ -x $HP_TESTDATA/targets/simple ]] || { fail "no testdata in $HP_TESTDATA: run 'make testdata'"; return 1; }
	HP_STARTED_PIDS=()
	HP_START_COUNT=0
}

# Kills whatever this test started (only that), and reaps it.
hp_teardown() {
	local pid

	for pid in "${HP_STARTED_PIDS[@]}"; do
		kill -KILL "$pid" 2>/dev/null || true
	done
	for pid in "${HP_STARTED_PIDS[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
}

# hp ARGS... runs hotpatch, bounded so that a hang fails the test (exit 124).
# private_copy FILE COPY: COPY is FILE with a random build-id of its own (in
# $PRIVATE_BUILD_ID), so that no other process on the machine runs it and a
# patch pinned to it fits only what a test starts from it.
private_copy() {
	local offset id
	mkdir -p "${2%/*}"
	cp "$1" "$2"
	# The build-id note's descriptor starts 16 bytes into the section.
	offset=$(readelf -SW "$2" | sed -n 's/.*\.note\.gnu\.build-id *NOTE *[0-9a-f]* *\([0-9a-f]*\) .*/\1/p')
	[[ -n $offset ]] || { fail "no build-id note in $2"; return 1; }
	id=$(head -c 20 /dev/urandom | od -An -tx1 | tr -d ' \n')
	printf "$(sed 's/../\\x&/g' <<<"$id")" |
		dd of="$2" bs=1 seek=$((0x$offset + 16)) conv=notrunc status=none
	readelf -n "$2" | grep -q "Build ID: $id" || { fail "build-id of $2 not rewritten"; return 1; }
	PRIVATE_BUILD_ID=$id
}

hp() {
	timeout -k 5 "$HP_COMMAND_SECONDS" "$HOTPATCH" "$@"
}

# start_target NAME [ARGS...] starts testdata/targets/NAME in the background
# with its output in a log file, and waits for its "ready pid=PID" line.
# Sets TARGET_PID and TARGET_LOG.
start_target() {
	local name=$1
	shift
	start_executable "$HP_TESTDATA/targets/$name" "$@"
}

# start_program NAME [ARGS...]: the same for testdata's multi-file service,
# $HP_TESTDATA/program/NAME (service or service_other).
start_program() {
	local name=$1
	shift
	start_executable "$HP_TESTDATA/program/$name" "$@"
}

# start_executable PATH [ARGS...]: the same for the program at PATH.
start_executable() {
	local path=$1 name=${1##*/} ready pid nice=0
	shift
	TARGET_LOG=$BATS_TEST_TMPDIR/$name.$((++HP_START_COUNT)).log
	# The targets whose threads hammer functions run at the lowest
	# priority: they hold both processors, and hotpatch would wait its turn
	# behind each of them.  They still run on every idle processor and are
	# preempted at any instruction, which is what the tests are about.  The
	# others keep theirs: the tests beside (make bats) would starve them.
	case $name in threads | soak | releases | many) nice=19 ;; esac
	nice -n "${HP_TARGET_NICE:-$nice}" "$path" "$@" </dev/null >"$TARGET_LOG" 2>&1 3>&- &
	TARGET_PID=$!
	HP_STARTED_PIDS+=("$TARGET_PID")
	wait_for_line "$TARGET_LOG" '^ready pid=[0-9]+' || { fail "target $name did not start"; return 1; }
	ready=$(grep -m1 '^ready pid=' "$TARGET_LOG")
	pid=${ready#ready pid=}
	pid=${pid%% *}
	[[ $pid == "$TARGET_PID" ]] || { fail "target $name says pid $pid, started as $TARGET_PID"; return 1; }
}

# start_tool NAME [ARGS...] starts testdata/tools/NAME in the background with
# its output in a log file.  Sets TOOL_PID and TOOL_LOG.
start_tool() {
	local name=$1
	shift
	TOOL_LOG=$BATS_TEST_TMPDIR/$name.$((++HP_START_COUNT)).log
	"$HP_TESTDATA/tools/$name" "$@" </dev/null >"$TOOL_LOG" 2>&1 3>&- &
	TOOL_PID=$!
	HP_STARTED_PIDS+=("$TOOL_PID")
}

# A pid that belonged to a process that has exited and been reaped.
dead_pid() {
	local pid

	sleep 0 &
	pid=$!
	wait "$pid"
	[[ ! -e /proc/$pid ]] || { fail "pid $pid was reused at once"; return 1; }
	echo "$pid"
}

# line_count FILE: the number of complete lines in FILE so far.
line_count() {
	local count
	count=$(wc -l <"$1")
	echo $((count))
}

# complete_lines_after FILE MARK: the complete lines after line MARK.
complete_lines_after() {
	local total
	total=$(line_count "$1")
	awk -v mark="$2" -v total="$total" 'NR > mark && NR <= total' "$1"
}

# wait_for_line FILE REGEX [SECONDS]: waits for a line matching REGEX (ERE).
wait_for_line() {
	wait_for_line_after "$1" 0 "$2" "${3:-$HP_WAIT_SECONDS}"
}

# wait_for_line_after FILE MARK REGEX [SECONDS]: waits for a complete line
# after line MARK matching REGEX; prints the first one.
wait_for_line_after() {
	local file=$1 mark=$2 regex=$3 seconds=${4:-$HP_WAIT_SECONDS}
	local deadline=$((SECONDS + seconds)) found

	while :; do
		found=$(complete_lines_after "$file" "$mark" | grep -E -m1 -- "$regex" || true)
		if [[ -n $found ]]; then
			printf '%s\n' "$found"
			return 0
		fi
		if ((SECONDS >= deadline)); then
			printf 'no line matching /%s/ after line %s of %s within %ss; it ends with:\n' \
				"$regex" "$mark" "$file" "$seconds" >&2
			tail -n 15 "$file" >&2
			return 1
		fi
		sleep 0.02
	done
}

# Lines "NAME N -> R" from stdin whose R is not what RELATION says: "*K"
# means R = N * K, "+K" means R = N + K.
_hp_results_not() {
	awk -v name="$1" -v relation="$2" '
		$1 == name && $3 == "->" && NF == 4 {
			n = $2 + 0; r = $4 + 0; k = substr(relation, 2) + 0
			want = substr(relation, 1, 1) == "*" ? n * k : n + k
			if (r != want) print
		}'
}

# Lines "NAME N -> R" from stdin whose R is what RELATION says.
_hp_results_are() {
	awk -v name="$1" -v relation="$2" '
		$1 == name && $3 == "->" && NF == 4 {
			n = $2 + 0; r = $4 + 0; k = substr(relation, 2) + 0
			want = substr(relation, 1, 1) == "*" ? n * k : n + k
			if (r == want) print
		}'
}

# wait_for_result LOG MARK NAME RELATION: waits for a line "NAME N -> R" after
# line MARK with R as RELATION says ("*3": R = 3N, "+70": R = N + 70).
wait_for_result() {
	local log=$1 mark=$2 name=$3 relation=$4
	local deadline=$((SECONDS + HP_WAIT_SECONDS))

	while :; do
		if [[ -n $(complete_lines_after "$log" "$mark" | _hp_results_are "$name" "$relation") ]]; then
			return 0
		fi
		if ((SECONDS >= deadline)); then
			printf 'no "%s N -> R" line with R = N%s after line %s of %s; it ends with:\n' \
				"$name" "$relation" "$mark" "$log" >&2
			tail -n 15 "$log" >&2
			return 1
		fi
		sleep 0.02
	done
}

# assert_results LOG NAME RELATION [COUNT]: the next COUNT (default 5) lines
# "NAME N -> R" that the target prints all have R as RELATION says.
assert_results() {
	local log=$1 name=$2 relation=$3 count=${4:-5}
	local mark deadline=$((SECONDS + HP_WAIT_SECONDS)) lines wrong

	mark=$(line_count "$log")
	while :; do
		lines=$(complete_lines_after "$log" "$mark" | awk -v name="$name" '$1 == name && $3 == "->"' | head -n "$count")
		if (($(printf '%s' "$lines" | grep -c '^') >= count)); then
			break
		fi
		if ((SECONDS >= deadline)); then
			printf 'the target stopped printing "%s" lines; %s ends with:\n' "$name" "$log" >&2
			tail -n 15 "$log" >&2
			return 1
		fi
		sleep 0.02
	done
	wrong=$(printf '%s\n' "$lines" | _hp_results_not "$name" "$relation")
	[[ -z $wrong ]] || { fail "expected \"$name N -> R\" with R = N$relation, got:"$'\n'"$wrong"; return 1; }
}

# apply_and_wait PID PATCH LOG NAME RELATION: applies PATCH, expecting exit 0,
# then waits until the target prints the new results and checks that it keeps
# printing them (no call runs the old code once the new one has run).
apply_and_wait() {
	local pid=$1 patch=$2 log=$3 name=$4 relation=$5 mark

	mark=$(line_count "$log")
	run -0 --separate-stderr hp apply --pid "$pid" "$patch" || return 1
	wait_for_result "$log" "$mark" "$name" "$relation" || return 1
	assert_results "$log" "$name" "$relation"
}

# hot_line_after LOG MARK REGEX: the first "hot ..." line of the threads
# target after MARK matching REGEX.
hot_line_after() {
	wait_for_line_after "$1" "$2" "^hot threads=.*$3"
}

# assert_not_traced PID: every thread runs, none is traced or stopped.
assert_not_traced() {
	local pid=$1 task state tracer

	[[ -r /proc/$pid/status ]] || { fail "target $pid is gone"; return 1; }
	state=$(awk '/^State:/ {print $2}' "/proc/$pid/status")
	[[ $state != [ZX] ]] || { fail "target $pid has exited (state $state)"; return 1; }
	for task in /proc/"$pid"/task/*; do
		state=$(awk '/^State:/ {print $2}' "$task/status" 2>/dev/null) || continue
		tracer=$(awk '/^TracerPid:/ {print $2}' "$task/status" 2>/dev/null) || continue
		[[ -n $state ]] || continue	# a thread that just ended
		[[ $state != [tT] ]] || { fail "thread ${task##*/} of $pid is stopped (state $state)"; return 1; }
		[[ $tracer == 0 ]] || { fail "thread ${task##*/} of $pid is still traced by $tracer"; return 1; }
	done
}

# assert_target_untouched PID: after a failed command the target runs, is
# neither traced nor stopped, and has no patch mapped.  (The tool's state
# mapping, memfd:hotpatch-state, may stay.)
assert_target_untouched() {
	local pid=$1 mapped

	assert_not_traced "$pid" || return 1
	mapped=$(grep 'memfd:hotpatch:' "/proc/$pid/maps" || true)
	[[ -z $mapped ]] || { fail "a patch is still mapped in $pid:"$'\n'"$mapped"; return 1; }
}

# assert_patch_mapped PID NAME / refute_patch_mapped PID NAME
assert_patch_mapped() {
	grep -q "memfd:hotpatch:$2" "/proc/$1/maps" ||
		{ fail "patch $2 is not mapped in $1: no memfd:hotpatch:$2 in /proc/$1/maps"; return 1; }
}

refute_patch_mapped() {
	local mapped
	mapped=$(grep "memfd:hotpatch:$2" "/proc/$1/maps" || true)
	[[ -z $mapped ]] || { fail "patch $2 is still mapped in $1:"$'\n'"$mapped"; return 1; }
}

# assert_error_line NEEDLE...: stderr of the last `run --separate-stderr` has
# a line containing "hotpatch:" and every NEEDLE.
assert_error_line() {
	local line needle matches

	while IFS= read -r line; do
		[[ $line == *hotpatch:* ]] || continue
		matches=1
		for needle; do
			[[ $line == *"$needle"* ]] || matches=0
		done
		if ((matches)); then
			return 0
		fi
	done <<<"$stderr"
	fail "no line with 'hotpatch:' naming: $*"$'\n'"stderr was:"$'\n'"$stderr"
}

# assert_no_errors LOG: the target printed no "ERROR" line.
assert_no_errors() {
	local errors
	errors=$(grep '^ERROR' "$1" || true)
	[[ -z $errors ]] || { fail "the target reported errors:"$'\n'"$errors"; return 1; }
}

# assert_no_patches PID: `hotpatch list` says nothing is applied.
assert_no_patches() {
	run -0 --separate-stderr hp list --pid "$1" || return 1
	[[ $output == "no patches applied" ]] || { fail "list says:"$'\n'"$output"; return 1; }
}

# wait_threads_sleeping PID COUNT: waits until PID has COUNT threads, all
# asleep (state S), that is, blocked in their system calls.
wait_threads_sleeping() {
	local pid=$1 count=$2 deadline=$((SECONDS + HP_WAIT_SECONDS)) states

	while :; do
		states=$(cat /proc/"$pid"/task/*/stat 2>/dev/null | sed 's/.*) //' | cut -c1 | sort | uniq -c | tr -s ' ')
		if [[ $states == " $count S" ]]; then
			return 0
		fi
		if ((SECONDS >= deadline)); then
			fail "threads of $pid never all slept; states:$states"
			return 1
		fi
		sleep 0.02
	done
}

# json_is FILTER...: each jq FILTER is true of the single JSON document that
# the last `run` printed on stdout.
json_is() {
	local filter documents

	documents=$(jq -s 'length' <<<"$output") || { fail "stdout is not JSON:"$'\n'"$output"; return 1; }
	[[ $documents == 1 ]] || { fail "stdout holds $documents JSON documents, not one:"$'\n'"$output"; return 1; }
	for filter; do
		jq -e "$filter" <<<"$output" >/dev/null ||
			{ fail "JSON does not satisfy $filter:"$'\n'"$output"; return 1; }
	done
}

# The runtime address of FUNCTION in OBJECT (a path) mapped into PID, as 0x...
function_address() {
	local pid=$1 object=$2 function=$3 value base

	value=$(readelf -sW "$object" | awk -v f="$function" '$8 == f && $4 == "FUNC" {print $2; exit}')
	[[ -n $value ]] || { fail "no symbol $function in $object"; return 1; }
	if readelf -hW "$object" | grep -q 'Type:.*EXEC'; then
		base=0
	else
		base=$(awk -v path="$(readlink -f "$object")" '$6 == path && $3 == "00000000" {print $1; exit}' \
			"/proc/$pid/maps")
		base=$((16#${base%%-*}))
	fi
	printf '0x%x\n' $((base + 16#$value))
}

# in_patch_mapping PID NAME ADDRESS: ADDRESS lies in an executable mapping of
# patch NAME.
in_patch_mapping() {
	local pid=$1 name=$2 address=$(($3))

	awk -v name="memfd:hotpatch:$name" '$2 ~ /x/ && index($0, name) {print $1}' "/proc/$pid/maps" |
		while IFS=- read -r start end; do
			if ((address >= 16#$start && address < 16#$end)); then
				echo yes
			fi
		done | grep -q yes
}
