#!/usr/bin/env python3
"""A fake `kind` / `docker` for unit tests: appends its argv (and stdin size) as one JSON line to
$FAKE_LOG and answers from environment knobs. It never touches a container engine.

Knobs: FAKE_CLUSTERS (space-separated existing clusters), FAKE_CREATE_FAILS (how many creates fail
first), FAKE_IMAGE_PRESENT=1 (docker image inspect succeeds), FAKE_VERSION_OUT (docker run output),
FAKE_CRICTL_INFO (JSON printed by `crictl info`), FAKE_KIND_VERSION (what `kind version` says)."""

import json
import os
import sys
from pathlib import Path

tool, args = sys.argv[1], sys.argv[2:]
stdin_bytes = 0
if tool == "docker" and args[:2] == ["exec", "-i"]:
    stdin_bytes = len(sys.stdin.buffer.read())
log = Path(os.environ["FAKE_LOG"])
with log.open("a") as fh:
    fh.write(json.dumps({"tool": tool, "argv": args, "stdin_bytes": stdin_bytes}) + "\n")
state = log.with_suffix(".state")
counts = json.loads(state.read_text()) if state.exists() else {}


def done(code: int = 0, out: str = "", err: str = "") -> None:
    state.write_text(json.dumps(counts))
    sys.stdout.write(out)
    sys.stderr.write(err)
    sys.exit(code)


if tool == "kind":
    if args[:1] == ["version"]:
        done(0, f"kind {os.environ.get('FAKE_KIND_VERSION', 'v0.30.0')} go1.24.0 linux/amd64\n")
    if args[:2] == ["get", "clusters"]:
        done(0, "".join(c + "\n" for c in os.environ.get("FAKE_CLUSTERS", "").split()))
    if args[:2] == ["create", "cluster"]:
        counts["create"] = counts.get("create", 0) + 1
        if counts["create"] <= int(os.environ.get("FAKE_CREATE_FAILS", "0")):
            done(1, "", "ERROR: failed to create cluster: failed to init node with kubeadm: exit status 1\n")
        done(0, "Creating cluster ...\n")
    done(0)
if tool == "docker":
    if args[:2] == ["image", "inspect"]:
        if os.environ.get("FAKE_IMAGE_PRESENT") == "1":
            done(0, "sha256:" + "ab" * 32 + "\n")
        done(1, "", "Error response from daemon: No such image: " + args[-1] + "\n")
    if args[:1] == ["run"]:
        done(0, os.environ.get("FAKE_VERSION_OUT", ""))
    if args[:1] == ["exec"] and "crictl" in args and "info" in args:
        done(0, os.environ.get("FAKE_CRICTL_INFO", "{}"))
    if args[:1] == ["exec"] and args[1:2] == ["nosuch"]:
        done(1, "", "Error response from daemon: No such container: nosuch\n")
    done(0)
done(2, "", f"fake: unknown tool {tool}\n")
