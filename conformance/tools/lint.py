"""`lint`: every scenario and image file is valid, each written expectation equals the oracle's, and every
behaviour a scenario's `source:` cites exists in the project's catalogue (docs/behaviours.md)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from conformance.core.catalogue import Catalogue
from conformance.errors import InputError
from conformance.paths import BEHAVIOURS

CITED = re.compile(r"§\d+|\b[ET]\d+\b(?:-[ET]?\d+)?|\bitems? [\d ,\-and]+")


def catalogue_ids(text: str) -> set[str]:
    """The ids docs/behaviours.md defines: `§N` sections, `N` numbered behaviours, `EN` and `TN` entries."""
    ids = {f"§{n}" for n in re.findall(r"^## §(\d+)", text, re.M)}
    ids |= set(re.findall(r"^(\d+)\. \*\*", text, re.M))
    for entry in re.findall(r"^- \*\*([ET]\d+(?:, [ET]\d+)*)\*\*", text, re.M):
        ids |= set(entry.split(", "))
    return ids


def cited_ids(source: str) -> set[str]:
    """The ids a `source:` cites after `behaviours.md` (up to the next `;`): `§3`, `E4`, `T3-T5`, `items 19-21`,
    `items 10, 21 and 25`."""
    ids: set[str] = set()
    for part in source.split("behaviours.md")[1:]:
        for token in CITED.findall(part.split(";")[0]):
            if token.startswith("item"):
                for a, b in re.findall(r"(\d+)(?:-(\d+))?", token):
                    ids |= {str(n) for n in range(int(a), int(b or a) + 1)}
            elif "-" in token:
                kind, first, last = token[0], token.split("-")[0][1:], token.split("-")[1].lstrip("ET")
                ids |= {f"{kind}{n}" for n in range(int(first), int(last) + 1)}
            else:
                ids.add(token)
    return ids


def unknown_citations(cat: Catalogue, text: str) -> list[str]:
    known = catalogue_ids(text)
    return [f"{scn.path}: source: cites behaviours.md {', '.join(sorted(missing))}, which "
            f"docs/behaviours.md does not define" for scn in cat.scenarios
            for missing in [cited_ids(scn.source) - known] if missing]


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
    if BEHAVIOURS.exists():  # an installed package carries the scenarios, not the docs
        problems += unknown_citations(cat, BEHAVIOURS.read_text())
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
