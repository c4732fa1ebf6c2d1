# hosts.bash - separate "hosts" made on this machine, for tests that drive
# several over ssh.  Each is a network namespace of its own, linked by a
# veth pair to a controller namespace (nothing is added to the machine's own
# network namespace, and nothing can reach off the machine), with a PID and
# mount namespace of its own: its own /proc (hotpatch there sees only its
# processes), its own /run and /root, and /var and /usr as overlays whose
# changes stay in it (its store, its dpkg database, what a package installs).
# Each runs its own sshd, which lets root in with a throwaway key.
#
# Uses HP_STARTED_PIDS (helpers.bash): hp_teardown kills what is left after
# hosts_remove.

# Runs as the init (pid 1) of a new host, in its namespaces: private
# mounts, then sshd in the foreground of a shell that reaps.
_host_init() {
	local dir=$1 tree

	set -e
	mount -t tmpfs -o mode=0755 hotpatch-host-run /run
	mount -t tmpfs -o mode=0700 hotpatch-host-root /root
	for tree in var usr; do
		mkdir -p "/run/layers/$tree/upper" "/run/layers/$tree/work"
		mount -t overlay overlay -o "lowerdir=/$tree,upperdir=/run/layers/$tree/upper,workdir=/run/layers/$tree/work" "/$tree"
	done
	mkdir -p /run/sshd
	/usr/sbin/sshd -D -e -f "$dir/sshd_config" &
	wait
}

# hosts_make NAME...: one host per NAME, the Nth at 10.55.N.2, each running
# sshd.  Sets HOSTS_KEY (root's private key for them), HOSTS_CONTROLLER (the
# network namespace that reaches them: hosts_controller runs commands there),
# HOST_ADDRESS[NAME] and HOST_INIT[NAME] (its init's pid, here).
hosts_make() {
	local name index=0 dir

	HOSTS_TAG=hp$$-${BATS_TEST_NUMBER:-0}
	HOSTS_CONTROLLER=$HOSTS_TAG-ctl
	HOSTS_NAMES=()
	HOSTS_NAMESPACES=()
	HOSTS_UNSHARE_PIDS=()
	declare -gA HOST_ADDRESS HOST_INIT
	HOSTS_DIR=$BATS_TEST_TMPDIR/hosts
	HOSTS_KEY=$HOSTS_DIR/root_key
	mkdir -p "$HOSTS_DIR"
	ssh-keygen -q -t ed25519 -N '' -C hotpatch-tests -f "$HOSTS_KEY" || return 1
	ip netns add "$HOSTS_CONTROLLER" || return 1
	HOSTS_NAMESPACES+=("$HOSTS_CONTROLLER")
	ip -n "$HOSTS_CONTROLLER" link set lo up || return 1
	for name; do
		index=$((index + 1))
		dir=$HOSTS_DIR/$name
		mkdir -p "$dir"
		_host_link "$name" "$index" || return 1
		_host_sshd_config "$dir" "${HOST_ADDRESS[$name]}" || return 1
		_host_start "$name" "$dir" || return 1
	done
}

# A network namespace for host NAME, the Nth, linked to the controller's.
_host_link() {
	local name=$1 index=$2 namespace=$HOSTS_TAG-$1

	ip netns add "$namespace" || return 1
	HOSTS_NAMESPACES+=("$namespace")
	ip link add name "link$index" netns "$HOSTS_CONTROLLER" type veth peer name eth0 netns "$namespace" || return 1
	ip -n "$HOSTS_CONTROLLER" addr add "10.55.$index.1/30" dev "link$index" &&
		ip -n "$HOSTS_CONTROLLER" link set "link$index" up &&
		ip -n "$namespace" addr add "10.55.$index.2/30" dev eth0 &&
		ip -n "$namespace" link set eth0 up &&
		ip -n "$namespace" link set lo up || return 1
	HOST_ADDRESS[$name]=10.55.$index.2
}

_host_sshd_config() {
	local dir=$1 address=$2

	ssh-keygen -q -t ed25519 -N '' -f "$dir/host_key" || return 1
	cp "$HOSTS_KEY.pub" "$dir/authorized_keys"
	cat >"$dir/sshd_config" <<-EOF
		ListenAddress $address
		HostKey $dir/host_key
		PidFile none
		AuthorizedKeysFile $dir/authorized_keys
		PermitRootLogin prohibit-password
		PubkeyAuthentication yes
		PasswordAuthentication no
		KbdInteractiveAuthentication no
		UsePAM no
		StrictModes no
		Subsystem sftp /usr/lib/openssh/sftp-server
	EOF
}

# Starts host NAME's init in its namespaces and waits for its sshd.
_host_start() {
	local name=$1 dir=$2 unshare_pid

	ip netns exec "$HOSTS_TAG-$name" unshare --pid --mount --fork --mount-proc --kill-child \
		bash -c "$(declare -f _host_init); _host_init \"\$1\"" host "$dir" \
		</dev/null >"$dir/log" 2>&1 3>&- &
	unshare_pid=$!	# ip netns exec runs unshare in its own place
	HOSTS_UNSHARE_PIDS+=("$unshare_pid")
	HP_STARTED_PIDS+=("$unshare_pid")
	wait_for_line "$dir/log" '^Server listening on' >/dev/null || { fail "host $name: no sshd"; return 1; }
	HOST_INIT[$name]=$(awk '{print $1}' "/proc/$unshare_pid/task/$unshare_pid/children")
	[[ -n ${HOST_INIT[$name]} ]] || { fail "host $name: no init under $unshare_pid"; return 1; }
}

# hosts_controller COMMAND...: runs COMMAND where the hosts are reachable.
hosts_controller() {
	ip netns exec "$HOSTS_CONTROLLER" "$@"
}

# host_exec NAME COMMAND...: runs COMMAND inside host NAME.
host_exec() {
	local name=$1
	shift
	nsenter --target "${HOST_INIT[$name]}" --pid --mount --net -- "$@"
}

# host_start_executable NAME PATH: start_executable's work inside host
# NAME (TARGET_LOG; TARGET_PID is the pid there, as the target prints it).
host_start_executable() {
	local name=$1 path=$2 ready

	TARGET_LOG=$BATS_TEST_TMPDIR/$name.${path##*/}.$((++HP_START_COUNT)).log
	HP_TARGET_LIFETIME=${HP_TARGET_LIFETIME:-600} \
		host_exec "$name" "$path" </dev/null >"$TARGET_LOG" 2>&1 3>&- &
	HP_STARTED_PIDS+=("$!")
	ready=$(wait_for_line "$TARGET_LOG" '^ready pid=[0-9]+') || { fail "target in $name did not start"; return 1; }
	TARGET_PID=${ready#ready pid=}
	TARGET_PID=${TARGET_PID%% *}
}

# hosts_remove: ends every host (killing a host's init ends every process
# in it) and deletes the namespaces; quiet about what was never made.
hosts_remove() {
	local pid namespace

	for pid in "${HOSTS_UNSHARE_PIDS[@]}"; do
		kill -KILL "$pid" 2>/dev/null || true
	done
	for pid in "${HOSTS_UNSHARE_PIDS[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	for namespace in "${HOSTS_NAMESPACES[@]}"; do
		ip netns del "$namespace" 2>/dev/null || true
	done
	HOSTS_UNSHARE_PIDS=()
	HOSTS_NAMESPACES=()
}
