#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# exaictl's contract: exit codes 0 success / 1 failure / 2 usage (with the message on
# stderr), --help on every level (found by walking the help, so new commands are covered),
# exact bytes from json canonicalize, JSON from --json, and -v logging the library's messages.
# Usage: test-exaictl.sh EXAICTL (EXAI_SHARED_DIR names ../shared).
set -uo pipefail
exaictl=$1
shared=${EXAI_SHARED_DIR:-../shared}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/exai-cli.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
failures=0

# expect CODE STDERR_PATTERN -- ARGS...: runs exaictl (stdin from $stdin, default /dev/null),
# checks the exit code and, when the pattern is non-empty, that stderr contains it.
stdin=/dev/null
expect() {
	local want=$1 pattern=$2
	shift 3
	"$exaictl" "$@" <"$stdin" >"$tmp/out" 2>"$tmp/err"
	local rc=$?
	if [ "$rc" != "$want" ]; then
		echo "FAIL: exaictl $* exited $rc, want $want; stderr: $(cat "$tmp/err")"
		failures=$((failures + 1))
	elif [ -n "$pattern" ] && ! grep -qF -- "$pattern" "$tmp/err"; then
		echo "FAIL: exaictl $*: stderr lacks '$pattern': $(cat "$tmp/err")"
		failures=$((failures + 1))
	else
		echo "ok: exaictl $* -> $rc"
	fi
}
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

expect 0 "" -- --version
grep -qx "exaictl [0-9]*\.[0-9]*\.[0-9]*" "$tmp/out" || fail "--version prints 'exaictl X.Y.Z': $(cat "$tmp/out")"

# --help at every level: walk the "Commands:" lists.
walk() {
	local helps=("--help" "-h")
	for h in "${helps[@]}"; do
		expect 0 "" -- "$@" "$h"
		# its own usage, not its parent's: the first line names the whole command path
		head -n1 "$tmp/out" | grep -qF "Usage: exaictl${*:+ $*} " ||
			head -n1 "$tmp/out" | grep -qxF "Usage: exaictl${*:+ $*}" ||
			fail "exaictl $* $h does not print its own usage: $(head -n1 "$tmp/out")"
	done
	# Documented in the man page, as ".B exaictl <command path>".
	if [ $# -gt 0 ] && [ -n "${EXAI_SOURCE_ROOT:-}" ] &&
		! grep -qF ".B exaictl $*" "$EXAI_SOURCE_ROOT/docs/exaictl.1"; then
		fail "docs/exaictl.1 does not document 'exaictl $*'"
	fi
	"$exaictl" "$@" --help | sed -n '/^Commands:/,/^$/p' | awk 'NR > 1 && NF { print $1 }' >"$tmp/subs.$#"
	local sub
	while read -r sub; do
		walk "$@" "$sub"
	done <"$tmp/subs.$#"
}
walk
expect 0 "" -- help

# Usage errors: exit 2 and a message on stderr.
expect 2 "unknown command 'bogus'" -- bogus
expect 2 "unknown command 'bogus'" -- json bogus
expect 2 "unknown option '--bogus'" -- --bogus
expect 2 "unknown option '--bogus'" -- version --bogus
expect 2 "unknown option '--bogus'" -- json canonicalize --bogus
expect 2 "unknown option '-x'" -- info -x
expect 2 "needs a value" -- --state-dir
expect 2 "unexpected argument 'extra'" -- version extra
expect 2 "unexpected argument 'b'" -- json canonicalize a b
expect 2 "Usage: exaictl" -- # no command at all
expect 2 "Usage: exaictl json" -- json

# json canonicalize: every RFC 8785 vector, from a file and from stdin, byte for byte.
for input in "$shared"/vectors/jcs/input/*.json; do
	name=${input##*/}
	expect 0 "" -- json canonicalize "$input"
	cmp -s "$tmp/out" "$shared/vectors/jcs/output/$name" || fail "json canonicalize $name differs from the vector"
	stdin=$input expect 0 "" -- json canonicalize -
	cmp -s "$tmp/out" "$shared/vectors/jcs/output/$name" || fail "json canonicalize - < $name differs from the vector"
done
printf '{"a":1,}' >"$tmp/bad.json"
expect 1 "$tmp/bad.json: invalid JSON at line 1, column 8" -- json canonicalize "$tmp/bad.json"
[ -s "$tmp/out" ] && fail "json canonicalize printed output for bad input"
printf '{"a":1,"a":2}' >"$tmp/dup.json"
expect 1 "duplicate" -- json canonicalize "$tmp/dup.json"
expect 1 "$tmp/missing.json: No such file or directory" -- json canonicalize "$tmp/missing.json"
expect 1 "must be an absolute path" -- --state-dir relative info

# --json output parses as JSON, on every command that prints data.
for cmd in "version" "info" "features"; do
	expect 0 "" -- --state-dir "$tmp/state" --json $cmd
	python3 -c 'import json, sys; json.load(open(sys.argv[1]))' "$tmp/out" || fail "exaictl --json $cmd: not JSON: $(cat "$tmp/out")"
	expect 0 "" -- --state-dir "$tmp/state" $cmd --json
	python3 -c 'import json, sys; json.load(open(sys.argv[1]))' "$tmp/out" || fail "exaictl $cmd --json: not JSON"
done
expect 0 "" -- --state-dir "$tmp/state" --json info
python3 - "$tmp/out" "$tmp/state" <<'PY' || fail "info --json does not carry version, state_dir and features"
import json, sys
v = json.load(open(sys.argv[1]))
assert v["state_dir"] == sys.argv[2] and isinstance(v["features"], dict) and v["version"], v
PY

# -v: the library's messages on stderr; silent without it.
expect 0 "" -- --state-dir "$tmp/state" info
[ -s "$tmp/err" ] && fail "exaictl info wrote to stderr without -v: $(cat "$tmp/err")"
expect 0 "exaictl: debug: core: libexai" -- -vv --state-dir "$tmp/state" info
grep -qF "state directory $tmp/state (from exai_ctx_opts.state_dir)" "$tmp/err" || fail "-vv does not log the context's state directory"
expect 0 "" -- -v --state-dir "$tmp/state" info
grep -q "debug" "$tmp/err" && fail "-v (info level) logged a debug line"

if [ "$failures" -ne 0 ]; then
	echo "$failures check(s) failed"
	exit 1
fi
echo "all checks passed"
