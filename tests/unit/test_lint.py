import shutil
from pathlib import Path

from conformance.tools.lint import lint

PROJECT = Path(__file__).resolve().parents[2]


def test_catalogue_is_lint_clean() -> None:
    assert lint(PROJECT / "scenarios", PROJECT / "images") == []


def test_wrong_expectation_is_caught(tmp_path: Path) -> None:
    shutil.copytree(PROJECT / "scenarios", tmp_path / "s")
    path = tmp_path / "s" / "upstream-e2e.yaml"
    path.write_text(path.read_text().replace("Strict: {uid: 1000, gid: 1000, groups: [1000, 60000]}",
                                             "Strict: {uid: 1000, gid: 1000, groups: [1000, 50000, 60000]}"))
    problems = lint(tmp_path / "s", PROJECT / "images")
    assert len(problems) == 1 and "upstream-e2e.yaml" in problems[0] and "expect.Strict" in problems[0]


def test_every_cited_behaviour_exists_in_the_catalogue() -> None:
    from conformance.core.catalogue import PROJECT, Catalogue
    from conformance.tools.lint import BEHAVIOURS, catalogue_ids, cited_ids, unknown_citations

    cat = Catalogue.load(PROJECT / "scenarios", PROJECT / "images")
    assert unknown_citations(cat, BEHAVIOURS.read_text()) == []
    ids = catalogue_ids(BEHAVIOURS.read_text())
    assert {str(n) for n in range(1, 29)} | {f"E{n}" for n in range(1, 26)} | {f"T{n}" for n in range(1, 15)} <= ids
    assert cited_ids("KEP-3619; behaviours.md items 10, 21 and 25, E8, T3-T5 (x)") == \
        {"10", "21", "25", "E8", "T3", "T4", "T5"}


def test_a_citation_the_catalogue_lacks_is_named() -> None:
    from dataclasses import replace

    from conformance.core.catalogue import PROJECT, Catalogue
    from conformance.tools.lint import BEHAVIOURS, unknown_citations

    cat = Catalogue.load(PROJECT / "scenarios", PROJECT / "images")
    cat.scenarios[0] = replace(cat.scenarios[0], source="behaviours.md item 99, E77")
    problems = unknown_citations(cat, BEHAVIOURS.read_text())
    assert problems == [f"{cat.scenarios[0].path}: source: cites behaviours.md 99, E77, which docs/behaviours.md "
                        "does not define"]
