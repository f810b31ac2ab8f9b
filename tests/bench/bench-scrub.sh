#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The scrubber benchmark, in one run on the same files: libexai (Hyperscan alone, stage 1,
# both stages, 4 KiB latency, recall on the labelled dev corpus) beside secretlint
# (npm secretlint + @secretlint/secretlint-rule-preset-recommend, installed into a cache dir
# under the build dir) for throughput and recall; prints both and the ratios.
# Usage: bench-scrub.sh BENCH_BINARY [MB]   (EXAI_BUILD_ROOT, EXAI_SHARED_DIR from meson)
set -euo pipefail
bench=$1 mb=${2:-100}
build=${EXAI_BUILD_ROOT:-$PWD}
dir=$build/bench-scrub
cache=$build/secretlint-cache
mkdir -p "$dir"
[ -f "$dir/corpus-$(printf %03d $((mb - 1))).txt" ] || "$bench" gen "$dir" "$mb"
echo "== libexai ($(nproc) cores; one thread)"
"$bench" throughput "$dir" | tee "$dir/libexai-throughput.txt"
"$bench" latency "$dir"
"$bench" recall "$dir"

echo "== secretlint"
if [ ! -x "$cache/node_modules/.bin/secretlint" ]; then
	mkdir -p "$cache"
	npm install --no-audit --no-fund --prefix "$cache" secretlint @secretlint/secretlint-rule-preset-recommend >/dev/null 2>&1 ||
		{ echo "secretlint: npm install failed (no registry?); skipping the comparison"; exit 0; }
fi
cat >"$cache/.secretlintrc.json" <<'JSON'
{"rules": [{"id": "@secretlint/secretlint-rule-preset-recommend"}]}
JSON
sl() { (cd "$cache" && ./node_modules/.bin/secretlint --secretlintrc "$cache/.secretlintrc.json" --format json "$@") || true; }
bytes=$(cat "$dir"/corpus-*.txt | wc -c)
# wall and CPU (user + system) seconds of the node process
TIMEFORMAT='%R %U %S'
{ time sl "$dir/corpus-*.txt" >"$dir/secretlint-corpus.json"; } 2>"$dir/secretlint-time"
python3 - "$bytes" "$dir" <<'PY'
import re, sys
b, d = int(sys.argv[1]), sys.argv[2]
wall, user, system = map(float, open(f"{d}/secretlint-time").read().split()[-3:])
cpu = user + system
print(f"secretlint throughput: {b / 1e6 / cpu:.2f} MB/s per CPU-second, {b / 1e6 / wall:.2f} MB/s wall "
      f"({b >> 20} MB in {wall:.1f} s, {cpu:.1f} CPU-s, one node process)")
open(f"{d}/secretlint-mbs", "w").write(str(b / 1e6 / cpu))
ours = {}
for line in open(f"{d}/libexai-throughput.txt"):
    m = re.match(r"(stage 1 \(patterns\)|both stages \+ decoders)\s+([0-9.]+) MB/s per CPU-second", line)
    if m:
        ours[m.group(1)] = float(m.group(2))
for what, mbs in ours.items():
    print(f"ratio, CPU time: libexai {what} {mbs:.1f} MB/s / secretlint {b / 1e6 / cpu:.2f} MB/s = {mbs / (b / 1e6 / cpu):.1f}x")
PY
sl "$dir/recall/*.txt" >"$dir/secretlint-recall.json"
python3 - "$dir" <<'PY'
import json, os, sys
d = sys.argv[1]
try:
    results = json.load(open(f"{d}/secretlint-recall.json"))
except ValueError:
    results = []
ranges = {}
for r in results:
    name = os.path.basename(r.get("filePath", ""))
    ranges.setdefault(name, []).extend(m.get("range", [0, 0]) for m in r.get("messages", []))
found = total = 0
for line in open(f"{d}/recall.tsv"):
    name, a, b, kind = line.split()
    total += 1
    if any(x <= int(a) and y >= int(b) for x, y in ranges.get(name, [])):
        found += 1
print(f"secretlint recall on {total} labelled files: {found} = {100 * found / total:.1f}%")
PY
