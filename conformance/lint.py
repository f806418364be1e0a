"""`lint`: every scenario and image file is valid, and each written expectation equals the oracle's."""

from __future__ import annotations

import sys
from pathlib import Path

from conformance.catalogue import Catalogue
from conformance.errors import InputError


def lint(scenarios_dir: Path, images_dir: Path) -> list[str]:
    """Problems found, one line each (file:line: field: message)."""
    try:
        cat = Catalogue.load(scenarios_dir, images_dir)
    except InputError as exc:
        return [str(exc)]
    problems = []
    for scn in cat.scenarios:
        if not scn.oracle:
            continue
        for policy in scn.policies:
            want = cat.oracle(scn, policy)
            have = scn.outcomes(policy)
            if not any(want.same_outcome(h) for h in have):
                written = " or ".join(str(h.to_json()) for h in have)
                problems.append(f"{scn.path}:{scn.expect_lines.get(policy, 0)}: expect.{policy}: written "
                                f"{written} but the oracle computes {want.to_json()}")
    return problems


def main(scenarios_dir: Path, images_dir: Path) -> int:
    problems = lint(scenarios_dir, images_dir)
    for line in problems:
        print(line, file=sys.stderr)
    if problems:
        return 2
    cat = Catalogue.load(scenarios_dir, images_dir)
    cases = sum(len(s.policies) for s in cat.scenarios)
    print(f"lint: {len(cat.scenarios)} scenarios, {cases} cases, {len(cat.images)} images: all valid, "
          "expectations equal the oracle's")
    return 0
