#!/usr/bin/env bats
# build.bats - `hotpatch build` makes a patch from a source diff: it builds
# the service of testdata/program with and without a diff of testdata/diffs,
# keeps the functions whose code changed, and turns their references to the
# rest of the service into references to the running service's own storage
# and code.  Each test builds a patch, checks what build reported, applies it
# to a running service and watches the service's output change; the changes
# that cannot be hot-patched are refused with exit 4 and no patch.
#
# The service prints, every 5 ms (see testdata/program/main.c):
#   slot1 N -> R       R = N + 20, where N counts the ticks
#   slot4 N -> R       0 (bug) or -1 (bounds_check)
#                      (with SERVICE_SLOTS=1 slot 1 is free: slot1 N -> 20, or -1)
#   request SIZE -> R  for SIZE 0, 2, 100, 5000
#   capacity -> 4096   REQUEST_MAX of service.h
#   audit N -> R       R = N + 6999 (N + 7003 after register_use)
#   rejected empty=A too_large=B checks=C last=SIZE
#   load -5 -> R, queue -2 -> R, progress 200 -> 100, ceiling -> 100, weight 90 -> 8

bats_require_minimum_version 1.5.0
load helpers

setup() {
	hp_setup
	SERVICE=$HP_TESTDATA/program/service
	SERVICE_OTHER=$HP_TESTDATA/program/service_other
	[[ -x $SERVICE && -x $SERVICE_OTHER && -r $HP_TESTDATA/program/compile && -r $HP_TESTDATA/libs/compile ]] ||
		{ fail "no service in $HP_TESTDATA/program: run 'make testdata'"; return 1; }
	# The command the service was built with (testdata/Makefile's PROGRAM_COMPILE).
	COMPILE=$(<"$HP_TESTDATA/program/compile")
	PROGRAM_SOURCE=$HP_SOURCE/testdata/program
	BINARY=$SERVICE
	# libdemo.so's (testdata/Makefile's LIB_CFLAGS without -shared).
	LIB_COMPILE=$(<"$HP_TESTDATA/libs/compile")
	DIFFS=$HP_SOURCE/testdata/diffs
	# apply loads only patches that nobody but root could have written.
	umask 022
	chmod go-w "$BATS_TEST_TMPDIR"
	PATCH_DIR=$BATS_TEST_TMPDIR/patches
	mkdir -m 0755 "$PATCH_DIR"
}

teardown() { hp_teardown; }

# build_patch STATUS DIFF [OPTION...]: runs `hotpatch build` of the service
# with testdata/diffs/DIFF.diff into PATCH_DIR/DIFF.so (PATCH), expecting
# exit STATUS; stdout and stderr as `run --separate-stderr` leaves them.
build_patch() {
	local status=$1 diff=$2
	shift 2
	PATCH=$PATCH_DIR/$diff.so
	run "-$status" --separate-stderr hp build --source "$PROGRAM_SOURCE" \
		--diff "$DIFFS/$diff.diff" --compile "$COMPILE" --binary "$SERVICE" -o "$PATCH" "$@"
}

# assert_built KIND_LINES FUNCTIONS REFERENCES: stdout has exactly the
# "replace:" and "new:" lines KIND_LINES (newline-separated, any order) and
# ends with "wrote PATCH (FUNCTIONS functions, REFERENCES references into
# BINARY)"; the patch file exists.
assert_built() {
	local wanted=$1 functions=$2 references=$3 got last

	got=$(grep -E '^(replace|new): ' <<<"$output" | sort || true)
	wanted=$(sort <<<"$wanted")
	[[ $got == "$wanted" ]] ||
		{ fail "expected the lines:"$'\n'"$wanted"$'\n'"build printed:"$'\n'"$output"; return 1; }
	last=${lines[${#lines[@]} - 1]}
	[[ $last =~ ^wrote\ (.*)\ \(([0-9]+)\ functions?,\ ([0-9]+)\ references?\ into\ (.*)\)$ ]] ||
		{ fail "the last line is not 'wrote OUT (N functions, M references into BINARY)':"$'\n'"$output"; return 1; }
	[[ ${BASH_REMATCH[1]} == "$PATCH" && ${BASH_REMATCH[4]} == "$BINARY" ]] ||
		{ fail "expected 'wrote $PATCH (... into $BINARY)', got: $last"; return 1; }
	[[ ${BASH_REMATCH[2]} == "$functions" && ${BASH_REMATCH[3]} == "$references" ]] ||
		{ fail "expected $functions functions and $references references into $BINARY, got: $last"; return 1; }
	[[ -f $PATCH ]] || { fail "build says it wrote $PATCH, which does not exist"; return 1; }
}

# assert_refused SYMBOL: the last build exited 4 (checked by `run -4`), with
# a "hotpatch:" line on stderr naming SYMBOL, and wrote nothing.
assert_refused() {
	assert_error_line "$1" || return 1
	[[ ! -e $PATCH ]] || { fail "a refused build left $PATCH behind"; return 1; }
	[[ $output != *wrote* ]] || { fail "a refused build says it wrote something:"$'\n'"$output"; return 1; }
}

# assert_next_lines LOG SELECT EXPECT [COUNT]: the next COUNT (default 5)
# lines of LOG that match the ERE SELECT all match the ERE EXPECT.
assert_next_lines() {
	local log=$1 select=$2 expect=$3 count=${4:-5}
	local mark deadline=$((SECONDS + HP_WAIT_SECONDS)) selected wrong

	mark=$(line_count "$log")
	while :; do
		selected=$(complete_lines_after "$log" "$mark" | grep -E -- "$select" | head -n "$count" || true)
		(($(printf '%s' "$selected" | grep -c '^') >= count)) && break
		if ((SECONDS >= deadline)); then
			printf 'the service stopped printing lines matching /%s/; %s ends with:\n' "$select" "$log" >&2
			tail -n 15 "$log" >&2
			return 1
		fi
		sleep 0.02
	done
	wrong=$(grep -Ev -- "$expect" <<<"$selected" || true)
	[[ -z $wrong ]] || { fail "expected lines matching /$expect/, got:"$'\n'"$wrong"; return 1; }
}

# apply_patch: applies PATCH to TARGET_PID, expecting exit 0; sets MARK to
# the log's line count before the apply.
apply_patch() {
	MARK=$(line_count "$TARGET_LOG")
	run -0 --separate-stderr hp apply --pid "$TARGET_PID" "$PATCH"
}

# The service as it runs before any fix.
assert_service_unfixed() {
	assert_next_lines "$TARGET_LOG" '^slot4 ' '^slot4 [0-9]+ -> 0$' || return 1
	assert_results "$TARGET_LOG" slot1 '+20' || return 1
	assert_next_lines "$TARGET_LOG" '^request ' '^request (0 -> -1|2 -> 2|100 -> 100|5000 -> 5000)$' 8 || return 1
	assert_next_lines "$TARGET_LOG" '^rejected ' '^rejected empty=[0-9]+ too_large=0 checks=[0-9]+ last=0$' || return 1
	assert_next_lines "$TARGET_LOG" '^capacity ' '^capacity -> 4096$' || return 1
	assert_results "$TARGET_LOG" audit '+6999' || return 1
	assert_next_lines "$TARGET_LOG" '^(load|queue|progress|ceiling|weight) ' \
		'^(load -5 -> -5|queue -2 -> -20|progress 200 -> 100|ceiling -> 100|weight 90 -> 8)$' 10
}

# The levels of the service after inline_fix: clamp_level's callers fixed,
# the callers whose code did not change as they were.
assert_inline_fix_runs() {
	wait_for_line_after "$TARGET_LOG" "$MARK" '^queue -2 -> 0$' || return 1
	assert_next_lines "$TARGET_LOG" '^(load|queue|progress|ceiling|weight) ' \
		'^(load -5 -> 0|queue -2 -> 0|progress 200 -> 100|ceiling -> 100|weight 90 -> 8)$' 10
}

# tree_digest DIR: one line per file of DIR with its checksum.
tree_digest() {
	(cd "$1" && find . -type f -print0 | sort -z | xargs -0 sha256sum)
}

build_id() {
	readelf -nW "$1" | sed -nE 's/.*Build ID: ([0-9a-f]+).*/\1/p' | head -n 1
}

@test "every diff applies with patch -p1 and all but compile_error.diff leave a tree that compiles" {
	local diff name file copy source compile
	for diff in "$DIFFS"/*.diff; do
		name=${diff##*/}
		copy=$BATS_TEST_TMPDIR/${name%.diff}
		source=$PROGRAM_SOURCE compile=$COMPILE
		if [[ $name == lib_* ]]; then
			source=$HP_SOURCE/testdata/libs compile=$LIB_COMPILE
		fi
		cp -r "$source" "$copy"
		run -0 patch -p1 --batch -d "$copy" -i "$diff"
		for file in "$copy"/*.c; do
			if [[ $name == compile_error.diff && $file == */slots.c ]]; then
				run -1 $compile -c -o /dev/null "$file"
			else
				run -0 $compile -c -o /dev/null "$file"
			fi
		done
	done
}

@test "bounds_check: the fixed function reads the service's own file-local table as it is now" {
	local before
	before=$(tree_digest "$PROGRAM_SOURCE")
	build_patch 0 bounds_check
	assert_built 'replace: slot_hits (slots.c)' 1 3
	# Nothing but the copies changed: the source tree is as it was.
	[[ $(tree_digest "$PROGRAM_SOURCE") == "$before" ]] || fail "hotpatch build changed $PROGRAM_SOURCE"

	start_program service
	assert_service_unfixed
	apply_patch
	wait_for_line_after "$TARGET_LOG" "$MARK" '^slot4 [0-9]+ -> -1$'
	assert_next_lines "$TARGET_LOG" '^slot4 ' '^slot4 [0-9]+ -> -1$'
	# The table changes every tick: a copy would show its initial 20 and
	# more, the service's own table shows 20 + N.
	assert_results "$TARGET_LOG" slot1 '+20' 20
	assert_patch_mapped "$TARGET_PID" bounds_check
	assert_not_traced "$TARGET_PID"
}

@test "bounds_check: the fixed function reads the slots in use that the service's constructor set" {
	build_patch 0 bounds_check
	assert_built 'replace: slot_hits (slots.c)' 1 3
	# slots_init() put only slot 0 in use, from the environment: the fix sees
	# the service's `used` (1), not its initial value (4).
	SERVICE_SLOTS=1 start_program service
	assert_next_lines "$TARGET_LOG" '^slot1 ' '^slot1 [0-9]+ -> 20$'
	apply_patch
	wait_for_line_after "$TARGET_LOG" "$MARK" '^slot1 [0-9]+ -> -1$'
	assert_next_lines "$TARGET_LOG" '^slot[14] ' '^slot[14] [0-9]+ -> -1$' 10
	assert_not_traced "$TARGET_PID"
}

@test "call_helper: the fix calls the service's own file-local helper, whose counters move" {
	local line too_large next
	build_patch 0 call_helper
	assert_built 'replace: handle_request (requests.c)' 1 2

	start_program service
	assert_service_unfixed
	apply_patch
	wait_for_line_after "$TARGET_LOG" "$MARK" '^request 5000 -> -1$'
	assert_next_lines "$TARGET_LOG" '^request ' '^request (0 -> -1|2 -> 2|100 -> 100|5000 -> -1)$' 8
	# reject() of requests.c counts, and remembers the size, for requests.c's
	# own report: once per tick for the oversized request from now on.
	line=$(wait_for_line_after "$TARGET_LOG" "$MARK" '^rejected .* too_large=[1-9][0-9]* .* last=5000$')
	too_large=$(sed -E 's/.* too_large=([0-9]+) .*/\1/' <<<"$line")
	next=$(wait_for_line_after "$TARGET_LOG" "$(line_count "$TARGET_LOG")" '^rejected ')
	[[ $next =~ \ too_large=([0-9]+)\ .*\ last=5000$ ]] || fail "after the fix: $next"
	((BASH_REMATCH[1] > too_large)) || fail "the counter did not move: $line, then $next"
	assert_next_lines "$TARGET_LOG" '^rejected ' '^rejected empty=[0-9]+ too_large=[1-9][0-9]* checks=[0-9]+ last=5000$'
	assert_not_traced "$TARGET_PID"
}

@test "inline_fix: the callers of a changed static inline function are replaced, and an unchanged one is named" {
	local replaced
	build_patch 0 inline_fix
	# load_level and queue_level compute differently now; level_weight's code
	# changes too (its own check for a negative band became redundant);
	# progress_level (an unsigned percentage) and level_ceiling (a constant)
	# compile to the same code.
	replaced=$(grep -E '^replace: ' <<<"$output" | sort)
	[[ $replaced == *'replace: load_level (levels.c)'* && $replaced == *'replace: queue_level (levels.c)'* ]] ||
		fail "load_level and queue_level are not both replaced:"$'\n'"$output"
	[[ $replaced != *progress_level* && $replaced != *level_ceiling* ]] ||
		fail "a caller whose code did not change is replaced:"$'\n'"$output"
	grep -qE '^warning: .*clamp_level.*progress_level \(levels\.c\)' <<<"$output" ||
		fail "no warning that clamp_level is inlined into progress_level, which did not change:"$'\n'"$output"
	[[ -f $PATCH && ${lines[${#lines[@]} - 1]} == "wrote $PATCH ("* ]] || fail "no patch written:"$'\n'"$output"

	start_program service
	assert_service_unfixed
	apply_patch
	assert_inline_fix_runs
	assert_not_traced "$TARGET_PID"
}

@test "same_name: check() of requests.c is replaced, check() of slots.c is not" {
	build_patch 0 same_name
	assert_built 'replace: check (requests.c)' 1 1

	start_program service
	assert_service_unfixed
	apply_patch
	wait_for_line_after "$TARGET_LOG" "$MARK" '^request 2 -> -1$'
	assert_next_lines "$TARGET_LOG" '^request ' '^request (0 -> -1|2 -> -1|100 -> 100|5000 -> 5000)$' 8
	# slots.c's check() still accepts index 1 (requests.c's new one would not).
	assert_results "$TARGET_LOG" slot1 '+20'
	assert_next_lines "$TARGET_LOG" '^slot4 ' '^slot4 [0-9]+ -> 0$'
	assert_not_traced "$TARGET_PID"
}

@test "new_function: a new file-local function is built into the patch and called by the fix" {
	build_patch 0 new_function
	assert_built $'new: round_size (requests.c)\nreplace: handle_request (requests.c)' 2 2

	start_program service
	assert_service_unfixed
	apply_patch
	wait_for_line_after "$TARGET_LOG" "$MARK" '^request 100 -> 104$'
	assert_next_lines "$TARGET_LOG" '^request ' '^request (0 -> -1|2 -> 8|100 -> 104|5000 -> 5000)$' 8
	assert_not_traced "$TARGET_PID"
}

@test "header_change: a changed header compiles every file, and only the function that uses it is replaced" {
	build_patch 0 header_change
	# main.c, levels.c and slots.c compile to the same code as before.
	assert_built 'replace: request_capacity (requests.c)' 1 0

	start_program service
	assert_service_unfixed
	apply_patch
	wait_for_line_after "$TARGET_LOG" "$MARK" '^capacity -> 8192$'
	assert_next_lines "$TARGET_LOG" '^capacity ' '^capacity -> 8192$'
	assert_not_traced "$TARGET_PID"
}

@test "two_files: one diff fixes a function in each of two files, each file with its own check()" {
	build_patch 0 two_files
	assert_built $'replace: slot_hits (slots.c)\nreplace: check (requests.c)' 2 4

	start_program service
	assert_service_unfixed
	apply_patch
	wait_for_line_after "$TARGET_LOG" "$MARK" '^request 2 -> -1$'
	wait_for_line_after "$TARGET_LOG" "$MARK" '^slot4 [0-9]+ -> -1$'
	assert_next_lines "$TARGET_LOG" '^(slot4|request) ' '^(slot4 [0-9]+ -> -1|request (0 -> -1|2 -> -1|100 -> 100|5000 -> 5000))$' 15
	assert_results "$TARGET_LOG" slot1 '+20'
	assert_not_traced "$TARGET_PID"
}

@test "register_use: the unchanged caller of a replaced function still works" {
	# audit_request() keeps `count` in %rdx across its call of remember():
	# compiled with -fipa-ra (on at -O2), it knows that the binary's
	# remember() leaves %rdx alone.  The patch's remember() is compiled
	# otherwise (-mcmodel=large) and must not break that; refusing the fix,
	# naming remember, would be honest too.  A patch that builds must give
	# the fixed results: the size before, plus its header, plus 7000.
	PATCH=$PATCH_DIR/register_use.so
	run --separate-stderr hp build --source "$PROGRAM_SOURCE" --diff "$DIFFS/register_use.diff" \
		--compile "$COMPILE" --binary "$SERVICE" -o "$PATCH"
	if ((status == 4)); then
		assert_refused remember
		return
	fi
	((status == 0)) || fail "build exited $status:"$'\n'"$stderr"
	grep -qx 'replace: remember (audit.c)' <<<"$output" || fail "remember is not replaced:"$'\n'"$output"

	start_program service
	assert_service_unfixed
	apply_patch
	wait_for_line_after "$TARGET_LOG" "$MARK" '^audit [0-9]+ -> '
	# From the first call of the new remember() on, every result is the fixed one.
	wait_for_result "$TARGET_LOG" "$MARK" audit '+7003'
	assert_results "$TARGET_LOG" audit '+7003' 20
	assert_not_traced "$TARGET_PID"
}

@test "lib_fix: with --object the patch replaces a function of a library the process loaded" {
	BINARY=$HP_TESTDATA/libs/libdemo.so
	PATCH=$PATCH_DIR/lib_fix.so
	run -0 --separate-stderr hp build --source "$HP_SOURCE/testdata/libs" --diff "$DIFFS/lib_fix.diff" \
		--compile "$LIB_COMPILE" --binary "$BINARY" --object libdemo.so -o "$PATCH"
	# demo_value() still counts its calls in the library's demo_calls.
	assert_built 'replace: demo_value (demo.c)' 1 1

	start_target with_lib
	assert_results "$TARGET_LOG" demo '+7'
	apply_and_wait "$TARGET_PID" "$PATCH" "$TARGET_LOG" demo '+8'
	assert_patch_mapped "$TARGET_PID" lib_fix
	assert_not_traced "$TARGET_PID"
}

@test "data_change: a changed initial value of a global table is refused with exit 4 and no patch" {
	start_program service
	build_patch 4 data_change
	assert_refused level_weights
	# Nothing reached the running service.
	assert_target_untouched "$TARGET_PID"
	assert_no_patches "$TARGET_PID"
	assert_service_unfixed
}

@test "static_local: a new static local variable is held by the patch, with a warning naming it" {
	# New state, not changed state: build_variables.bats applies such patches.
	build_patch 0 static_local
	assert_built 'replace: queue_level (levels.c)' 1 0
	[[ $output == *"warning: deepest_queue (levels.c) is a new variable"* ]] ||
		fail "no warning about deepest_queue:"$'\n'"$output"
}

@test "new_variable: a new writable global variable is held by the patch, with a warning naming it" {
	build_patch 0 new_variable
	assert_built 'replace: handle_request (requests.c)' 1 2
	[[ $output == *"warning: requests_seen (requests.c) is a new variable"* ]] ||
		fail "no warning about requests_seen:"$'\n'"$output"
}

@test "struct_layout: a field added to a structure of the service is refused with exit 4 and no patch" {
	# Within the old size (the padding after key), so only the layout (and
	# with it what the table's initialiser means) changes: the refusal names
	# the structure (struct slot) or the table of that type (slots).
	build_patch 4 struct_layout
	assert_refused slot
}

@test "constructor: a changed constructor is refused with exit 4 and no patch" {
	build_patch 4 constructor
	assert_refused slots_init
}

@test "a patch built against one build of the service is refused by another build with exit 4 naming both build-ids" {
	local built other
	built=$(build_id "$SERVICE")
	other=$(build_id "$SERVICE_OTHER")
	[[ -n $built && -n $other && $built != "$other" ]] || fail "the two builds have build-ids '$built' and '$other'"
	build_patch 0 bounds_check
	assert_built 'replace: slot_hits (slots.c)' 1 3

	start_program service_other
	run -4 --separate-stderr hp apply --pid "$TARGET_PID" "$PATCH"
	assert_error_line "$built" "$other"
	assert_target_untouched "$TARGET_PID"
	assert_no_patches "$TARGET_PID"
	assert_service_unfixed
}

@test "list shows a built patch's name, description and ids, and revert brings the old code back" {
	build_patch 0 bounds_check --name fix-slots --description 'slot_hits: a free slot is no slot' \
		--id CVE-2026-0001 --id SERVICE-42
	assert_built 'replace: slot_hits (slots.c)' 1 3

	start_program service
	apply_patch
	wait_for_line_after "$TARGET_LOG" "$MARK" '^slot4 [0-9]+ -> -1$'
	assert_patch_mapped "$TARGET_PID" fix-slots
	run -0 --separate-stderr hp list --pid "$TARGET_PID"
	[[ ${lines[0]} =~ ^fix-slots([[:space:]]|$) ]] || fail "list does not start with the patch's name:"$'\n'"$output"
	[[ $output == *'slot_hits: a free slot is no slot'* ]] || fail "list lacks the description:"$'\n'"$output"
	[[ $output == *CVE-2026-0001* && $output == *SERVICE-42* ]] || fail "list lacks an id:"$'\n'"$output"
	[[ $output == *slot_hits* ]] || fail "list lacks the replaced function:"$'\n'"$output"
	run -0 --separate-stderr hp list --pid "$TARGET_PID" --json
	json_is '.patches | length == 1' '.patches[0].name == "fix-slots"' \
		'.patches[0].description == "slot_hits: a free slot is no slot"' \
		'.patches[0].ids == ["CVE-2026-0001", "SERVICE-42"]' \
		'[.patches[0].functions[].function] == ["slot_hits"]'

	MARK=$(line_count "$TARGET_LOG")
	run -0 --separate-stderr hp revert --pid "$TARGET_PID" fix-slots
	wait_for_line_after "$TARGET_LOG" "$MARK" '^slot4 [0-9]+ -> 0$'
	assert_next_lines "$TARGET_LOG" '^slot4 ' '^slot4 [0-9]+ -> 0$'
	assert_results "$TARGET_LOG" slot1 '+20'
	assert_no_patches "$TARGET_PID"
	assert_target_untouched "$TARGET_PID"
}

@test "a fix that does not compile fails with exit 1 and the compiler's complaint" {
	build_patch 1 compile_error
	[[ $stderr == *used_slots* ]] || fail "stderr does not name used_slots:"$'\n'"$stderr"
	assert_error_line
	[[ ! -e $PATCH ]] || fail "a failed build left $PATCH behind"
}

@test "a diff that does not apply to the source fails with patch's complaint and no patch" {
	local source=$BATS_TEST_TMPDIR/source before
	# The source of another version: the lines the diff changes read differently.
	cp -r "$PROGRAM_SOURCE" "$source"
	sed -i 's/Bug: it checks the index against the table/Known bug: it checks against the table/' "$source/slots.c"
	before=$(tree_digest "$source")
	PATCH=$PATCH_DIR/stale.so
	run --separate-stderr hp build --source "$source" --diff "$DIFFS/bounds_check.diff" \
		--compile "$COMPILE" --binary "$SERVICE" -o "$PATCH"
	[[ $status == 1 || $status == 2 ]] || fail "exit $status, not 1 or 2; stderr:"$'\n'"$stderr"
	[[ $stderr == *FAILED* ]] || fail "stderr lacks patch's complaint (Hunk ... FAILED):"$'\n'"$stderr"
	assert_error_line
	[[ ! -e $PATCH ]] || fail "a failed build left $PATCH behind"
	[[ $(tree_digest "$source") == "$before" ]] || fail "hotpatch build changed $source"
}

@test "build without --diff, or with a --diff file that does not exist, is a usage error (exit 2)" {
	PATCH=$PATCH_DIR/none.so
	run -2 --separate-stderr hp build --source "$PROGRAM_SOURCE" --compile "$COMPILE" \
		--binary "$SERVICE" -o "$PATCH"
	assert_error_line diff
	run -2 --separate-stderr hp build --source "$PROGRAM_SOURCE" --diff "$DIFFS/no_such_fix.diff" \
		--compile "$COMPILE" --binary "$SERVICE" -o "$PATCH"
	assert_error_line no_such_fix.diff
	[[ ! -e $PATCH ]] || fail "a usage error left $PATCH behind"
}

@test "a stripped service: build and apply read its symbols from the debug file found by build-id" {
	local stripped=$BATS_TEST_TMPDIR/service_stripped id debug
	objcopy --only-keep-debug "$SERVICE" "$BATS_TEST_TMPDIR/service.debug"
	objcopy --strip-all "$SERVICE" "$stripped"
	id=$(readelf -n "$stripped" | awk '/Build ID:/ {print $3}')
	[[ -n $id ]]
	export HOTPATCH_DEBUG_DIR=$BATS_TEST_TMPDIR/debug
	# Without the debug file the changed static function is nowhere to be
	# found: refused, naming the stripped binary.
	PATCH=$PATCH_DIR/stripped.so
	run -4 --separate-stderr hp build --source "$PROGRAM_SOURCE" --diff "$DIFFS/bounds_check.diff" \
		--compile "$COMPILE" --binary "$stripped" -o "$PATCH"
	assert_error_line "$stripped"
	[[ ! -e $PATCH ]]
	# With it, the same patch as for the unstripped service, and it applies.
	debug=$HOTPATCH_DEBUG_DIR/${id:0:2}
	mkdir -p "$debug"
	cp "$BATS_TEST_TMPDIR/service.debug" "$debug/${id:2}.debug"
	BINARY=$stripped
	run -0 --separate-stderr hp build --source "$PROGRAM_SOURCE" --diff "$DIFFS/bounds_check.diff" \
		--compile "$COMPILE" --binary "$stripped" -o "$PATCH"
	assert_built 'replace: slot_hits (slots.c)' 1 3
	start_executable "$stripped"
	assert_next_lines "$TARGET_LOG" '^slot4 ' '^slot4 [0-9]+ -> 0$'
	apply_patch
	wait_for_line_after "$TARGET_LOG" "$MARK" '^slot4 [0-9]+ -> -1$'
	assert_results "$TARGET_LOG" slot1 '+20' 20
	assert_not_traced "$TARGET_PID"
}

@test "a --compile other than the one the service was built with is refused, naming a function" {
	PATCH=$PATCH_DIR/other_compile.so
	run -4 --separate-stderr hp build --source "$PROGRAM_SOURCE" --diff "$DIFFS/bounds_check.diff" \
		--compile "${COMPILE/-O2/-O0}" --binary "$SERVICE" -o "$PATCH"
	assert_error_line "--compile does not build slots.c as $SERVICE was built" "bytes compiled"
	[[ $stderr == *DW_AT_producer* ]]
	[[ ! -e $PATCH ]]
}

@test "globals the link made local (a version script) are still the service's own: found, never left to a library" {
	# service_local: the same objects, every global but main made local by
	# testdata/program/local.map.  inline_fix's level_weight reads the
	# global table level_weights, which only the service defines.
	BINARY=$HP_TESTDATA/program/service_local
	PATCH=$PATCH_DIR/inline_fix_local.so
	run -0 --separate-stderr hp build --source "$PROGRAM_SOURCE" --diff "$DIFFS/inline_fix.diff" \
		--compile "$COMPILE" --binary "$BINARY" -o "$PATCH"
	[[ ${lines[${#lines[@]} - 1]} == "wrote $PATCH ("*", 1 reference into $BINARY)" ]] ||
		fail "level_weights is not a reference into the service:"$'\n'"$output"
	start_program service_local
	apply_patch
	[[ $output =~ uses\ level_weights\ at\ 0x ]] || fail "apply printed:"$'\n'"$output"
	assert_inline_fix_runs
	assert_not_traced "$TARGET_PID"
}

@test "a packaged tree: other programs' sources, hidden directories and dangling links are no obstacle" {
	# As a Debian source tree after a build: quilt's .pc with copies of the
	# sources (this one does not even compile), other programs of the
	# package (their main would not match the service's; one in a file
	# named like the service's own main.c), and staging links that lead
	# nowhere.
	local tree=$BATS_TEST_TMPDIR/tree
	cp -r "$PROGRAM_SOURCE" "$tree"
	mkdir -p "$tree/.pc/fix-typo.patch" "$tree/tools"
	printf 'this is not C\n' >"$tree/.pc/fix-typo.patch/main.c"
	printf 'int main(void) { return 42; }\n' >"$tree/tools/other_tool.c"
	# A test program whose file has the name of one of the service's.
	mkdir "$tree/tests"
	printf '#include <stdio.h>\nint main(void) { puts("test"); return 0; }\n' >"$tree/tests/main.c"
	ln -s ../debian/tmp/usr/lib/libgone.so "$tree/libgone.so"
	PATCH=$PATCH_DIR/header_change_packaged.so
	run -0 --separate-stderr hp build --source "$tree" --diff "$DIFFS/header_change.diff" \
		--compile "$COMPILE" --binary "$SERVICE" -o "$PATCH"
	assert_built 'replace: request_capacity (requests.c)' 1 0
	[[ -L $tree/libgone.so && -f $tree/.pc/fix-typo.patch/main.c ]] || fail "build changed the tree"
}

@test "build checks that --object names the library --binary is" {
	local library=$HP_TESTDATA/libs/libdemo.so
	PATCH=$PATCH_DIR/lib_object.so
	run -2 --separate-stderr hp build --source "$HP_SOURCE/testdata/libs" --diff "$DIFFS/lib_fix.diff" \
		--compile "$LIB_COMPILE" --binary "$library" -o "$PATCH"
	assert_error_line "is a shared library (libdemo.so)" "--object libdemo.so"
	run -2 --separate-stderr hp build --source "$HP_SOURCE/testdata/libs" --diff "$DIFFS/lib_fix.diff" \
		--compile "$LIB_COMPILE" --binary "$library" --object libother.so -o "$PATCH"
	assert_error_line "--object libother.so does not name $library"
	[[ ! -e $PATCH ]]
}

# build_with_database STATUS DIFF DATABASE BINARY [OPTION...]: like
# build_patch, with --compile-commands DATABASE instead of --compile.
build_with_database() {
	local status=$1 diff=$2 database=$3
	BINARY=$4
	shift 4
	PATCH=$PATCH_DIR/$diff.so
	run "-$status" --separate-stderr hp build --source "$PROGRAM_SOURCE" \
		--diff "$DIFFS/$diff.diff" --compile-commands "$database" --binary "$BINARY" -o "$PATCH" "$@"
}

@test "compile_commands.json: a service whose levels.c was built with -Os, the rest with -O2, is patched" {
	local mixed=$HP_TESTDATA/program/service_mixed
	# One command cannot build it: -O2 for levels.c gives other sizes.
	BINARY=$mixed
	PATCH=$PATCH_DIR/inline_fix_one_command.so
	run -4 --separate-stderr hp build --source "$PROGRAM_SOURCE" --diff "$DIFFS/inline_fix.diff" \
		--compile "$COMPILE" --binary "$mixed" -o "$PATCH"
	assert_refused "--compile does not build levels.c as $mixed was built"

	# Its database compiles levels.c as the binary has it ("command": a
	# shell string) and the rest as theirs ("arguments").
	build_with_database 0 inline_fix "$HP_TESTDATA/program/compile_commands_mixed.json" "$mixed"
	[[ $output == *'replace: load_level (levels.c)'* && $output == *'replace: queue_level (levels.c)'* ]] ||
		fail "load_level and queue_level are not both replaced:"$'\n'"$output"
	[[ -f $PATCH && ${lines[${#lines[@]} - 1]} == "wrote $PATCH ("*" into $mixed)" ]] ||
		fail "no patch written:"$'\n'"$output"

	start_program service_mixed
	assert_service_unfixed
	apply_patch
	assert_inline_fix_runs
	assert_not_traced "$TARGET_PID"
}

@test "compile_commands.json: the service's database builds the patch --compile builds" {
	local with_compile
	build_patch 0 bounds_check
	with_compile=$output
	build_with_database 0 bounds_check "$HP_TESTDATA/program/compile_commands.json" "$SERVICE"
	assert_built 'replace: slot_hits (slots.c)' 1 3
	[[ $output == "$with_compile" ]] || fail "--compile printed:"$'\n'"$with_compile"$'\n'"--compile-commands printed:"$'\n'"$output"

	start_program service
	apply_patch
	wait_for_line_after "$TARGET_LOG" "$MARK" '^slot4 [0-9]+ -> -1$'
	assert_next_lines "$TARGET_LOG" '^slot4 ' '^slot4 [0-9]+ -> -1$'
	assert_not_traced "$TARGET_PID"
}

@test "compile_commands.json: each file compiles in its own directory of the copy, not of the tree" {
	# As automake builds bc: `cd src && cc -I.. ...`, the header one level up.
	local tree=$BATS_TEST_TMPDIR/tree database=$BATS_TEST_TMPDIR/tree/compile_commands.json
	mkdir -p "$tree/src"
	cp "$PROGRAM_SOURCE"/*.c "$tree/src/"
	cp "$PROGRAM_SOURCE"/*.h "$tree/"
	sed -E 's#"directory": "[^"]*"#"directory": "'"$tree/src"'"#; s#"-O2",#"-O2", "-I..",#; s#-Os #-Os -I.. #' \
		"$HP_TESTDATA/program/compile_commands_mixed.json" >"$database"
	# header_change changes service.h: every file is compiled, in src/.
	sed -E 's#^(---|\+\+\+) ([ab])/#\1 \2/#' "$DIFFS/header_change.diff" >"$BATS_TEST_TMPDIR/header.diff"
	PATCH=$PATCH_DIR/header_in_subdirectory.so
	BINARY=$HP_TESTDATA/program/service_mixed
	run -0 --separate-stderr hp build --source "$tree" --diff "$BATS_TEST_TMPDIR/header.diff" \
		--compile-commands "$database" --binary "$BINARY" -o "$PATCH"
	# The fixed header one level up was used: request_capacity changed.
	assert_built 'replace: request_capacity (src/requests.c)' 1 0
	cmp -s "$tree/service.h" "$PROGRAM_SOURCE/service.h" || fail "build changed the tree"
}

@test "compile_commands.json: a file without an entry, a directory outside the tree and a command substitution are refused" {
	local database=$BATS_TEST_TMPDIR/compile_commands.json mixed=$HP_TESTDATA/program/service_mixed
	grep -v '"file": "levels.c"' "$HP_TESTDATA/program/compile_commands_mixed.json" |
		sed -E '$!{N;s/,\n\]/\n]/;P;D}' >"$database"
	build_with_database 4 inline_fix "$database" "$mixed"
	assert_refused "no entry in $database for levels.c"

	# The directory the compiler ran in must be in the tree (the copies have
	# no other).
	printf '[{"directory": "%s", "file": "program/levels.c", "arguments": ["cc", "-Os", "-c", "program/levels.c"]}]\n' \
		"$(dirname "$PROGRAM_SOURCE")" >"$database"
	build_with_database 4 inline_fix "$database" "$mixed"
	assert_refused "compiles in $(dirname "$PROGRAM_SOURCE"), outside the source tree"

	# A command is split into words, never run by a shell.
	printf '[{"directory": "%s", "file": "levels.c", "command": "cc $(touch %s) -Os -c levels.c"}]\n' \
		"$PROGRAM_SOURCE" "$BATS_TEST_TMPDIR/ran" >"$database"
	build_with_database 2 inline_fix "$database" "$mixed"
	assert_error_line "the command of levels.c is not plain shell words"
	[[ ! -e $BATS_TEST_TMPDIR/ran && ! -e $PATCH ]] || fail "the command substitution ran, or a patch was written"

	printf 'not json\n' >"$database"
	build_with_database 2 inline_fix "$database" "$mixed"
	assert_error_line "$database is no compilation database"
}

@test "build takes --compile or --compile-commands, exactly one" {
	PATCH=$PATCH_DIR/both.so
	run -2 --separate-stderr hp build --source "$PROGRAM_SOURCE" --diff "$DIFFS/bounds_check.diff" \
		--compile "$COMPILE" --compile-commands "$HP_TESTDATA/program/compile_commands.json" \
		--binary "$SERVICE" -o "$PATCH"
	assert_error_line "build takes --compile or --compile-commands, not both"
	run -2 --separate-stderr hp build --source "$PROGRAM_SOURCE" --diff "$DIFFS/bounds_check.diff" \
		--binary "$SERVICE" -o "$PATCH"
	assert_error_line "build needs --compile 'CC FLAGS...' or --compile-commands FILE"
	[[ ! -e $PATCH ]]
}

@test "compile_commands.json: an entry's dependency-file options write nothing into the source tree" {
	# Entries of make-based builds carry -MD -MP -MFFILE.d -MT ... (or the
	# kernel's -Wp,-MMD,FILE.d): FILE is in the operator's tree, which build
	# only reads.
	local database=$BATS_TEST_TMPDIR/compile_commands.json before
	jq --arg dir "$PROGRAM_SOURCE" \
		'map(. as $entry | ($dir + "/" + ($entry.file | sub("\\.c$"; ""))) as $base |
			.arguments |= (.[0:1] + ["-MD", "-MP", "-MF" + $base + ".d", "-MT", "x.o",
			"-Wp,-MMD," + $base + ".pp.d"] + .[1:]))' \
		"$HP_TESTDATA/program/compile_commands.json" >"$database"
	grep -q -- '-MF' "$database"
	before=$(tree_digest "$PROGRAM_SOURCE")
	build_with_database 0 bounds_check "$database" "$SERVICE"
	assert_built 'replace: slot_hits (slots.c)' 1 3
	[[ $(tree_digest "$PROGRAM_SOURCE") == "$before" ]] || fail "build wrote into $PROGRAM_SOURCE"
	[[ -z $(find "$PROGRAM_SOURCE" -name '*.d') ]] || fail "a dependency file was written in $PROGRAM_SOURCE"
}

@test "compile_commands.json: of several entries for one file (libtool's PIC and non-PIC), the binary's is used" {
	local mixed=$HP_TESTDATA/program/service_mixed database=$BATS_TEST_TMPDIR/several.json
	# levels.c twice, as libtool records it: a PIC build first (not the
	# binary's: service_mixed has its -Os build), then the binary's.
	jq '(map(select(.file == "levels.c")) | map(.command |= sub(" -Os "; " -O2 -fPIC ")))
		+ .' "$HP_TESTDATA/program/compile_commands_mixed.json" >"$database"
	[[ $(jq '[.[] | select(.file == "levels.c")] | length' "$database") == 2 ]]
	build_with_database 0 inline_fix "$database" "$mixed"
	[[ $output == *'replace: load_level (levels.c)'* ]] || fail "build printed:"$'\n'"$output"
	start_program service_mixed
	apply_patch
	assert_inline_fix_runs
	# Without the binary's entry, none fits: refused, saying so.
	jq 'map(select(.file != "levels.c" or (.command | test(" -O2 -fPIC "))))' "$database" \
		>"$BATS_TEST_TMPDIR/wrong.json"
	build_with_database 4 inline_fix "$BATS_TEST_TMPDIR/wrong.json" "$mixed"
	assert_error_line "does not build levels.c as $mixed was built"
}
