#!/usr/bin/env bats
# cli.bats - the command line: usage errors exit 2 with one "hotpatch:" line
# naming what is wrong, never touch a target; --help exits 0.

bats_require_minimum_version 1.5.0
load helpers

setup() { hp_setup; }
teardown() { hp_teardown; }

@test "hotpatch without a command is a usage error" {
	run -2 --separate-stderr hp
	assert_error_line
}

@test "an unknown command is a usage error naming it" {
	start_target simple
	run -2 --separate-stderr hp frobnicate --pid "$TARGET_PID"
	assert_error_line frobnicate
	assert_target_untouched "$TARGET_PID"
}

@test "commands match by their whole name, not a prefix" {
	start_target simple
	run -2 --separate-stderr hp app --pid "$TARGET_PID" "$HP_PATCHES/compute_v1.so"
	assert_error_line app
	assert_target_untouched "$TARGET_PID"
	assert_results "$TARGET_LOG" compute '*2'
}

@test "apply without --pid is a usage error" {
	run -2 --separate-stderr hp apply "$HP_PATCHES/compute_v1.so"
	assert_error_line pid
}

@test "list without --pid is a usage error" {
	run -2 --separate-stderr hp list
	assert_error_line pid
}

@test "a pid that is not a number is a usage error naming it" {
	run -2 --separate-stderr hp apply --pid 12abc "$HP_PATCHES/compute_v1.so"
	assert_error_line 12abc
	run -2 --separate-stderr hp list --pid abc
	assert_error_line abc
}

@test "a timeout that is not a number is a usage error naming it" {
	start_target simple
	run -2 --separate-stderr hp apply --pid "$TARGET_PID" --timeout soon "$HP_PATCHES/compute_v1.so"
	assert_error_line soon
	assert_target_untouched "$TARGET_PID"
}

@test "an unknown option is a usage error naming it and leaves the target untouched" {
	start_target simple
	run -2 --separate-stderr hp apply --pid "$TARGET_PID" --bogus "$HP_PATCHES/compute_v1.so"
	assert_error_line --bogus
	assert_target_untouched "$TARGET_PID"
	assert_results "$TARGET_LOG" compute '*2'
}

@test "apply without a patch file is a usage error" {
	start_target simple
	run -2 --separate-stderr hp apply --pid "$TARGET_PID"
	assert_error_line
	assert_target_untouched "$TARGET_PID"
}

@test "a patch file that does not exist is a usage error naming it" {
	start_target simple
	run -2 --separate-stderr hp apply --pid "$TARGET_PID" "$BATS_TEST_TMPDIR/no_such_patch.so"
	assert_error_line no_such_patch.so
	assert_target_untouched "$TARGET_PID"
	assert_results "$TARGET_LOG" compute '*2'
}

@test "check without a patch file is a usage error" {
	start_target simple
	run -2 --separate-stderr hp check --pid "$TARGET_PID"
	assert_error_line
	assert_target_untouched "$TARGET_PID"
}

@test "list takes no patch argument" {
	start_target simple
	run -2 --separate-stderr hp list --pid "$TARGET_PID" extra
	assert_error_line extra
	assert_target_untouched "$TARGET_PID"
}

@test "--help exits 0 and names every command" {
	run -0 --separate-stderr hp --help
	[[ $output == *apply* && $output == *revert* && $output == *list* && $output == *check* ]] ||
		fail "--help says:"$'\n'"$output"
}

@test "--help of each command exits 0 and shows its options" {
	local command
	for command in apply revert list check; do
		run -0 --separate-stderr hp "$command" --help
		[[ $output == *--pid* ]] || fail "$command --help says:"$'\n'"$output"
	done
}

@test "options may follow the positional argument, as in any GNU tool" {
	start_target simple
	run -0 --separate-stderr hp apply "$HP_PATCHES/compute_v1.so" --pid "$TARGET_PID"
	assert_results "$TARGET_LOG" compute '*3'
	run -0 --separate-stderr hp revert --pid "$TARGET_PID" compute_v1 --json
	json_is '.ok == true' '.patch.name == "compute_v1"'
	assert_results "$TARGET_LOG" compute '*2'
}

@test "an option given twice is a usage error naming it, never silently the last" {
	start_target simple
	run -2 --separate-stderr hp list --pid "$TARGET_PID" --pid 1
	assert_error_line "--pid given twice" "$TARGET_PID" "1"
	run -2 --separate-stderr hp apply --pid "$TARGET_PID" --timeout 5 --timeout 6 "$HP_PATCHES/compute_v1.so"
	assert_error_line "--timeout given twice"
	assert_target_untouched "$TARGET_PID"
	assert_results "$TARGET_LOG" compute '*2'
}

@test "COMMAND --help and help COMMAND show that command's own options only" {
	run -0 --separate-stderr hp list --help
	[[ ${lines[0]} == "usage: hotpatch list --pid PID [--json]" ]] || fail "list --help says: $output"
	[[ $output != *--timeout* && $output != *--out* ]] || fail "list --help shows options list does not take"
	run -0 --separate-stderr hp help sign
	[[ ${lines[0]} == "usage: hotpatch sign "* && $output == *--key* && $output != *--pid* ]] ||
		fail "help sign says: $output"
}

@test "a bare hotpatch prints the usage on stderr and exits 2" {
	run -2 --separate-stderr hp
	[[ $stderr == usage:* && $stderr == *apply* && $stderr == *revert* ]] || fail "stderr: $stderr"
	[[ -z $output ]]
}

@test "--json applies to --help and --version too" {
	run -0 --separate-stderr hp --help --json
	json_is '.command == "help"' '.ok == true' '[.commands[].name] | index("apply") != null' \
		'.text | startswith("usage:")'
	run -0 --separate-stderr hp apply --help --json
	json_is '.commands | length == 1' '.commands[0].name == "apply"' \
		'[.commands[0].options[] | select(.required)] | map(.option) == ["--pid PID"]'
	run -0 --separate-stderr hp --json --version
	json_is '.command == "version"' '.version | test("^[0-9]+\\.[0-9]+\\.[0-9]+$")'
}

@test "every option a command's help line shows, the command takes, and no other" {
	local command synopsis_options help_options
	for command in apply revert list check keygen sign build; do
		run -0 --separate-stderr hp "$command" --help --json
		synopsis_options=$(jq -r '.commands[0].synopsis' <<<"$output" | grep -oE -- '(--[a-z-]+|-o)' |
			grep -vx -- --json | sort -u)
		help_options=$(jq -r '.commands[0].options[].option' <<<"$output" | awk '{ print $1 }' | sort -u)
		[[ $synopsis_options == "$help_options" ]] ||
			fail "$command: synopsis shows"$'\n'"$synopsis_options"$'\n'"but takes"$'\n'"$help_options"
	done
}
