"""matrix.html in a real headless browser (Chromium, or Chrome as GitHub's runners have it): JS runs, every
verdict cell and the expected-vs-observed detail end up in the DOM, and the page renders to a screenshot,
from disk, offline.

Without chromium the tests skip, except under CI=true where a missing browser is a failure.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import quote

import pytest

from conformance.report import build

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "results"
FAILED = ("containerd-2+runc", "blog-example", "Strict")
VERDICTS = {"pass", "fail", "unsupported", "known-failure", "rejected", "error"}


@pytest.fixture(scope="module")
def chromium() -> str:
    names = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
    found = os.environ.get("CHROMIUM") or next(filter(None, map(shutil.which, names)), None)
    if not found:
        message = ("no Chromium or Chrome (Debian, Fedora: the chromium package, which scripts/setup.sh installs; "
                   "Ubuntu has it only as a snap: set CHROMIUM=<binary>)")
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return found


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    results = tmp_path_factory.mktemp("matrix") / "results"
    shutil.copytree(FIXTURES, results)
    _, paths = build(results)
    return paths["html"]


def headless(chromium: str, tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    profile = tmp / "profile"
    profile.mkdir(exist_ok=True)
    argv = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
            "--host-resolver-rules=MAP * ~NOTFOUND", *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False,
                          env={**os.environ, "HOME": str(tmp)})


def dump_dom(chromium: str, tmp: Path, url: str) -> str:
    proc = headless(chromium, tmp, "--dump-dom", url)
    assert proc.returncode == 0 and "<html" in proc.stdout, proc.stderr[-2000:]
    return proc.stdout


class Dom(HTMLParser):
    """Elements with their attributes, and the text inside chosen ids."""

    def __init__(self, html: str, ids: tuple[str, ...] = ()):
        super().__init__()
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.text: dict[str, str] = {i: "" for i in ids}
        self.open: list[tuple[str, str | None]] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {k: v or "" for k, v in attrs}
        self.elements.append((tag, attributes))
        if tag not in ("br", "img", "input", "meta", "hr"):
            self.open.append((tag, attributes.get("id")))

    def handle_endtag(self, tag: str) -> None:
        while self.open:
            if self.open.pop()[0] == tag:
                break

    def handle_data(self, data: str) -> None:
        for _, ident in self.open:
            if ident in self.text:
                self.text[ident] += data

    def find(self, tag: str, **attrs: str) -> list[dict[str, str]]:
        return [a for t, a in self.elements if t == tag and all(a.get(k) == v for k, v in attrs.items())]


def test_every_verdict_cell_is_rendered(chromium: str, page: Path, tmp_path: Path) -> None:
    dom = Dom(dump_dom(chromium, tmp_path, page.as_uri()))
    assert dom.find("body", **{"data-ready": "1"}), "the page's script did not run"
    buttons = dom.find("button")
    verdicts = {(b["data-cell"], b["data-scenario"], b["data-policy"]): b["data-verdict"]
                for b in buttons if "data-verdict" in b}
    assert len(verdicts) == 12
    assert set(verdicts.values()) == VERDICTS
    assert verdicts[FAILED] == "fail"
    assert verdicts[("containerd-1.7+runc", "blog-example", "Strict")] == "unsupported"
    assert verdicts[("containerd-1.7+runc", "fsgroup-strict", "Merge")] == "known-failure"
    assert verdicts[("containerd-2+runc", "no-etc-group", "Strict")] == "error"
    assert len(dom.find("td", **{"class": "v v-none", "title": "no result: cell crashed"})) == 6
    heads = {h["data-cell"] for h in dom.find("th", **{"class": "cellhead"})}
    assert heads == {"containerd-1.7+runc", "containerd-2+runc", "crio-opt-crio-bin"}
    assert Dom(dump_dom(chromium, tmp_path, page.as_uri()), ("exit-code",)).text["exit-code"].startswith("exit 2")


def test_click_target_shows_expected_vs_observed(chromium: str, page: Path, tmp_path: Path) -> None:
    """The page opens the detail of the case named in the URL hash through the same code a click runs."""
    url = page.as_uri() + "#case=" + "/".join(quote(p, safe="") for p in FAILED)
    dom = Dom(dump_dom(chromium, tmp_path, url), ("detail", "detail-cmp", "detail-verdict", "detail-text",
                                                    "detail-source"))
    assert dom.text["detail-verdict"].strip() == "✘ fail"
    cmp = dom.text["detail-cmp"]
    assert "expected" in cmp and "uid=1000 gid=3000 groups=3000,4000" in cmp
    assert "first process" in cmp and "groups=3000,4000,50000" in cmp
    assert "CRI status user" in cmp
    assert "expected {3000, 4000} (extra {50000})" in dom.text["detail-text"]
    assert dom.text["detail-source"].startswith("Kubernetes v1.35 blog")
    assert "blog-example[Strict]" in dom.text["detail"]
    selected = dom.find("button", **{"class": "selected"})
    assert [(b["data-cell"], b["data-scenario"], b["data-policy"]) for b in selected] == [FAILED]


def test_screenshot_renders(chromium: str, page: Path, tmp_path: Path) -> None:
    shot = tmp_path / "matrix.png"
    proc = headless(chromium, tmp_path, "--hide-scrollbars", "--window-size=1280,900", f"--screenshot={shot}",
                    page.as_uri())
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1280, 900)
    assert len(data) > 20_000  # a rendered table, not a blank page


def test_row_filter_from_the_url_hides_rows_and_fixes_rowspans(chromium: str, tmp_path: Path) -> None:
    results = tmp_path / "results"
    shutil.copytree(FIXTURES, results)
    _, paths = build(results, ["containerd-1.7+runc", "containerd-2+runc"])  # without the crashed cell
    dom = Dom(dump_dom(chromium, tmp_path, paths["html"].as_uri() + "#rows=failing"))
    assert dom.find("select", id="rows")
    rows = [a for t, a in dom.elements if t == "tr" and "data-failing" in a]
    assert len(rows) == 6
    assert all(("hidden" in a) == (a["data-failing"] == "0") for a in rows)
    assert sum("hidden" not in a for a in rows) == 3
    # blog-example keeps only its Strict row: its name moved there with rowspan 1
    order = [(t, a) for t, a in dom.elements if t in ("tr", "th")]
    at = next(i for i, (t, a) in enumerate(order) if t == "th" and "scn" in a.get("class", "") and
              a.get("title", "").startswith("Kubernetes v1.35 blog"))
    assert order[at - 1][1].get("data-failing") == "1" and order[at][1]["rowspan"] == "1"
