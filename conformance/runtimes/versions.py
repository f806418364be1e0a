"""Version strings: matching a requested VERSION against concrete releases."""

from __future__ import annotations

import re


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
