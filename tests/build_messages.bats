#!/usr/bin/env bats
# build_messages.bats - what `hotpatch build` says when a fix cannot be built
# as asked, and the names its patches give the new code.  Each test makes a
# small program of its own (a header with a structure, two files built into
# the program, one file of the tree left out of the build, as a module
# configured out is), builds it as a build system would, and checks that
# the refusal names what the operator must look at: the header and member
# of a changed structure, the hunk that failed, the moved tree, the file the
# binary was not built from.  The replacement functions of a built patch are
# named FUNCTION.hotpatch, in nm and in apply's exit-3 backtraces.

bats_require_minimum_version 1.5.0
load helpers

setup() {
	hp_setup
	umask 022
	chmod go-w "$BATS_TEST_TMPDIR"
	PATCH_DIR=$BATS_TEST_TMPDIR/patches
	mkdir -m 0755 "$PATCH_DIR"
	TREE=$BATS_TEST_TMPDIR/tree
	BUILT=$BATS_TEST_TMPDIR/built
	COMPILE='cc -O2 -g -Wall'
	make_tree
	build_tree
}

teardown() { hp_teardown; }

# make_tree: TREE holds the program's sources: shared.h (struct session and
# the typedef'd struct counters), work.c and main.c (the program), and
# extra.c (in the tree, never built into it).
make_tree() {
	mkdir -p "$TREE"
	cat >"$TREE/shared.h" <<'EOF'
#ifndef SHARED_H
#define SHARED_H

struct session {
	int id;
	int spare;
	long bytes;
};

typedef struct {
	long steps;
	long limits;
} counters_t;

extern struct session sessions[2];
extern counters_t counters;
int step(int n);
int limit(void);

#endif
EOF
	cat >"$TREE/work.c" <<'EOF'
#include <stdio.h>
#include <unistd.h>

#include "shared.h"

struct session sessions[2] = { { .id = 1, .bytes = 10 }, { .id = 2, .bytes = 20 } };
counters_t counters;

__attribute__((noipa)) int limit(void)
{
	counters.limits++;
	return 100 + sessions[0].id;
}

__attribute__((noipa)) int step(int n)
{
	counters.steps++;
	sessions[1].bytes += n;
	return n + 1;
}
EOF
	cat >"$TREE/main.c" <<'EOF'
#include <stdio.h>
#include <unistd.h>

#include "shared.h"

static __attribute__((noipa)) int report(int n)
{
	int next = step(n);

	return printf("step %d -> %d limit %d\n", n, next, limit());
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("ready pid=%d\n", (int)getpid());
	for (int n = 0;; n++) {
		report(n);
		usleep(10000);
	}
}
EOF
	cat >"$TREE/extra.c" <<'EOF'
#include "shared.h"

int extra_step(int n)
{
	return step(n) * 2;
}
EOF
}

# build_tree: compiles work.c and main.c in TREE (as make would) into
# BUILT/program, and writes BUILT/compile_commands.json for them.
build_tree() {
	local name comma=''
	mkdir -p "$BUILT"
	printf '[' >"$BUILT/compile_commands.json"
	for name in main work; do
		(cd "$TREE" && $COMPILE -c -o "$BUILT/$name.o" "$name.c")
		printf '%s\n {"directory": "%s", "file": "%s.c", "command": "%s -c -o %s %s.c"}' \
			"$comma" "$TREE" "$name" "$COMPILE" "$BUILT/$name.o" "$name" >>"$BUILT/compile_commands.json"
		comma=,
	done
	printf '\n]\n' >>"$BUILT/compile_commands.json"
	$COMPILE -o "$BUILT/program" "$BUILT/main.o" "$BUILT/work.o"
	BINARY=$BUILT/program
}

# make_diff NAME FILE SED-SCRIPT...: BATS_TEST_TMPDIR/NAME.diff, a diff -u of
# FILE (a/FILE, b/FILE) edited by each sed script in turn.
make_diff() {
	local name=$1 file=$2 work=$BATS_TEST_TMPDIR/diff-$1
	shift 2
	mkdir -p "$work/a" "$work/b"
	cp "$TREE/$file" "$work/a/$file"
	cp "$TREE/$file" "$work/b/$file"
	for script; do
		sed -i "$script" "$work/b/$file"
	done
	DIFF=$BATS_TEST_TMPDIR/$name.diff
	(cd "$work" && diff -u "a/$file" "b/$file") >"$DIFF" || true
	[[ -s $DIFF ]] || { fail "the sed scripts changed nothing in $file"; return 1; }
}

# build STATUS [OPTION...]: hotpatch build of DIFF for BINARY into PATCH,
# with --compile COMPILE unless an option says otherwise.
build() {
	local status=$1
	shift
	PATCH=$PATCH_DIR/fix.so
	if (($# == 0)); then
		set -- --compile "$COMPILE"
	fi
	run "-$status" --separate-stderr hp build --source "$TREE" --diff "$DIFF" \
		--binary "$BINARY" -o "$PATCH" "$@"
}

@test "a structure of a header whose member was added is refused naming the struct, the member and the header" {
	make_diff layout shared.h 's/^\tint id;$/\tint id;\n\tint flags;/'
	build 4
	# Every file is compiled (a header changed); the first one that sees
	# the struct is not what the operator must look at: the header is.
	assert_error_line "the layout of struct session (shared.h:4) changed: member flags added at offset 4"
	[[ $stderr != *'(main.c)'* && $stderr != *'(work.c)'* ]] || fail "the refusal names a .c file:"$'\n'"$stderr"
	[[ ! -e $PATCH ]]
}

@test "a member removed, resized or moved is named as such; a typedef'd struct by its typedef" {
	make_diff removed shared.h '/^\tint spare;$/d'
	build 4
	assert_error_line "the layout of struct session (shared.h:4) changed: member spare removed (it was at offset 4)"

	make_diff resized shared.h 's/^\tint id;$/\tlong id;/'
	build 4
	assert_error_line "the layout of struct session (shared.h:4) changed: member id resized from 4 to 8 bytes"

	make_diff moved shared.h '/^\tint spare;$/d' 's/^\tlong bytes;$/\tlong bytes;\n\tint spare;/'
	build 4
	assert_error_line "the layout of struct session (shared.h:4) changed: member spare moved from offset 4 to 16"

	make_diff typedef shared.h 's/^\tlong steps;$/\tint steps;/'
	build 4
	assert_error_line "the layout of counters_t (shared.h:10) changed: member steps resized from 8 to 4 bytes"
}

@test "a diff whose hunk does not apply reports that hunk from patch -p1, not -p0's missing files" {
	make_diff stale work.c 's/return n + 1;/return n + 2;/'
	sed -i 's/sessions\[1\].bytes += n;/sessions[1].bytes += 2 * n;/' "$TREE/work.c"
	build 1
	assert_error_line "does not apply to the source tree (patch -p1): work.c: Hunk #1 FAILED at"
	[[ $stderr != *'No file to patch'* && $stderr != *"can't find file"* ]] ||
		fail "the report shows -p0's attempt:"$'\n'"$stderr"
	[[ ! -e $PATCH ]]

	# A diff made for -p0 that does not apply either: -p0 got furthest.
	sed -E 's#^(---|\+\+\+) [ab]/#\1 #' "$DIFF" >"$BATS_TEST_TMPDIR/stale-p0.diff"
	DIFF=$BATS_TEST_TMPDIR/stale-p0.diff
	build 1
	assert_error_line "(patch -p0): work.c: Hunk #1 FAILED at"
}

@test "a tree moved since its build: the database's entry is named, outside --source, with both paths" {
	local moved=$BATS_TEST_TMPDIR/moved
	make_diff fix work.c 's/return n + 1;/return n + 2;/'
	cp -r "$TREE" "$moved"
	# The entries still name TREE, which exists (a copy) ...
	TREE=$moved build 4 --compile-commands "$BUILT/compile_commands.json"
	assert_error_line "no entry of $BUILT/compile_commands.json is a file in --source $moved" \
		"its first names $BATS_TEST_TMPDIR/tree/main.c, outside it"
	[[ $stderr == *"sed 's#$BATS_TEST_TMPDIR/tree#$moved#g'"* ]] || fail "no rewrite in the hint:"$'\n'"$stderr"

	# ... or no longer exists (moved).
	rm -rf "$TREE"
	TREE=$moved build 4 --compile-commands "$BUILT/compile_commands.json"
	assert_error_line "its first names $BATS_TEST_TMPDIR/tree/main.c, outside it"

	# One entry still in the tree, the fixed file's elsewhere: that entry.
	jq --arg tree "$moved" 'map(if .file == "main.c" then .directory = $tree else . end)' \
		"$BUILT/compile_commands.json" >"$BATS_TEST_TMPDIR/partly.json"
	TREE=$moved build 4 --compile-commands "$BATS_TEST_TMPDIR/partly.json"
	assert_error_line "the entry in $BATS_TEST_TMPDIR/partly.json for work.c names $BATS_TEST_TMPDIR/tree/work.c, outside --source $moved"

	# With the paths rewritten as the hint says, it builds.
	sed "s#$BATS_TEST_TMPDIR/tree#$moved#g" "$BUILT/compile_commands.json" >"$BATS_TEST_TMPDIR/rewritten.json"
	TREE=$moved build 0 --compile-commands "$BATS_TEST_TMPDIR/rewritten.json"
	[[ $output == *'replace: step (work.c)'* ]] || fail "build printed:"$'\n'"$output"
}

@test "a diff of a file the binary was not built from says so, with --compile-commands and with --compile" {
	make_diff module extra.c 's/\* 2;/* 3;/'
	build 4 --compile-commands "$BUILT/compile_commands.json"
	assert_error_line "extra.c is not part of $BINARY: no compile entry in $BUILT/compile_commands.json," \
		"and the binary's symbol and DWARF file lists do not name it"
	build 4
	assert_error_line "extra.c is not part of $BINARY: the binary's symbol and DWARF file lists do not name it"
	[[ ! -e $PATCH ]]
}

@test "a file the binary was built from, without an entry, is still a missing entry" {
	make_diff fix work.c 's/return n + 1;/return n + 2;/'
	jq 'map(select(.file != "work.c"))' "$BUILT/compile_commands.json" >"$BATS_TEST_TMPDIR/partial.json"
	build 4 --compile-commands "$BATS_TEST_TMPDIR/partial.json"
	assert_error_line "no entry in $BATS_TEST_TMPDIR/partial.json for work.c"
}

@test "the patch names its replacement functions FUNCTION.hotpatch, and calls between them link by those names" {
	local symbols
	# limit (work.c) and report (main.c, which calls limit) both change:
	# report's call goes to the patch's limit.
	make_diff limit work.c 's/return 100 + sessions\[0\].id;/return 200 + sessions[0].id;/'
	cp "$DIFF" "$BATS_TEST_TMPDIR/both.diff"
	make_diff report main.c 's/limit %d\\n", n, next, limit());/limit %d\\n", n, next, limit() + 1);/'
	cat "$DIFF" >>"$BATS_TEST_TMPDIR/both.diff"
	DIFF=$BATS_TEST_TMPDIR/both.diff
	build 0
	[[ $output == *'replace: limit (work.c)'* && $output == *'replace: report (main.c)'* ]] ||
		fail "build printed:"$'\n'"$output"
	symbols=$(nm "$PATCH")
	grep -qE '^[0-9a-f]+ t limit\.hotpatch$' <<<"$symbols" || fail "nm shows no limit.hotpatch:"$'\n'"$symbols"
	grep -qE '^[0-9a-f]+ t report\.hotpatch$' <<<"$symbols" || fail "nm shows no report.hotpatch:"$'\n'"$symbols"
	! grep -qE ' (__hotpatch_new|limit$|report$)' <<<"$symbols" || fail "nm shows other names:"$'\n'"$symbols"
	! readelf -sW --dyn-syms "$PATCH" | grep -qE ' UND (limit|report)(\.hotpatch)?$' ||
		fail "the patch leaves a call to the dynamic linker:"$'\n'"$(readelf -sW --dyn-syms "$PATCH")"

	start_executable "$BINARY"
	wait_for_line "$TARGET_LOG" '^step [0-9]+ -> [0-9]+ limit 101$'
	MARK=$(line_count "$TARGET_LOG")
	run -0 --separate-stderr hp apply --pid "$TARGET_PID" "$PATCH"
	wait_for_line_after "$TARGET_LOG" "$MARK" '^step [0-9]+ -> [0-9]+ limit 202$'
	assert_not_traced "$TARGET_PID"
}

@test "a thread stopped inside a replacement shows FUNCTION.hotpatch in the exit-3 backtrace" {
	# The fixed step() announces itself and then sleeps: the main thread
	# stays in the patch's code.
	make_diff sleepy work.c 's/^\tsessions\[1\].bytes += n;$/\tsessions[1].bytes += n;\n\tprintf("in the fixed step\\n");\n\tsleep(3600);/'
	build 0
	[[ $output == *'replace: step (work.c)'* ]] || fail "build printed:"$'\n'"$output"
	nm "$PATCH" | grep -qE ' t step\.hotpatch$' || fail "nm shows no step.hotpatch:"$'\n'"$(nm "$PATCH")"

	start_executable "$BINARY"
	MARK=$(line_count "$TARGET_LOG")
	run -0 --separate-stderr hp apply --pid "$TARGET_PID" "$PATCH"
	wait_for_line_after "$TARGET_LOG" "$MARK" '^in the fixed step$'
	run -3 --separate-stderr hp revert --pid "$TARGET_PID" --timeout 1
	[[ $stderr =~ \#[0-9]+\ step\.hotpatch\+0x ]] || fail "no step.hotpatch frame in the report:"$'\n'"$stderr"
	[[ $stderr != *__hotpatch_new* ]] || fail "the report names __hotpatch_new:"$'\n'"$stderr"
	assert_not_traced "$TARGET_PID"
}
