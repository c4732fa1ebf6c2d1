#!/usr/bin/env bats
# trust.bats - only authorised patches load: a patch file that someone else
# could have written is refused; signatures made with `hotpatch keygen` and
# `hotpatch sign` are checked against the trusted keys, required by
# --require-signature or by the system-wide policy file, and a bad one is
# refused always; every apply and revert leaves one audit record.  The test
# build reads its policy from HOTPATCH_CONFIG_DIR and sends the audit record
# to the unix datagram socket HOTPATCH_AUDIT_SOCKET.

bats_require_minimum_version 1.5.0
load helpers
load audit

setup() {
	hp_setup
	chmod go-w "$BATS_TEST_TMPDIR"
	CONFIG=$BATS_TEST_TMPDIR/config
	PATCH_DIR=$BATS_TEST_TMPDIR/patches
	KEY_DIR=$BATS_TEST_TMPDIR/keys
	mkdir -p "$CONFIG/keys" "$PATCH_DIR" "$KEY_DIR"
	chmod 0755 "$CONFIG" "$CONFIG/keys" "$PATCH_DIR"
	chmod 0700 "$KEY_DIR"
	export HOTPATCH_CONFIG_DIR=$CONFIG
}

teardown() { hp_teardown; }

# patch_copy PATCH [NAME]: a copy of testdata's PATCH in PATCH_DIR, mode
# 0644, owned by root.  Prints its path.
patch_copy() {
	local copy=$PATCH_DIR/${2:-$1}
	install -m 0644 -o root -g root "$HP_PATCHES/$1" "$copy"
	echo "$copy"
}

# make_key NAME: a key pair KEY_DIR/NAME.key and NAME.pub.
make_key() {
	run -0 --separate-stderr hp keygen --out "$KEY_DIR/$1"
}

# trust_key NAME: installs NAME.pub among the trusted keys.
trust_key() {
	install -m 0644 "$KEY_DIR/$1.pub" "$CONFIG/keys/$1.pub"
}

# sign_patch KEY PATCH: writes PATCH.sig.
sign_patch() {
	run -0 --separate-stderr hp sign --key "$KEY_DIR/$1.key" "$2"
}

# key_id NAME: the id of key NAME (the first 16 hex digits of its public key).
key_id() {
	awk '$1 == "hotpatch-public-key-v1" { print substr($3, 1, 16) }' "$KEY_DIR/$1.pub"
}

# assert_refused_untouched: the target was left as it was, running the old code.
assert_refused_untouched() {
	assert_target_untouched "$TARGET_PID"
	assert_no_patches "$TARGET_PID"
	assert_results "$TARGET_LOG" compute '*2'
}

@test "a patch writable by its group or by others is refused with exit 4 and the target is untouched" {
	local patch mode
	start_target simple
	patch=$(patch_copy compute_v1.so)
	for mode in 0664 0646; do
		chmod "$mode" "$patch"
		run -4 --separate-stderr hp apply --pid "$TARGET_PID" "$patch"
		assert_error_line "$patch" "writable by group or others" "chmod go-w"
		run -4 --separate-stderr hp check --pid "$TARGET_PID" --json "$patch"
		assert_error_line "$patch" "writable by group or others"
		json_is '.exit_code == 4' ".error.file == \"$patch\""
		assert_refused_untouched
	done
}

@test "a patch owned by another user than root or the target's owner is refused with exit 4" {
	local patch
	start_target simple
	patch=$(patch_copy compute_v1.so)
	chown nobody "$patch"
	run -4 --separate-stderr hp apply --pid "$TARGET_PID" "$patch"
	assert_error_line "$patch" "owned by nobody" "chown root"
	assert_refused_untouched
}

@test "a patch owned by the user the target runs as is accepted" {
	local patch mark
	TARGET_LOG=$BATS_TEST_TMPDIR/simple-as-nobody.log
	setpriv --reuid=nobody --regid=nogroup --clear-groups "$HP_TESTDATA/targets/simple" \
		</dev/null >"$TARGET_LOG" 2>&1 3>&- &
	TARGET_PID=$!
	HP_STARTED_PIDS+=("$TARGET_PID")
	wait_for_line "$TARGET_LOG" "^ready pid=$TARGET_PID"
	patch=$(patch_copy compute_v1.so)
	chown nobody "$patch"
	mark=$(line_count "$TARGET_LOG")
	run -0 --separate-stderr hp apply --pid "$TARGET_PID" "$patch"
	wait_for_result "$TARGET_LOG" "$mark" compute '*3'
	assert_not_traced "$TARGET_PID"
}

@test "a patch in a directory writable by others is refused, unless the directory is sticky" {
	local patch mark
	start_target simple
	patch=$(patch_copy compute_v1.so)
	chmod 0777 "$PATCH_DIR"
	run -4 --separate-stderr hp apply --pid "$TARGET_PID" "$patch"
	assert_error_line "$patch" "directory $PATCH_DIR is writable by group or others"
	assert_refused_untouched
	chmod 1777 "$PATCH_DIR"
	apply_and_wait "$TARGET_PID" "$patch" "$TARGET_LOG" compute '*3'
}

@test "a directory given as the patch is refused with exit 4 as not a regular file" {
	start_target simple
	mkdir -m 0755 "$PATCH_DIR/fix.so"
	run -4 --separate-stderr hp apply --pid "$TARGET_PID" "$PATCH_DIR/fix.so"
	assert_error_line "$PATCH_DIR/fix.so" "not a regular file"
	assert_refused_untouched
}

@test "a patch signed by a trusted key applies under --require-signature" {
	local patch mark
	start_target simple
	make_key release
	trust_key release
	patch=$(patch_copy compute_v1.so)
	sign_patch release "$patch"
	[[ -f $patch.sig ]] || fail "no $patch.sig"
	run -0 --separate-stderr hp check --pid "$TARGET_PID" --require-signature --json "$patch"
	json_is ".patch_file.signer == \"$(key_id release)\"" \
		".patch_file.sha256 == \"$(sha256sum "$patch" | cut -c1-64)\""
	mark=$(line_count "$TARGET_LOG")
	run -0 --separate-stderr hp apply --pid "$TARGET_PID" --require-signature "$patch"
	wait_for_result "$TARGET_LOG" "$mark" compute '*3'
	assert_results "$TARGET_LOG" compute '*3'
	assert_patch_mapped "$TARGET_PID" compute_v1
	assert_not_traced "$TARGET_PID"
}

@test "an unsigned patch is refused with exit 4 under --require-signature, and applies without it" {
	local patch
	start_target simple
	make_key release
	trust_key release
	patch=$(patch_copy compute_v1.so)
	run -4 --separate-stderr hp apply --pid "$TARGET_PID" --require-signature "$patch"
	assert_error_line "$patch" "is not signed by a trusted key" "hotpatch sign --key"
	run -4 --separate-stderr hp check --pid "$TARGET_PID" --require-signature "$patch"
	assert_error_line "$patch" "is not signed by a trusted key"
	assert_refused_untouched
	run -0 --separate-stderr hp check --pid "$TARGET_PID" --json "$patch"
	json_is '.patch_file.signer == "none"'
	apply_and_wait "$TARGET_PID" "$patch" "$TARGET_LOG" compute '*3'
}

@test "a patch changed after it was signed is refused with exit 4, with or without the policy" {
	local patch
	start_target simple
	make_key release
	trust_key release
	patch=$(patch_copy compute_v1.so)
	sign_patch release "$patch"
	# One byte flipped in the middle; the mode stays 0644.
	python3 -c '
import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(4000); byte = f.read(1); f.seek(4000); f.write(bytes([byte[0] ^ 0xff]))
' "$patch"
	[[ $(stat -c %a "$patch") == 644 ]]
	run -4 --separate-stderr hp apply --pid "$TARGET_PID" "$patch"
	assert_error_line "$patch" "does not match its signature $patch.sig"
	run -4 --separate-stderr hp apply --pid "$TARGET_PID" --require-signature "$patch"
	assert_error_line "$patch" "does not match its signature"
	assert_refused_untouched
}

@test "a patch signed by a key that is not trusted is refused with exit 4, with or without the policy" {
	local patch
	start_target simple
	make_key release
	trust_key release
	make_key stranger
	patch=$(patch_copy compute_v1.so)
	sign_patch stranger "$patch"
	run -4 --separate-stderr hp apply --pid "$TARGET_PID" "$patch"
	assert_error_line "$patch" "is not signed by a trusted key" "$(key_id stranger)" "$CONFIG/keys"
	run -4 --separate-stderr hp apply --pid "$TARGET_PID" --require-signature "$patch"
	assert_error_line "$patch" "is not signed by a trusted key" "$(key_id stranger)"
	assert_refused_untouched
}

@test "a damaged signature file is refused with exit 4" {
	local patch
	start_target simple
	patch=$(patch_copy compute_v1.so)
	echo "hotpatch-signature-v1 ed25519 0123" >"$patch.sig"
	chmod 0644 "$patch.sig"
	run -4 --separate-stderr hp apply --pid "$TARGET_PID" "$patch"
	assert_error_line "$patch.sig" "damaged"
	assert_refused_untouched
}

@test "the system-wide policy file requires a signature of every patch" {
	local patch signed
	start_target simple
	make_key release
	trust_key release
	touch "$CONFIG/require-signature"
	patch=$(patch_copy compute_v1.so)
	signed=$(patch_copy compute_v2.so)
	sign_patch release "$signed"
	run -4 --separate-stderr hp apply --pid "$TARGET_PID" "$patch"
	assert_error_line "$patch" "is not signed by a trusted key" "$CONFIG/require-signature"
	run -4 --separate-stderr hp check --pid "$TARGET_PID" "$patch"
	assert_refused_untouched
	apply_and_wait "$TARGET_PID" "$signed" "$TARGET_LOG" compute '*5'
}

@test "trusted keys and the policy count only while only root can change them" {
	local patch
	start_target simple
	make_key release
	trust_key release
	patch=$(patch_copy compute_v1.so)
	sign_patch release "$patch"
	chmod 0666 "$CONFIG/keys/release.pub"
	run -4 --separate-stderr hp apply --pid "$TARGET_PID" "$patch"
	assert_error_line "$CONFIG/keys/release.pub" "writable by group or others"
	chmod 0644 "$CONFIG/keys/release.pub"
	chmod 0777 "$CONFIG"
	run -4 --separate-stderr hp apply --pid "$TARGET_PID" "$patch"
	assert_error_line "directory $CONFIG is writable by group or others"
	assert_refused_untouched
}

@test "keygen writes a private secret key and a public key, and never overwrites them" {
	local before
	make_key release
	[[ $(stat -c '%a %U' "$KEY_DIR/release.key") == "600 root" ]] || fail "release.key is $(stat -c '%a %U' "$KEY_DIR/release.key")"
	[[ $(stat -c %a "$KEY_DIR/release.pub") == 644 ]]
	grep -Eq '^hotpatch-public-key-v1 ed25519 [0-9a-f]{64}$' "$KEY_DIR/release.pub"
	grep -Eq '^hotpatch-secret-key-v1 ed25519 [0-9a-f]{128}$' "$KEY_DIR/release.key"
	[[ $output == *"$(key_id release)"* ]] || fail "keygen says: $output"
	before=$(cat "$KEY_DIR/release.key")
	run -2 --separate-stderr hp keygen --out "$KEY_DIR/release"
	assert_error_line "$KEY_DIR/release.key" "exists already"
	[[ $(cat "$KEY_DIR/release.key") == "$before" ]] || fail "keygen overwrote the secret key"
	run -2 --separate-stderr hp keygen
	assert_error_line "keygen needs --out PREFIX"
}

@test "sign writes one line naming the key, and refuses a secret key others can read" {
	local patch
	make_key release
	patch=$(patch_copy compute_v1.so)
	run -0 --separate-stderr hp sign --json --key "$KEY_DIR/release.key" "$patch"
	json_is '.ok == true' ".key_id == \"$(key_id release)\"" ".signature == \"$patch.sig\"" \
		".patch_file.sha256 == \"$(sha256sum "$patch" | cut -c1-64)\""
	[[ $(wc -l <"$patch.sig") == 1 ]]
	grep -Eq "^hotpatch-signature-v1 ed25519 $(key_id release) [0-9a-f]{128}\$" "$patch.sig"
	chmod 0644 "$KEY_DIR/release.key"
	run -1 --separate-stderr hp sign --key "$KEY_DIR/release.key" "$patch"
	assert_error_line "$KEY_DIR/release.key" "chmod 600"
	chmod 0600 "$KEY_DIR/release.key"
	run -4 --separate-stderr hp sign --key "$KEY_DIR/release.key" "$HP_PATCHES/garbage.so"
	assert_error_line "garbage.so"
	run -2 --separate-stderr hp sign "$patch"
	assert_error_line "sign needs --key"
}

@test "every apply and revert leaves a started record and a result record, failures too" {
	local patch unsigned sha record
	start_audit_receiver
	start_target simple
	make_key release
	trust_key release
	patch=$(patch_copy compute_v1.so)
	unsigned=$(patch_copy compute_v2.so)
	sign_patch release "$patch"
	sha=$(sha256sum "$patch" | cut -c1-64)

	apply_and_wait "$TARGET_PID" "$patch" "$TARGET_LOG" compute '*3'
	record=$(audit_record 1)
	assert_audit "$record" command=apply result=started uid=0 pid="$TARGET_PID" comm=simple \
		patch="$patch"
	audit_value "$record" hotpatch_pid >/dev/null
	record=$(audit_record 2)
	assert_audit "$record" command=apply result=ok exit=0 uid=0 pid="$TARGET_PID" comm=simple \
		patch="$patch" name=compute_v1 sha256="$sha" signer="$(key_id release)" \
		message="applied compute_v1 in pid $TARGET_PID"
	audit_value "$record" loginuid >/dev/null

	run -4 --separate-stderr hp apply --pid "$TARGET_PID" --require-signature "$unsigned"
	record=$(audit_record 4)
	assert_audit "$(audit_record 3)" command=apply result=started patch="$unsigned"
	assert_audit "$record" command=apply result=refused exit=4 pid="$TARGET_PID" comm=simple \
		patch="$unsigned" sha256="$(sha256sum "$unsigned" | cut -c1-64)" signer=none
	[[ $(audit_value "$record" message) == "patch $unsigned is not signed by a trusted key"* ]] ||
		fail "the record's message is not the error: $record"

	run -0 --separate-stderr hp revert --pid "$TARGET_PID"
	record=$(audit_record 6)
	assert_audit "$(audit_record 5)" command=revert result=started pid="$TARGET_PID"
	assert_audit "$record" command=revert result=ok exit=0 pid="$TARGET_PID" comm=simple \
		name=compute_v1 patch="$patch"

	run -0 --separate-stderr hp list --pid "$TARGET_PID"
	sleep 0.2
	[[ $(line_count "$AUDIT_LOG") == 6 ]] || fail "list left a record:"$'\n'"$(cat "$AUDIT_LOG")"
}

@test "the command after a killed one names it in its audit record, with what it took back" {
	local patch record killed
	start_audit_receiver
	start_target simple
	patch=$(patch_copy compute_v1.so)
	HOTPATCH_FAULT=kill-after-load run -137 --separate-stderr hp apply --pid "$TARGET_PID" "$patch"
	record=$(audit_record 1)
	assert_audit "$record" command=apply result=started pid="$TARGET_PID" patch="$patch"
	killed=$(audit_value "$record" hotpatch_pid)
	sleep 0.2
	[[ $(line_count "$AUDIT_LOG") == 1 ]] || fail "a killed command sent a result:"$'\n'"$(cat "$AUDIT_LOG")"
	run -0 --separate-stderr hp apply --pid "$TARGET_PID" "$patch"
	record=$(audit_record 3)
	assert_audit "$record" command=apply result=ok interrupted=apply interrupted_pid="$killed" \
		reclaimed=1 leftovers=0
}

@test "an audit record escapes what it quotes: one line whatever the file name" {
	local patch record
	start_audit_receiver
	start_target simple
	patch=$(patch_copy compute_v1.so $'odd "name"\nwith=newline.so')
	chmod g+w "$patch"
	run -4 --separate-stderr hp apply --pid "$TARGET_PID" "$patch"
	record=$(audit_record 2)
	[[ $(line_count "$AUDIT_LOG") == 2 ]] || fail "a record is not one line:"$'\n'"$(cat "$AUDIT_LOG")"
	assert_audit "$(audit_record 1)" command=apply result=started patch="$patch"
	assert_audit "$record" command=apply result=refused exit=4 patch="$patch" sha256=""
	assert_refused_untouched
}
