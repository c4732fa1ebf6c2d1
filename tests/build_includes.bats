#!/usr/bin/env bats
# build_includes.bats - `hotpatch build` on a tree that is not all its
# program is built from: headers beside --source, reached by a relative
# #include ("../common/shared.h") and by the compile command's relative
# -I../extra.  Build compiles private copies of the tree; paths that lead
# out of it must reach the real files, as they do from the tree itself, and
# a header that is really missing is named, not blamed on --compile.
#
# testdata/include_tree/src/main.c (--source is src/) prints every 5 ms:
#   scaled N -> R    R = N * 3 for N in 0..39; fix.diff caps R at 50
# (3 from ../common/shared.h, 50 from bounds.h in ../extra).

bats_require_minimum_version 1.5.0
load helpers

setup() {
	hp_setup
	INCLUDES=$HP_TESTDATA/include_tree
	[[ -x $INCLUDES/program && -r $INCLUDES/compile && -r $INCLUDES/compile_commands.json ]] ||
		{ fail "no include_tree program in $INCLUDES: run 'make testdata'"; return 1; }
	TREE=$HP_SOURCE/testdata/include_tree
	BINARY=$INCLUDES/program
	# apply loads only patches that nobody but root could have written.
	umask 022
	chmod go-w "$BATS_TEST_TMPDIR"
	PATCH_DIR=$BATS_TEST_TMPDIR/patches
	mkdir -m 0755 "$PATCH_DIR"
}

teardown() { hp_teardown; }

# build_tree STATUS DIFF OPTION...: `hotpatch build --json` of the program
# with testdata/include_tree/DIFF.diff, --source src/ and the compile
# OPTIONs, into PATCH_DIR/DIFF.so (PATCH), expecting exit STATUS.
build_tree() {
	local status=$1 diff=$2
	shift 2

	PATCH=$PATCH_DIR/$diff.so
	run "-$status" --separate-stderr hp build --source "$TREE/src" --diff "$TREE/$diff.diff" \
		--binary "$BINARY" -o "$PATCH" --json "$@"
}

# assert_capped_after MARK: every scaled line after line MARK is the fixed
# one (N * 3, at most 50), over a whole round of N (0..39).
assert_capped_after() {
	local mark=$1 deadline=$((SECONDS + HP_WAIT_SECONDS)) selected wrong

	while :; do
		selected=$(complete_lines_after "$TARGET_LOG" "$mark" | grep '^scaled ' | head -n 40 || true)
		(($(printf '%s' "$selected" | grep -c '^') >= 40)) && break
		if ((SECONDS >= deadline)); then
			fail "no 40 scaled lines after line $mark; the log ends with:"$'\n'"$(tail -n 15 "$TARGET_LOG")"
			return 1
		fi
		sleep 0.02
	done
	wrong=$(awk '{ want = $2 * 3; if (want > 50) want = 50; if ($4 != want) print }' <<<"$selected")
	[[ -z $wrong ]] || { fail "lines that are not N * 3 capped at 50:"$'\n'"$wrong"; return 1; }
}

@test "a header beside --source, included as ../common/shared.h and through -I../extra, is read where it is, and the fix applies" {
	local mark

	build_tree 0 fix --compile "$(<"$INCLUDES/compile")"
	json_is '.ok == true' '[.replace[].function] == ["scaled"]'
	[[ -f $PATCH ]] || fail "build says it wrote $PATCH, which does not exist"
	start_executable "$BINARY"
	wait_for_line "$TARGET_LOG" '^scaled 39 -> 117$' >/dev/null
	mark=$(line_count "$TARGET_LOG")
	run -0 --separate-stderr hp apply --pid "$TARGET_PID" "$PATCH"
	wait_for_line_after "$TARGET_LOG" "$mark" '^scaled 39 -> 50$' >/dev/null
	mark=$(line_count "$TARGET_LOG")
	assert_capped_after "$mark"
	assert_not_traced "$TARGET_PID"
}

@test "a compilation database entry whose -I leads out of --source is read where it leads" {
	build_tree 0 fix --compile-commands "$INCLUDES/compile_commands.json"
	json_is '.ok == true' '[.replace[].function] == ["scaled"]'
	[[ -f $PATCH ]] || fail "build says it wrote $PATCH, which does not exist"
}

@test "a header that is missing is named as the file not found, with exit 1 and no patch" {
	build_tree 1 missing --compile "$(<"$INCLUDES/compile")"
	json_is '.ok == false' '.exit_code == 1' '.error.file == "main.c"' \
		'.error.message | test("main.c includes ../common/missing.h, which was not found")'
	assert_error_line "../common/missing.h" "not found"
	[[ ! -e $PATCH ]] || fail "a failed build left $PATCH behind"
}
