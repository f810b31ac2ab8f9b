#!/usr/bin/env bash
# test-vm-cli: exaictl ws end to end, each step a separate process (so each adopts the
# workspace from the state directory): create (boots QEMU microvm), exec with the command's
# exit status and streams, cp both ways, pause/resume, snapshot, restore, ls/inspect --json,
# usage errors, destroy leaving nothing. Needs root, QEMU and the guest image (else 77).
set -u
exaictl=$1
image=$2
[ "$(id -u)" = 0 ] || { echo "SKIP: workspaces need root"; exit 77; }
[ -x /usr/bin/qemu-system-x86_64 ] || { echo "SKIP: qemu-system-x86 is not installed"; exit 77; }
[ -r "$image/manifest.json" ] || { echo "SKIP: no guest image in $image"; exit 77; }

dir=$(mktemp -d)
fails=0
x() { "$exaictl" --state-dir "$dir/state" "$@"; }
check() { # check DESCRIPTION COMMAND...
	local what=$1
	shift
	if ! "$@"; then
		echo "FAIL: $what" >&2
		fails=$((fails + 1))
	fi
}
cleanup() {
	x ws destroy cli1 >/dev/null 2>&1
	x ws destroy cli2 >/dev/null 2>&1
	rm -rf "$dir"
}
trap cleanup EXIT

check "create boots" x ws create --image "$image" --mem 256 --backend qemu cli1
out=$(x ws exec cli1 -- /bin/sh -c 'echo out; echo err >&2; exit 7' 2>"$dir/err")
check "exec exit status is the command's" test $? = 7
check "exec stdout" test "$out" = out
check "exec stderr" grep -qx err "$dir/err"
out=$(x ws exec --env FOO=bar --cwd /tmp cli1 -- /bin/sh -c 'echo $FOO $(pwd)')
check "exec env and cwd" test "$out" = "bar /tmp"
out=$(echo piped | x ws exec -i cli1 -- cat)
check "exec stdin" test "$out" = piped
x ws exec --timeout 1 cli1 -- sleep 30
check "exec timeout gives 124" test $? = 124

"$exaictl" --state-dir "$dir/state" ws exec cli1 -- sleep 30 &
bg=$!
sleep 2
kill -INT $bg
wait $bg
check "SIGINT on exaictl reaches the guest command (exit 128+2)" test $? = 130

head -c 3000000 /dev/urandom >"$dir/f"
check "cp in" x ws cp "$dir/f" cli1:/tmp/f
check "cp out" x ws cp cli1:/tmp/f "$dir/g"
check "cp round trip is identical" cmp -s "$dir/f" "$dir/g"

check "pause" x ws pause cli1
x ws exec cli1 -- true 2>"$dir/err"
check "exec on a paused workspace fails with 1" test $? = 1
check "the error names the state" grep -q paused "$dir/err"
check "resume" x ws resume cli1
x ws exec cli1 -- /bin/sh -c 'echo 7 > /tmp/counter' >/dev/null

check "snapshot" x ws snapshot cli1 --out "$dir/cli1.snap"
check "restore" x ws restore "$dir/cli1.snap" cli2
out=$(x ws exec cli2 -- cat /tmp/counter)
check "the restored workspace has the counter" test "$out" = 7

ls_json=$(x --json ws ls)
check "ls --json lists both" test "$ls_json" = '[{"name":"cli1","state":"running"},{"name":"cli2","state":"running"}]'
check "inspect --json" sh -c "'$exaictl' --state-dir '$dir/state' --json ws inspect cli1 | grep -q '\"vmm_alive\":true'"

x ws exec nosuch -- true 2>/dev/null
check "unknown workspace fails with 1" test $? = 1
x ws create 2>/dev/null
check "missing NAME is a usage error (2)" test $? = 2
x ws cp a b 2>/dev/null
check "cp without NAME: is a usage error (2)" test $? = 2

pid=$(x --json ws inspect cli1 | sed -n 's/.*"pid":\([0-9]*\).*/\1/p')
check "destroy cli1" x ws destroy cli1
check "destroy cli2" x ws destroy cli2
check "destroy is idempotent" x ws destroy cli1
check "cli1's snapshot was deleted with its keys" test ! -e "$dir/cli1.snap"
# gone, or a zombie its parent has yet to reap (it may be reaped while we look: ps then prints nothing)
check "no VMM left" sh -c "case \"\$(ps -o stat= -p $pid)\" in ''|Z*) exit 0;; *) exit 1;; esac"
check "no cgroup left" sh -c '! ls -d /sys/fs/cgroup/*/exai/*-cli1 /sys/fs/cgroup/*/exai/*-cli2 /sys/fs/cgroup/exai/*-cli1 /sys/fs/cgroup/exai/*-cli2 2>/dev/null | grep -q .'
check "no state left" test -z "$(ls -A "$dir/state/vm")"

[ $fails = 0 ] && echo "all checks passed"
exit $((fails > 0))
