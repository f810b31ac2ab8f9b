#!/usr/bin/env bash
# The test command (README): installs what it needs, builds libexai with AddressSanitizer and
# UndefinedBehaviorSanitizer under clang (with libFuzzer targets), runs the unit, integration,
# ABI and fuzz suites, builds once more with gcc (warnings are errors there too) and runs
# cppcheck on lib/. Ends with one line "N passed, N failed, N skipped".
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

bash scripts/setup.sh

build=${EXAI_TEST_BUILD:-build-test}
if [ ! -f "$build/build.ninja" ]; then
	CC=clang meson setup "$build" -Dbuildtype=debugoptimized -Db_sanitize=address,undefined \
		-Db_lundef=false -Dfuzz=enabled >/dev/null
fi
ninja -C "$build"

# Every stage runs even when an earlier one fails, so that one run shows every problem.
failed=()
stage() { current=$1; echo "== $1"; }
fail() { failed+=("$current"); }

# release (-O3), as the walk-through builds: gcc's flow analysis warns at -O3 what -O0 hides
stage "gcc release build (warnings are errors)"
if [ ! -f build-gcc/build.ninja ]; then
	CC=gcc meson setup build-gcc -Dfuzz=disabled -Dbuildtype=release >/dev/null
fi
ninja -C build-gcc || fail

stage "cppcheck lib/"
# libbpf's option macro is spelled out: cppcheck does not read system headers.
cppcheck --quiet --error-exitcode=1 --enable=warning,portability --inline-suppr \
	--std=c11 -D__GNUC__ '-DLIBBPF_OPTS(TYPE,NAME,...)=struct TYPE NAME = {.sz = sizeof(struct TYPE), __VA_ARGS__}' \
	-I include -I lib -I lib/core -I build-gcc/lib \
	--suppress=missingIncludeSystem lib || fail

stage "tests"
meson test -C "$build" --no-rebuild --print-errorlogs \
	--suite unit --suite integration --suite abi --suite fuzz "$@" || fail

python3 - "$build/meson-logs/testlog.json" <<'PY'
import json, sys
counts = {"OK": 0, "FAIL": 0, "SKIP": 0}
for line in open(sys.argv[1]):
    r = json.loads(line)["result"]
    key = "OK" if r in ("OK", "EXPECTEDFAIL") else "SKIP" if r == "SKIP" else "FAIL"
    counts[key] += 1
print(f"{counts['OK']} passed, {counts['FAIL']} failed, {counts['SKIP']} skipped")
PY
if ((${#failed[@]})); then
	printf 'failed stage: %s\n' "${failed[@]}"
	exit 1
fi
