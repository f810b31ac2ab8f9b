#!/usr/bin/env bash
# The main job (README): installs what it needs, builds libexai and walks through the product
# with exaictl on its embedded defaults, in a throw-away state directory.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
if [ ! -f build/build.ninja ]; then
	meson setup build -Dbuildtype=release >/dev/null
fi
ninja -C build >/dev/null

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

step "vm: a workspace (one microVM): boot, exec, encrypted disk, encrypted snapshot, restore, destroy"
if [ "$(id -u)" != 0 ] || [ ! -x /usr/bin/qemu-system-x86_64 ] || [ ! -f build/guest/manifest.json ]; then
	echo "skipped: workspaces need root, qemu-system-x86 and the guest image (build/guest/; needs linux-image-cloud-amd64 readable, busybox-static, cpio)"
else
	export EXAI_GUEST_IMAGE_DIR=$PWD/build/guest
	exaictl ws create --tenant acme-ws --mem 256 --disk 64 demo   # TCG: ~10 s on 2 cores
	exaictl ws exec demo -- sh -c 'uname -r; echo secret-in-the-guest > /work/note; echo 41 > /tmp/counter; df -h /work | tail -1'
	exaictl ws destroy demo
	exaictl ws create --tenant acme-ws --mem 256 demo
	exaictl ws exec demo -- sh -c 'echo 41 > /tmp/counter'
	exaictl ws snapshot demo --out "$state/demo.snap"
	grep -qa 'echo 41' "$state/demo.snap" || echo "the snapshot holds no plaintext of the guest's memory (encrypted)"
	exaictl ws restore "$state/demo.snap" demo2
	exaictl ws exec demo2 -- sh -c 'echo "counter in the restored workspace: $(cat /tmp/counter)"'
	exaictl ws ls
	exaictl ws destroy demo2
	exaictl ws destroy demo
	[ ! -e "$state/demo.snap" ] && echo "destroy shredded demo's keys and deleted its snapshot"
fi
