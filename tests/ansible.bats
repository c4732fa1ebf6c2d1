#!/usr/bin/env bats
# ansible.bats - contrib/ansible's role, run by ansible-playbook as an
# operator runs it: against localhost (connection local) and against hosts
# made on this machine (hosts.bash: each its own network, PID and mount
# namespaces, sshd, store and targets).  The install play patches every
# target and reports per host; run again it changes nothing; a host where a
# process lacks the patch fails; the rollback play takes it out everywhere.
# Every test pins its patch to a program with a build-id of its own, so that
# nothing else on the machine fits it.

bats_require_minimum_version 1.5.0
load helpers
load hosts

PLAYBOOKS=${HP_SOURCE:-$BATS_TEST_DIRNAME/..}/contrib/ansible

setup_file() {
	# ansible-core, sshd and the rest; silent when they are there.
	"$HP_SOURCE/scripts/install-deps" --if-missing --ansible >&2
	# Nothing of the machine's or the user's ansible setup, nothing in ~.
	export ANSIBLE_HOME=$BATS_FILE_TMPDIR/ansible
	export ANSIBLE_CONFIG=$BATS_FILE_TMPDIR/ansible.cfg
	export ANSIBLE_LOCAL_TEMP=$ANSIBLE_HOME/tmp
	export ANSIBLE_PYTHON_INTERPRETER=/usr/bin/python3
	export ANSIBLE_PIPELINING=True ANSIBLE_NOCOLOR=1 ANSIBLE_RETRY_FILES_ENABLED=0
	: >"$ANSIBLE_CONFIG"
}

setup() {
	hp_setup
	# Per test, so that no ssh connection outlives its test's hosts.
	export ANSIBLE_SSH_CONTROL_PATH_DIR=$BATS_TEST_TMPDIR/cp
	private_program
}

teardown() {
	local socket

	for socket in "$ANSIBLE_SSH_CONTROL_PATH_DIR"/*; do
		[[ -S $socket ]] && hosts_controller ssh -o ControlPath="$socket" -O exit host 2>/dev/null || true
	done
	hosts_remove
	hp_teardown
}

# private_program: a copy of testdata's simple target at $PROGRAM with a
# random build-id, and $FIX, a patch pinned to it (compute -> 13N) named
# ansible_fix; $UNPINNED is the same patch without the pin.
private_program() {
	local offset id
	PROGRAM=$BATS_TEST_TMPDIR/programs/simple
	mkdir -p "${PROGRAM%/*}" "$BATS_TEST_TMPDIR/patches"
	cp "$HP_TESTDATA/targets/simple" "$PROGRAM"
	# The build-id note's descriptor starts 16 bytes into the section.
	offset=$(readelf -SW "$PROGRAM" | sed -n 's/.*\.note\.gnu\.build-id *NOTE *[0-9a-f]* *\([0-9a-f]*\) .*/\1/p')
	[[ -n $offset ]] || { fail "no build-id note in $PROGRAM"; return 1; }
	id=$(head -c 20 /dev/urandom | od -An -tx1 | tr -d ' \n')
	printf "$(sed 's/../\\x&/g' <<<"$id")" |
		dd of="$PROGRAM" bs=1 seek=$((0x$offset + 16)) conv=notrunc status=none
	readelf -n "$PROGRAM" | grep -q "Build ID: $id" || { fail "build-id not rewritten"; return 1; }
	FIX=$BATS_TEST_TMPDIR/patches/ansible_fix.so
	UNPINNED=$BATS_TEST_TMPDIR/patches/unpinned_fix.so
	build_fix "$FIX" ansible_fix "HOTPATCH_BUILD_ID(\"\", \"$id\");"
	build_fix "$UNPINNED" unpinned_fix ""
}

# build_fix OUT NAME PIN: compute -> 13N, named NAME, with the line PIN.
build_fix() {
	local out=$1 name=$2 pin=$3
	cat >"${out%.so}.c" <<-EOF
		#include <hotpatch.h>
		static int compute_fixed(int value) { return 13 * value; }
		HOTPATCH_REPLACE(compute, compute_fixed);
		HOTPATCH_NAME("$name");
		HOTPATCH_ID("CVE-2026-0013");
		$pin
	EOF
	cc -O2 -g -fPIC -shared -Wall -I"$HP_SOURCE/lib/include" -o "$out" "${out%.so}.c"
	chmod 644 "$out"
}

# build_deb OUT PATCH: a Debian package, hotpatch-ansible-fix, that puts
# PATCH at /usr/lib/hotpatch/patches/ansible_fix.so.
build_deb() {
	local out=$1 patch=$2 tree=$BATS_TEST_TMPDIR/deb
	mkdir -p "$tree/DEBIAN" "$tree/usr/lib/hotpatch/patches"
	cp "$patch" "$tree/usr/lib/hotpatch/patches/ansible_fix.so"
	cat >"$tree/DEBIAN/control" <<-EOF
		Package: hotpatch-ansible-fix
		Version: 1.0
		Architecture: all
		Maintainer: hotpatch tests <root@localhost>
		Description: ansible_fix, a live patch for the tests
	EOF
	dpkg-deb --root-owner-group --build "$tree" "$out" >/dev/null
}

# play PLAYBOOK [ARGS...]: ansible-playbook with $INVENTORY, from the
# controller's namespace when there are hosts; output in $output.
play() {
	local playbook=$1 where=()
	shift
	[[ -n ${HOSTS_CONTROLLER:-} ]] && where=(ip netns exec "$HOSTS_CONTROLLER")
	run --separate-stderr timeout -k 5 300 "${where[@]}" \
		ansible-playbook -i "$INVENTORY" "$PLAYBOOKS/$playbook" "$@"
}

# recap_is HOST FIELD=VALUE...: HOST's PLAY RECAP line says each of them.
recap_is() {
	local host=$1 line field
	shift
	line=$(grep -E "^$host +: ok=" <<<"$output") ||
		{ fail "no PLAY RECAP line for $host in:"$'\n'"$output"; return 1; }
	for field; do
		[[ " $line " == *" $field "* ]] || { fail "$host: not $field in: $line"; return 1; }
	done
}

# changed_of HOST: the changed= count of HOST's PLAY RECAP line.
changed_of() {
	grep -E "^$1 +: ok=" <<<"$output" | sed -n 's/.* changed=\([0-9]*\) .*/\1/p'
}

# report_line HOST WHAT: the line "WHAT: ..." of HOST's report in $output.
report_line() {
	awk -v host="[$1]" -v what="$2" '
		/^[a-z]+: \[[^]]*\]/ { current = $2 }
		current == host && index($0, "\"" what ": ") {
			sub(/^ *"/, ""); sub(/",?$/, ""); print; exit
		}' <<<"$output"
}

# localhost_inventory PATCH NAME: localhost, connection local, with a store
# and a staging directory of this test's own.
localhost_inventory() {
	INVENTORY=$BATS_TEST_TMPDIR/inventory.ini
	cat >"$INVENTORY" <<-EOF
		localhost ansible_connection=local hotpatch_bin=$HOTPATCH hotpatch_patch=$1 hotpatch_name=$2 hotpatch_store=$BATS_TEST_TMPDIR/store hotpatch_stage_dir=$BATS_TEST_TMPDIR/stage
	EOF
}

# hosts_inventory NAME...: the hosts made by hosts_make, all installing
# $FIX as ansible_fix; HOST_VARS[NAME] adds (or overrides) a host's vars.
hosts_inventory() {
	local name
	INVENTORY=$BATS_TEST_TMPDIR/inventory.ini
	{
		echo "[fleet]"
		for name; do
			echo "$name ansible_host=${HOST_ADDRESS[$name]} ${HOST_VARS[$name]:-}"
		done
		cat <<-EOF
			[fleet:vars]
			ansible_user=root
			ansible_ssh_private_key_file=$HOSTS_KEY
			ansible_ssh_common_args='-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR'
			ansible_remote_tmp=/run/ansible
			hotpatch_bin=$HOTPATCH
			hotpatch_patch=$FIX
			hotpatch_name=ansible_fix
		EOF
	} >"$INVENTORY"
}

@test "localhost: the play installs and reports, again changes nothing, and the rollback restores" {
	local first first_log second_log
	localhost_inventory "$FIX" ansible_fix
	start_executable "$PROGRAM"
	first=$TARGET_PID first_log=$TARGET_LOG
	start_executable "$PROGRAM"
	second_log=$TARGET_LOG
	play install.yml
	((status == 0)) || fail "install.yml exited $status"
	recap_is localhost failed=0
	(($(changed_of localhost) > 0)) || fail "the first run changed nothing"
	assert_results "$first_log" compute '*13'
	assert_results "$second_log" compute '*13'
	cmp "$FIX" "$BATS_TEST_TMPDIR/store/ansible_fix.so"
	[[ $(report_line localhost patched) == *"$first (ansible_fix $PROGRAM)"* &&
		$(report_line localhost patched) == *"$TARGET_PID (ansible_fix $PROGRAM)"* ]] ||
		fail "report: $(report_line localhost patched)"
	[[ $(report_line localhost "not applied") == "not applied: none" ]] || fail "$output"

	play install.yml
	((status == 0)) || fail "the second install.yml exited $status"
	recap_is localhost changed=0 failed=0

	play rollback.yml
	((status == 0)) || fail "rollback.yml exited $status"
	recap_is localhost failed=0
	assert_results "$first_log" compute '*2'
	assert_results "$second_log" compute '*2'
	[[ -z $(ls -A "$BATS_TEST_TMPDIR/store") ]] || fail "the store holds: $(ls -A "$BATS_TEST_TMPDIR/store")"
	[[ -z $(ls -A "$BATS_TEST_TMPDIR/stage") ]] || fail "staged: $(ls -A "$BATS_TEST_TMPDIR/stage")"
	[[ $(report_line localhost installed) == "installed: nothing" ]] || fail "$output"
	play rollback.yml
	((status == 0)) || fail "the second rollback.yml exited $status"
	recap_is localhost changed=0 failed=0
}

@test "one host at a time: a patch hotpatch refuses fails the first host, with the report, and the rollout stops there" {
	local -A HOST_VARS logs
	local name
	hosts_make h1 h2
	for name in h1 h2; do
		HOST_VARS[$name]="hotpatch_patch=$UNPINNED hotpatch_name=unpinned_fix"
		host_start_executable "$name" "$PROGRAM"
		logs[$name]=$TARGET_LOG
	done
	hosts_inventory h1 h2
	play install.yml -e hotpatch_serial=1
	((status == 2)) || fail "install.yml exited $status"
	recap_is h1 failed=1
	[[ $output == *"without pinning its build-id"* ]] || fail "no reason given: $output"
	[[ $(report_line h1 installed) == "installed: nothing" ]] || fail "no report: $output"
	! grep -E '^h2 +:' <<<"$output" || fail "h2 was worked on: $output"
	for name in h1 h2; do
		assert_results "${logs[$name]}" compute '*2'
		host_exec "$name" test ! -e /var/lib/hotpatch/unpinned_fix.so
	done
}

@test "three hosts over ssh, one from a Debian package: each patched, a second run changes nothing, rollback restores" {
	local -A HOST_VARS logs
	local name deb=$BATS_TEST_TMPDIR/hotpatch-ansible-fix_1.0_all.deb
	build_deb "$deb" "$FIX"
	hosts_make h1 h2 h3
	HOST_VARS[h3]="hotpatch_patch='' hotpatch_deb=$deb hotpatch_deb_patch=/usr/lib/hotpatch/patches/ansible_fix.so hotpatch_deb_package=hotpatch-ansible-fix"
	hosts_inventory h1 h2 h3
	for name in h1 h2 h3; do
		host_start_executable "$name" "$PROGRAM"
		logs[$name]=$TARGET_LOG
	done
	host_start_executable h1 "$PROGRAM"
	logs[h1b]=$TARGET_LOG

	play install.yml
	((status == 0)) || fail "install.yml exited $status"
	for name in h1 h2 h3; do
		recap_is "$name" failed=0 unreachable=0
		(($(changed_of "$name") > 0)) || fail "the first run changed nothing on $name"
		[[ $(report_line "$name" patched) == "patched: "*"(ansible_fix $PROGRAM)"* ]] ||
			fail "$name's report: $(report_line "$name" patched)"
		host_exec "$name" cmp "$FIX" /var/lib/hotpatch/ansible_fix.so
	done
	for name in h1 h1b h2 h3; do
		assert_results "${logs[$name]}" compute '*13'
	done
	[[ $(report_line h1 patched) == *"), "* ]] || fail "h1 has two patched targets: $(report_line h1 patched)"
	host_exec h3 dpkg-query -W hotpatch-ansible-fix
	# Each host's store and packages are its own, none the machine's.
	[[ ! -e /var/lib/hotpatch/ansible_fix.so ]]
	run -1 dpkg-query -W hotpatch-ansible-fix

	play install.yml
	((status == 0)) || fail "the second install.yml exited $status"
	for name in h1 h2 h3; do
		recap_is "$name" changed=0 failed=0
	done

	play rollback.yml
	((status == 0)) || fail "rollback.yml exited $status"
	for name in h1 h1b h2 h3; do
		assert_results "${logs[$name]}" compute '*2'
	done
	for name in h1 h2 h3; do
		recap_is "$name" failed=0
		[[ -z $(host_exec "$name" ls -A /var/lib/hotpatch) ]] ||
			fail "$name's store holds: $(host_exec "$name" ls -A /var/lib/hotpatch)"
		[[ $(report_line "$name" installed) == "installed: nothing" ]] || fail "$output"
	done
	[[ $(host_exec h3 dpkg-query -W -f '${db:Status-Status}' hotpatch-ansible-fix 2>&1) != installed ]] ||
		fail "the package is still installed"
	host_exec h3 test ! -e /usr/lib/hotpatch/patches/ansible_fix.so
}

@test "a host where a process lacks the patch fails the status play; the next install fixes only it" {
	local h1_log
	hosts_make h1 h2
	hosts_inventory h1 h2
	host_start_executable h1 "$PROGRAM"
	h1_log=$TARGET_LOG
	host_start_executable h2 "$PROGRAM"
	play install.yml
	((status == 0)) || fail "install.yml exited $status"

	# Started after the install: nothing patches it by itself yet.
	host_start_executable h2 "$PROGRAM"
	assert_results "$TARGET_LOG" compute '*2'
	play status.yml
	((status == 2)) || fail "status.yml exited $status"
	recap_is h1 changed=0 failed=0
	recap_is h2 changed=0 failed=1
	[[ $(report_line h2 "not applied") == "not applied: $TARGET_PID (ansible_fix $PROGRAM)" ]] ||
		fail "h2's report: $(report_line h2 "not applied")"
	[[ $(report_line h1 "not applied") == "not applied: none" ]] || fail "$output"

	play install.yml
	((status == 0)) || fail "install.yml exited $status"
	recap_is h1 changed=0 failed=0
	recap_is h2 failed=0
	(($(changed_of h2) > 0)) || fail "install changed nothing on h2"
	assert_results "$TARGET_LOG" compute '*13'
	assert_results "$h1_log" compute '*13'
}
