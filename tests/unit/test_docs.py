"""The README and docs/ as a reader follows them: every relative link names a file that exists, and every
#anchor a heading of that file; the README stays a front door."""

from __future__ import annotations

import re
from pathlib import Path

from conformance.paths import PROJECT

DOCS = [PROJECT / "README.md", *sorted((PROJECT / "docs").glob("*.md"))]


def anchors(doc: Path) -> set[str]:
    """GitHub's anchors for a Markdown file's headings."""
    out = set()
    for heading in re.findall(r"^#+ (.+)$", doc.read_text(), re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        out.add(slug)
    return out


def test_every_relative_link_resolves() -> None:
    broken = []
    for doc in DOCS:
        for target in re.findall(r"\]\(([^)\s]+)\)", doc.read_text()):
            if re.match(r"[a-z]+://", target) or target.startswith("mailto:"):
                continue
            path, _, anchor = target.partition("#")
            dest = (doc.parent / path).resolve() if path else doc
            if not dest.exists():
                broken.append(f"{doc.name}: {target} (no such file)")
            elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
                broken.append(f"{doc.name}: {target} (no such heading)")
    assert broken == []


def test_readme_is_a_front_door() -> None:
    assert len((PROJECT / "README.md").read_text().splitlines()) <= 250
