#!/usr/bin/env bats
# json.bats - with --json every command prints exactly one JSON document on
# stdout, for success and failure alike; checked key by key with jq.

bats_require_minimum_version 1.5.0
load helpers

setup() { hp_setup; }
teardown() { hp_teardown; }

# The keys and types every patch object has (apply, revert, check, list).
PATCH_SHAPE='(.name | type == "string") and (.state | type == "string")
	and (.functions | type == "array" and length > 0)
	and all(.functions[]; (.object | type == "string") and (.function | type == "string")
		and (.address | test("^0x[0-9a-f]+$")) and (.replacement | test("^0x[0-9a-f]+$"))
		and (.jump == "direct" or .jump == "indirect" or .jump == "trampoline" or .jump == "gate"))'

# The keys and types of every failure document.
FAILURE_SHAPE='.ok == false and (.exit_code | type == "number") and (.pid | type == "number")
	and (.error | type == "object") and (.error.message | type == "string" and length > 0)'

@test "apply --json reports the patch, its functions and the figures of the run" {
	local address
	start_target simple
	run -0 --separate-stderr hp apply --json --pid "$TARGET_PID" "$HP_PATCHES/two_functions.so"
	address=$(function_address "$TARGET_PID" "$HP_TESTDATA/targets/simple" compute)
	json_is '.command == "apply"' '.ok == true' '.exit_code == 0' ".pid == $TARGET_PID" \
		".patch | $PATCH_SHAPE" \
		'.patch.name == "two_functions"' '.patch.state == "applied"' \
		'.patch.functions | length == 2' \
		'[.patch.functions[].function] | sort == ["adjust", "compute"]' \
		'all(.patch.functions[]; .object == "")' \
		".patch.functions[] | select(.function == \"compute\") | .address == \"$address\"" \
		'.attempts | type == "number" and . >= 1' \
		'.threads == 1' \
		'.blackout_us | type == "number" and . >= 0' \
		'.elapsed_ms | type == "number" and . >= 0'
	# The replacements live in the patch the target loaded.
	for replacement in $(jq -r '.patch.functions[].replacement' <<<"$output"); do
		in_patch_mapping "$TARGET_PID" two_functions "$replacement" ||
			fail "replacement $replacement is not in the patch mapping"
	done
	wait_for_result "$TARGET_LOG" 0 compute '*4'
}

@test "apply --json counts every thread of the target" {
	start_target threads 8
	run -0 --separate-stderr hp apply --json --pid "$TARGET_PID" "$HP_PATCHES/hot_v2.so"
	json_is '.ok == true' '.threads >= 9' '.patch.functions[0].function == "hot"'
}

@test "list --json prints an empty patches array for a process never patched" {
	start_target simple
	run -0 --separate-stderr hp list --json --pid "$TARGET_PID"
	json_is '.command == "list"' '.ok == true' '.exit_code == 0' ".pid == $TARGET_PID" \
		'.patches == []'
}

@test "list --json prints the patches newest first" {
	start_target simple
	apply_and_wait "$TARGET_PID" "$HP_PATCHES/compute_v1.so" "$TARGET_LOG" compute '*3'
	apply_and_wait "$TARGET_PID" "$HP_PATCHES/named.so" "$TARGET_LOG" compute '*7'
	run -0 --separate-stderr hp list --json --pid "$TARGET_PID"
	json_is '.command == "list"' '.ok == true' \
		"all(.patches[]; $PATCH_SHAPE)" \
		'[.patches[].name] == ["fix-compute-7", "compute_v1"]' \
		'.patches[0].functions[0].function == "compute"' \
		'.patches[0].functions[0].object == ""'
}

@test "revert --json reports the patch it took out" {
	start_target simple
	apply_and_wait "$TARGET_PID" "$HP_PATCHES/compute_v1.so" "$TARGET_LOG" compute '*3'
	run -0 --separate-stderr hp revert --json --pid "$TARGET_PID"
	json_is '.command == "revert"' '.ok == true' '.exit_code == 0' ".pid == $TARGET_PID" \
		'.patch.name == "compute_v1"' '.patch.functions[0].function == "compute"'
}

@test "check --json reports the functions it would replace" {
	start_target simple
	run -0 --separate-stderr hp check --json --pid "$TARGET_PID" "$HP_PATCHES/compute_v1.so"
	json_is '.command == "check"' '.ok == true' '.exit_code == 0' ".pid == $TARGET_PID" \
		'.patch.name == "compute_v1"' '.patch.functions[0].function == "compute"' \
		'.patch.functions[0].jump == "direct" or .patch.functions[0].jump == "indirect" or .patch.functions[0].jump == "trampoline" or .patch.functions[0].jump == "gate"'
	assert_target_untouched "$TARGET_PID"
}

@test "a refused patch gives a JSON failure with exit_code 4 and the error line on stderr" {
	start_target simple
	run -4 --separate-stderr hp apply --json --pid "$TARGET_PID" "$HP_PATCHES/missing_function.so"
	json_is "$FAILURE_SHAPE" '.command == "apply"' '.exit_code == 4' ".pid == $TARGET_PID" \
		'.error.function == "no_such_function"'
	assert_error_line no_such_function
	assert_target_untouched "$TARGET_PID"
}

@test "a file that is not a patch gives a JSON failure naming the file" {
	start_target simple
	run -4 --separate-stderr hp apply --json --pid "$TARGET_PID" "$HP_PATCHES/garbage.so"
	json_is "$FAILURE_SHAPE" '.exit_code == 4' '.error.file | test("garbage\\.so")'
	assert_target_untouched "$TARGET_PID"
}

@test "a busy failure gives JSON with exit_code 3, the thread id and the function" {
	local tid
	start_target stuck
	tid=$(sed -n 's/^ready .*stuck_tid=\([0-9]*\).*/\1/p' "$TARGET_LOG")
	run -3 --separate-stderr hp apply --json --pid "$TARGET_PID" --timeout 1 "$HP_PATCHES/stuck_fix.so"
	json_is "$FAILURE_SHAPE" '.exit_code == 3' ".error.tid == $tid" \
		'.error.function == "stuck_forever"' \
		'(.error.hint // "") | type == "string"'
	assert_target_untouched "$TARGET_PID"
}

@test "a dead pid gives a JSON failure with exit_code 1" {
	local pid
	pid=$(dead_pid)
	run -1 --separate-stderr hp list --json --pid "$pid"
	json_is "$FAILURE_SHAPE" '.command == "list"' '.exit_code == 1' ".pid == $pid"
	run -1 --separate-stderr hp apply --json --pid "$pid" "$HP_PATCHES/compute_v1.so"
	json_is "$FAILURE_SHAPE" '.command == "apply"' '.exit_code == 1' ".pid == $pid"
}

@test "a usage error after --json still prints one JSON failure with exit_code 2" {
	run -2 --separate-stderr hp apply --json --pid 12abc "$HP_PATCHES/compute_v1.so"
	json_is '.ok == false' '.exit_code == 2' '.error.message | type == "string" and length > 0'
	assert_error_line 12abc
}
