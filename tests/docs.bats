#!/usr/bin/env bats
# docs.bats - `hotpatch --help`, the man pages, the bash completion and the
# README tell one story: the same commands, options, synopsis and exit codes.
# It reads files and runs only `hotpatch --help` and `--version`.
bats_require_minimum_version 1.5.0

setup() {
	HP_SOURCE=${HP_SOURCE:-$(cd "$BATS_TEST_DIRNAME/.." && pwd)}
	HOTPATCH=${HOTPATCH:-$HP_SOURCE/build/test/hotpatch}
	[[ -x $HOTPATCH ]] || { echo "no hotpatch binary at $HOTPATCH: run 'make bats'" >&2; return 1; }
	MAN1=$HP_SOURCE/man/hotpatch.1
	MAN3=$HP_SOURCE/man/hotpatch.h.3
	MAN_BUILD=$HP_SOURCE/man/hotpatch-build.1
	COMPLETION=$HP_SOURCE/cmd/hotpatch.bash-completion
	README=$HP_SOURCE/README.md
	HELP=$BATS_TEST_TMPDIR/help.txt
	"$HOTPATCH" --help >"$HELP"
}

# Rendering with a very long line keeps every paragraph on one line.
render() {
	groff -man -Tascii -P-cbuo -rLL=2000n "$1" 2>/dev/null
}

# section NAME: the lines of a rendered man page under heading NAME.
section() {
	awk -v name="$1" '$0 == name { inside = 1; next } /^[A-Z]/ { inside = 0 } inside'
}

squeeze() {
	sed -E 's/^[[:space:]]+//; s/[[:space:]]+$//; s/[[:space:]]+/ /g' | grep -v '^$'
}

# The command lines of --help: "hotpatch apply --pid PID ...".
help_command_lines() {
	awk '/^commands:/ { inside = 1; next } /^[^ ]/ { inside = 0 }
		inside && /^  [a-z]+ +[-([]/ { $1 = "hotpatch " $1; print }' "$HELP" | squeeze
}

help_commands() {
	help_command_lines | awk '{ print $2 }'
}

help_long_options() {
	grep -oE -- '--[a-z][a-z-]*' "$HELP" | sort -u
}

# complete WORD...: what the completion offers for the command line WORD...
# (the last word being the one under the cursor), one per line, sorted.
complete_words() {
	bash -c 'source "$1"; shift
		COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _hotpatch
		printf "%s\n" "${COMPREPLY[@]}"' _ "$COMPLETION" "$@" | grep -v '^$' | sort -u
}

# exit_codes_from_help: "CODE<tab>MEANING" from the "exit status:" paragraph.
exit_codes_from_help() {
	local text code
	text=$(sed -n '/^exit status:/,$p' "$HELP" | tr '\n' ' ' |
		sed -E 's/^exit status://; s/\([^)]*\)//g')
	while [[ $text =~ ([0-9])\ ([^,.]*)[,.]?(.*) ]]; do
		code=${BASH_REMATCH[1]}
		text=${BASH_REMATCH[3]}
		printf '%s\t%s\n' "$code" "$(squeeze <<<"${BASH_REMATCH[2]}")"
	done
}

@test "hotpatch --help prints the usage and exits 0" {
	run -0 "$HOTPATCH" --help
	[[ ${lines[0]} == usage:* ]]
}

@test "the man page synopsis is exactly the command lines of --help" {
	help_command_lines >"$BATS_TEST_TMPDIR/help-synopsis"
	render "$MAN1" | section SYNOPSIS | squeeze >"$BATS_TEST_TMPDIR/man-synopsis"
	[ -s "$BATS_TEST_TMPDIR/help-synopsis" ]
	run -0 diff -u "$BATS_TEST_TMPDIR/help-synopsis" "$BATS_TEST_TMPDIR/man-synopsis"
}

@test "the README usage block is exactly the command lines of --help" {
	help_command_lines >"$BATS_TEST_TMPDIR/help-synopsis"
	awk '/^## Usage/ { usage = 1 } usage && /^```/ { if (block) exit; block = 1; next }
		block' "$README" | squeeze >"$BATS_TEST_TMPDIR/readme-synopsis"
	run -0 diff -u "$BATS_TEST_TMPDIR/help-synopsis" "$BATS_TEST_TMPDIR/readme-synopsis"
}

@test "every long option of --help is in the man page, the README and the completion" {
	render "$MAN1" >"$BATS_TEST_TMPDIR/man"
	{
		complete_words hotpatch -
		for command in $(help_commands); do
			complete_words hotpatch "$command" -
		done
	} | sort -u >"$BATS_TEST_TMPDIR/completion"
	for option in $(help_long_options); do
		grep -qe "$option" "$BATS_TEST_TMPDIR/man" || { echo "man page lacks $option"; false; }
		grep -qe "\`$option" "$README" || { echo "README lacks $option"; false; }
		grep -qx -e "$option" "$BATS_TEST_TMPDIR/completion" ||
			{ echo "completion never offers $option"; false; }
	done
}

@test "the completion offers each command the options its help line shows" {
	for command in $(help_commands); do
		help_command_lines | awk -v c="$command" '$2 == c' | grep -oE -- '--[a-z-]+' |
			sort -u >"$BATS_TEST_TMPDIR/wanted"
		complete_words hotpatch "$command" -- >"$BATS_TEST_TMPDIR/offered"
		run -0 comm -23 "$BATS_TEST_TMPDIR/wanted" "$BATS_TEST_TMPDIR/offered"
		[ -z "$output" ] || { echo "$command: completion lacks $output"; false; }
	done
}

@test "every command is in --help, the man page and the completion, and no other" {
	help_commands | sort >"$BATS_TEST_TMPDIR/help"
	[ "$(wc -l <"$BATS_TEST_TMPDIR/help")" -ge 4 ]
	complete_words hotpatch "" >"$BATS_TEST_TMPDIR/completion"
	run -0 diff -u "$BATS_TEST_TMPDIR/help" "$BATS_TEST_TMPDIR/completion"
	render "$MAN1" | section COMMANDS | awk '/^       [a-z]/ { print $1 }' |
		sort >"$BATS_TEST_TMPDIR/man"
	run -0 diff -u "$BATS_TEST_TMPDIR/help" "$BATS_TEST_TMPDIR/man"
}

@test "the man pages lint clean with groff" {
	for page in "$MAN1" "$MAN3" "$MAN_BUILD"; do
		run -0 groff -man -ww -z "$page"
		[ -z "$output" ] || { echo "$page: $output"; false; }
	done
}

@test "the synopsis of hotpatch-build(1) has exactly the options of build's --help line" {
	help_command_lines | awk '$2 == "build"' | grep -oE -- '--[a-z-]+' | sort -u >"$BATS_TEST_TMPDIR/help"
	[ -s "$BATS_TEST_TMPDIR/help" ] || { echo "--help has no build line"; false; }
	render "$MAN_BUILD" | section SYNOPSIS | grep -oE -- '--[a-z-]+' | sort -u >"$BATS_TEST_TMPDIR/man"
	run -0 diff -u "$BATS_TEST_TMPDIR/help" "$BATS_TEST_TMPDIR/man"
}

@test "the first screen of the README shows make demo and make check" {
	head -n 25 "$README" >"$BATS_TEST_TMPDIR/first-screen"
	grep -q 'make demo' "$BATS_TEST_TMPDIR/first-screen"
	grep -q 'make check' "$BATS_TEST_TMPDIR/first-screen"
}

@test "exit codes 0 to 4 mean the same in --help, the man page and the README" {
	exit_codes_from_help >"$BATS_TEST_TMPDIR/help"
	[ "$(cut -f1 "$BATS_TEST_TMPDIR/help" | tr -d '\n')" = 01234 ]
	render "$MAN1" | section 'EXIT STATUS' |
		sed -nE 's/^ +([0-9]+) +(.*)$/\1\t\2/p' >"$BATS_TEST_TMPDIR/man"
	# The table under "Exit status" (other tables, of figures, start with numbers too).
	sed -n '/^#\{2,\} Exit status/,/^#/p' "$README" |
		sed -nE 's/^\| *([0-9]+) *\| *([^|]*)\|.*$/\1\t\2/p' >"$BATS_TEST_TMPDIR/readme"
	for source in man readme; do
		[ "$(cut -f1 "$BATS_TEST_TMPDIR/$source" | tr -d '\n')" = 01234 ] ||
			{ echo "$source lists the exit codes $(cut -f1 "$BATS_TEST_TMPDIR/$source" | tr '\n' ' ')"; false; }
	done
	while IFS=$'\t' read -r code meaning; do
		for source in man readme; do
			described=$(awk -F'\t' -v c="$code" '$1 == c { print $2 }' "$BATS_TEST_TMPDIR/$source")
			[[ ${described,,} == "${meaning,,}"* ]] ||
				{ echo "$source: exit $code is '$described', --help says '$meaning'"; false; }
		done
	done <"$BATS_TEST_TMPDIR/help"
}

@test "the man pages carry the version that hotpatch --version prints" {
	run -0 "$HOTPATCH" --version
	version=$(grep -oE '[0-9]+\.[0-9]+\.[0-9]+' <<<"$output" | head -n 1)
	[ -n "$version" ]
	grep -q "^\.TH .*\"hotpatch $version\"" "$MAN1"
	grep -q "^\.TH .*\"hotpatch $version\"" "$MAN3"
	grep -q "^\.TH .*\"hotpatch $version\"" "$MAN_BUILD"
}
