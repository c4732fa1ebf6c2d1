#!/usr/bin/env bats
# startup.bats - `hotpatch startup enable|disable|status`: the loader listed
# in ld.so.preload once, every other line kept, the file replaced whole, its
# earlier text kept in a backup, and a loader that is missing or that anyone
# but root could have changed refused.  Every test works on a tree of its
# own (--root); the machine's /etc/ld.so.preload is never touched.  The
# loader is a small shared object built here, which says when a process
# loads it.

bats_require_minimum_version 1.5.0
load helpers
load audit

setup_file() {
	cat >"$BATS_FILE_TMPDIR/probe.c" <<-'EOF'
		#include <unistd.h>
		/* Says, on stderr, that the dynamic linker preloaded it. */
		__attribute__((constructor)) static void announce(void)
		{
			static const char line[] = "probe: preloaded " NAME "\n";
			(void)!write(2, line, sizeof(line) - 1);
		}
	EOF
	for name in loader other; do
		cc -shared -fPIC -DNAME="\"$name\"" -o "$BATS_FILE_TMPDIR/$name.so" "$BATS_FILE_TMPDIR/probe.c"
	done
}

setup() {
	[[ -x $HOTPATCH ]] || { fail "no hotpatch binary at $HOTPATCH: run 'make bats'"; return 1; }
	HP_STARTED_PIDS=()
	((EUID == 0)) || skip "the loader must be root's: run as root"
	ROOT=$BATS_TEST_TMPDIR/root
	PRELOAD=$ROOT/etc/ld.so.preload
	BACKUP=$ROOT/etc/ld.so.preload.hotpatch-backup
	LOADER=/usr/lib/hotpatch/libhotpatch-loader.so
	mkdir -p "$ROOT/etc" "$ROOT/usr/lib/hotpatch"
	install -m 0644 "$BATS_FILE_TMPDIR/loader.so" "$ROOT$LOADER"
}

teardown() { hp_teardown; }

# startup ACTION [ARGS...]: hotpatch startup on the test's tree and loader.
startup() {
	hp startup "$1" --root "$ROOT" --loader "$LOADER" "${@:2}"
}

@test "enable lists the loader once, after every other line, which stay as they were" {
	printf '/opt/audit/libaudit.so\n# kept: a comment\n\n/opt/x.so /opt/y.so' >"$PRELOAD"
	cp "$PRELOAD" "$BATS_TEST_TMPDIR/before"
	run -0 --separate-stderr startup enable
	[[ $output == "enabled: added $LOADER to $PRELOAD"* ]]
	{ cat "$BATS_TEST_TMPDIR/before"; printf '\n%s\n' "$LOADER"; } >"$BATS_TEST_TMPDIR/wanted"
	run -0 diff -u "$BATS_TEST_TMPDIR/wanted" "$PRELOAD"

	run -0 --separate-stderr startup enable
	[[ $output == "already enabled: $LOADER is in $PRELOAD" ]]
	run -0 diff -u "$BATS_TEST_TMPDIR/wanted" "$PRELOAD"
	[[ $(grep -c -F -x "$LOADER" "$PRELOAD") == 1 ]]
	[[ $(stat -c '%a %u' "$PRELOAD") == "644 0" ]]
}

@test "status says whether the loader is listed, and changes nothing" {
	run -0 --separate-stderr startup status
	[[ $output == "disabled: $LOADER is not in $PRELOAD" ]]
	[[ ! -e $PRELOAD ]]
	printf '/opt/a.so:%s # also listed\n' "$LOADER" >"$PRELOAD"
	cp "$PRELOAD" "$BATS_TEST_TMPDIR/before"
	run -0 --separate-stderr startup status
	[[ $output == "enabled: $LOADER is in $PRELOAD" ]]
	cmp "$BATS_TEST_TMPDIR/before" "$PRELOAD"
	# A comment naming it lists nothing.
	printf '# %s\n' "$LOADER" >"$PRELOAD"
	run -0 --separate-stderr startup status
	[[ $output == disabled:* ]]
}

@test "the first change keeps the earlier text in the backup, which is never overwritten" {
	printf '/opt/audit/libaudit.so\n' >"$PRELOAD"
	run -0 startup enable
	printf '/opt/audit/libaudit.so\n' | cmp - "$BACKUP"
	run -0 startup disable
	printf '/opt/audit/libaudit.so\n' | cmp - "$PRELOAD"
	printf '/opt/later.so\n' >>"$PRELOAD"
	run -0 startup enable
	printf '/opt/audit/libaudit.so\n' | cmp - "$BACKUP"
}

@test "disable takes only the loader out, also from a line that lists others" {
	printf '/opt/a.so\n%s\n/opt/b.so:%s /opt/c.so # note\n/opt/d.so\n' "$LOADER" "$LOADER" >"$PRELOAD"
	run -0 --separate-stderr startup disable
	[[ $output == "disabled: took $LOADER out of $PRELOAD"* ]]
	printf '/opt/a.so\n/opt/b.so /opt/c.so # note\n/opt/d.so\n' >"$BATS_TEST_TMPDIR/wanted"
	run -0 diff -u "$BATS_TEST_TMPDIR/wanted" "$PRELOAD"
	run -0 --separate-stderr startup disable
	[[ $output == "already disabled: $LOADER is not in $PRELOAD" ]]
	run -0 diff -u "$BATS_TEST_TMPDIR/wanted" "$PRELOAD"
}

@test "enable then disable on a tree without the file leaves no file and no backup" {
	run -0 startup enable
	printf '%s\n' "$LOADER" | cmp - "$PRELOAD"
	[[ ! -e $BACKUP ]]
	run -0 --separate-stderr startup disable
	[[ $output == "disabled: removed $PRELOAD, which listed nothing else" ]]
	run -0 ls -A "$ROOT/etc"
	[[ -z $output ]] || fail "left in etc: $output"
}

@test "a file of blank lines that disable leaves listing nothing is removed" {
	printf '\n  \n' >"$PRELOAD"
	run -0 startup enable
	run -0 startup disable
	[[ ! -e $PRELOAD ]]
}

@test "enable refuses a loader that does not exist (exit 4) and writes nothing" {
	printf '/opt/a.so\n' >"$PRELOAD"
	rm "$ROOT$LOADER"
	run -4 --separate-stderr startup enable
	assert_error_line "loader $ROOT$LOADER does not exist"
	[[ $(grep -c . <<<"$stderr") == 1 ]]
	printf '/opt/a.so\n' | cmp - "$PRELOAD"
	[[ ! -e $BACKUP ]]
}

@test "enable refuses a loader that anyone but root could have changed (exit 4)" {
	chmod 0664 "$ROOT$LOADER"
	run -4 --separate-stderr startup enable
	assert_error_line "$ROOT$LOADER" "writable by group or others"
	chmod 0644 "$ROOT$LOADER"
	chown nobody "$ROOT$LOADER"
	run -4 --separate-stderr startup enable
	assert_error_line "$ROOT$LOADER" "owned by nobody"
	chown root "$ROOT$LOADER"
	chmod 0777 "$ROOT/usr/lib/hotpatch"
	run -4 --separate-stderr startup enable --json
	assert_error_line "$ROOT/usr/lib/hotpatch" "writable by group or others"
	json_is '.ok == false' '.exit_code == 4' '.error.kind == "untrusted"'
	[[ ! -e $PRELOAD ]]
	chmod 0755 "$ROOT/usr/lib/hotpatch"
	run -0 startup enable
}

@test "enable refuses a loader that is not a shared object (exit 4)" {
	printf 'not a library\n' >"$ROOT$LOADER"
	run -4 --separate-stderr startup enable
	assert_error_line "loader $ROOT$LOADER is not a shared object"
	[[ ! -e $PRELOAD ]]
}

@test "a loader path the dynamic linker would split is a usage error" {
	run -2 --separate-stderr hp startup enable --root "$ROOT" --loader "/opt/a b.so"
	assert_error_line "/opt/a b.so"
	run -2 --separate-stderr hp startup enable --root "$ROOT" --loader relative.so
	[[ ! -e $PRELOAD ]]
}

@test "startup takes enable, disable or status, and nothing else" {
	run -2 --separate-stderr hp startup
	assert_error_line "startup needs enable, disable or status"
	run -2 --separate-stderr hp startup restart --root "$ROOT"
	assert_error_line "not 'restart'"
	run -2 --separate-stderr hp startup enable --pid 1
}

@test "--json gives command, ok, exit_code, enabled, file and loader for each action" {
	run -0 --separate-stderr startup status --json
	json_is '.command == "startup"' '.ok == true' '.exit_code == 0' '.enabled == false' \
		".file == \"$PRELOAD\"" ".loader == \"$LOADER\"" '.backup == null'
	run -0 --separate-stderr startup enable --json
	json_is '.command == "startup"' '.ok == true' '.exit_code == 0' '.enabled == true' \
		'.changed == true' ".file == \"$PRELOAD\"" ".loader == \"$LOADER\""
	run -0 --separate-stderr startup enable --json
	json_is '.enabled == true' '.changed == false'
	run -0 --separate-stderr startup disable --json
	json_is '.command == "startup"' '.ok == true' '.exit_code == 0' '.enabled == false' \
		'.changed == true' '.removed == true' ".file == \"$PRELOAD\"" ".loader == \"$LOADER\""
}

@test "without --loader, the loader is the one make install put under PREFIX" {
	run -0 --separate-stderr hp startup status --root "$ROOT" --json
	json_is '.loader | startswith("/")' '.loader | endswith("/lib/hotpatch/libhotpatch-loader.so")'
}

@test "a replacement that fails before its rename leaves the file as it was" {
	printf '/opt/a.so\n' >"$PRELOAD"
	HOTPATCH_FAULT=startup-rename run -1 --separate-stderr startup enable
	assert_error_line "injected fault"
	printf '/opt/a.so\n' | cmp - "$PRELOAD"
	run -0 ls -A "$ROOT/etc"
	[[ $output == ld.so.preload ]] || fail "left in etc: $output"
	run -0 startup enable
	grep -q -F -x "$LOADER" "$PRELOAD"
}

@test "a link or a directory where the file should be is refused, not replaced" {
	printf '/opt/a.so\n' >"$BATS_TEST_TMPDIR/elsewhere"
	ln -s "$BATS_TEST_TMPDIR/elsewhere" "$PRELOAD"
	run -1 --separate-stderr startup enable
	assert_error_line "$PRELOAD" "edit $PRELOAD by hand"
	[[ -L $PRELOAD ]]
	printf '/opt/a.so\n' | cmp - "$BATS_TEST_TMPDIR/elsewhere"
	rm "$PRELOAD"
	mkdir "$PRELOAD"
	run -1 --separate-stderr startup enable
	[[ -d $PRELOAD ]]
}

@test "a tree without etc is refused" {
	for action in status disable; do
		run -1 --separate-stderr hp startup "$action" --root "$BATS_TEST_TMPDIR/nowhere"
		assert_error_line "cannot open $BATS_TEST_TMPDIR/nowhere/etc"
	done
}

# The dynamic linker reads what enable wrote: a process started in a mount
# namespace whose /etc is the test's tree loads the loader (and the other
# entry); after disable it loads only the other.  The loader's path is one
# the process can open, with the copy enable checks at ROOT/PATH.
@test "a process started after enable loads the loader, and after disable does not" {
	unshare --mount true 2>/dev/null || skip "no mount namespaces here"
	LOADER=$BATS_TEST_TMPDIR/lib/libprobe.so
	install -D -m 0644 "$BATS_FILE_TMPDIR/loader.so" "$LOADER"
	install -D -m 0644 "$BATS_FILE_TMPDIR/loader.so" "$ROOT$LOADER"
	cp /etc/ld.so.cache "$ROOT/etc/"
	printf '%s\n' "$BATS_FILE_TMPDIR/other.so" >"$PRELOAD"
	started() {
		unshare --mount sh -c 'mount --bind "$1" /etc && exec /bin/true' _ "$ROOT/etc"
	}
	run -0 --separate-stderr started
	[[ $stderr == "probe: preloaded other" ]] || fail "before enable: $stderr"
	run -0 startup enable
	run -0 --separate-stderr started
	# Constructors run in the reverse of the load order: sorted.
	[[ $(sort <<<"$stderr") == $'probe: preloaded loader\nprobe: preloaded other' ]] ||
		fail "after enable: $stderr"
	run -0 startup disable
	run -0 --separate-stderr started
	[[ $stderr == "probe: preloaded other" ]] || fail "after disable: $stderr"
}

@test "enable and disable leave an audit record, done or refused; status leaves none" {
	start_audit_receiver
	run -0 --separate-stderr startup enable
	assert_audit "$(audit_record 1)" command=startup action=enable result=ok exit=0 \
		file="$PRELOAD" loader="$LOADER" changed=yes uid=0
	# Records arrive in order: the second is disable's, so status sent none.
	run -0 --separate-stderr startup status
	run -0 --separate-stderr startup disable
	assert_audit "$(audit_record 2)" command=startup action=disable result=ok changed=yes
	run -4 --separate-stderr hp startup enable --root "$ROOT" --loader /usr/lib/hotpatch/missing.so
	assert_audit "$(audit_record 3)" command=startup action=enable result=refused exit=4 changed=no
	audit_value "$(audit_record 3)" message >/dev/null
}
