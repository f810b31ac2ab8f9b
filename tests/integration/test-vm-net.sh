#!/usr/bin/env bash
# test-vm-net: workspace networking end to end, as root, on real QEMU microvm guests (TCG
# without KVM), each step a separate exaictl process:
#   - no policy: the guest has no network device at all (fail closed);
#   - a policy for another tenant, or signed by an untrusted key: create fails with a clear
#     error and leaves nothing behind;
#   - with a signed policy allowing one host listener: a connect from inside the guest to it
#     succeeds, one to a second real listener fails and is recorded as a deny event (OCSF
#     4001) in the audit log; the guest has the address and MAC the workspace was given;
#   - a second workspace whose tap cannot be made fails to create, is cleaned up, and leaves
#     the tenant's namespace to the first;
#   - restore of a networked snapshot: refused without the policy; with it, the new workspace
#     has its own tap and address and reaches the allowed listener;
#   - the host's own addresses are in the policy's floor (computed in the host's namespace):
#     a bundle that allows 10.199.255.254 reaches it only with the operator's --floor-allow;
#   - two state dirs side by side with the same tenant and workspace names: each its own
#     namespace, veth, tap, cgroup and address; destroying one leaves the other's working;
#   - creates and destroys of one tenant run in parallel (the tenant's network lock): all
#     succeed, and the last takes the namespace along;
#   - a snapshot taken paused restores paused, with the new workspace's address already
#     taken by the guest;
#   - destroy leaves no tap, namespace, veth, pinned BPF object, cgroup, process or file;
#   - the audit log verifies.
# Exit 77 without root, QEMU, the guest image, BPF support or python3.
set -u
exaictl=$1
image=$2
skip() { echo "SKIP: $*"; exit 77; }
[ "$(id -u)" = 0 ] || skip "workspace networking needs root"
[ -x /usr/bin/qemu-system-x86_64 ] || skip "qemu-system-x86 is not installed"
[ -r "$image/manifest.json" ] || skip "no guest image in $image"
"$exaictl" features | grep -q '^bpf *yes' || skip "exaictl was built without BPF support"
command -v python3 >/dev/null || skip "python3 is not installed"
command -v ip >/dev/null || skip "iproute2 is not installed"
export EXAI_GUEST_IMAGE_DIR=$image

dir=$(mktemp -d /tmp/exai-vm-net.XXXXXX)
state=$dir/state
tenant=nt$$
fails=0
pids=()
x() { "$exaictl" --state-dir "$state" "$@"; }
x2() { "$exaictl" --state-dir "$state2" "$@"; }
state2=$dir/state2
mkdir -p "$state" "$state2"
# The state dir's id in every host-wide name (vm.c: SHA-256 of its absolute path, 8 hex digits).
id_of() { python3 -c 'import hashlib, os, sys; print(hashlib.sha256(os.path.realpath(sys.argv[1]).encode()).hexdigest()[:8])' "$1"; }
hid=$(id_of "$state")
hid2=$(id_of "$state2")
ns="exai-$hid-$tenant"
ns2="exai-$hid2-$tenant"
ok() { echo "ok   - $* (${SECONDS}s)"; }
bad() { echo "FAIL - $*"; fails=$((fails + 1)); }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }
check_not() { local what=$1; shift; if "$@"; then bad "$what"; else ok "$what"; fi; }
cleanup() {
	for w in $(x ws ls 2>/dev/null | awk '{print $1}'); do x ws destroy "$w" >/dev/null 2>&1; done
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	for w in $(x2 ws ls 2>/dev/null | awk '{print $1}'); do x2 ws destroy "$w" >/dev/null 2>&1; done
	rm -rf "$dir"
}
trap cleanup EXIT

# FNV-1a of "$2/$3" with prefix $1: the tap "exai" + h(state dir id, name), the host veth
# "exh" + h(state dir id, tenant) (net.c).
fnv_name() {
	python3 -c 'import sys
h = 2166136261
for b in (sys.argv[2] + "/" + sys.argv[3]).encode():
    h = ((h ^ b) * 16777619) & 0xffffffff
print("%s%08x" % (sys.argv[1], h))' "$@"
}
tap_of() { fnv_name exai "${2:-$hid}" "$1"; }
json_get() { python3 -c 'import json, sys
v = json.load(sys.stdin)
for k in sys.argv[1:]:
    v = v[k] if v is not None else None
print(v)' "$@"; }

# --- two real listeners on the host, on free ports --------------------------------------------
cat >"$dir/serve.py" <<'PY'
import socket, sys, threading
socks = []
for _ in range(2):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", 0)); s.listen(16); socks.append(s)
def serve(s):
    while True:
        c, _ = s.accept(); c.sendall(b"hello-%d\n" % s.getsockname()[1]); c.close()
for s in socks:
    threading.Thread(target=serve, args=(s,), daemon=True).start()
print(" ".join(str(s.getsockname()[1]) for s in socks), flush=True)
threading.Event().wait()
PY
python3 "$dir/serve.py" >"$dir/ports" &
pids+=($!)
for _ in $(seq 50); do [ -s "$dir/ports" ] && break; sleep 0.1; done
read -r allowed denied <"$dir/ports"
[ -n "$denied" ] || skip "cannot start the listeners"

# --- the tenant's signed bundle: only the host's veth address, only the first port ------------
x keygen --sign --unencrypted --secret-key "$dir/t.key" --public-key "$dir/t.pub" >/dev/null
x keygen --sign --unencrypted --secret-key "$dir/o.key" --public-key "$dir/o.pub" >/dev/null
cat >"$dir/p.json" <<EOF
{"version": 1, "tenant": "$tenant",
 "egress": [{"name": "host-listener", "to": [{"cidr": "10.199.255.254/32"}],
             "ports": [{"protocol": "TCP", "port": $allowed}]}]}
EOF
sed "s/\"$tenant\"/\"other$$\"/" "$dir/p.json" >"$dir/other.json"
x policy sign --secret-key "$dir/t.key" "$dir/p.json" >/dev/null
x policy sign --secret-key "$dir/t.key" "$dir/other.json" >/dev/null
pol=(--tenant "$tenant" --policy "$dir/p.json" --trusted-key "$dir/t.pub")
# the bundle allows the host's veth address; the floor refuses the host's own addresses unless
# the operator carves this one out
polh=("${pol[@]}" --floor-allow 10.199.255.254/32)

has_tap() { ip -n "${2:-$ns}" link show "$1" >/dev/null 2>&1; }
nothing_of() { # nothing_of NAME TAP: no workspace dir, tap, pin, cgroup or VMM left
	[ ! -e "$state/vm/$1" ] && [ ! -e "/sys/fs/bpf/exai/$2" ] && ! has_tap "$2" &&
		[ ! -e "/sys/fs/cgroup/memory/exai/$hid-$1" ] && [ ! -e "/sys/fs/cgroup/exai/$hid-$1" ] &&
		! pgrep -f -- "-name $1 " >/dev/null
}
tenant_gone() { # tenant_gone [STATE_ID [TENANT]]
	local id=${1:-$hid} t=${2:-$tenant}
	[ ! -e "/run/netns/exai-$id-$t" ] && ! ip -br link | grep -q "^$(fnv_name exh "$id" "$t")"
}

# --- fail closed: no policy, no network device -------------------------------------------------
check "create without a policy" x ws create --tenant "$tenant" --mem 256 --backend qemu plain
out=$(x ws exec plain -- sh -c 'ls /sys/class/net | tr "\n" " "')
check "without a policy the guest has no network device (only lo): '$out'" test "$out" = "lo "
check "without a policy no tenant namespace was made" test ! -e "/run/netns/$ns"
check "destroy the workspace without a network" x ws destroy plain

# --- bad policies: a clear error and nothing left ----------------------------------------------
x ws create --tenant "$tenant" --policy "$dir/other.json" --trusted-key "$dir/t.pub" bad1 2>"$dir/err"
check "a policy for another tenant: create fails" test $? = 1
check "... saying so: $(cat "$dir/err")" grep -q "tenant" "$dir/err"
check "... and leaves nothing" nothing_of bad1 "$(tap_of bad1)"
check "... not even the tenant namespace" tenant_gone
x ws create --tenant "$tenant" --policy "$dir/p.json" --trusted-key "$dir/o.pub" bad2 2>"$dir/err"
check "a policy signed by an untrusted key: create fails" test $? = 1
check "... saying so: $(cat "$dir/err")" grep -q "not signed by any of the 1 trusted key" "$dir/err"
check "... and leaves nothing" nothing_of bad2 "$(tap_of bad2)"

# --- egress allowed and denied from inside the guest --------------------------------------------
check "create with the tenant's policy" x ws create "${polh[@]}" --mem 256 --backend qemu net1
tap1=$(tap_of net1)
check "the tap is in the tenant's namespace" has_tap "$tap1"
check "the policy is pinned for the tap" test -e "/sys/fs/bpf/exai/$tap1"
x --json ws inspect net1 >"$dir/inspect.json"
mac=$(json_get network mac <"$dir/inspect.json")
ip=$(json_get network ip <"$dir/inspect.json")
out=$(x ws exec net1 -- sh -c 'cat /sys/class/net/eth0/address; ip -4 -o addr show dev eth0 | awk "{print \$4}"' | tr '\n' ' ')
check "the guest has the MAC and address it was given ($mac $ip/30): '$out'" test "$out" = "$mac $ip/30 "
out=$(x ws exec net1 -- nc -w 5 10.199.255.254 "$allowed" </dev/null)
check "allowed: the guest reaches the host listener on :$allowed ('$out')" test "$out" = "hello-$allowed"
x ws exec net1 -- nc -w 3 10.199.255.254 "$denied" </dev/null >"$dir/out" 2>&1
check "denied: the guest cannot reach the listener on :$denied" test $? != 0
check "... and got nothing from it" test ! -s "$dir/out" -o "$(grep -c hello "$dir/out")" = 0
x --json audit tail -n 200 --json >"$dir/audit.jsonl" 2>/dev/null
check "the deny is in the audit log (OCSF 4001, port $denied, tap $tap1)" python3 -c '
import json, sys
for line in open(sys.argv[1]):
    e = json.loads(line)
    if e.get("class_uid") == 4001 and e.get("dst_endpoint", {}).get("port") == int(sys.argv[2]) \
       and e.get("device", {}).get("interface_name") == sys.argv[3]:
        sys.exit(0)
sys.exit(1)' "$dir/audit.jsonl" "$denied" "$tap1"
check "the allowed connection is not reported as denied" python3 -c '
import json, sys
sys.exit(any(json.loads(l).get("dst_endpoint", {}).get("port") == int(sys.argv[2]) for l in open(sys.argv[1])))' \
	"$dir/audit.jsonl" "$allowed"
for a in netns-create tap-create policy-attach; do
	check "audit event vm.$a" grep -q "\"action\":\"$a\"" "$dir/audit.jsonl"
done

# --- a second state dir, the same tenant and workspace name, no floor override ---------------------
check "state dir 2: create net1 of the same tenant (no --floor-allow)" x2 ws create "${pol[@]}" --mem 256 --backend qemu net1
check "two namespaces side by side ($ns, $ns2)" test -e "/run/netns/$ns" -a -e "/run/netns/$ns2" -a "$ns" != "$ns2"
check "... each with its own tap" has_tap "$(tap_of net1 "$hid2")" "$ns2"
check "... and veth" ip link show "$(fnv_name exh "$hid2" "$tenant")"
cg1=/sys/fs/cgroup/pids/exai/$hid-net1 cg2=/sys/fs/cgroup/pids/exai/$hid2-net1
[ -d /sys/fs/cgroup/pids ] || { cg1=/sys/fs/cgroup/exai/$hid-net1; cg2=/sys/fs/cgroup/exai/$hid2-net1; }
check "... and cgroup ($cg1, $cg2)" test -d "$cg1" -a -d "$cg2"
ip_b=$(x2 --json ws inspect net1 | json_get network ip)
check "... and address ($ip, $ip_b)" test -n "$ip_b" -a "$ip_b" != "$ip"
out=$(x2 ws exec net1 -- nc -w 3 10.199.255.254 "$allowed" </dev/null 2>/dev/null)
check "the host's own address is in the floor: allowed by the bundle, refused without --floor-allow ('$out')" test -z "$out"
x2 --json audit tail -n 200 --json >"$dir/audit2.jsonl" 2>/dev/null
check "... and reported as a deny by the floor (deny-floor, port $allowed)" python3 -c '
import json, sys
sys.exit(not any(e.get("class_uid") == 4001 and "deny-floor" in json.dumps(e)
                 and e.get("dst_endpoint", {}).get("port") == int(sys.argv[2])
                 for e in map(json.loads, open(sys.argv[1]))))' "$dir/audit2.jsonl" "$allowed"
check "destroy state dir 2's net1" x2 ws destroy net1
check "... which took its namespace and veth along" tenant_gone "$hid2"
check "... and left state dir 1's" test -e "/run/netns/$ns"
out=$(x ws exec net1 -- nc -w 5 10.199.255.254 "$allowed" </dev/null)
check "state dir 1's net1 still reaches the allowed listener" test "$out" = "hello-$allowed"

# --- parallel creates and destroys in one tenant (the tenant's network lock) ---------------------
ct=ct$$
sed "s/\"$tenant\"/\"$ct\"/" "$dir/p.json" >"$dir/c.json"
x policy sign --secret-key "$dir/t.key" "$dir/c.json" >/dev/null
cpids=()
for i in 1 2 3; do
	x ws create --tenant "$ct" --policy "$dir/c.json" --trusted-key "$dir/t.pub" --backend qemu --no-boot "par$i" \
		>"$dir/par$i.out" 2>&1 &
	cpids+=($!)
done
okc=0
for p in "${cpids[@]}"; do wait "$p" && okc=$((okc + 1)); done
check "three parallel creates in one new tenant all succeed ($okc/3: $(cat "$dir"/par*.out | tr '\n' ' '))" test "$okc" = 3
check "... with three taps in one namespace" test "$(ip -n "exai-$hid-$ct" -br link | grep -c '^exai')" = 3
cpids=()
for i in 1 2 3; do x ws destroy "par$i" >"$dir/par$i.out" 2>&1 & cpids+=($!); done
okc=0
for p in "${cpids[@]}"; do wait "$p" && okc=$((okc + 1)); done
check "three parallel destroys all succeed ($okc/3)" test "$okc" = 3
check "... and the last took the namespace and veth along" tenant_gone "$hid" "$ct"

# --- an attach that fails: the second workspace is cleaned up, the first keeps its network ------
tap2=$(tap_of net2)
ip -n "$ns" link add "$tap2" type veth peer name "xp$$"   # not a tap: TUNSETIFF fails
x ws create "${polh[@]}" --mem 256 --backend qemu net2 2>"$dir/err"
check "create fails when its tap cannot be made" test $? = 1
check "... saying so: $(cat "$dir/err")" grep -q "tap $tap2" "$dir/err"
ip -n "$ns" link del "$tap2" 2>/dev/null
check "... and leaves nothing of it" nothing_of net2 "$tap2"
check "... while the tenant's namespace stays for net1" test -e "/run/netns/$ns"
out=$(x ws exec net1 -- nc -w 5 10.199.255.254 "$allowed" </dev/null)
check "net1 still reaches the allowed listener" test "$out" = "hello-$allowed"

# --- restore: its own tap and address ------------------------------------------------------------
check "snapshot net1" x ws snapshot net1 --out "$dir/net1.snap"
x ws restore "$dir/net1.snap" net3 2>"$dir/err"
check "restore of a networked snapshot without the policy is refused" test $? = 1
check "... saying so: $(cat "$dir/err")" grep -q "needs the tenant's egress policy" "$dir/err"
check "... leaving nothing" nothing_of net3 "$(tap_of net3)"
check "restore with the policy" x ws restore "${polh[@]}" "$dir/net1.snap" net3
ip3=$(x --json ws inspect net3 | json_get network ip)
check "net3 has its own address ($ip3, not $ip)" test -n "$ip3" -a "$ip3" != "$ip"
out=$(x ws exec net3 -- sh -c 'ip -4 -o addr show dev eth0 | awk "{print \$4}"')
check "the restored guest took it ('$out')" test "$out" = "$ip3/30"
out=$(x ws exec net3 -- nc -w 5 10.199.255.254 "$allowed" </dev/null)
check "net3 reaches the allowed listener" test "$out" = "hello-$allowed"
x ws exec net3 -- nc -w 3 10.199.255.254 "$denied" </dev/null >/dev/null 2>&1
check "net3 is denied the other" test $? != 0

# --- a snapshot taken paused: the restored workspace has its own address from the start ----------
check "pause net1" x ws pause net1
check "snapshot net1 while paused" x ws snapshot net1 --out "$dir/net1p.snap"
check "resume net1" x ws resume net1
check "restore the paused snapshot" x ws restore "${polh[@]}" "$dir/net1p.snap" net4
st4=$(x --json ws inspect net4 | json_get state)
check "net4 is paused, as its snapshot was ($st4)" test "$st4" = paused
check "resume net4" x ws resume net4
ip4=$(x --json ws inspect net4 | json_get network ip)
out=$(x ws exec net4 -- sh -c 'ip -4 -o addr show dev eth0 | awk "{print \$4}"')
check "net4 has its own address at its first resume ($ip4, not $ip: '$out')" test "$out" = "$ip4/30" -a "$ip4" != "$ip"
out=$(x ws exec net4 -- nc -w 5 10.199.255.254 "$allowed" </dev/null)
check "net4 reaches the allowed listener" test "$out" = "hello-$allowed"
check "destroy net4" x ws destroy net4
check "net4 left nothing" nothing_of net4 "$(tap_of net4)"

# --- destroy: nothing left ---------------------------------------------------------------------
check "destroy net3" x ws destroy net3
check "net3 left nothing" nothing_of net3 "$(tap_of net3)"
check "the namespace stays while net1 lives" test -e "/run/netns/$ns"
check "destroy net1" x ws destroy net1
check "net1 left nothing" nothing_of net1 "$tap1"
check "the tenant's last workspace took its namespace and veth along" tenant_gone
x --json audit tail -n 400 --json >"$dir/audit.jsonl" 2>/dev/null
for a in policy-detach tap-remove netns-remove; do
	check "audit event vm.$a" grep -q "\"action\":\"$a\"" "$dir/audit.jsonl"
done
check "the audit log verifies" x audit verify

echo "$fails failed"
[ "$fails" = 0 ]
