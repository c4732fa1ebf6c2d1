# debuginfo.bats - a stripped target's debug file from outside
# /usr/lib/debug: --debug-dir, --debug-file, /etc/hotpatch/debug-dirs and a
# debuginfod server (run here on 127.0.0.1), each checked for trust and
# build-id like the default place, and the refusal that says where we looked.

bats_require_minimum_version 1.5.0
load helpers

setup() {
	hp_setup
	DEBUGINFOD_PID=
	# Only the server a test starts: never the network, never the host's.
	unset DEBUGINFOD_URLS DEBUGINFOD_PROGRESS DEBUGINFOD_VERBOSE
	export DEBUGINFOD_CACHE_PATH=$BATS_TEST_TMPDIR/debuginfod-cache
	# The test build reads these: an empty default place, no configuration.
	export HOTPATCH_DEBUG_DIR=$BATS_TEST_TMPDIR/default
	export HOTPATCH_CONFIG_DIR=$BATS_TEST_TMPDIR/etc
	mkdir -p "$HOTPATCH_DEBUG_DIR" "$HOTPATCH_CONFIG_DIR"
	STRIPPED=$HP_TESTDATA/targets/twofiles_stripped
	DEBUG_FILE=$HP_TESTDATA/targets/twofiles_stripped.debug
	ID=$(build_id "$STRIPPED")
	[[ ${#ID} -ge 4 ]] || { fail "no build-id in $STRIPPED"; return 1; }
}

teardown() {
	if [[ -n $DEBUGINFOD_PID ]]; then
		kill -KILL "$DEBUGINFOD_PID" 2>/dev/null || true
		wait "$DEBUGINFOD_PID" 2>/dev/null || true
	fi
	hp_teardown
}

# build_id FILE: the GNU build-id of an ELF file, in hex.
build_id() {
	readelf -n "$1" | awk '/Build ID:/ {print $3}'
}

# install_by_build_id DIR FILE: FILE as DIR/.build-id/xx/rest.debug.
install_by_build_id() {
	mkdir -p "$1/.build-id/${ID:0:2}"
	cp "$2" "$1/.build-id/${ID:0:2}/${ID:2}.debug"
}

# apply_with PID PATCH NAME RELATION OPTION...: apply with OPTIONs and
# wait until the target shows the replacement's results.
apply_with() {
	local pid=$1 patch=$2 name=$3 relation=$4 mark
	shift 4
	mark=$(line_count "$TARGET_LOG")
	run -0 --separate-stderr hp apply --pid "$pid" "$@" "$patch" || return 1
	wait_for_result "$TARGET_LOG" "$mark" "$name" "$relation" || return 1
	assert_results "$TARGET_LOG" "$name" "$relation"
}

# start_debuginfod DIR: a debuginfod serving the ELF files under DIR on
# 127.0.0.1, on a free port; waits (bounded) until it serves the stripped
# target's debug file.  Sets DEBUGINFOD_PID and DEBUGINFOD_URLS.
start_debuginfod() {
	local dir=$1 port attempt i code log=$BATS_TEST_TMPDIR/debuginfod.log

	command -v debuginfod >/dev/null ||
		{ fail "no debuginfod: run scripts/install-deps (Debian package debuginfod)"; return 1; }
	# A port just seen free may be taken before the server binds it: retry.
	for attempt in 1 2 3; do
		port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
		debuginfod -F -t 0 -p "$port" -d "$BATS_TEST_TMPDIR/debuginfod-$attempt.sqlite" \
			"$dir" >"$log" 2>&1 &
		DEBUGINFOD_PID=$!
		for ((i = 0; i < 300; i++)); do
			kill -0 "$DEBUGINFOD_PID" 2>/dev/null || break
			code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 \
				"http://127.0.0.1:$port/buildid/$ID/debuginfo" || true)
			if [[ $code == 200 ]]; then
				export DEBUGINFOD_URLS=http://127.0.0.1:$port
				return 0
			fi
			sleep 0.1
		done
		kill -KILL "$DEBUGINFOD_PID" 2>/dev/null || true
		wait "$DEBUGINFOD_PID" 2>/dev/null || true
		DEBUGINFOD_PID=
	done
	fail "debuginfod never served build-id $ID:"$'\n'"$(tail -n 20 "$log")"
}

@test "a debug file under --debug-dir names a stripped target's file-local functions; without it apply says where it looked" {
	local dir=$BATS_TEST_TMPDIR/symbols
	start_target twofiles_stripped
	mkdir -p "$dir"
	run -4 --separate-stderr hp apply --pid "$TARGET_PID" --debug-dir "$dir" \
		"$HP_PATCHES/part_scale.so"
	assert_error_line "twofiles_stripped is stripped" "--debug-dir"
	[[ $stderr == *"looked for the debug file of build-id $ID"* ]] || fail "no build-id:"$'\n'"$stderr"
	[[ $stderr == *"--debug-dir $dir/.build-id/${ID:0:2}/${ID:2}.debug: absent"* ]] ||
		fail "the --debug-dir place is not named:"$'\n'"$stderr"
	[[ $stderr == *"default $HOTPATCH_DEBUG_DIR/${ID:0:2}/${ID:2}.debug: absent"* ]] ||
		fail "the default place is not named:"$'\n'"$stderr"
	[[ $stderr == *"debuginfod: DEBUGINFOD_URLS not set"* ]] || fail "debuginfod not named:"$'\n'"$stderr"
	assert_target_untouched "$TARGET_PID"
	assert_results "$TARGET_LOG" compute '*2'

	install_by_build_id "$dir" "$DEBUG_FILE"
	# The same apply without the option still finds nothing.
	run -4 --separate-stderr hp apply --pid "$TARGET_PID" "$HP_PATCHES/part_scale.so"
	assert_error_line "twofiles_stripped is stripped"
	assert_target_untouched "$TARGET_PID"
	apply_with "$TARGET_PID" "$HP_PATCHES/part_scale.so" compute '*5' --debug-dir "$dir"
	assert_not_traced "$TARGET_PID"
}

@test "a debug file named after the object in a --debug-dir, or given with --debug-file, is used" {
	local flat=$BATS_TEST_TMPDIR/flat
	start_target twofiles_stripped
	mkdir -p "$flat"
	cp "$DEBUG_FILE" "$flat/twofiles_stripped.debug"
	run -0 --separate-stderr hp check --pid "$TARGET_PID" --debug-dir "$flat" \
		"$HP_PATCHES/part_scale.so"
	# One --debug-file among others of other objects: its build-id picks it.
	apply_with "$TARGET_PID" "$HP_PATCHES/part_step.so" adjust '+2' \
		--debug-file "$HP_TESTDATA/targets/simple" --debug-file "$DEBUG_FILE"
}

@test "a debug file of another build-id in a --debug-dir is ignored, with a note" {
	local dir=$BATS_TEST_TMPDIR/symbols other
	other=$(build_id "$HP_TESTDATA/targets/simple")
	start_target twofiles_stripped
	# The simple target's symbols where the stripped target's would be.
	install_by_build_id "$dir" "$HP_TESTDATA/targets/simple"
	cp "$HP_TESTDATA/targets/simple" "$dir/twofiles_stripped.debug"
	run -4 --separate-stderr hp apply --pid "$TARGET_PID" --debug-dir "$dir" \
		--debug-file "$HP_TESTDATA/targets/simple" "$HP_PATCHES/part_scale.so"
	assert_error_line "twofiles_stripped is stripped"
	for place in "--debug-file $HP_TESTDATA/targets/simple" \
		"--debug-dir $dir/.build-id/${ID:0:2}/${ID:2}.debug" \
		"--debug-dir $dir/twofiles_stripped.debug"; do
		[[ $stderr == *"$place: ignored: its build-id is $other"* ]] ||
			fail "no note on $place:"$'\n'"$stderr"
	done
	assert_target_untouched "$TARGET_PID"
	assert_results "$TARGET_LOG" compute '*2'
}

@test "a debug file others could have written is refused like a patch" {
	local dir=$BATS_TEST_TMPDIR/symbols
	start_target twofiles_stripped
	install_by_build_id "$dir" "$DEBUG_FILE"
	chmod g+w "$dir/.build-id/${ID:0:2}/${ID:2}.debug"
	run -4 --separate-stderr hp apply --pid "$TARGET_PID" --debug-dir "$dir" \
		"$HP_PATCHES/part_scale.so"
	assert_error_line "twofiles_stripped is stripped"
	[[ $stderr == *"${ID:2}.debug: refused: "*"writable by group or others"* ]] ||
		fail "the refusal is not named:"$'\n'"$stderr"
	assert_target_untouched "$TARGET_PID"
}

@test "the directories /etc/hotpatch/debug-dirs lists are searched too" {
	local dir=$BATS_TEST_TMPDIR/symbols
	start_target twofiles_stripped
	install_by_build_id "$dir" "$DEBUG_FILE"
	printf '# build artefacts\n\n%s\n' "$dir" >"$HOTPATCH_CONFIG_DIR/debug-dirs"
	apply_with "$TARGET_PID" "$HP_PATCHES/part_scale.so" compute '*5'
}

@test "a --debug-dir or --debug-file that does not exist is a usage error, and revert takes neither" {
	start_target twofiles_stripped
	run -2 --separate-stderr hp apply --pid "$TARGET_PID" --debug-dir "$BATS_TEST_TMPDIR/none" \
		"$HP_PATCHES/part_scale.so"
	assert_error_line "--debug-dir" "$BATS_TEST_TMPDIR/none"
	run -2 --separate-stderr hp check --pid "$TARGET_PID" --debug-file "$BATS_TEST_TMPDIR" \
		"$HP_PATCHES/part_scale.so"
	assert_error_line "--debug-file" "$BATS_TEST_TMPDIR"
	run -2 --separate-stderr hp revert --pid "$TARGET_PID" --debug-dir "$BATS_TEST_TMPDIR"
	assert_error_line "revert takes no --debug-dir"
	assert_target_untouched "$TARGET_PID"
}

@test "a debuginfod server on 127.0.0.1 provides the debug file when nothing local has it" {
	local served=$BATS_TEST_TMPDIR/served
	mkdir -p "$served"
	cp "$DEBUG_FILE" "$served/"
	start_debuginfod "$served"
	mkdir -m 0700 "$DEBUGINFOD_CACHE_PATH"
	start_target twofiles_stripped
	apply_with "$TARGET_PID" "$HP_PATCHES/part_scale.so" compute '*5'
	# Downloaded into our cache, where the next command finds it.
	[[ -s $DEBUGINFOD_CACHE_PATH/$ID/debuginfo ]] || fail "nothing in the cache"
	apply_with "$TARGET_PID" "$HP_PATCHES/part_step.so" adjust '+2'
}

@test "a debuginfod download in a cache others could write to is refused, and the server is named" {
	local served=$BATS_TEST_TMPDIR/served
	mkdir -p "$served"
	cp "$DEBUG_FILE" "$served/"
	start_debuginfod "$served"
	mkdir -m 0777 "$DEBUGINFOD_CACHE_PATH"
	start_target twofiles_stripped
	run -4 --separate-stderr hp apply --pid "$TARGET_PID" "$HP_PATCHES/part_scale.so"
	assert_error_line "twofiles_stripped is stripped"
	[[ $stderr == *"debuginfod: "*"refused: "*"writable by group or others"* ]] ||
		fail "the refused download is not named:"$'\n'"$stderr"
	[[ $stderr == *"($DEBUGINFOD_URLS)"* || $stderr == *"$DEBUGINFOD_CACHE_PATH/$ID/debuginfo"* ]] ||
		fail "neither the server nor its download is named:"$'\n'"$stderr"
	assert_target_untouched "$TARGET_PID"
}
