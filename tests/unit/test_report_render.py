"""matrix.md and matrix.html as text (the browser test renders the HTML for real)."""

from __future__ import annotations

import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest

from conformance.core.model import CaseResult, Verdict
from conformance.report import collect, render_html, render_markdown
from conformance.report.collect import Cell, Matrix, Row
from conformance.report.markdown import esc

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "results"
CELLS = ["containerd-1.7+runc", "containerd-2+runc", "crio-opt-crio-bin"]


@pytest.fixture
def matrix(tmp_path: Path) -> Matrix:
    shutil.copytree(FIXTURES, tmp_path / "r")
    return collect(tmp_path / "r")


def _table(md: str, first_header: str) -> list[list[str]]:
    lines = md.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first_header} |"))
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]])
    return rows


def test_markdown_matrix_table(matrix: Matrix) -> None:
    table = _table(render_markdown(matrix), "Scenario")
    assert table[0] == ["Scenario", "Policy", *(f"`{c}`" for c in CELLS)]
    assert set(table[1]) == {"---"}
    body = {(r[0], r[1]): r[2:] for r in table[2:]}
    assert len(body) == 6
    assert body[("blog-example", "Strict")] == ["○ unsupported", "✘ fail", "· not run"]
    assert body[("fsgroup-strict", "Merge")] == ["≈ known-failure", "✔ pass", "· not run"]
    assert body[("no-etc-group", "Strict")] == ["⊘ rejected", "‼ error", "· not run"]


def test_markdown_totals_legend_and_problems(matrix: Matrix) -> None:
    md = render_markdown(matrix)
    assert md.startswith("## supplementalGroupsPolicy conformance matrix\n")
    assert "**Exit 2** (error; worst cell wins)" in md
    totals = {r[0]: r for r in _table(md, "Cell")[2:]}
    assert totals["`containerd-2+runc`"][3:10] == ["6", "4", "1", "0", "0", "0", "1"]
    assert totals["`containerd-1.7+runc`"][-2] == "**0**"
    assert "crashed: killed by signal 9" in totals["`crio-opt-crio-bin`"][2]
    assert "**Legend:**" in md and all(w in md for w in ("✔ pass:", "✘ fail:", "‼ error:", "· not run:"))
    assert "<summary>✘ fail: blog-example[Strict] on <code>containerd-2+runc</code></summary>" in md
    assert "- expected: `uid=1000 gid=3000 groups=3000,4000`" in md
    assert "- `crio-opt-crio-bin`: **crashed** (exit 2)" in md


def test_markdown_escapes_table_breakers() -> None:
    assert esc("a|b\nc`d") == "a\\|b<br>c'd"
    case = CaseResult("we|ird", "Merge", Verdict.PASS)
    m = Matrix([Cell(id="c1", cases={("we|ird", "Merge"): case})], [Row("we|ird", "Merge")], "now")
    line = next(line for line in render_markdown(m).splitlines() if line.startswith("| we"))
    assert line == "| we\\|ird | Merge | ✔ pass |"


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def test_html_is_self_contained_and_has_every_result(matrix: Matrix) -> None:
    html = render_html(matrix)
    parser = _Collector()
    parser.feed(html)
    for tag, attrs in parser.tags:
        for key in ("src", "href"):
            assert not (attrs.get(key) or "").startswith(("http:", "https:", "//")), (tag, attrs)
        assert not (tag == "link" and attrs.get("rel") == "stylesheet")
    buttons = [a for t, a in parser.tags if t == "button" and a.get("data-verdict")]
    assert len(buttons) == 12
    assert {b["data-verdict"] for b in buttons} == {v.value for v in Verdict}
    fail = next(b for b in buttons if b["data-verdict"] == "fail")
    assert "expected: uid=1000 gid=3000 groups=3000,4000" in (fail["title"] or "")
    assert "groups=3000,4000,50000" in (fail["title"] or "")


def test_html_escapes_and_embeds_json_safely() -> None:
    case = CaseResult("x", "Merge", Verdict.FAIL, detail="</script><img src=x onerror=alert(1)>",
                      source="<b>src</b>")
    m = Matrix([Cell(id="c<1>", cases={("x", "Merge"): case})], [Row("x", "Merge", "<b>src</b>")], "now")
    html = render_html(m)
    assert "<img src=x" not in html and "</script><img" not in html
    assert "&lt;b&gt;src&lt;/b&gt;" in html and "c&lt;1&gt;" in html
    assert html.count("</script>") == 2


def test_row_flags_drive_the_html_filter(matrix: Matrix) -> None:
    from conformance.report.html import row_flags

    flags = {(r.scenario, r.policy): row_flags(matrix, r) for r in matrix.rows}
    assert flags[("blog-example", "unset")] == {"problems": True, "differ": True, "failing": True}  # crashed cell
    two = Matrix(matrix.cells[:2], matrix.rows, "now")
    flags = {(r.scenario, r.policy): row_flags(two, r) for r in two.rows}
    assert flags[("blog-example", "unset")] == {"problems": False, "differ": False, "failing": False}
    assert flags[("blog-example", "Strict")] == {"problems": True, "differ": True, "failing": True}
    assert flags[("fsgroup-strict", "Strict")]["problems"] is True  # unsupported on 1.7
    assert flags[("fsgroup-strict", "Strict")]["failing"] is False


def test_runtime_choices_are_shown_per_cell() -> None:
    expected = {"any_of": [{"as": "refuses-sandbox", "error": "RunPodSandbox"},
                           {"as": "runs-pod", "uid": 1000, "gid": 3000, "groups": [3000]}],
                "why": "the CRI leaves it open", "choice_source": "cri-api"}
    row = Row("pod-run-as-group-without-user", "Merge", "src", [])
    cells = [Cell(f"c{i}", runtime={"name": n, "version": "1", "oci_runtime": {"name": "runc", "version": "1.1"}},
                  cases={row.key: CaseResult(row.scenario, "Merge", Verdict.PASS, expected, choice=choice)})
             for i, (n, choice) in enumerate((("containerd", "refuses-sandbox"), ("cri-o", "runs-pod")))]
    cells[1].target = "local"
    assert cells[0].label == "containerd 1 (runc 1.1)" and cells[1].label == "local: cri-o 1 (runc 1.1)"
    matrix = Matrix(cells, [row], "now")
    md = render_markdown(matrix)
    assert "✔ pass · refuses-sandbox" in md and "✔ pass · runs-pod" in md
    assert "allowed: refuses-sandbox or runs-pod. Why: the CRI leaves it open" in md
    assert "`c0` refuses-sandbox, `c1` runs-pod" in md
    page = render_html(matrix)
    assert "pass · runs-pod" in page and 'data-differ="1"' in page  # the cells took different outcomes
