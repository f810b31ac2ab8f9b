#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Compiles every public header alone, as an embedder would include it.

Usage: check-headers.py LANG INCLUDE_DIR COMPILER [COMPILER ARGS...]
LANG is c11 or c++17. Every *.h under INCLUDE_DIR/exai is included twice (the second time
proves the include guard) into an otherwise empty translation unit and compiled with
-Wall -Wextra -pedantic -Werror. The list comes from the directory, so a new header is
covered without touching this test. The umbrella exai/exai.h must include every other header.
Prints each failing header with the compiler's output; exits 1 when any failed.
"""
import os
import subprocess
import sys
import tempfile

FLAGS = {
    "c11": (".c", ["-x", "c", "-std=c11", "-Wstrict-prototypes"]),
    "c++17": (".cc", ["-x", "c++", "-std=c++17"]),
}
COMMON = ["-Wall", "-Wextra", "-pedantic", "-Werror", "-Wundef", "-fsyntax-only"]


def main():
    if len(sys.argv) < 4 or sys.argv[1] not in FLAGS:
        sys.exit(__doc__)
    lang, incdir, compiler = sys.argv[1], sys.argv[2], sys.argv[3:]
    suffix, lang_flags = FLAGS[lang]
    headers = sorted(h for h in os.listdir(os.path.join(incdir, "exai")) if h.endswith(".h"))
    if not headers:
        sys.exit(f"no headers under {incdir}/exai")
    failed = []
    with open(os.path.join(incdir, "exai", "exai.h")) as f:
        umbrella = f.read()
    for h in headers:
        if h != "exai.h" and f"#include <exai/{h}>" not in umbrella:
            failed.append(h)
            print(f"FAIL exai/exai.h does not include <exai/{h}>")
    with tempfile.TemporaryDirectory() as tmp:
        for h in headers:
            src = os.path.join(tmp, "only-" + h.replace(".h", suffix))
            with open(src, "w") as f:
                f.write(f"#include <exai/{h}>\n#include <exai/{h}>\n")
            cmd = compiler + lang_flags + COMMON + ["-I", incdir, src]
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode != 0:
                failed.append(h)
                print(f"FAIL exai/{h} as {lang}: {' '.join(cmd)}\n{r.stderr}{r.stdout}")
            else:
                print(f"ok   exai/{h} as {lang}")
    if failed:
        print(f"{len(failed)} of {len(headers)} header(s) do not compile alone as {lang}: "
              + ", ".join(failed))
        return 1
    print(f"all {len(headers)} header(s) compile alone as {lang}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
