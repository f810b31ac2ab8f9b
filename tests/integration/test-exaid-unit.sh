#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# exaid.service as systemd reads it: `systemd-analyze verify` accepts every directive, and
# `systemd-analyze security --offline` rates its exposure at 5.0 or better (it is 4.6: what is
# left open is what workspaces need, commented in the unit).
# Usage: test-exaid-unit.sh UNIT EXAID
set -euo pipefail
unit=$(realpath "$1") exaid=$(realpath "$2")
command -v systemd-analyze >/dev/null || { echo "SKIP: systemd-analyze is not installed (package systemd)"; exit 77; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/exai-unit.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# The built exaid instead of the install path; no man: links (the pages are not installed here).
sed "s#^ExecStart=[^ ]*#ExecStart=$exaid#; /^Documentation=/d" "$unit" >"$tmp/exaid.service"
grep -q '^Type=notify$' "$tmp/exaid.service" || { echo "FAIL: not Type=notify"; exit 1; }

out=$(systemd-analyze verify "$tmp/exaid.service" 2>&1) || { echo "FAIL: systemd-analyze verify: $out"; exit 1; }
[ -z "$out" ] || { echo "FAIL: systemd-analyze verify warns: $out"; exit 1; }
echo "ok: systemd-analyze verify accepts exaid.service"

report=$(systemd-analyze security --offline=true "$tmp/exaid.service" 2>&1 | tail -1)
echo "$report"
systemd-analyze security --offline=true --threshold=50 "$tmp/exaid.service" >/dev/null 2>&1 ||
	{ echo "FAIL: exposure above 5.0: $report"; exit 1; }
echo "ok: exposure 5.0 or better"
