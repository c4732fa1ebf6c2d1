#!/usr/bin/env bats
# package.bats - the Debian package: `make deb` builds it from a copy of the
# tree (built once, for the whole file); it holds what `make install`
# installs with PREFIX=/usr; its maintainer scripts list the loader in
# /etc/ld.so.preload only when /etc/default/hotpatch asks and always take
# it out on removal (tried in a scratch root, dpkg --root); and a real
# dpkg -i / -r / -P on this machine leaves /etc/ld.so.preload alone and
# nothing behind.  That last test runs only as root, only where no hotpatch
# is installed already, and purges what it installed even when it fails.

bats_require_minimum_version 1.5.0
load helpers

LOADER=/usr/lib/hotpatch/libhotpatch-loader.so

# What dpkg-buildpackage would have left beside the tree, had it built there.
packages_beside() {
	ls -A "$HP_SOURCE/.." | grep -E '^hotpatch.*\.(deb|buildinfo|changes)$' || true
}

setup_file() {
	((EUID == 0)) || skip "building and installing packages needs root"
	command -v dpkg-deb >/dev/null && command -v apt-get >/dev/null ||
		skip "not a Debian system"
	packages_beside >"$BATS_FILE_TMPDIR/beside-before"
	ls -A "$HP_SOURCE" "$HP_SOURCE/debian" >"$BATS_FILE_TMPDIR/tree-before"
	make -C "$HP_SOURCE" BUILD="$BATS_FILE_TMPDIR/build" deb >"$BATS_FILE_TMPDIR/make-deb.log" 2>&1 ||
		{ tail -n 40 "$BATS_FILE_TMPDIR/make-deb.log" >&2; return 1; }
}

setup() {
	DEB=$(echo "$BATS_FILE_TMPDIR"/build/deb/hotpatch_*_"$(dpkg --print-architecture)".deb)
	[[ -f $DEB ]] || { fail "make deb made no package: $(ls "$BATS_FILE_TMPDIR/build/deb")"; return 1; }
}

teardown() {
	# The real installation's cleanup, whatever the test got to.
	if [[ -e $BATS_TEST_TMPDIR/installed-here ]]; then
		dpkg -P hotpatch >&2 || true
	fi
}

# dpkg_in ROOT ARGS...: dpkg on the tree ROOT, maintainer scripts included
# (run outside it, with DPKG_ROOT=ROOT); its libraries are not there.
dpkg_in() {
	local root=$1
	shift
	dpkg --root="$root" --force-script-chrootless --force-depends "$@"
}

scratch_root() {
	SCRATCH=$BATS_TEST_TMPDIR/root
	mkdir -p "$SCRATCH/var/lib/dpkg/info" "$SCRATCH/var/lib/dpkg/updates" "$SCRATCH/etc/default"
	touch "$SCRATCH/var/lib/dpkg/status"
}

@test "make deb builds the package and leaves the source tree as it was" {
	packages_beside | diff -u "$BATS_FILE_TMPDIR/beside-before" -
	ls -A "$HP_SOURCE" "$HP_SOURCE/debian" | diff -u "$BATS_FILE_TMPDIR/tree-before" -
	run -0 ls "$BATS_FILE_TMPDIR/build/deb"
	[[ $output != *source* ]] || fail "the copy of the tree is left: $output"
}

@test "the package holds the tool, the loader and its engine, the manuals, the completion, the header and the store" {
	run -0 dpkg-deb -c "$DEB"
	for wanted in '-rwxr-xr-x root/root .* ./usr/bin/hotpatch$' \
		'-rw-r--r-- root/root .* ./usr/lib/hotpatch/libhotpatch-loader.so$' \
		'-rw-r--r-- root/root .* ./usr/lib/hotpatch/libhotpatch-apply.so$' \
		' ./usr/share/man/man1/hotpatch.1.gz$' ' ./usr/share/man/man1/hotpatch-build.1.gz$' \
		' ./usr/share/man/man3/hotpatch.h.3.gz$' \
		' ./usr/share/bash-completion/completions/hotpatch$' \
		'-rw-r--r-- root/root .* ./usr/include/hotpatch.h$' \
		'^drwxr-xr-x root/root .* ./var/lib/hotpatch/$'; do
		grep -qE -e "$wanted" <<<"$output" || fail "no $wanted in:"$'\n'"$output"
	done
	# Nothing from the build or the tests, and nothing under /usr/local or /etc.
	if grep -E ' \./(usr/local|etc)/|/(build[^/]*|test)/' <<<"$output"; then
		fail "the package holds more than it should"
	fi
}

@test "the packaged hotpatch is the version the package says, and enables the packaged loader" {
	x=$BATS_TEST_TMPDIR/extracted
	dpkg -x "$DEB" "$x"
	run -0 "$x/usr/bin/hotpatch" --version
	[[ $output == "hotpatch $(dpkg-deb -f "$DEB" Version)" ]]
	mkdir "$x/etc"
	# Without --loader: the path compiled in is /usr's, and the file there
	# is one enable trusts.
	run -0 --separate-stderr "$x/usr/bin/hotpatch" startup enable --root "$x" --json
	json_is ".loader == \"$LOADER\"" '.enabled == true'
	printf '%s\n' "$LOADER" | cmp - "$x/etc/ld.so.preload"
}

@test "installed into a scratch root, the loader is enabled only when /etc/default/hotpatch asks, and removal takes it out" {
	scratch_root
	printf '/opt/audit/libaudit.so\n' >"$SCRATCH/etc/ld.so.preload"
	run -0 dpkg_in "$SCRATCH" -i "$DEB"
	[[ -x $SCRATCH/usr/bin/hotpatch && -f $SCRATCH$LOADER && -d $SCRATCH/var/lib/hotpatch ]]
	printf '/opt/audit/libaudit.so\n' | cmp - "$SCRATCH/etc/ld.so.preload"
	run -0 dpkg_in "$SCRATCH" -r hotpatch
	printf '/opt/audit/libaudit.so\n' | cmp - "$SCRATCH/etc/ld.so.preload"

	printf '# asked for\nHOTPATCH_STARTUP=enable\n' >"$SCRATCH/etc/default/hotpatch"
	run -0 dpkg_in "$SCRATCH" -i "$DEB"
	printf '/opt/audit/libaudit.so\n%s\n' "$LOADER" | cmp - "$SCRATCH/etc/ld.so.preload"
	# An upgrade (the same version again) keeps it listed, once.
	run -0 dpkg_in "$SCRATCH" -i "$DEB"
	printf '/opt/audit/libaudit.so\n%s\n' "$LOADER" | cmp - "$SCRATCH/etc/ld.so.preload"
	# Removal takes it out, whatever the file says.
	run -0 dpkg_in "$SCRATCH" -r hotpatch
	printf '/opt/audit/libaudit.so\n' | cmp - "$SCRATCH/etc/ld.so.preload"
	[[ ! -e $SCRATCH$LOADER ]]
	run -0 dpkg_in "$SCRATCH" -P hotpatch
	printf '/opt/audit/libaudit.so\n' | cmp - "$SCRATCH/etc/ld.so.preload"
	run -0 ls -A "$SCRATCH/etc"
	[[ $output == $'default\nld.so.preload' ]] || fail "left in etc: $output"
	[[ ! -e $SCRATCH/usr/lib/hotpatch && ! -e $SCRATCH/var/lib/hotpatch ]]

	# HOTPATCH_STARTUP=disable takes it out at the next upgrade.
	run -0 dpkg_in "$SCRATCH" -i "$DEB"
	printf '%s\n' "$LOADER" | cmp - <(sed -n 2p "$SCRATCH/etc/ld.so.preload")
	printf 'HOTPATCH_STARTUP=disable\n' >"$SCRATCH/etc/default/hotpatch"
	run -0 dpkg_in "$SCRATCH" -i "$DEB"
	printf '/opt/audit/libaudit.so\n' | cmp - "$SCRATCH/etc/ld.so.preload"
}

@test "purged from a scratch root where the loader was enabled, nothing of it is left" {
	scratch_root
	printf 'HOTPATCH_STARTUP=enable\n' >"$SCRATCH/etc/default/hotpatch"
	run -0 dpkg_in "$SCRATCH" -i "$DEB"
	printf '%s\n' "$LOADER" | cmp - "$SCRATCH/etc/ld.so.preload"
	printf 'a patch\n' >"$SCRATCH/var/lib/hotpatch/fix.so"
	run -0 dpkg_in "$SCRATCH" -P hotpatch
	run -0 ls -A "$SCRATCH/etc"
	[[ $output == default ]] || fail "left in etc: $output"
	run -0 find "$SCRATCH" -path "$SCRATCH/var/lib/dpkg" -prune -o -name '*hotpatch*' -print
	[[ $output == "$SCRATCH/etc/default/hotpatch" ]] || fail "left: $output"
}

@test "on this machine: dpkg -i, -r and -P install it, leave /etc/ld.so.preload alone, and leave nothing behind" {
	status=$(dpkg-query -W -f '${Status}' hotpatch 2>/dev/null || true)
	[[ -z $status || $status == *not-installed ]] || skip "a hotpatch package is installed here ($status)"
	for path in /usr/bin/hotpatch /usr/lib/hotpatch /var/lib/hotpatch /etc/default/hotpatch; do
		[[ ! -e $path ]] || skip "$path exists already: not ours to replace or purge"
	done
	before=absent
	[[ ! -e /etc/ld.so.preload ]] || before=$(sha256sum </etc/ld.so.preload)

	touch "$BATS_TEST_TMPDIR/installed-here"
	run -0 dpkg -i "$DEB"
	run -0 dpkg-query -W -f '${Status}' hotpatch
	[[ $output == "install ok installed" ]]
	run -0 /usr/bin/hotpatch --version
	[[ $output == "hotpatch $(dpkg-deb -f "$DEB" Version)" ]]
	[[ -f $LOADER && -f /usr/lib/hotpatch/libhotpatch-apply.so && -d /var/lib/hotpatch ]]
	run -0 /usr/bin/hotpatch startup status
	[[ $output == "disabled: $LOADER is not in /etc/ld.so.preload" ]]
	[[ -f /usr/share/man/man1/hotpatch.1.gz && -f /usr/share/bash-completion/completions/hotpatch ]]

	run -0 dpkg -r hotpatch
	[[ ! -e /usr/bin/hotpatch && ! -e /usr/lib/hotpatch ]]
	run -0 dpkg -P hotpatch
	rm "$BATS_TEST_TMPDIR/installed-here"
	status=$(dpkg-query -W -f '${Status}' hotpatch 2>/dev/null || true)
	[[ -z $status || $status == *not-installed ]] || fail "dpkg still knows it: $status"
	[[ ! -e /var/lib/hotpatch && ! -e /etc/ld.so.preload.hotpatch-backup ]]
	after=absent
	[[ ! -e /etc/ld.so.preload ]] || after=$(sha256sum </etc/ld.so.preload)
	[[ $after == "$before" ]] || fail "/etc/ld.so.preload changed: $before -> $after"
}
