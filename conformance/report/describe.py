"""Short human text for expected and observed identities (shared by the Markdown and HTML reports)."""

from __future__ import annotations

SYMBOLS = {
    "pass": "✔",
    "fail": "✘",
    "unsupported": "○",
    "known-failure": "≈",
    "rejected": "⊘",
    "error": "‼",
}
TOOLTIP_WIDTH = 240  # characters per hover line; the click panel shows everything
MEANINGS = {
    "pass": "every piece of evidence matched the expectation",
    "fail": "the runtime did not do what the expectation says (exit 1)",
    "unsupported": "Strict on a runtime that does not advertise the feature (exit 0)",
    "known-failure": "a mismatch with a linked upstream issue (exit 0)",
    "rejected": "the runtime refused the case up front (exit 0)",
    "error": "the case could not be run: infrastructure trouble (exit 2)",
}


def _groups(groups: object) -> str:
    return ",".join(str(g) for g in groups) if isinstance(groups, list) else str(groups)


def expected_text(expected: dict) -> str:
    """'uid=1000 gid=3000 groups=3000,4000', 'CreateContainer fails', or for a runtime choice
    'one of: [refuses] RunPodSandbox fails | [runs] uid=...'."""
    if not expected:
        return "(none recorded)"
    if expected.get("any_of"):
        return "one of: " + " | ".join(f"[{o.get('as', '?')}] {expected_text(o)}" for o in expected["any_of"])
    if expected.get("error"):
        return f"{expected['error']} fails"
    return f"uid={expected.get('uid')} gid={expected.get('gid')} groups={_groups(expected.get('groups', []))}"


def _process(proc: dict) -> str:
    status = proc.get("status") or {}
    text = proc.get("id") or "(no id output)"
    if status.get("Groups") is not None:
        text += f"; /proc Groups: {_groups(status.get('Groups'))}"
    return text


def observed_lines(observed: dict) -> list[tuple[str, str]]:
    """(label, text) per piece of evidence, in the order the suite reads it."""
    lines: list[tuple[str, str]] = []
    if not observed:
        return [("observed", "(nothing recorded)")]
    if observed.get("create_error"):
        lines.append(("CreateContainer error", str(observed["create_error"])))
    for key, label in (("first_process", "first process"), ("exec_process", "exec'd process")):
        proc = observed.get(key)
        if isinstance(proc, dict):
            lines.append((label, _process(proc)))
    user = observed.get("status_user")
    if isinstance(user, dict):
        lines.append(("CRI status user", f"uid={user.get('uid')} gid={user.get('gid')} "
                                         f"groups={_groups(user.get('supplemental_groups', []))}"))
    elif "status_user" in observed:
        lines.append(("CRI status user", "absent"))
    known = {"create_error", "first_process", "exec_process", "status_user"}
    for key in sorted(set(observed) - known):
        lines.append((key, str(observed[key])))
    return lines


def verdict_text(verdict: str, choice: str = "") -> str:
    """'✔ pass', or with the allowed outcome a runtime chose '✔ pass · refuses-sandbox'."""
    return f"{SYMBOLS[verdict]} {verdict}" + (f" · {choice}" if choice else "")


def tooltip(verdict: str, expected: dict, observed: dict, detail: str, choice: str = "") -> str:
    """Plain-text hover summary: verdict, expected vs observed, first detail lines."""
    head = verdict.upper() + (f" (runtime choice: {choice})" if choice else "")
    parts = [head, f"expected: {expected_text(expected)}"]
    parts += [f"{label}: {text}" for label, text in observed_lines(observed)]
    if detail:
        parts.append("detail: " + " | ".join(detail.splitlines()[:4]))
    return "\n".join(p if len(p) <= TOOLTIP_WIDTH else p[: TOOLTIP_WIDTH - 1] + "…" for p in parts)
