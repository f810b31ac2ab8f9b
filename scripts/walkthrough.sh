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
