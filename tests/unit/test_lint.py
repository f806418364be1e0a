import shutil
from pathlib import Path

from conformance.lint import lint

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
