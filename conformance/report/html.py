"""matrix.html: one self-contained page (inline CSS/JS, no network) with a click-for-detail panel."""

from __future__ import annotations

import json
from collections import defaultdict
from html import escape

from conformance.report.assets import CSS, JS
from conformance.report.collect import VERDICT_ORDER, Cell, Matrix, Row
from conformance.report.describe import MEANINGS, SYMBOLS, tooltip, verdict_text

HINT = "Click a result to see expected vs observed, the detail and the scenario's source. Hover for a summary."
EXIT_WORDS = {0: "passed", 1: "conformance failure", 2: "error"}


def _attr(text: object) -> str:
    return escape(str(text), quote=True)


def _embed(doc: object) -> str:
    """JSON safe inside <script>: no '<' can close the element."""
    return json.dumps(doc, separators=(",", ":")).replace("<", "\\u003c").replace("\u2028", "\\u2028")


def _cell_head(cell: Cell) -> str:
    elapsed = f" · {cell.elapsed:.1f}s" if isinstance(cell.elapsed, int | float) else ""
    run = f"exit {cell.exit_code}{elapsed}"
    status = "" if cell.status == "complete" and not cell.message else \
        f'<span class="run bad" title="{_attr(cell.message)}">{SYMBOLS["error"]} {escape(cell.status)}: ' \
        f"{escape(cell.message.splitlines()[-1][:80] if cell.message else 'no results')}</span>"
    return (f'<th class="cellhead" scope="col" data-cell="{_attr(cell.id)}"><code>{escape(cell.id)}</code>'
            f'<small>{escape(cell.label)}</small><span class="run">{run}</span>{status}</th>')


def _result_cell(matrix: Matrix, row: Row, cell: Cell) -> str:
    case = matrix.result(row, cell)
    if case is None:
        why = f"no result: cell {cell.status}" if cell.status != "complete" else "not run in this cell"
        return f'<td class="v v-none" title="{_attr(why)}">· not run</td>'
    verdict = case.verdict.value
    tip = tooltip(verdict, case.expected, case.observed, case.detail, case.choice)
    return (f'<td class="v v-{verdict}"><button type="button" data-cell="{_attr(cell.id)}" '
            f'data-scenario="{_attr(row.scenario)}" data-policy="{_attr(row.policy)}" data-verdict="{verdict}" '
            f'title="{_attr(tip)}">{escape(verdict_text(verdict, case.choice))}</button></td>')


def _body(matrix: Matrix) -> list[str]:
    groups: dict[str, list[Row]] = defaultdict(list)
    for row in matrix.rows:
        groups[row.scenario].append(row)
    out = []
    for scenario, rows in groups.items():
        out.append(f'<tbody data-scenario="{_attr(scenario)}">')
        for i, row in enumerate(rows):
            head = ""
            if i == 0:
                tags = f"<small>{escape(', '.join(row.tags))}</small>" if row.tags else ""
                head = (f'<th class="scn" scope="rowgroup" rowspan="{len(rows)}" title="{_attr(row.source)}">'
                        f"{escape(scenario)}{tags}</th>")
            cells = "".join(_result_cell(matrix, row, cell) for cell in matrix.cells)
            flags = " ".join(f'data-{k}="{int(v)}"' for k, v in row_flags(matrix, row).items())
            out.append(f'<tr {flags}>{head}<td class="pol">{escape(row.policy)}</td>{cells}</tr>')
        out.append("</tbody>")
    return out


def row_flags(matrix: Matrix, row: Row) -> dict[str, bool]:
    """What the row filter needs: not every cell passed; the cells disagree (in verdict or in the allowed
    outcome they chose); a failure of any kind."""
    verdicts = [c.verdict.value if (c := matrix.result(row, cell)) else "none" for cell in matrix.cells]
    outcomes = [f"{c.verdict.value}/{c.choice}" if (c := matrix.result(row, cell)) else "none" for cell in matrix.cells]
    return {
        "problems": any(v != "pass" for v in verdicts),
        "differ": len(set(outcomes)) > 1,
        "failing": any(v in ("fail", "error", "known-failure", "rejected", "none") for v in verdicts),
    }


def _totals(cell: Cell) -> str:
    counts = cell.counts
    items = "".join(f'<li class="v-{v}">{counts[v]} {v}</li>' for v in VERDICT_ORDER if counts[v])
    return f'<td class="total" data-cell="{_attr(cell.id)}"><ul class="totals">{items}</ul>' \
           f"{len(cell.cases)} cases · exit {cell.exit_code}</td>"


def _userns(cell: Cell) -> str:
    """The cell's user-namespace cases (tag userns) and its handler's user_namespaces feature."""
    userns = cell.userns
    advertised = userns["handler_user_namespaces"]
    items = "".join(f'<li class="v-{v}">{n} {v}</li>' for v in VERDICT_ORDER if (n := userns["counts"][v]))
    feature = "not reported" if advertised is None else str(advertised).lower()
    return f'<td class="total" data-cell="{_attr(cell.id)}"><ul class="totals">{items}</ul>' \
           f"{userns['cases']} cases · handler user_namespaces={feature}</td>"


ROW_FILTERS = {
    "all": "all cases",
    "problems": "cases not passed everywhere",
    "differ": "cases where the cells disagree",
    "failing": "cases with a fail, error, known failure, rejection or no result",
}


def _options() -> str:
    return "".join(f'<option value="{k}">{escape(v)}</option>' for k, v in ROW_FILTERS.items())


def _legend() -> str:
    items = "".join(f'<span title="{_attr(MEANINGS[v])}"><span class="v v-{v}">{SYMBOLS[v]} {v}</span>'
                    f"{escape(MEANINGS[v])}</span>" for v in VERDICT_ORDER)
    return f'<section class="legend" aria-label="legend">{items}' \
           f'<span><span class="v v-none">· not run</span>no result in this cell</span></section>'


def render_html(matrix: Matrix) -> str:
    code = matrix.exit_code
    head = "".join(_cell_head(c) for c in matrix.cells)
    totals = "".join(_totals(c) for c in matrix.cells)
    userns = "".join(_userns(c) for c in matrix.cells)
    userns_row = (f'<tr class="userns"><th colspan="2" scope="row">User namespaces (hostUsers: false)</th>{userns}</tr>'
                  if any(c.userns["cases"] for c in matrix.cells) else "")
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>supplementalGroupsPolicy conformance matrix</title>",
        f"<style>{CSS}</style></head><body>",
        "<header><h1>supplementalGroupsPolicy conformance matrix</h1>",
        f'<p class="summary"><span class="exit exit-{min(code, 2)}" id="exit-code">exit {code} · '
        f"{EXIT_WORDS.get(code, 'error')}</span> worst cell wins · {len(matrix.cells)} cells, "
        f"{len(matrix.rows)} cases · generated {escape(matrix.generated)}</p></header>",
        _legend(),
        f'<div class="controls"><label for="rows">Rows: </label><select id="rows">{_options()}</select></div>',
        '<div class="layout"><table class="matrix" id="matrix">',
        f'<thead><tr><th scope="col">Scenario</th><th scope="col">Policy</th>{head}</tr></thead>',
        *_body(matrix),
        f'<tfoot><tr><th colspan="2" scope="row">Totals</th>{totals}</tr>{userns_row}</tfoot></table>',
        f'<aside id="detail" aria-live="polite" data-hint="{_attr(HINT)}" '
        f"data-symbols=\"{_attr(json.dumps(SYMBOLS))}\"><p class=\"hint\">{escape(HINT)}</p></aside></div>",
        f'<script type="application/json" id="sgp-data">{_embed(matrix.to_json())}</script>',
        f"<script>{JS}</script>",
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"
