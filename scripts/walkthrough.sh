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
