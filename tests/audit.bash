# audit.bash - the audit records hotpatch sends (the test build sends them
# to the unix datagram socket HOTPATCH_AUDIT_SOCKET instead of syslog):
# a receiver, and readers of its records' key=value pairs.

# start_audit_receiver: a unix datagram socket that appends every record it
# receives, as one line, to AUDIT_LOG; exports HOTPATCH_AUDIT_SOCKET.
start_audit_receiver() {
	local deadline=$((SECONDS + HP_WAIT_SECONDS))
	AUDIT_SOCKET=$BATS_TEST_TMPDIR/audit.sock
	AUDIT_LOG=$BATS_TEST_TMPDIR/audit.log
	: >"$AUDIT_LOG"
	python3 -c '
import socket, sys
receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
receiver.bind(sys.argv[1])
while True:
    record = receiver.recv(65536)
    with open(sys.argv[2], "ab") as log:
        log.write(record + b"\n")
' "$AUDIT_SOCKET" "$AUDIT_LOG" </dev/null 3>&- &
	HP_STARTED_PIDS+=("$!")
	until [[ -S $AUDIT_SOCKET ]]; do
		((SECONDS < deadline)) || { fail "the audit receiver did not start"; return 1; }
		sleep 0.02
	done
	export HOTPATCH_AUDIT_SOCKET=$AUDIT_SOCKET
}

# audit_record N: waits for the Nth record and prints it.
audit_record() {
	local deadline=$((SECONDS + HP_WAIT_SECONDS))
	until (($(line_count "$AUDIT_LOG") >= $1)); do
		((SECONDS < deadline)) || { fail "no audit record $1; got:"$'\n'"$(cat "$AUDIT_LOG")"; return 1; }
		sleep 0.02
	done
	sed -n "$1p" "$AUDIT_LOG"
}

# audit_value RECORD KEY: the value of KEY in RECORD, unquoted and unescaped;
# fails when RECORD is not a line of key=value pairs or lacks KEY.
audit_value() {
	python3 -c '
import re, sys
record, wanted = sys.argv[1], sys.argv[2]
pair = re.compile(r"([a-z0-9_]+)=(\"(?:[^\"\\]|\\.)*\"|[^\" ]+)")
position, values = 0, {}
while position < len(record):
    match = pair.match(record, position)
    if not match:
        sys.exit("not key=value at %d: %r" % (position, record[position:]))
    value = match.group(2)
    if value.startswith("\""):
        value = re.sub(r"\\x([0-9a-f]{2})|\\(.)",
                       lambda m: chr(int(m.group(1), 16)) if m.group(1) else m.group(2),
                       value[1:-1])
    values[match.group(1)] = value
    position = match.end()
    if position < len(record):
        if record[position] != " ":
            sys.exit("no space after %s" % match.group(1))
        position += 1
if any(ord(c) < 0x20 or ord(c) == 0x7f for c in record):
    sys.exit("a control character in the record")
if wanted not in values:
    sys.exit("no %s in %r" % (wanted, record))
print(values[wanted])
' "$1" "$2"
}

# assert_audit RECORD KEY=VALUE...: RECORD holds each KEY with VALUE.
assert_audit() {
	local record=$1 pair value
	shift
	for pair; do
		value=$(audit_value "$record" "${pair%%=*}") || { fail "audit record: $value"; return 1; }
		[[ $value == "${pair#*=}" ]] ||
			{ fail "audit record has ${pair%%=*}='$value', not '${pair#*=}':"$'\n'"$record"; return 1; }
	done
}
