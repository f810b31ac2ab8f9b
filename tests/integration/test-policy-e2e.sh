#!/usr/bin/env bash
# test-policy-e2e: the egress policy end to end, as root, in network namespaces.
#
# Topology: tests/integration/policy-netns.sh (guest G, host H carrying the policy, tenant P).
# Real listeners in P; exaictl applies the policy to hv0 (the guest's egress is hv0's ingress).
# Checks: allowed connections succeed, denied ones fail and produce deny events, the metadata
# address is always denied, inbound connections to the guest are refused while replies pass,
# a swap during a running iperf3 keeps the allowed flow and blocks the newly denied one at once,
# enforcement survives the loader process, detach restores the link; matchName rules follow DNS
# TTLs, matchPattern rules learn from the guest's own DNS answers. Exit 77 when not possible.
set -uo pipefail

skip() { echo "SKIP: $*"; exit 77; }
. "$(dirname "$0")/policy-netns.sh"

ok() { echo "ok   - $* (${SECONDS}s)"; }
bad() { echo "FAIL - $*"; fails=$((fails + 1)); }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }
check_not() { local what=$1; shift; if "$@"; then bad "$what"; else ok "$what"; fi; }
fails=0

# --- listeners ------------------------------------------------------------------------------
cat >"$work/serve.py" <<'PY'
import socket, sys, threading
def serve(fam, addr, port):
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port)); s.listen(64)
    while True:
        c, _ = s.accept()
        threading.Thread(target=echo, args=(c,), daemon=True).start()
def echo(c):
    try:
        while True:
            d = c.recv(4096)
            if not d: break
            c.sendall(d)
    except OSError: pass
    c.close()
ts = []
for spec in sys.argv[1:]:
    addr, port = spec.rsplit(":", 1)
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    t = threading.Thread(target=serve, args=(fam, addr.strip("[]"), int(port)), daemon=True); t.start(); ts.append(t)
print("ready", flush=True)
for t in ts: t.join()
PY
cat >"$work/conn.py" <<'PY'
import socket, sys
addr, port = sys.argv[1].rsplit(":", 1)
try:
    s = socket.create_connection((addr.strip("[]"), int(port)), timeout=float(sys.argv[2]) if len(sys.argv) > 2 else 4.0)
    s.sendall(b"ping"); ok = s.recv(4) == b"ping"; s.close()
    sys.exit(0 if ok else 1)
except OSError:
    sys.exit(1)
PY
ip netns exec $P "$PY" "$work/serve.py" 10.201.0.2:8080 10.201.0.3:8080 10.201.0.2:9000 169.254.169.254:80 "[fd21::2]:8080" >"$work/serve.log" 2>&1 &
pids+=($!)
ip netns exec $G "$PY" "$work/serve.py" 10.200.0.2:2222 >/dev/null 2>&1 &
pids+=($!)
ip netns exec $H "$PY" "$work/serve.py" 10.200.0.1:8080 >/dev/null 2>&1 &
pids+=($!)
inP iperf3 -s -B 10.201.0.2 -p 5201 -D --logfile "$work/iperf-s.log" --pidfile "$work/iperf-s.pid"
for _ in $(seq 50); do grep -q ready "$work/serve.log" 2>/dev/null && break; sleep 0.1; done
conn() { inG "$PY" "$work/conn.py" "$1" 4; }   # expected to work: a generous timeout
connq() { inG "$PY" "$work/conn.py" "$1" 1; }  # expected to be dropped: 1 s is plenty

check "without a policy: guest reaches 10.201.0.3:8080" conn 10.201.0.3:8080
check "without a policy: guest reaches the host's 10.200.0.1:8080" conn 10.200.0.1:8080
check "without a policy: tenant reaches the guest's :2222" inP "$PY" "$work/conn.py" 10.200.0.2:2222

# --- policy 1 -------------------------------------------------------------------------------
cat >"$work/p1.json" <<'EOF'
{"version": 1, "tenant": "acme",
 "egress": [
  {"name": "app", "to": [{"cidr": "10.201.0.0/24", "except": ["10.201.0.3/32"]}, {"cidr": "fd21::/64"}],
   "ports": [{"protocol": "TCP", "port": 8080}]},
  {"name": "bulk", "to": [{"cidr": "10.201.0.2/32"}], "ports": [{"protocol": "TCP", "port": 5201}, {"protocol": "UDP", "port": 5201}]},
  {"name": "metadata", "to": [{"cidr": "169.254.169.254/32"}]},
  {"name": "gateway", "to": [{"cidr": "10.200.0.0/24"}], "ports": [{"protocol": "TCP", "port": 8080}]}
 ]}
EOF
cat >"$work/p2.json" <<'EOF'
{"version": 1, "tenant": "acme",
 "egress": [
  {"name": "bulk", "to": [{"cidr": "10.201.0.2/32"}], "ports": [{"protocol": "TCP", "port": 5201}, {"protocol": "UDP", "port": 5201}]},
  {"name": "admin", "to": [{"cidr": "10.201.0.2/32"}], "ports": [{"protocol": "TCP", "port": 9000}]}
 ]}
EOF
check_not "apply refuses an unsigned bundle without --allow-unsigned" ctl policy apply --dev hv0 --bpffs "$bpffs" "$work/p1.json"
"$EXAICTL" keygen --sign --secret-key "$work/tenant.key" --public-key "$work/tenant.pub" --unencrypted >/dev/null
"$EXAICTL" keygen --sign --secret-key "$work/other.key" --public-key "$work/other.pub" --unencrypted >/dev/null
check "sign policy 1 and 2 (minisign format)" bash -c "'$EXAICTL' policy sign --secret-key '$work/tenant.key' '$work/p1.json' &&
	'$EXAICTL' policy sign --secret-key '$work/tenant.key' '$work/p2.json'"
if command -v minisign >/dev/null; then
	check "stock minisign verifies the bundle signature" minisign -Vqm "$work/p1.json" -p "$work/tenant.pub"
fi
apply() { ctl policy apply --trusted-key "$work/tenant.pub" --dev hv0 --bpffs "$bpffs" "$@"; }
check_not "apply refuses a bundle signed by an untrusted key" ctl policy apply --trusted-key "$work/other.pub" --dev hv0 --bpffs "$bpffs" "$work/p1.json"
check_not "apply refuses a bundle for another tenant" apply --tenant other "$work/p1.json"
check_not "apply to a missing device fails" ctl policy apply --trusted-key "$work/tenant.pub" --dev nosuch0 --bpffs "$bpffs" "$work/p1.json"
check "apply signed policy 1 (a process that exits)" apply "$work/p1.json"
sed 's/"except": \["10.201.0.3\/32"\]/"except": []/' "$work/p1.json" >"$work/tampered.json"
cp "$work/p1.json.minisig" "$work/tampered.json.minisig"
check_not "apply refuses a tampered bundle" apply "$work/tampered.json"

check "allowed: 10.201.0.2:8080" conn 10.201.0.2:8080
check "allowed: [fd21::2]:8080 (IPv6)" conn "[fd21::2]:8080"
check_not "denied by except: 10.201.0.3:8080" connq 10.201.0.3:8080
check_not "denied: 10.201.0.2:9000 (no rule)" connq 10.201.0.2:9000
check_not "metadata 169.254.169.254:80 denied although a rule names it" connq 169.254.169.254:80
check_not "host's own address 10.200.0.1:8080 denied (floor) although a rule names it" connq 10.200.0.1:8080
check_not "inbound connection to the guest refused" inP "$PY" "$work/conn.py" 10.200.0.2:2222 1

events=$(ctl --json policy events --dev hv0 --bpffs "$bpffs")
check "deny event for 10.201.0.3:8080 (OCSF 4001)" grep -q '"class_uid":4001.*"dst_endpoint":{"ip":"10.201.0.3","port":8080}' <<<"$events"
check "deny event for the metadata address" grep -q '"ip":"169.254.169.254","port":80' <<<"$events"
check "deny event for the inbound connection" grep -q '"direction":"Inbound".*"ip":"10.200.0.2","port":2222' <<<"$events"
stats=$(ctl --json policy stats --dev hv0 --bpffs "$bpffs")
check "stats (new process): rule app counted" "$PY" -c '
import json,sys; c={x["name"]:x for x in json.loads(sys.argv[1])["counters"]}
sys.exit(0 if c["rule:app"]["packets"] > 0 and c["deny-floor"]["packets"] > 0 and c["reply"]["packets"] > 0 and c["deny-inbound"]["packets"] > 0 else 1)' "$stats"

# --- swap during iperf3 ---------------------------------------------------------------------
# A long-lived connection on 8080 (allowed now, denied by policy 2) and an iperf3 flow on 5201
# (allowed by both). After the swap the first must stop at once, the second must keep going.
cat >"$work/hold.py" <<'PY'
import socket, sys, time
s = socket.create_connection(("10.201.0.2", 8080), timeout=1)
s.settimeout(0.5)
out = open(sys.argv[1], "w", buffering=1)
while True:
    try:
        s.sendall(b"ping"); ok = s.recv(4) == b"ping"
    except OSError:
        ok = False
    out.write(f"{time.monotonic():.3f} {int(ok)}\n")
    time.sleep(0.1)
PY
ip netns exec $G "$PY" "$work/hold.py" "$work/hold.log" &
hold=$!
pids+=($hold)
ip netns exec $G iperf3 -c 10.201.0.2 -p 5201 -t 6 -i 0.5 -J >"$work/iperf.json" 2>&1 &
iperf=$!
sleep 2.5
swap_at=$("$PY" -c 'import time; print(f"{time.monotonic():.3f}")')
check "swap to policy 2 while iperf3 runs" apply "$work/p2.json"
swapped_at=$("$PY" -c 'import time; print(f"{time.monotonic():.3f}")')
wait $iperf
iperf_rc=$?
sleep 1.3
kill $hold 2>/dev/null
check "iperf3 (allowed by both) finished" test $iperf_rc = 0
check "iperf3 moved data in every interval across the swap" "$PY" -c '
import json,sys; r=json.load(open(sys.argv[1])); iv=[i["sum"]["bits_per_second"] for i in r["intervals"]]
print("   iperf3 intervals (Mbit/s):", " ".join(f"{b/1e6:.0f}" for b in iv))
sys.exit(0 if len(iv) >= 10 and min(iv) > 0 else 1)' "$work/iperf.json"
check "held 8080 connection worked before the swap" awk -v t="$swap_at" '$1 < t && $2 == 1 {n++} END {exit !(n > 5)}' "$work/hold.log"
check "held 8080 connection blocked from the moment apply returned" awk -v t="$swapped_at" '$1 > t {n++; if ($2 == 1) bad++} END {exit !(n > 0 && bad == 0)}' "$work/hold.log"
check_not "new connection to 10.201.0.2:8080 denied after the swap" connq 10.201.0.2:8080
check "new connection to 10.201.0.2:9000 allowed after the swap" conn 10.201.0.2:9000

# --- the loader is gone: enforcement stays; detach removes it ---------------------------------
check_not "no loader process left (none names our bpffs)" pgrep -f -- "[e]xaictl .*$bpffs"
check_not "still enforced with no loader process: 10.201.0.3:8080" connq 10.201.0.3:8080
check "detach" ctl policy detach --dev hv0 --bpffs "$bpffs"
check "after detach: 10.201.0.3:8080 reachable again" conn 10.201.0.3:8080
check_not "detach again reports nothing attached" ctl policy detach --dev hv0 --bpffs "$bpffs"

# --- FQDN rules: resolved with their TTL, re-resolved before it runs out, old addresses kept
# for the grace period. A small DNS server in P answers api.test with the address in a file.
cat >"$work/dns.py" <<'PY'
import socket, struct, sys
answer_file, ttl = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("10.201.0.2", 53))
print("ready", flush=True)
while True:
    q, peer = s.recvfrom(512)
    qid, = struct.unpack("!H", q[:2]); i = 12; labels = []
    while q[i]: labels.append(q[i + 1:i + 1 + q[i]].decode().lower()); i += 1 + q[i]
    qtype, = struct.unpack("!H", q[i + 1:i + 3]); question = q[12:i + 5]
    name = ".".join(labels); rr = b""; n = 0; rcode = 0; addrs = []
    if name == "api.test": addrs = open(answer_file).read().split()
    elif name.endswith(".pat.test"): addrs = ["10.201.0.3"]
    else: rcode = 3
    if qtype == 1:
        for a in addrs:
            rr += b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, ttl, 4) + socket.inet_aton(a); n += 1
    s.sendto(struct.pack("!HHHHHH", qid, 0x8180 | rcode, 1, n, 0, 0) + question + rr, peer)
PY
# ip netns exec bind-mounts /etc/netns/<ns>/resolv.conf over /etc/resolv.conf
[ -d /etc/netns ] || made_etc_netns=1
mkdir -p "/etc/netns/$H" && echo "nameserver 10.201.0.2" >"/etc/netns/$H/resolv.conf"
cleanup_extra() { rm -rf "/etc/netns/${H:?}"; [ -z "${made_etc_netns:-}" ] || rmdir /etc/netns 2>/dev/null; }
until_t() { local d=$(($1 - SECONDS)); [ $d -le 0 ] || sleep $d; }
echo 10.201.0.2 >"$work/answer"
ip netns exec $P "$PY" "$work/dns.py" "$work/answer" 5 >"$work/dns.log" 2>&1 &
pids+=($!)
cat >"$work/p3.json" <<'JSON'
{"version": 1, "tenant": "acme", "egress": [
  {"name": "api", "toFQDNs": [{"matchName": "api.test"}], "ports": [{"protocol": "TCP", "port": 8080}]}]}
JSON
"$EXAICTL" policy sign --secret-key "$work/tenant.key" "$work/p3.json" >/dev/null
for _ in $(seq 30); do grep -q ready "$work/dns.log" && break; sleep 0.1; done
ip netns exec $H "$EXAICTL" policy apply --follow-dns --dns-grace 4 --trusted-key "$work/tenant.pub" \
	--dev hv0 --bpffs "$bpffs" "$work/p3.json" >"$work/follow.log" 2>&1 &
follow=$!
pids+=($follow)
t0=$SECONDS
for _ in $(seq 30); do grep -q applied "$work/follow.log" && break; sleep 0.1; done
check "matchName: the address api.test resolves to is allowed" conn 10.201.0.2:8080
check_not "matchName: another address is not" connq 10.201.0.3:8080
# TTL 5 s (the least libexai honours), grace 4 s: re-resolved at 4.5 s, old address gone at 9 s
echo 10.201.0.3 >"$work/answer"
until_t $((t0 + 6))
check "matchName: re-resolved before the TTL ran out: the new address is allowed" conn 10.201.0.3:8080
check "matchName: the old address stays allowed during the grace period" conn 10.201.0.2:8080
until_t $((t0 + 11))
check_not "matchName: the old address is denied once TTL and grace have passed" connq 10.201.0.2:8080
check "matchName: --follow-dns applied the bundle again each TTL" test "$(grep -c applied "$work/follow.log")" -ge 3
kill $follow 2>/dev/null

# --- matchPattern: learnt from the DNS answers the guest itself receives from its resolver ---
cat >"$work/dnsq.py" <<'PY'
import socket, struct, sys
q = struct.pack("!HHHHHH", 7, 0x0100, 1, 0, 0, 0) + b"".join(bytes([len(l)]) + l.encode() for l in sys.argv[1].split(".")) + b"\0" + struct.pack("!HH", 1, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(2)
s.sendto(q, ("10.201.0.2", 53))
try:
    r = s.recv(512)
except OSError:
    sys.exit(2)
sys.exit(0 if struct.unpack("!H", r[6:8])[0] > 0 else 1)
PY
cat >"$work/p4.json" <<'JSON'
{"version": 1, "tenant": "acme", "resolvers": ["10.201.0.2"], "egress": [
  {"name": "pat", "toFQDNs": [{"matchPattern": "*.pat.test"}], "ports": [{"protocol": "TCP", "port": 8080}]}]}
JSON
"$EXAICTL" policy sign --secret-key "$work/tenant.key" "$work/p4.json" >/dev/null
ip netns exec $H "$EXAICTL" policy apply --follow-dns --trusted-key "$work/tenant.pub" \
	--dev hv0 --bpffs "$bpffs" "$work/p4.json" >"$work/follow4.log" 2>&1 &
follow=$!
pids+=($follow)
for _ in $(seq 30); do grep -q applied "$work/follow4.log" && break; sleep 0.1; done
check_not "matchPattern: nothing allowed before any DNS answer" connq 10.201.0.3:8080
check "matchPattern: the guest's query for x.other.test (no such name) is answered" bash -c "ip netns exec $G '$PY' '$work/dnsq.py' x.other.test; [ \$? = 1 ]"
check "matchPattern: the guest resolves db.pat.test through its resolver" inG "$PY" "$work/dnsq.py" db.pat.test
for _ in $(seq 30); do [ "$(grep -c applied "$work/follow4.log")" -ge 2 ] && break; sleep 0.1; done
check "matchPattern: --follow-dns applied the bundle again after the answer" test "$(grep -c applied "$work/follow4.log")" -ge 2
check "matchPattern: the address db.pat.test resolved to is allowed" conn 10.201.0.3:8080
check_not "matchPattern: other addresses are not" connq 10.201.0.2:8080
kill $follow 2>/dev/null
ctl policy detach --dev hv0 --bpffs "$bpffs" >/dev/null

echo "$fails failure(s)"
[ $fails = 0 ]
