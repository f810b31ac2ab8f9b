#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Checks that libexai exports exactly its public API, each symbol under its version node.

Usage: check-symbols.py LIBRARY.so MAP INCLUDE_DIR SOVERSION [LIBRARY.a]
       check-symbols.py --self-test

Three lists must agree:
  - the shared library's defined dynamic symbols (nm -D --defined-only), each of which must be
    named exai_* and carry a version (exai_x@@EXAI_0.1), the node the map puts it in;
  - the global names of lib/libexai.map, by version node;
  - the declarations marked EXAI_API in INCLUDE_DIR/exai/*.h.
The library's SONAME must be libexai.so.SOVERSION. In the static library every global symbol
must start with exai_ (internal ones with exai__), so that linking libexai.a into a program
cannot collide with the program's own names. Every difference is printed; exit 1 if any.
"""
import os
import re
import subprocess
import sys

PREFIX = "exai_"


def strip_c_comments(text):
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", " ", text)


def parse_map(text):
    """{symbol: node} from a GNU ld version script; problems for what it cannot accept."""
    symbols, problems = {}, []
    text = strip_c_comments(text)
    for m in re.finditer(r"([A-Za-z_][\w.]*)\s*\{(.*?)\}\s*[\w.]*\s*;", text, flags=re.S):
        node, body = m.group(1), m.group(2)
        scope = None
        for tok in re.findall(r"[^\s;]+:|[^\s;]+", body):
            if tok.endswith(":"):
                scope = tok[:-1]
                continue
            if scope != "global":
                continue
            if any(c in tok for c in "*?["):
                problems.append(f"map: node {node} exports a pattern '{tok}'; list names one by one")
            elif tok in symbols:
                problems.append(f"map: {tok} is listed in {symbols[tok]} and again in {node}")
            else:
                symbols[tok] = node
    if not symbols:
        problems.append("map: no global symbols found")
    return symbols, problems


def parse_headers(incdir):
    """{name: header} of every declaration marked EXAI_API."""
    names = {}
    hdir = os.path.join(incdir, "exai")
    for h in sorted(os.listdir(hdir)):
        if not h.endswith(".h"):
            continue
        with open(os.path.join(hdir, h)) as f:
            text = strip_c_comments(f.read())
        # Drop preprocessor lines (with continuations): the #define of EXAI_API itself.
        text = re.sub(r"^[ \t]*#(?:[^\n]*\\\n)*[^\n]*", " ", text, flags=re.M)
        for m in re.finditer(r"\bEXAI_API\b([^;{]*)", text):
            decl = m.group(1)
            head = decl.split("(", 1)[0] if "(" in decl else decl
            ids = re.findall(r"[A-Za-z_]\w*", head)
            if ids:
                names[ids[-1]] = h
    return names


def parse_nm(output):
    """{symbol: version or None} of nm -D --defined-only output."""
    syms = {}
    for line in output.splitlines():
        parts = line.split()
        if len(parts) < 3:
            continue
        kind, name = parts[1], parts[2]
        if kind == "A":  # the version node's own definition, e.g. "A EXAI_0.1"
            continue
        version = None
        if "@" in name:
            name, _, version = name.partition("@")
            version = version.lstrip("@")
        syms[name] = version
    return syms


def compare(lib, mapsyms, headers):
    problems = []
    for name, version in sorted(lib.items()):
        if not name.startswith(PREFIX):
            problems.append(f"library exports {name}, which is not an {PREFIX}* name (missing visibility?)")
            continue
        if version is None:
            problems.append(f"library exports {name} without a version")
        elif name in mapsyms and version != mapsyms[name]:
            problems.append(f"library exports {name}@{version}, the map puts it in {mapsyms[name]}")
        if name not in mapsyms:
            problems.append(f"library exports {name}, which lib/libexai.map does not list")
        if name not in headers:
            problems.append(f"library exports {name}, which no header declares with EXAI_API")
    for name, node in sorted(mapsyms.items()):
        if name not in lib:
            problems.append(f"map lists {name} ({node}), which the library does not export")
        if name not in headers:
            problems.append(f"map lists {name} ({node}), which no header declares with EXAI_API")
    for name, header in sorted(headers.items()):
        if not name.startswith(PREFIX):
            problems.append(f"exai/{header} declares {name} with EXAI_API, not an {PREFIX}* name")
        if name not in lib:
            problems.append(f"exai/{header} declares {name} with EXAI_API, which the library does not export")
        if name not in mapsyms:
            problems.append(f"exai/{header} declares {name} with EXAI_API, which lib/libexai.map does not list")
    return problems


def static_globals(output):
    """Names of the global symbols defined in an archive (nm -g --defined-only output)."""
    names = set()
    for line in output.splitlines():
        parts = line.split()
        if len(parts) == 3 and not line.endswith(":"):
            names.add(parts[2])
    return names


def check_static(names):
    return [f"libexai.a defines the global symbol {n}: internal names must start with exai__"
            for n in sorted(names) if not n.startswith(PREFIX)]


def soname(lib):
    out = subprocess.run(["readelf", "-d", "-W", lib], check=True, capture_output=True, text=True).stdout
    m = re.search(r"\(SONAME\)\s+Library soname: \[([^\]]+)\]", out)
    return m.group(1) if m else None


def self_test():
    """The comparison must notice each kind of drift (so that a passing run means something)."""
    good_map = "EXAI_0.1 {\nglobal:\n\t/* core */\n\texai_a;\n\texai_b;\nlocal:\n\t*;\n};\n"
    mapsyms, problems = parse_map(good_map)
    assert problems == [] and mapsyms == {"exai_a": "EXAI_0.1", "exai_b": "EXAI_0.1"}, (mapsyms, problems)
    lib = parse_nm("0 A EXAI_0.1\n10 T exai_a@@EXAI_0.1\n20 T exai_b@@EXAI_0.1\n")
    hdrs = {"exai_a": "core.h", "exai_b": "core.h"}
    assert compare(lib, mapsyms, hdrs) == []
    cases = {
        "leaked internal": ({**lib, "helper": "EXAI_0.1"}, mapsyms, hdrs, "not an exai_"),
        "unversioned": ({**lib, "exai_b": None}, mapsyms, hdrs, "without a version"),
        "wrong node": ({**lib, "exai_b": "EXAI_0.2"}, mapsyms, hdrs, "the map puts it in"),
        "missing from map": (lib, {"exai_a": "EXAI_0.1"}, hdrs, "does not list"),
        "missing from lib": ({"exai_a": "EXAI_0.1"}, mapsyms, hdrs, "does not export"),
        "missing from headers": (lib, mapsyms, {"exai_a": "core.h"}, "no header declares"),
    }
    for what, (l, m, h, needle) in cases.items():
        found = compare(l, m, h)
        assert any(needle in p for p in found), f"self-test '{what}': {found}"
    archive = "\nctx.o:\n0000 T exai_ctx_new\n0010 T exai__log\n\nbuf.o:\n0000 T buf_grow\n         U malloc\n"
    assert static_globals(archive) == {"exai_ctx_new", "exai__log", "buf_grow"}, static_globals(archive)
    assert len(check_static(static_globals(archive))) == 1
    _, problems = parse_map("EXAI_0.1 { global: exai_*; local: *; };")
    assert problems and "pattern" in problems[0], problems
    # Header parsing: pointer returns, the EXAI_API #define itself, comments.
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        os.mkdir(os.path.join(tmp, "exai"))
        with open(os.path.join(tmp, "exai", "t.h"), "w") as f:
            f.write("#define EXAI_API __attribute__((visibility(\"default\")))\n"
                    "/** EXAI_API exai_commented(void); */\n"
                    "EXAI_API exai_ctx *exai_ref(exai_ctx *ctx);\n"
                    "EXAI_API const char *\nexai_two_lines(void);\n"
                    "EXAI_API extern const int exai_data;\n")
        got = parse_headers(tmp)
        assert set(got) == {"exai_ref", "exai_two_lines", "exai_data"}, got
    print("self-test: every kind of drift is detected")
    return 0


def main():
    if sys.argv[1:] == ["--self-test"]:
        return self_test()
    if len(sys.argv) not in (5, 6):
        sys.exit(__doc__)
    lib_path, map_path, incdir, soversion = sys.argv[1:5]
    nm = subprocess.run(["nm", "-D", "--defined-only", lib_path], check=True, capture_output=True, text=True)
    lib = parse_nm(nm.stdout)
    with open(map_path) as f:
        mapsyms, problems = parse_map(f.read())
    headers = parse_headers(incdir)
    problems += compare(lib, mapsyms, headers)
    want = f"libexai.so.{soversion}"
    got = soname(lib_path)
    if got != want:
        problems.append(f"library SONAME is {got}, want {want}")
    if len(sys.argv) == 6:
        out = subprocess.run(["nm", "-g", "--defined-only", sys.argv[5]], check=True, capture_output=True, text=True)
        problems += check_static(static_globals(out.stdout))
    for p in problems:
        print(p)
    if problems:
        print(f"{len(problems)} difference(s) between {lib_path}, {map_path} and the headers")
        return 1
    nodes = sorted(set(mapsyms.values()))
    print(f"{len(lib)} symbols: all {PREFIX}*, versioned ({', '.join(nodes)}), "
          f"equal to the map and to the EXAI_API declarations; SONAME {got}"
          + ("; the static library defines only exai_* globals" if len(sys.argv) == 6 else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
