#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs the build tree into a temporary DESTDIR, builds examples/hello.c against the
# *installed* copy through `pkg-config --cflags --libs libexai`, runs it on the installed
# shared library and checks what it prints.
# Environment (from tests/abi/meson.build): EXAI_BUILD_ROOT, EXAI_SOURCE_ROOT, EXAI_EXAMPLE (the source),
# EXAI_EXAMPLE_CC (the build's C compiler), EXAI_EXAMPLE_CFLAGS (its sanitizer flags),
# EXAI_EXPECT_VERSION.
set -euo pipefail

fail() { echo "FAIL: $*" >&2; exit 1; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/exai-installed.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
dest=$tmp/root

meson install -C "$EXAI_BUILD_ROOT" --no-rebuild --quiet --destdir "$dest" >"$tmp/install.log" 2>&1 ||
	{ cat "$tmp/install.log" >&2; fail "meson install --destdir failed"; }

pc=$(find "$dest" -name libexai.pc -print -quit)
[ -n "$pc" ] || fail "no libexai.pc installed under $dest"
# Every public header in the source tree is installed (include/exai/meson.build lists them).
incdir=$(dirname "$(find "$dest" -path '*/include/exai/exai.h' -print -quit)")
[ -d "$incdir" ] || fail "exai/exai.h not installed"
want=$(cd "$EXAI_SOURCE_ROOT/include/exai" && ls -- *.h)
have=$(cd "$incdir" && ls -- *.h)
[ "$want" = "$have" ] || fail "installed headers differ from include/exai/ (add the header to include/exai/meson.build):
$(diff <(echo "$want") <(echo "$have"))"

# pkg-config sees the installed .pc first; the sysroot maps its /usr/local/... into $dest.
export PKG_CONFIG_PATH=${pc%/*} PKG_CONFIG_SYSROOT_DIR=$dest
flags=$(pkg-config --cflags --libs libexai) || fail "pkg-config --cflags --libs libexai failed"
echo "pkg-config: $flags"
[[ $flags == *"-I$dest/"* && $flags == *"-L$dest/"* && $flags == *-lexai* ]] ||
	fail "pkg-config flags do not point into the installed tree: $flags"
libdir=$(pkg-config --variable=libdir libexai)
[[ $libdir == "$dest"/* ]] || libdir=$dest$libdir # pkgconf applies the sysroot, pkg-config does not
[ -e "$libdir/libexai.so.0" ] || fail "no libexai.so.0 in $libdir"

read -r -a cc <<<"$EXAI_EXAMPLE_CC"
read -r -a cflags <<<"${EXAI_EXAMPLE_CFLAGS:-}"
read -r -a pkgflags <<<"$flags"
"${cc[@]}" -std=c11 -Wall -Wextra -pedantic -Werror "${cflags[@]}" \
	"$EXAI_EXAMPLE" "${pkgflags[@]}" -o "$tmp/hello" || fail "the example does not build against the installed library"

export LD_LIBRARY_PATH=$libdir
deps=$(ldd "$tmp/hello")
[[ $deps == *"libexai.so.0 => $libdir/libexai.so.0 "* ]] ||
	fail "hello does not load the installed libexai: $deps"
"$tmp/hello" "$tmp/state" >"$tmp/out" 2>"$tmp/err" || { cat "$tmp/out" "$tmp/err" >&2; fail "hello exited $?"; }
cat "$tmp/out"

expect() { grep -qxF -- "$1" "$tmp/out" || fail "hello did not print the line: $1"; }
expect "libexai $EXAI_EXPECT_VERSION"
expect "state directory: $tmp/state"
expect 'canonical (47 bytes): {"a":"café","b":[1,1e+21,0.000001],"€":true}'
expect "exai_ctx_new failed: Invalid argument (-22): exai_ctx_opts.log_level 42 is not between EXAI_LOG_ERROR (3) and EXAI_LOG_DEBUG (7)"
grep -q '^exai_jcs_canonicalize failed: .* (-74): invalid JSON at line 1, column 9: ' "$tmp/out" ||
	fail "hello did not report the broken JSON with its line and column"
grep -q '^features: qemu=\(yes\|no\) ' "$tmp/out" || fail "hello did not list the features"
grep -qF "hello: log <7> core: libexai $EXAI_EXPECT_VERSION: context created; state directory $tmp/state" "$tmp/err" ||
	fail "the library's log did not reach hello's callback: $(cat "$tmp/err")"
echo "ok: examples/hello.c built through pkg-config against the installed libexai and ran"
