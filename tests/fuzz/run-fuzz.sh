#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Runs one libFuzzer target for a few seconds over a writable copy of its seed corpus (so the
# repository is never written to). Usage: run-fuzz.sh TARGET CORPUS_DIR [DICT] [SECONDS]
# A crash, leak, timeout or failed check fails the test; the input that caused it is kept in
# <build>/fuzz-artifacts/ (reproduce with: TARGET <that file>).
set -euo pipefail
target=$1 corpus=$2 dict=${3:-} seconds=${4:-5}
name=$(basename "$target")
[ -d "$corpus" ] && [ -n "$(ls -A "$corpus")" ] || { echo "no seed corpus in $corpus" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/exai-$name.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
cp -r "$corpus/." "$tmp/"
artifacts=${EXAI_BUILD_ROOT:-$PWD}/fuzz-artifacts
mkdir -p "$artifacts"

args=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
	-artifact_prefix="$artifacts/$name-")
[ -n "$dict" ] && args+=(-dict="$dict")
"$target" "${args[@]}" "$tmp" # not exec: the trap removes the copy
