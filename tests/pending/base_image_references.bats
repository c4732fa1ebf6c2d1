# Pending, issue 4: references from a patch into the base image (file-local
# functions and globals of the target).  Not part of `make check` until the
# engine resolves such references; run it with `bats tests/pending`.

bats_require_minimum_version 1.5.0
load ../helpers

setup() { hp_setup; }
teardown() { hp_teardown; }

@test "a patch can call the target's file-local functions and use its globals" {
	# uses_target.so leaves triple(), target_extra and compute_calls undefined;
	# the tool resolves them from the target's symbol table: 3N + 8N.
	start_target simple
	apply_and_wait "$TARGET_PID" "$HP_PATCHES/uses_target.so" "$TARGET_LOG" compute '*11'
	assert_not_traced "$TARGET_PID"
}
