#!/usr/bin/env bats
# build_literals.bats - `hotpatch build` on fixes that change only the text
# of a string literal, at every optimisation level.  At -O0 every literal of
# a file shares one plain .rodata, so a longer text moves every literal after
# it: build must compare what each reference means (the literal's bytes), not
# where it is, and replace exactly the function whose literal changed, leave
# the others (main among them) alone, and not take data that points at a
# moved literal for changed data.  Each test builds the patch, checks what
# build reported (--json), applies it to the running program and watches
# only the changed function's output change.
#
# testdata/literals/literals.c, built at each level (literals-O0 ...), prints
# every 5 ms:
#   greeting N: hello                  (greeting.diff: "hello, patched world")
#   farewell N: goodbye
#   message N: message: as shipped     (msg, a static const char *; message.diff)
#   count N: I                         for I from N % 3 to 2

bats_require_minimum_version 1.5.0
load helpers

setup() {
	hp_setup
	LITERALS=$HP_TESTDATA/literals
	[[ -x $LITERALS/literals-O0 && -r $LITERALS/compile-O0 ]] ||
		{ fail "no literals program in $LITERALS: run 'make testdata'"; return 1; }
	LITERAL_SOURCE=$HP_SOURCE/testdata/literals
	# apply loads only patches that nobody but root could have written.
	umask 022
	chmod go-w "$BATS_TEST_TMPDIR"
	PATCH_DIR=$BATS_TEST_TMPDIR/patches
	mkdir -m 0755 "$PATCH_DIR"
}

teardown() { hp_teardown; }

# build_literal STATUS LEVEL DIFF: `hotpatch build --json` of literals-LEVEL
# with testdata/literals/DIFF.diff and the command it was built with, into
# PATCH_DIR/DIFF-LEVEL.so (PATCH), expecting exit STATUS.
build_literal() {
	local status=$1 level=$2 diff=$3

	BINARY=$LITERALS/literals-$level
	PATCH=$PATCH_DIR/$diff-$level.so
	run "-$status" --separate-stderr hp build --source "$LITERAL_SOURCE" \
		--diff "$LITERAL_SOURCE/$diff.diff" --compile "$(<"$LITERALS/compile-$level")" \
		--binary "$BINARY" -o "$PATCH" --json
}

# assert_replaces_only FUNCTION: the last build succeeded, replacing
# FUNCTION alone (no other function, nothing new), and wrote PATCH.
assert_replaces_only() {
	json_is '.ok == true' '.exit_code == 0' "[.replace[].function] == [\"$1\"]" \
		'.new == []' '.functions == 1' || return 1
	[[ -f $PATCH ]] || { fail "build says it wrote $PATCH, which does not exist"; return 1; }
}

# assert_lines_after LOG MARK SELECT EXPECT [COUNT]: the first COUNT
# (default 5) lines after line MARK of LOG that match the ERE SELECT all
# match the ERE EXPECT.
assert_lines_after() {
	local log=$1 mark=$2 select=$3 expect=$4 count=${5:-5}
	local deadline=$((SECONDS + HP_WAIT_SECONDS)) selected wrong

	while :; do
		selected=$(complete_lines_after "$log" "$mark" | grep -E -- "$select" | head -n "$count" || true)
		(($(printf '%s' "$selected" | grep -c '^') >= count)) && break
		if ((SECONDS >= deadline)); then
			fail "no $count lines matching /$select/ after line $mark of $log; it ends with:"$'\n'"$(tail -n 15 "$log")"
			return 1
		fi
		sleep 0.02
	done
	wrong=$(grep -Ev -- "$expect" <<<"$selected" || true)
	[[ -z $wrong ]] || { fail "expected lines matching /$expect/, got:"$'\n'"$wrong"; return 1; }
}

# The functions the diffs never touch print as they always did.
assert_untouched_after() {
	assert_lines_after "$TARGET_LOG" "$1" '^farewell ' '^farewell [0-9]+: goodbye$' || return 1
	assert_lines_after "$TARGET_LOG" "$1" '^count ' '^count [0-9]+: [0-2]$' || return 1
	assert_lines_after "$TARGET_LOG" "$1" '^message ' '^message [0-9]+: message: as shipped$'
}

# literal_greeting_at LEVEL: the whole story at one level.
literal_greeting_at() {
	local level=$1 mark

	build_literal 0 "$level" greeting || return 1
	assert_replaces_only print_greeting || return 1
	start_executable "$BINARY" || return 1
	assert_untouched_after 0 || return 1
	assert_lines_after "$TARGET_LOG" 0 '^greeting ' '^greeting [0-9]+: hello$' || return 1
	mark=$(line_count "$TARGET_LOG")
	run -0 --separate-stderr hp apply --pid "$TARGET_PID" "$PATCH" || return 1
	wait_for_line_after "$TARGET_LOG" "$mark" '^greeting [0-9]+: hello, patched world$' >/dev/null || return 1
	mark=$(line_count "$TARGET_LOG")
	assert_lines_after "$TARGET_LOG" "$mark" '^greeting ' '^greeting [0-9]+: hello, patched world$' || return 1
	assert_untouched_after "$mark" || return 1
	assert_not_traced "$TARGET_PID"
}

@test "-O0: a longer literal in print_greeting replaces print_greeting alone, and the program prints it" {
	literal_greeting_at O0
}

@test "-O1: a longer literal in print_greeting replaces print_greeting alone, and the program prints it" {
	literal_greeting_at O1
}

@test "-O2: a longer literal in print_greeting replaces print_greeting alone, and the program prints it" {
	literal_greeting_at O2
}

@test "-O3: a longer literal in print_greeting replaces print_greeting alone, and the program prints it" {
	literal_greeting_at O3
}

@test "-Os: a longer literal in print_greeting replaces print_greeting alone, and the program prints it" {
	literal_greeting_at Os
}

@test "-O0: a new text for the literal msg points at is a changed initial value of msg, refused" {
	# At -O0 msg is data in the binary: the running program's msg keeps
	# pointing at the old text, whatever a patch of code says.
	readelf -sW "$LITERALS/literals-O0" | grep -qE ' OBJECT +LOCAL +DEFAULT +[0-9]+ msg$' ||
		{ fail "literals-O0 has no variable msg"; return 1; }
	build_literal 4 O0 message
	json_is '.ok == false' '.exit_code == 4' '.error.function == "msg"' \
		'.error.message | test("initial value of .msg.")'
	assert_error_line "'msg'" "initial value"
	[[ ! -e $PATCH ]] || { fail "a refused build left $PATCH behind"; return 1; }
}

@test "-O2: a new text for msg's literal, which GCC folded into print_message, replaces print_message" {
	# Read-only and never written, msg is gone from the -O2 binary: its text
	# is a literal of print_message's code, which a patch can replace.
	local mark

	! readelf -sW "$LITERALS/literals-O2" | grep -qE ' OBJECT .* msg$' ||
		{ fail "literals-O2 still has a variable msg"; return 1; }
	build_literal 0 O2 message
	assert_replaces_only print_message
	start_executable "$BINARY"
	mark=$(line_count "$TARGET_LOG")
	run -0 --separate-stderr hp apply --pid "$TARGET_PID" "$PATCH"
	wait_for_line_after "$TARGET_LOG" "$mark" '^message [0-9]+: message: as patched later$' >/dev/null
	mark=$(line_count "$TARGET_LOG")
	assert_lines_after "$TARGET_LOG" "$mark" '^message ' '^message [0-9]+: message: as patched later$'
	assert_lines_after "$TARGET_LOG" "$mark" '^greeting ' '^greeting [0-9]+: hello$'
	assert_lines_after "$TARGET_LOG" "$mark" '^farewell ' '^farewell [0-9]+: goodbye$'
}
