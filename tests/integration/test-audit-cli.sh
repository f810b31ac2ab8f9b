#!/usr/bin/env bash
# test-audit-cli: exaictl audit as operators use it: append (and a refused line, and beside
# another writer: spooled, then chained), verify (text, --json, a wrong key, a damaged byte),
# tail with filters, leaf, prune, sink status.
# Usage: test-audit-cli.sh EXAICTL
set -euo pipefail
exaictl=$(realpath "$1")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
ctl() { "$exaictl" --state-dir "$work/state" audit "$1" --origin cli.test "${@:2}"; }
fail() { echo "FAIL: $*"; exit 1; }

printf '%s\n' \
	'{"class_uid":3002,"activity_id":1,"activity_name":"auth.logon","tenant":"acme","workspace":"w1"}' \
	'{"class_uid":6003,"activity_id":1,"activity_name":"vm.boot","tenant":"acme","workspace":"w2"}' \
	'' \
	'{"class_uid":6003,"activity_id":2,"activity_name":"vm.stop","tenant":"other","workspace":"w3","time":1000}' \
	| ctl append >"$work/seqs"
[ "$(tr '\n' ' ' <"$work/seqs")" = "0 1 2 " ] || fail "append printed $(cat "$work/seqs")"

# A refused line stops the input with exit 1 and names the line; nothing of it is stored.
if printf '{"class_uid":1}\n{"seq":9}\n' | ctl append >"$work/out" 2>"$work/err"; then fail "reserved member accepted"; fi
grep -q "line 2: audit event member \"seq\" is reserved" "$work/err" || fail "message: $(cat "$work/err")"
[ "$(cat "$work/out")" = "3" ] || fail "first line of the refused batch not appended"

ctl verify | grep -q "^ok: 4 events from seq 0" || fail "verify text"
ctl verify --json | grep -q '"ok":true' || fail "verify --json"
if ctl verify --vkey "other+12345678+AQ==" 2>/dev/null; then fail "a wrong key verified"; fi

[ "$(ctl tail --tenant acme | wc -l)" = 2 ] || fail "tail --tenant"
[ "$(ctl tail --action vm.stop --json)" = "$(ctl leaf 2)" ] || fail "tail --json is not the leaf"
[ "$(ctl tail -n 1 | awk '{print $1}')" = 3 ] || fail "tail -n 1"
[ "$(ctl tail --since 2000-01-01 | wc -l)" = 3 ] || fail "tail --since"
ctl leaf 1 | grep -q '"seq":1,' || fail "leaf"
if ctl leaf 99 2>/dev/null; then fail "leaf of a missing seq"; fi
if ctl leaf abc 2>/dev/null; then fail "leaf abc"; else [ $? = 2 ] || fail "leaf abc exit status"; fi
ctl prune | grep -q "first retained seq: 0" || fail "prune of a young log"
"$exaictl" --state-dir "$work/state" audit sink status --origin cli.test >/dev/null || fail "sink status"

# sink run: a separate long-running process follows the writer and delivers each event once
# a checkpoint seals it; on SIGTERM it saves its cursor and exits 0; restarted, it goes on
# from the cursor (nothing twice).
"$exaictl" --state-dir "$work/state" audit sink run --origin cli.test --jsonl "$work/out.jsonl" 2>"$work/run.err" &
runner=$!
printf '{"class_uid":1,"activity_id":1,"n":1}\n{"class_uid":1,"activity_id":1,"n":2}\n' | ctl append >/dev/null
ctl checkpoint >/dev/null
for _ in $(seq 50); do [ "$(wc -l <"$work/out.jsonl" 2>/dev/null)" = 6 ] && break; sleep 0.1; done
[ "$(wc -l <"$work/out.jsonl")" = 6 ] || fail "sink run delivered $(wc -l <"$work/out.jsonl") lines, not 6"
kill -TERM $runner
wait $runner || fail "sink run exit status $?: $(cat "$work/run.err")"
[ "$(cat "$work/state/audit/cli.test/sinks/jsonl.cursor")" = 6 ] || fail "sink run cursor"
printf '{"class_uid":1,"activity_id":1,"n":3}\n' | ctl append >/dev/null
ctl checkpoint >/dev/null
"$exaictl" --state-dir "$work/state" audit sink run --origin cli.test --jsonl "$work/out.jsonl" 2>>"$work/run.err" &
runner=$!
for _ in $(seq 50); do [ "$(wc -l <"$work/out.jsonl")" = 7 ] && break; sleep 0.1; done
kill -TERM $runner
wait $runner || fail "sink run (restarted) exit status"
[ "$(grep -o '"seq":[0-9]*' "$work/out.jsonl" | sort | uniq -d)" = "" ] || fail "an event delivered twice"
[ "$(wc -l <"$work/out.jsonl")" = 7 ] || fail "restarted sink run: $(wc -l <"$work/out.jsonl") lines"
if "$exaictl" --state-dir "$work/state" audit sink run --origin cli.test 2>/dev/null; then fail "sink run without sinks"; fi

# Two processes: one holds the log (an append still reading its input), another appends: its
# events are spooled, durably, and the holder chains them when it closes; nothing is lost.
mkfifo "$work/fifo"
stdbuf -oL "$exaictl" --state-dir "$work/state" audit append --origin cli.test <"$work/fifo" >"$work/holder.out" &
holder=$!
exec 3>"$work/fifo"
printf '{"class_uid":1,"activity_id":1,"n":"h1"}\n' >&3
# once it printed the seq of h1 it holds the log (probing the lock with flock(1) would race it)
for _ in $(seq 600); do [ -s "$work/holder.out" ] && break; sleep 0.05; done
[ "$(cat "$work/holder.out")" = 7 ] || fail "the holder printed '$(cat "$work/holder.out")', not 7"
printf '{"class_uid":1,"activity_id":1,"n":"s1"}\n{"class_uid":1,"activity_id":1,"n":"s2"}\n' | ctl append >"$work/spooled"
[ "$(tr '\n' ' ' <"$work/spooled")" = "spooled spooled " ] || fail "the second writer printed $(cat "$work/spooled")"
[ "$(ls "$work/state/audit/cli.test/spool" | wc -l)" = 1 ] || fail "no spool file"
exec 3>&-
wait $holder || fail "the holder's exit status"
ctl verify | grep -q "^ok: 10 events from seq 0" || fail "verify after chaining: $(ctl verify)"
[ "$(ctl tail -n 3 --json | grep -o '"n":"[a-z0-9]*"' | tr '\n' ' ')" = '"n":"h1" "n":"s1" "n":"s2" ' ] ||
	fail "spooled events not chained in order: $(ctl tail -n 3 --json)"
[ "$(ls "$work/state/audit/cli.test/spool" | wc -l)" = 0 ] || fail "the spool file stayed"

# One damaged byte in the middle of the segment: verify fails and names the seq.
seg=$(ls "$work"/state/audit/cli.test/*.seg | head -1)
size=$(stat -c %s "$seg")
printf 'Z' | dd of="$seg" bs=1 seek=$((size / 2)) conv=notrunc status=none
if ctl verify 2>"$work/err"; then fail "damaged log verified"; fi
grep -q "seq [0-9]*:" "$work/err" || fail "no seq named: $(cat "$work/err")"
echo "ok: exaictl audit append (also beside another writer), verify, tail, leaf, prune, sink run and sink status behave"
