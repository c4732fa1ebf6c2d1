# references.bats - patches that use the target's own variables and functions
# (HOTPATCH_SYMBOL), file-local names that several source files use, stripped
# targets with a separate debug file, build-id pinning, and the description
# and ids that list shows.

bats_require_minimum_version 1.5.0
load helpers

setup() { hp_setup; }
teardown() { hp_teardown; }

# read_target_int PID BINARY SYMBOL: the int variable SYMBOL of the running
# PIE executable BINARY, read from the target's memory.
read_target_int() {
	local pid=$1 binary=$2 symbol=$3 value base
	value=$(nm "$binary" | awk -v s="$symbol" '$3 == s {print $1}')
	base=$(awk -v exe="$(readlink -f "$binary")" \
		'$6 == exe && $3 == "00000000" {split($1, a, "-"); print a[1]; exit}' "/proc/$pid/maps")
	[[ -n $value && -n $base ]] || { fail "no $symbol in $binary or no mapping in $pid"; return 1; }
	dd if="/proc/$pid/mem" bs=4 count=1 skip=$((0x$base + 0x$value)) iflag=skip_bytes \
		status=none | od -An -t d4 | tr -d ' '
}

# build_id FILE: the GNU build-id of an ELF file, in hex.
build_id() {
	readelf -n "$1" | awk '/Build ID:/ {print $3}'
}

@test "a patch calls the target's file-local function and reads and writes its globals" {
	# uses_target: compute_calls++ and triple(N) + target_extra * N = 11N.
	start_target simple
	apply_and_wait "$TARGET_PID" "$HP_PATCHES/uses_target.so" "$TARGET_LOG" compute '*11'
	# Both the original and the replacement count in the target's own
	# compute_calls: the patch wrote the target's variable, not a copy.
	local before after
	before=$(read_target_int "$TARGET_PID" "$HP_TESTDATA/targets/simple" compute_calls)
	wait_for_result "$TARGET_LOG" "$(line_count "$TARGET_LOG")" compute '*11'
	after=$(read_target_int "$TARGET_PID" "$HP_TESTDATA/targets/simple" compute_calls)
	[[ -n $before && -n $after ]]
	((after > before)) || fail "compute_calls did not move: $before then $after"
	assert_not_traced "$TARGET_PID"
}

@test "list shows a patch's description and ids, in prose and JSON" {
	start_target simple
	apply_and_wait "$TARGET_PID" "$HP_PATCHES/uses_target.so" "$TARGET_LOG" compute '*11'
	run -0 --separate-stderr hp list --pid "$TARGET_PID"
	[[ $output == *"description: compute through the target's own triple() and target_extra"* ]]
	[[ $output == *"fixes: HP-TEST-1 HP-TEST-2"* ]]
	run -0 --separate-stderr hp list --json --pid "$TARGET_PID"
	json_is '.patches[0].description == "compute through the target'"'"'s own triple() and target_extra"' \
		'.patches[0].ids == ["HP-TEST-1", "HP-TEST-2"]'
}

@test "a symbol the target does not have is refused by name, nothing changed" {
	start_target simple
	run -4 --separate-stderr hp apply --pid "$TARGET_PID" "$HP_PATCHES/missing_symbol.so"
	assert_error_line "no_such_variable" "$TARGET_PID"
	assert_target_untouched "$TARGET_PID"
	assert_results "$TARGET_LOG" compute '*2'
	run -4 --separate-stderr hp check --pid "$TARGET_PID" "$HP_PATCHES/missing_symbol.so"
	assert_error_line "no_such_variable"
}

@test "an ambiguous file-local name is refused, naming its source files" {
	start_target twofiles
	run -4 --separate-stderr hp apply --pid "$TARGET_PID" "$HP_PATCHES/ambiguous_scale.so"
	assert_error_line "scale" "ambiguous" "twofiles.c" "twofiles_part.c"
	[[ $stderr == *HOTPATCH_SYMBOL_FROM* ]]
	run -4 --separate-stderr hp apply --pid "$TARGET_PID" "$HP_PATCHES/ambiguous_step.so"
	assert_error_line "step" "ambiguous" "twofiles.c" "twofiles_part.c"
	[[ $stderr == *HOTPATCH_REPLACE_FROM* ]]
	assert_target_untouched "$TARGET_PID"
	assert_results "$TARGET_LOG" compute '*2'
}

@test "the source file picks one of two file-local functions of the same name" {
	start_target twofiles
	apply_and_wait "$TARGET_PID" "$HP_PATCHES/part_scale.so" "$TARGET_LOG" compute '*5'
	apply_and_wait "$TARGET_PID" "$HP_PATCHES/part_step.so" "$TARGET_LOG" adjust '+2'
	run -0 --separate-stderr hp revert --pid "$TARGET_PID" part_step
	wait_for_result "$TARGET_LOG" "$(line_count "$TARGET_LOG")" adjust '+1'
	assert_results "$TARGET_LOG" compute '*5'
	assert_not_traced "$TARGET_PID"
}

@test "a stripped target's file-local names come from its debug file, found by build-id" {
	local id debug
	start_target twofiles_stripped
	# No debug file: the error says which one to install.
	export HOTPATCH_DEBUG_DIR=$BATS_TEST_TMPDIR/debug
	id=$(build_id "$HP_TESTDATA/targets/twofiles_stripped")
	[[ -n $id ]]
	run -4 --separate-stderr hp apply --pid "$TARGET_PID" "$HP_PATCHES/part_scale.so"
	assert_error_line "twofiles_stripped is stripped" "$HOTPATCH_DEBUG_DIR/${id:0:2}/${id:2}.debug"
	assert_target_untouched "$TARGET_PID"
	# Installed: both a reference and a replacement of a file-local function.
	debug=$HOTPATCH_DEBUG_DIR/${id:0:2}
	mkdir -p "$debug"
	cp "$HP_TESTDATA/targets/twofiles_stripped.debug" "$debug/${id:2}.debug"
	apply_and_wait "$TARGET_PID" "$HP_PATCHES/part_scale.so" "$TARGET_LOG" compute '*5'
	apply_and_wait "$TARGET_PID" "$HP_PATCHES/part_step.so" "$TARGET_LOG" adjust '+2'
}

@test "a debug file with another build-id is not used" {
	local id debug
	start_target twofiles_stripped
	export HOTPATCH_DEBUG_DIR=$BATS_TEST_TMPDIR/debug
	id=$(build_id "$HP_TESTDATA/targets/twofiles_stripped")
	debug=$HOTPATCH_DEBUG_DIR/${id:0:2}
	mkdir -p "$debug"
	# The simple target's symbols under the stripped target's build-id.
	cp "$HP_TESTDATA/targets/simple" "$debug/${id:2}.debug"
	run -4 --separate-stderr hp apply --pid "$TARGET_PID" "$HP_PATCHES/part_scale.so"
	assert_error_line "twofiles_stripped is stripped"
	assert_target_untouched "$TARGET_PID"
}

@test "a patch pinned to another build-id is refused, naming both" {
	local id
	start_target simple
	id=$(build_id "$HP_TESTDATA/targets/simple")
	run -4 --separate-stderr hp apply --pid "$TARGET_PID" "$HP_PATCHES/pinned_other.so"
	assert_error_line "0123456789abcdef0123456789abcdef01234567" "$id"
	assert_target_untouched "$TARGET_PID"
	run -4 --separate-stderr hp check --pid "$TARGET_PID" "$HP_PATCHES/pinned_other.so"
	assert_error_line "0123456789abcdef0123456789abcdef01234567" "$id"
}

@test "a patch pinned to the target's build-id applies" {
	start_target simple
	apply_and_wait "$TARGET_PID" "$HP_PATCHES/pinned_simple.so" "$TARGET_LOG" compute '*13'
	# The same patch does not fit another build of the program.
	start_target simple_nopie
	run -4 --separate-stderr hp apply --pid "$TARGET_PID" "$HP_PATCHES/pinned_simple.so"
	assert_error_line "$(build_id "$HP_TESTDATA/targets/simple")" \
		"$(build_id "$HP_TESTDATA/targets/simple_nopie")"
}

@test "a patch of a library uses the library's own global and file-local variables" {
	start_target with_lib
	apply_and_wait "$TARGET_PID" "$HP_PATCHES/lib_symbols.so" "$TARGET_LOG" demo '+26'
	assert_not_traced "$TARGET_PID"
}

@test "a patch that forgets HOTPATCH_SYMBOL is told to use it, nothing changed" {
	start_target simple
	run -4 --separate-stderr hp apply --pid "$TARGET_PID" "$HP_PATCHES/undeclared_symbol.so"
	assert_error_line "undefined symbol: triple" "HOTPATCH_SYMBOL"
	assert_target_untouched "$TARGET_PID"
	assert_results "$TARGET_LOG" compute '*2'
}

@test "check and apply name the target's symbols a patch uses, and where they are" {
	local address
	start_target twofiles
	run -0 --separate-stderr hp check --pid "$TARGET_PID" "$HP_PATCHES/part_scale.so"
	[[ $output =~ uses\ scale\ of\ twofiles_part\.c\ at\ 0x[0-9a-f]+ ]] || fail "check printed:"$'\n'"$output"
	run -0 --separate-stderr hp apply --json --pid "$TARGET_PID" "$HP_PATCHES/part_scale.so"
	json_is '.patch.references | length == 1' \
		'.patch.references[0] | .symbol == "scale" and .file == "twofiles_part.c" and .object == ""'
	# The address is the part's scale(): where nm puts it, plus the load bias.
	address=$(jq -r '.patch.references[0].address' <<<"$output")
	local value base
	value=$(nm "$HP_TESTDATA/targets/twofiles" | awk '$2 == "t" && $3 == "scale" {print $1}' | while read -r v; do
		addr2line -e "$HP_TESTDATA/targets/twofiles" "0x$v" | grep -q twofiles_part && echo "$v"; done)
	base=$(awk -v exe="$(readlink -f "$HP_TESTDATA/targets/twofiles")" \
		'$6 == exe && $3 == "00000000" {split($1, a, "-"); print a[1]; exit}' "/proc/$TARGET_PID/maps")
	[[ -n $value && -n $base ]]
	(( address == 0x$base + 0x$value )) || fail "reported $address, expected 0x$base + 0x$value"
}
