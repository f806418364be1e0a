"""A faulty OCI runtime: rewrites process.user.additionalGids in the bundle, then execs runc.

Installed as a copy named after its handler (e.g. faulty-drop), with `<copy>.json` beside it:
{"runc": "/usr/sbin/runc", "drop": [4000], "add": [50000], "log": "/tmp/.../faulty-drop.log"}.
Only `create` of an application container is touched; the sandbox (pause) container and every other
subcommand go to runc unchanged. Standard library only: the shim runs it outside the venv.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

# runc global options that take a value (they come before the subcommand)
GLOBAL_WITH_VALUE = {"--root", "--log", "--log-format", "--criu", "--rootless"}
CONTAINER_TYPE_KEYS = ("io.kubernetes.cri.container-type", "io.kubernetes.cri-o.ContainerType")


def subcommand(args: list[str]) -> tuple[str, int]:
    """The runc subcommand and its index in args ('' if none)."""
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in GLOBAL_WITH_VALUE:
            i += 2
            continue
        if not arg.startswith("-"):
            return arg, i
        i += 1
    return "", len(args)


def bundle_dir(args: list[str]) -> Path:
    """The --bundle / -b value after the subcommand, else the working directory (runc's default)."""
    for i, arg in enumerate(args):
        if arg in ("--bundle", "-b") and i + 1 < len(args):
            return Path(args[i + 1])
        if arg.startswith("--bundle="):
            return Path(arg.split("=", 1)[1])
    return Path.cwd()


def rewrite(config_path: Path, drop: list[int], add: list[int]) -> tuple[list[int], list[int]] | None:
    """Apply the fault to an application container's config.json; (before, after) if it changed."""
    spec = json.loads(config_path.read_text())
    annotations = spec.get("annotations") or {}
    if not any(annotations.get(k) == "container" for k in CONTAINER_TYPE_KEYS):
        return None
    user = spec.setdefault("process", {}).setdefault("user", {})
    before = list(user.get("additionalGids") or [])
    after = [g for g in before if g not in drop] + [g for g in add if g not in before]
    if after == before:
        return None
    user["additionalGids"] = after
    config_path.write_text(json.dumps(spec))
    return before, after


def main() -> None:
    me = Path(sys.argv[0])
    settings = json.loads(me.with_name(me.name + ".json").read_text())
    args = sys.argv[1:]
    name, index = subcommand(args)
    if name == "create":
        bundle = bundle_dir(args[index + 1:])
        changed = rewrite(bundle / "config.json", settings.get("drop", []), settings.get("add", []))
        if changed and settings.get("log"):
            with open(settings["log"], "a") as log:
                log.write(json.dumps({"bundle": str(bundle), "before": changed[0], "after": changed[1]}) + "\n")
    os.execv(settings["runc"], [settings["runc"], *args])


if __name__ == "__main__":
    main()
