#!/usr/bin/env bash
# The main job (README): installs what it needs, builds libexai and walks through the product
# with exaictl on its embedded defaults, in a throw-away state directory.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
if [ ! -f build/build.ninja ]; then
	meson setup build -Dbuildtype=release >/dev/null
fi
log=$(mktemp)
ninja -C build >"$log" || { cat "$log"; rm -f "$log"; echo "walkthrough: the build failed (above)" >&2; exit 1; }
rm -f "$log"

exaictl() { ./build/cli/exaictl --state-dir "$state" "$@"; }
state=$(mktemp -d /tmp/exai-walkthrough.XXXXXX)
trap 'rm -rf "$state"' EXIT
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "libexai $(./build/cli/exaictl --version | cut -d' ' -f2), state directory $state"
exaictl info

step "exaid, the systemd service: its configuration as it would start (exaid.conf(5))"
./build/daemon/exaid --check-config --config daemon/exaid.conf --state-dir "$state"

step "RFC 8785 canonical JSON: the bytes the audit log hashes"
echo '{ "b": [1.0, 1e21, 0.000001], "a": "caf\u00e9" }' | tee /dev/stderr | exaictl json canonicalize
echo

step "keys: a tenant KEK (file KMS), an artefact as an AWS Encryption SDK message, rotation, revocation"
exaictl key init --tenant acme
printf 'quarterly numbers\n' > "$state/report.txt"
exaictl encrypt --tenant acme --purpose export --object report-1 "$state/report.txt" -o "$state/report.msg"
exaictl key rotate --tenant acme
exaictl decrypt --tenant acme "$state/report.msg"
exaictl key revoke --tenant acme
exaictl decrypt --tenant acme "$state/report.msg" || echo "(refused after revocation, as it must be)"

step "keys: minisign signatures that the stock minisign tool checks"
exaictl keygen --sign --unencrypted --secret-key "$state/sign.key" --public-key "$state/sign.pub"
exaictl sign --secret-key "$state/sign.key" -t "walkthrough bundle" "$state/report.txt"
exaictl verify --public-key "$state/sign.pub" "$state/report.txt"
minisign -V -q -p "$state/sign.pub" -m "$state/report.txt" && echo "minisign agrees"

step "vm: a workspace (one microVM) behind the tenant's egress policy: boot, exec, encrypted disk, snapshot, restore, destroy"
if [ "$(id -u)" != 0 ] || [ ! -x /usr/bin/qemu-system-x86_64 ] || [ ! -f build/guest/manifest.json ]; then
	echo "skipped: workspaces need root, qemu-system-x86 and the guest image (build/guest/; needs linux-image-cloud-amd64 readable, busybox-static, cpio)"
else
	export EXAI_GUEST_IMAGE_DIR=$PWD/build/guest
	cleanup_ws() {
		for w in demo demo2; do exaictl ws destroy "$w" >/dev/null 2>&1 || true; done
		[ -n "${listeners:-}" ] && kill "$listeners" 2>/dev/null
		rm -rf "$state"
	}
	trap cleanup_ws EXIT
	# Two services on the host, on free ports: the policy lets the workspace reach only the first.
	python3 -c '
import socket, threading
socks = [socket.create_server(("0.0.0.0", 0)) for _ in range(2)]
def serve(s):
    while True:
        c, _ = s.accept(); c.sendall(b"hello from the host service on :%d\n" % s.getsockname()[1]); c.close()
for s in socks: threading.Thread(target=serve, args=(s,), daemon=True).start()
print(*(s.getsockname()[1] for s in socks), flush=True)
threading.Event().wait()' >"$state/ports" &
	listeners=$!
	for _ in $(seq 50); do [ -s "$state/ports" ] && break; sleep 0.1; done
	read -r allowed denied <"$state/ports"
	exaictl keygen --sign --unencrypted --secret-key "$state/acme-ws.key" --public-key "$state/acme-ws.pub" >/dev/null
	cat >"$state/egress.json" <<-EOF
	{"version": 1, "tenant": "acme-ws",
	 "egress": [{"name": "host-service", "to": [{"cidr": "10.199.255.254/32"}],
	             "ports": [{"protocol": "TCP", "port": $allowed}]}]}
	EOF
	exaictl policy sign --secret-key "$state/acme-ws.key" "$state/egress.json"
	# the host's own addresses are in every policy's floor: the operator carves out the one
	# host service the bundle allows
	policy=(--tenant acme-ws --policy "$state/egress.json" --trusted-key "$state/acme-ws.pub"
		--floor-allow 10.199.255.254/32)
	exaictl ws create "${policy[@]}" --mem 256 --disk 64 demo   # TCG: ~10 s on 2 cores
	exaictl ws exec demo -- sh -c 'uname -r; echo "eth0 $(ip -4 -o addr show dev eth0 | awk "{print \$4}")"; echo secret-in-the-guest > /work/note; df -h /work | tail -1'
	echo "from inside the guest: the allowed service (10.199.255.254:$allowed), then the other one (:$denied)"
	exaictl ws exec demo -- nc -w 5 10.199.255.254 "$allowed" </dev/null
	exaictl ws exec demo -- nc -w 3 10.199.255.254 "$denied" </dev/null || echo "(refused by the egress policy: nothing came back)"

	step "scrub: the prompt is scrubbed on the host; the agent in the workspace only sees the redacted text"
	printf 'Summarise the ticket from jane.doe@example.com; the deploy key is ghp_R8x2kLm9QpZt4VwY7nB3cD6fH1jK5sA0uE2i and the card 4111 1111 1111 1111.\n' |
		exaictl scrub >"$state/prompt.txt"
	exaictl ws exec -i demo -- sh -c 'cat > /tmp/prompt; echo "the agent reads: $(cat /tmp/prompt)"' <"$state/prompt.txt"

	step "vm: encrypted snapshot (memory and disk) and restore into a new workspace with its own address and disk key"
	exaictl ws exec demo -- sh -c 'echo 41 > /tmp/counter; sync'
	exaictl ws snapshot demo --out "$state/demo.snap"
	grep -qa 'secret-in-the-guest' "$state/demo.snap" || echo "the snapshot holds no plaintext of the guest's memory or disk (encrypted)"
	exaictl ws restore "${policy[@]}" "$state/demo.snap" demo2
	exaictl ws exec demo2 -- sh -c 'echo "counter in the restored workspace: $(cat /tmp/counter); its disk: $(cat /work/note); its address: $(ip -4 -o addr show dev eth0 | awk "{print \$4}")"'
	exaictl ws exec demo2 -- nc -w 5 10.199.255.254 "$allowed" </dev/null
	exaictl ws ls
	exaictl ws destroy demo2
	exaictl ws destroy demo
	[ ! -e "$state/demo.snap" ] && echo "destroy shredded demo's keys and deleted its snapshot"
	ls /run/netns 2>/dev/null | grep -q -- '-acme-ws$' || echo "the tenant's last workspace took its network namespace along"

	step "audit: every step above is in the hash-chained, signed log; the policy's refusal too"
	exaictl audit tail -n 400 --json | python3 -c '
import collections, json, sys
ev = [json.loads(l) for l in sys.stdin]
acts = collections.Counter(e.get("action") for e in ev if e.get("module") == "vm")
print("workspace events:", ", ".join("%s %d" % kv for kv in sorted(acts.items())))
deny = [e for e in ev if e.get("class_uid") == 4001]
for e in deny:
    src, dst = e.get("src_endpoint", {}), e.get("dst_endpoint", {})
    if dst.get("port"):
        print("denied: %s -> %s:%s/%s (%s, on %s)" % (src.get("ip"), dst.get("ip"), dst["port"],
              e["connection_info"]["protocol_name"], e["message"], e["device"]["interface_name"]))
print("deny events in all: %d (the others: frames that are not IP, e.g. from the guest'"'"'s IPv6 start-up)" % len(deny))'
	exaictl audit verify
fi
