"""Version strings: matching a requested VERSION against concrete releases."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from conformance.errors import ProvisionError


def version_key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", version.split("-")[0])[:3])


def matches(version: str, wanted: str) -> bool:
    """'2' and '2.x' match any 2.y.z; '1.7' matches 1.7.z; '2.1.4' matches exactly."""
    wanted = wanted.strip().lower().removeprefix("v").removesuffix(".x")
    if not re.fullmatch(r"\d+(\.\d+){0,2}", wanted):
        return False
    want = [int(p) for p in wanted.split(".")]
    have = list(version_key(version))
    return have[: len(want)] == want


def parse_range(spec: str) -> list[tuple[str, tuple[int, ...]]]:
    """'>=2.0,<2.3' -> [('>=', (2, 0)), ('<', (2, 3))]; '*' -> []."""
    spec = spec.strip()
    if spec in ("*", ""):
        return []
    out = []
    for part in spec.split(","):
        match = re.fullmatch(r"\s*(>=|<=|==|>|<)\s*v?(\d+(?:\.\d+){0,2})\s*", part)
        if not match:
            raise ValueError(f"bad version range {spec!r}: use e.g. '>=2.0,<2.3' or '*'")
        out.append((match.group(1), tuple(int(p) for p in match.group(2).split("."))))
    return out


def in_range(version: str, spec: str) -> bool:
    """Does `version` fall in `spec`? Compares as many components as the bound gives."""
    have = version_key(version)
    for op, bound in parse_range(spec):
        mine = have[: len(bound)] + (0,) * max(0, len(bound) - len(have))
        ok = {">=": mine >= bound, "<=": mine <= bound, "==": mine == bound,
              ">": mine > bound, "<": mine < bound}[op]
        if not ok:
            return False
    return True


def binary_version(path: Path, pattern: str) -> str:
    """`<path> --version`, the first group of `pattern` in its output; ProvisionError when it does not run."""
    try:
        res = subprocess.run([str(path), "--version"], capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ProvisionError(f"{path} does not run: {exc}") from exc
    match = re.search(pattern, res.stdout + res.stderr)
    if res.returncode != 0 or not match:
        raise ProvisionError(f"{path} --version failed: {(res.stderr or res.stdout).strip()[:300]}")
    return match.group(1)


def minor_or_exact(wanted: str, option: str) -> str | None:
    """'1.34' / 'v1.34.x' → '1.34' (to resolve through a release marker); an exact '1.34.2' → None."""
    text = wanted.strip().lower().removeprefix("v").removesuffix(".x")
    if re.fullmatch(r"\d+\.\d+", text):
        return text
    if re.fullmatch(r"\d+\.\d+\.\d+", text):
        return None
    raise ProvisionError(f"{option}={wanted}: give major.minor (1.34) or an exact release (1.34.2)")


def parse_marker(text: str, minor: str, url: str) -> str:
    """A release marker's body ('v1.34.2\\n', as CRI-O's latest-1.34.txt and Kubernetes' stable-1.34.txt hold)
    → '1.34.2', which must be in that minor."""
    tag = text.strip().removeprefix("v")
    if not re.fullmatch(r"\d+\.\d+\.\d+", tag) or not matches(tag, minor):
        raise ProvisionError(f"{url} says {text.strip()!r}, not a {minor}.z release")
    return tag
