"""The merged matrix report: per-cell results.json folders -> matrix.json, matrix.md, matrix.html.

Entry points: `build(results_dir)` (used by `conformance.tools.matrix`) and `python -m conformance.report DIR`.
"""

from __future__ import annotations

from pathlib import Path

from conformance.report.collect import CELL_FILE, Matrix, collect
from conformance.report.html import render_html
from conformance.report.markdown import render_markdown

__all__ = ["CELL_FILE", "Matrix", "build", "collect", "render_html", "render_markdown", "write_reports"]


def write_reports(matrix: Matrix, results_dir: Path) -> dict[str, Path]:
    """Write matrix.json, matrix.md and matrix.html into `results_dir`; return their paths."""
    import json

    results_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": results_dir / "matrix.json",
        "md": results_dir / "matrix.md",
        "html": results_dir / "matrix.html",
    }
    texts = {
        "json": json.dumps(matrix.to_json(), indent=2) + "\n",
        "md": render_markdown(matrix),
        "html": render_html(matrix),
    }
    for key, path in paths.items():
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(texts[key], encoding="utf-8")
        tmp.replace(path)
    return paths


def build(results_dir: Path, order: list[str] | None = None) -> tuple[Matrix, dict[str, Path]]:
    """Collect the cell folders under `results_dir` and write the three reports."""
    matrix = collect(results_dir, order)
    return matrix, write_reports(matrix, results_dir)
