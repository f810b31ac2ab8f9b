#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A fake Firecracker API server for the vm module's tests (no KVM needed).

Serves HTTP/1.1 on a Unix socket and validates every request against Firecracker's OpenAPI
(Swagger 2.0) spec: the path must match one of the spec's paths (templates like
/drives/{drive_id} included), the method must be defined there, and a JSON body must match
the body parameter's schema ($ref resolved): required fields present, no unknown fields
(Firecracker refuses them), types and enums right, recursively. A valid request gets 204
(200 with a body for GETs), an invalid one 400 with {"fault_message": "..."}, as Firecracker
answers. Every request is appended to a JSON-lines log with the verdict, for the test to read.

Snapshot requests act on files as Firecracker would: /snapshot/create writes snapshot_path
and mem_file_path, /snapshot/load needs them to exist. Paths under /vm/ (the jail's view)
are mapped to --run-dir.

usage: fake-firecracker.py --spec YAML --socket PATH --log PATH --run-dir DIR
"""
import argparse
import json
import os
import re
import socket
import sys

import yaml


def resolve(spec, schema):
    while "$ref" in schema:
        name = schema["$ref"].split("/")[-1]
        schema = spec["definitions"][name]
    return schema


def check(spec, schema, value, where, errors):
    schema = resolve(spec, schema)
    t = schema.get("type", "object" if "properties" in schema else None)
    if t == "object":
        if not isinstance(value, dict):
            errors.append(f"{where}: expected an object")
            return
        props = schema.get("properties", {})
        for req in schema.get("required", []):
            if req not in value:
                errors.append(f"{where}: required field {req!r} missing")
        for k, v in value.items():
            if k not in props:
                if not schema.get("additionalProperties"):
                    errors.append(f"{where}: unknown field {k!r}")
                continue
            check(spec, props[k], v, f"{where}.{k}", errors)
    elif t == "array":
        if not isinstance(value, list):
            errors.append(f"{where}: expected an array")
            return
        for i, item in enumerate(value):
            check(spec, schema.get("items", {}), item, f"{where}[{i}]", errors)
    elif t == "integer":
        if not isinstance(value, int) or isinstance(value, bool):
            errors.append(f"{where}: expected an integer")
        elif "minimum" in schema and value < schema["minimum"]:
            errors.append(f"{where}: below the minimum {schema['minimum']}")
    elif t == "string":
        if not isinstance(value, str):
            errors.append(f"{where}: expected a string")
    elif t == "boolean":
        if not isinstance(value, bool):
            errors.append(f"{where}: expected a boolean")
    if "enum" in schema and t != "object":
        # YAML 1.1 reads the bare enum value Off as false: compare as Firecracker's strings.
        allowed = ["Off" if e is False else "On" if e is True else e for e in schema["enum"]]
        if value not in allowed:
            errors.append(f"{where}: {value!r} is not one of {allowed}")


def match_path(spec, path):
    for tmpl in spec["paths"]:
        rx = "^" + re.sub(r"\{[^}]+\}", "[^/]+", tmpl) + "$"
        if re.match(rx, path):
            return tmpl
    return None


def validate(spec, method, path, body):
    errors = []
    tmpl = match_path(spec, path)
    if not tmpl:
        return None, [f"no path {path} in the spec"]
    op = spec["paths"][tmpl].get(method.lower())
    if not op:
        return tmpl, [f"{method} is not defined for {tmpl}"]
    params = op.get("parameters", [])
    body_params = [p for p in params if p.get("in") == "body"]
    if body is None:
        if any(p.get("required") for p in body_params):
            errors.append(f"{method} {tmpl}: the body is required")
    elif not body_params:
        errors.append(f"{method} {tmpl}: takes no body")
    else:
        check(spec, body_params[0]["schema"], body, "body", errors)
    # path parameters: the id in the path must equal the body's id field, as Firecracker checks
    for p in params:
        if p.get("in") == "path" and body is not None:
            seg = tmpl.split("/").index("{" + p["name"] + "}")
            got = path.split("/")[seg]
            if p["name"] in body and body[p["name"]] != got:
                errors.append(f"{p['name']} in the path ({got}) differs from the body")
    return tmpl, errors


def host_path(run_dir, p):
    if not p.startswith("/vm/"):
        raise ValueError(f"{p} is outside the jail's /vm")
    return os.path.join(run_dir, p[len("/vm/"):])


def act(args, method, tmpl, body):
    """Firecracker's side effects that the backend relies on."""
    if tmpl == "/snapshot/create":
        with open(host_path(args.run_dir, body["snapshot_path"]), "wb") as f:
            f.write(b"FAKE-VMSTATE" * 100)
        with open(host_path(args.run_dir, body["mem_file_path"]), "wb") as f:
            f.write(os.urandom(1 << 20))
    if tmpl == "/snapshot/load":
        for p in (body["snapshot_path"], body.get("mem_backend", {}).get("backend_path", body.get("mem_file_path"))):
            if not os.path.exists(host_path(args.run_dir, p)):
                raise ValueError(f"{p} does not exist")


def serve(args, spec):
    if os.path.exists(args.socket):
        os.unlink(args.socket)
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(args.socket)
    srv.listen(8)
    log = open(args.log, "a", buffering=1)
    while True:
        conn, _ = srv.accept()
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                data += chunk
            if b"\r\n\r\n" not in data:
                continue
            head, rest = data.split(b"\r\n\r\n", 1)
            lines = head.decode("latin-1").split("\r\n")
            method, path, version = lines[0].split(" ")
            headers = {k.strip().lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:])}
            length = int(headers.get("content-length", "0"))
            while len(rest) < length:
                rest += conn.recv(65536)
            errors = []
            body = None
            if length:
                if headers.get("content-type") != "application/json":
                    errors.append("Content-Type is not application/json")
                try:
                    body = json.loads(rest[:length])
                except ValueError as e:
                    errors.append(f"the body is not JSON: {e}")
            if version != "HTTP/1.1":
                errors.append(f"{version} is not HTTP/1.1")
            tmpl, verrs = validate(spec, method, path, body)
            errors += verrs
            if not errors:
                try:
                    act(args, method, tmpl, body)
                except (ValueError, OSError, KeyError) as e:
                    errors.append(str(e))
            log.write(json.dumps({"method": method, "path": path, "template": tmpl, "body": body,
                                  "errors": errors}) + "\n")
            if errors:
                payload = json.dumps({"fault_message": "; ".join(errors)}).encode()
                status = "400 Bad Request"
            elif method == "GET":
                payload = json.dumps({"id": "fake", "state": "Running", "vmm_version": "fake"}).encode()
                status = "200 OK"
            else:
                payload = b""
                status = "204 No Content"
            resp = f"HTTP/1.1 {status}\r\nServer: Firecracker API\r\nConnection: close\r\n"
            if payload:
                resp += f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
            else:
                resp += "Content-Length: 0\r\n"
            conn.sendall(resp.encode() + b"\r\n" + payload)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--spec", required=True)
    ap.add_argument("--socket", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--run-dir", required=True)
    args = ap.parse_args()
    with open(args.spec) as f:
        spec = yaml.safe_load(f)
    serve(args, spec)


if __name__ == "__main__":
    sys.exit(main())
