#!/usr/bin/env bash
# test-audit-go: libexai's checkpoints, inclusion and consistency proofs checked by Go's
# golang.org/x/mod/sumdb/note and .../tlog (Debian: golang-go, golang-golang-x-mod-dev), built
# offline in GOPATH mode against /usr/share/gocode.
# Usage: test-audit-go.sh EXAICTL GO_SOURCE_DIR
set -euo pipefail
exaictl=$(realpath "$1")
src=$2
gopath=/usr/share/gocode
command -v go >/dev/null || { echo "SKIP: go is not installed (golang-go)"; exit 77; }
[ -d "$gopath/src/golang.org/x/mod/sumdb/tlog" ] || { echo "SKIP: $gopath lacks golang.org/x/mod (golang-golang-x-mod-dev)"; exit 77; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
build=${EXAI_BUILD_ROOT:-$work}/go-audit
mkdir -p "$build"
cp "$src/main.go" "$work/main.go"
(cd "$work" && GO111MODULE=off GOPATH=$gopath GOCACHE=$build/cache GOPROXY=off GOFLAGS= \
	go build -o "$build/audit-verify" main.go)

state=$work/state
out=$work/out
mkdir -p "$out"
ctl() { "$exaictl" --state-dir "$state" audit "$1" --origin example.com/exai-test "${@:2}"; }
events() { for i in $(seq "$1" "$2"); do
	printf '{"class_uid":3002,"activity_id":%d,"activity_name":"auth.logon","actor":{"user":{"name":"u%d"}},"tenant":"acme"}\n' $((1 + i % 3)) "$i"
done; }

events 0 99 | ctl append >/dev/null
ctl checkpoint >"$out/old-checkpoint"
events 100 156 | ctl append >/dev/null
ctl checkpoint >"$out/checkpoint"
ctl vkey >"$out/vkey"
head -2 "$out/checkpoint" | tail -1 | grep -qx 157
for seq in 0 1 2 7 63 64 99 100 128 155 156; do
	ctl leaf $seq >"$out/leaf-$seq"
	ctl prove $seq >"$out/proof-$seq"
	if [ $seq -lt 100 ]; then ctl prove --size 100 $seq >"$out/oldproof-$seq"; fi
done
ctl consistency 100 157 >"$out/consistency"
"$build/audit-verify" "$out"

# A tampered checkpoint must be refused by Go's note.Open.
sed 's/^157$/158/' "$out/checkpoint" >"$out/bad" && mv "$out/bad" "$out/checkpoint"
if "$build/audit-verify" "$out" 2>"$work/err"; then
	echo "FAIL: Go accepted a changed checkpoint"; exit 1
fi
grep -q "note.Open" "$work/err"
echo "ok: Go verified libexai's checkpoints and proofs, and refused a changed checkpoint"
