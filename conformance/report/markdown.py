"""matrix.md: scenarios x cells as GitHub-flavoured Markdown (fit for a CI step summary)."""

from __future__ import annotations

from conformance.report.collect import VERDICT_ORDER, Cell, Matrix, Row
from conformance.report.describe import MEANINGS, SYMBOLS, expected_text, observed_lines, verdict_text

NOT_RUN = "· not run"
MAX_PROBLEMS = 30


def esc(text: str) -> str:
    """Make `text` safe inside one Markdown table cell."""
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", "<br>").replace("`", "'")


def badge(verdict: str) -> str:
    return f"{SYMBOLS[verdict]} {verdict}"


def _elapsed(cell: Cell) -> str:
    return f"{cell.elapsed:.1f}s" if isinstance(cell.elapsed, int | float) else ""


def cells_table(matrix: Matrix) -> list[str]:
    head = ["Cell", "Runtime", "Run", "Cases", *(badge(v) for v in VERDICT_ORDER), "Exit", "Time"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for cell in matrix.cells:
        counts = cell.counts
        status = cell.status if not cell.message else f"{cell.status}: {cell.message.splitlines()[-1][:120]}"
        row = [f"`{esc(cell.id)}`", esc(cell.label), esc(status), str(len(cell.cases)),
               *(str(counts[v]) for v in VERDICT_ORDER), f"**{cell.exit_code}**", _elapsed(cell)]
        lines.append("| " + " | ".join(row) + " |")
    return lines


def userns_table(matrix: Matrix) -> list[str]:
    """User-namespace cases (hostUsers: false) per cell, beside what the cell's runtime handler advertises."""
    if not any(cell.userns["cases"] for cell in matrix.cells):
        return []
    head = ["Cell", "Runtime", "handler user_namespaces", "Cases", *(badge(v) for v in VERDICT_ORDER)]
    lines = ["### User namespaces (hostUsers: false)", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for cell in matrix.cells:
        userns = cell.userns
        advertised = userns["handler_user_namespaces"]
        row = [f"`{esc(cell.id)}`", esc(cell.label), "not reported" if advertised is None else str(advertised).lower(),
               str(userns["cases"]), *(str(userns["counts"][v]) for v in VERDICT_ORDER)]
        lines.append("| " + " | ".join(row) + " |")
    return [*lines, ""]


def matrix_table(matrix: Matrix) -> list[str]:
    head = ["Scenario", "Policy", *(f"`{esc(c.id)}`" for c in matrix.cells)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in matrix.rows:
        marks = []
        for cell in matrix.cells:
            case = matrix.result(row, cell)
            marks.append(verdict_text(case.verdict.value, case.choice) if case else NOT_RUN)
        lines.append("| " + " | ".join([esc(row.scenario), esc(row.policy), *marks]) + " |")
    return lines


def legend() -> list[str]:
    items = [f"{badge(v)}: {MEANINGS[v]}" for v in VERDICT_ORDER]
    return ["**Legend:** " + "; ".join(items) + f"; {NOT_RUN}: no result for this case in this cell."]


def _problem(cell: Cell, row: Row) -> list[str]:
    case = cell.cases[row.key]
    body = [f"- expected: `{expected_text(case.expected)}`"]
    body += [f"- {label}: `{text}`" for label, text in observed_lines(case.observed)]
    body += [f"- source: {case.source}"] if case.source else []
    detail = "\n".join(case.detail.splitlines()[:12])
    return [f"<details><summary>{badge(case.verdict.value)}: {row.scenario}[{row.policy}] on "
            f"<code>{cell.id}</code></summary>", "", *body, "", "```", detail, "```", "</details>", ""]


def problems(matrix: Matrix) -> list[str]:
    """Expected vs observed for every fail and error (at most MAX_PROBLEMS), and every crashed cell."""
    found = [(cell, row) for row in matrix.rows for cell in matrix.cells
             if (case := matrix.result(row, cell)) is not None and case.verdict.value in ("fail", "error")]
    out: list[str] = []
    for cell, row in found[:MAX_PROBLEMS]:
        out += _problem(cell, row)
    if len(found) > MAX_PROBLEMS:
        out += [f"… and {len(found) - MAX_PROBLEMS} more: see matrix.html", ""]
    for cell in (c for c in matrix.cells if c.status != "complete" or c.message):
        out.append(f"- `{cell.id}`: **{cell.status}** (exit {cell.exit_code}) {esc(cell.message[-300:])}")
    return ["### Failures and errors", "", *out] if out else []


def choices(matrix: Matrix) -> list[str]:
    """Cases the CRI and KEP-3619 leave open: per scenario, why any listed outcome is allowed (once), and which
    one each cell's runtime took for every policy (and container kind)."""
    by_scenario: dict[str, list[str]] = {}
    why: dict[str, str] = {}
    for row in matrix.rows:
        cases = [(cell, case) for cell in matrix.cells if (case := matrix.result(row, cell)) is not None]
        open_case = next((case for _, case in cases if case.expected.get("any_of")), None)
        if open_case is None:
            continue
        base = row.scenario.split("@")[0].split(".")[0]
        names = " or ".join(o.get("as", "?") for o in open_case.expected["any_of"])
        why.setdefault(base, f"allowed: {names}. Why: {open_case.expected.get('why', '')}")
        taken = ", ".join(f"`{cell.id}` {case.choice or case.verdict.value}" for cell, case in cases)
        by_scenario.setdefault(base, []).append(f"  - {esc(row.scenario)}[{esc(row.policy)}]: {taken}")
    out: list[str] = []
    for base, lines in by_scenario.items():
        out += [f"- **{esc(base)}**: {esc(why[base])}", *lines]
    return ["### Runtime choices (allowed differences)", "", *out, ""] if out else []


def render_markdown(matrix: Matrix) -> str:
    verdict = {0: "passed", 1: "conformance failure", 2: "error"}.get(matrix.exit_code, "error")
    lines = [
        "## supplementalGroupsPolicy conformance matrix",
        "",
        f"**Exit {matrix.exit_code}** ({verdict}; worst cell wins) · {len(matrix.cells)} cells, "
        f"{len(matrix.rows)} cases · generated {matrix.generated}",
        "",
        *cells_table(matrix),
        "",
        *matrix_table(matrix),
        "",
        *legend(),
        "",
        *userns_table(matrix),
        *choices(matrix),
        *problems(matrix),
    ]
    return "\n".join(lines).rstrip() + "\n"
