#!/usr/bin/env bats
# build_variables.bats - `hotpatch build` on fixes that add variables.  A
# new variable has no old state in the running process: the patch holds it,
# initialised as the source says, from when the patch is loaded, and the
# fixed code counts in it across calls; the variables the program already
# has stay the program's own.  A new thread-local variable is refused.
# (Changes to existing data stay refused: see build.bats, data_change.)
#
# testdata/variables/variables.c, built at -O0 and -O2 (variables-O0 ...),
# prints every 5 ms:
#   handle N: handled=N                  (handled: a global it already has)
# and with new_state.diff (a new `static int calls = 0;` and a new global
# `int fixed_hits = 5;`, both incremented by handle):
#   handle N: handled=N calls=C fixed_hits=F    C = 1, 2, 3 ... and F = C + 5

bats_require_minimum_version 1.5.0
load helpers

setup() {
	hp_setup
	VARIABLES=$HP_TESTDATA/variables
	[[ -x $VARIABLES/variables-O0 && -r $VARIABLES/compile-O0 ]] ||
		{ fail "no variables program in $VARIABLES: run 'make testdata'"; return 1; }
	VARIABLE_SOURCE=$HP_SOURCE/testdata/variables
	# apply loads only patches that nobody but root could have written.
	umask 022
	chmod go-w "$BATS_TEST_TMPDIR"
	PATCH_DIR=$BATS_TEST_TMPDIR/patches
	mkdir -m 0755 "$PATCH_DIR"
}

teardown() { hp_teardown; }

# build_variables STATUS LEVEL DIFF: `hotpatch build --json` of
# variables-LEVEL with testdata/variables/DIFF.diff into
# PATCH_DIR/DIFF-LEVEL.so (PATCH), expecting exit STATUS.
build_variables() {
	local status=$1 level=$2 diff=$3

	BINARY=$VARIABLES/variables-$level
	PATCH=$PATCH_DIR/$diff-$level.so
	run "-$status" --separate-stderr hp build --source "$VARIABLE_SOURCE" \
		--diff "$VARIABLE_SOURCE/$diff.diff" --compile "$(<"$VARIABLES/compile-$level")" \
		--binary "$BINARY" -o "$PATCH" --json
}

# assert_counting_after MARK COUNT: the first COUNT handle lines after line
# MARK of the log all carry the new variables, and they count: calls goes
# up by one from line to line, fixed_hits stays calls + 5, and handled (the
# program's own) goes up with them.  The first patched call is calls=1.
assert_counting_after() {
	local mark=$1 count=$2 deadline=$((SECONDS + HP_WAIT_SECONDS)) selected
	local tick handled calls hits previous_calls=0 previous_handled=-1

	while :; do
		selected=$(complete_lines_after "$TARGET_LOG" "$mark" | grep -E '^handle .*calls=' |
			head -n "$count" || true)
		(($(printf '%s' "$selected" | grep -c '^') >= count)) && break
		if ((SECONDS >= deadline)); then
			fail "no $count patched handle lines after line $mark; the log ends with:"$'\n'"$(tail -n 15 "$TARGET_LOG")"
			return 1
		fi
		sleep 0.02
	done
	while IFS= read -r line; do
		[[ $line =~ ^handle\ ([0-9]+):\ handled=([0-9]+)\ calls=([0-9]+)\ fixed_hits=([0-9]+)$ ]] ||
			{ fail "not a patched handle line: $line"; return 1; }
		tick=${BASH_REMATCH[1]} handled=${BASH_REMATCH[2]}
		calls=${BASH_REMATCH[3]} hits=${BASH_REMATCH[4]}
		((calls == previous_calls + 1)) ||
			{ fail "calls went from $previous_calls to $calls:"$'\n'"$selected"; return 1; }
		((hits == calls + 5)) ||
			{ fail "fixed_hits is $hits with calls=$calls (expected calls + 5):"$'\n'"$selected"; return 1; }
		((handled == tick && (previous_handled < 0 || handled == previous_handled + 1))) ||
			{ fail "the program's own handled stopped counting with the ticks:"$'\n'"$selected"; return 1; }
		previous_calls=$calls previous_handled=$handled
	done <<<"$selected"
}

# new_state_at LEVEL: the whole story at one level.
new_state_at() {
	local level=$1 mark

	build_variables 0 "$level" new_state || return 1
	json_is '.ok == true' '[.replace[].function] == ["handle"]' '.new == []' \
		'.references == 1' \
		'[.warnings[] | select(test("^calls \\(variables.c\\) is a new variable"))] | length == 1' \
		'[.warnings[] | select(test("^fixed_hits \\(variables.c\\) is a new variable"))] | length == 1' ||
		return 1
	[[ -f $PATCH ]] || { fail "build says it wrote $PATCH, which does not exist"; return 1; }
	start_executable "$BINARY" || return 1
	wait_for_line "$TARGET_LOG" '^handle [0-9]+: handled=[0-9]+$' >/dev/null || return 1
	mark=$(line_count "$TARGET_LOG")
	run -0 --separate-stderr hp apply --pid "$TARGET_PID" "$PATCH" || return 1
	assert_counting_after "$mark" 20 || return 1
	assert_not_traced "$TARGET_PID"
}

@test "-O0: a new static and a new global used by handle are held by the patch and count across calls" {
	new_state_at O0
}

@test "-O2: a new static and a new global used by handle are held by the patch and count across calls" {
	new_state_at O2
}

@test "a revert takes the new variables away and a new apply starts them afresh from their initial values" {
	local mark

	build_variables 0 O2 new_state
	start_executable "$BINARY"
	mark=$(line_count "$TARGET_LOG")
	run -0 --separate-stderr hp apply --pid "$TARGET_PID" "$PATCH"
	assert_counting_after "$mark" 5
	run -0 --separate-stderr hp revert --pid "$TARGET_PID"
	mark=$(line_count "$TARGET_LOG")
	wait_for_line_after "$TARGET_LOG" "$mark" '^handle [0-9]+: handled=[0-9]+$' >/dev/null
	mark=$(line_count "$TARGET_LOG")
	run -0 --separate-stderr hp apply --pid "$TARGET_PID" "$PATCH"
	assert_counting_after "$mark" 5
}

@test "a new thread-local variable is refused with exit 4 naming it, and no patch is written" {
	build_variables 4 O2 new_thread_local
	json_is '.ok == false' '.exit_code == 4' '.error.function == "per_thread"' \
		'.error.message | test("new thread-local variable .per_thread.")'
	assert_error_line "'per_thread'" "thread-local"
	[[ ! -e $PATCH ]] || { fail "a refused build left $PATCH behind"; return 1; }
}
