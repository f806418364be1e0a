"""Malformed scenario and image files: exit 2, one message naming file, line and field; nothing started.

Each case folder under cases/ holds one broken file at its place in a scenarios/ + images/ tree; the
test lays it over a copy of good/ (one valid scenario and image set) and runs the real console
command on the result. The runs are independent, so they go in parallel (one fixture) and each
parametrized test checks its own.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from conformance.runtimes.process import processes_mentioning

HERE = Path(__file__).resolve().parent
CASES_DIR = HERE / "cases"
GOOD = HERE / "good"
CLI = Path(sys.executable).parent / "sgp-conformance"
ERROR_PREFIX = "error: "


@dataclass(frozen=True)
class Case:
    name: str  # folder under cases/
    line: int | None  # None: the error concerns the whole file (no line applies)
    field: str  # "" where no field applies (YAML syntax, whole file)
    says: str  # a fragment of the message


CASES = [
    # scenario files: YAML
    Case("scn-yaml-unclosed-list", 8, "", "invalid YAML"),
    Case("scn-yaml-tab-indent", 5, "", "invalid YAML"),
    Case("scn-yaml-duplicate-key", 4, "image", "duplicate key (already on line 3)"),
    Case("scn-top-level-list", None, "", "must be a YAML mapping"),
    Case("scn-empty-file", None, "", "must be a YAML mapping"),
    # unknown keys
    Case("scn-unknown-top-key", 3, "descripton", "unknown key"),
    Case("scn-unknown-pod-key", 5, "pod.runAsUsr", "unknown key"),
    Case("scn-unknown-container-key", 9, "container.runAsNonRoot", "unknown key"),
    Case("scn-unknown-expect-key", 10, "expect.Merge.group", "unknown key"),
    # wrong types
    Case("scn-string-id", 5, "pod.runAsUser", "must be an integer, got '1000'"),
    Case("scn-bool-id", 6, "pod.runAsGroup", "must be an integer, got True"),
    Case("scn-float-id", 6, "pod.runAsGroup", "must be an integer, got 3000.5"),
    Case("scn-groups-not-list", 7, "pod.supplementalGroups", "must be a list of IDs"),
    Case("scn-expect-groups-string", 11, "expect.Strict.groups", "must be a list of IDs"),
    Case("scn-pod-not-mapping", 4, "pod", "must be a mapping"),
    Case("scn-expect-not-mapping", 11, "expect.Strict", "must be a mapping"),
    Case("scn-tags-not-list", 3, "tags", "must be a list"),
    Case("scn-raw-cri-omit-user-string", 14, "raw_cri.omit_user", "must be true or false"),
    # ID ranges
    Case("scn-negative-id", 5, "pod.runAsUser", "-1 is outside 0..2147483647"),
    Case("scn-id-too-large", 7, "pod.supplementalGroups[0]", "2147483648 is outside 0..2147483647"),
    Case("scn-expect-gid-negative", 11, "expect.Strict.gid", "-3000 is outside"),
    Case("scn-expect-group-too-large", 10, "expect.Merge.groups[2]", "4294967296 is outside"),
    # references, policies, expectations, names
    Case("scn-unknown-image", 3, "image", "unknown image 'agnhost'"),
    Case("scn-missing-image", 1, "image", "is required"),
    Case("scn-missing-source", 1, "source", "is required"),
    Case("scn-policy-lowercase", 8, "policies", "unknown policy 'merge'"),
    Case("scn-policy-twice", 8, "policies", "lists a policy twice"),
    Case("scn-policies-empty", 8, "policies", "must be a non-empty list"),
    Case("scn-expect-policy-misspelled", 11, "expect.strict", "unknown policy 'strict'"),
    Case("scn-missing-expectation", 9, "expect.Strict", "missing expectation"),
    Case("scn-expect-missing-uid", 10, "expect.Merge.uid", "is required"),
    Case("scn-expect-unknown-error", 11, "expect.Strict.error", "must be one of"),
    Case("scn-duplicate-name", 1, "name", "duplicate scenario name 'good'"),
    Case("scn-bad-name", 1, "name", "use lowercase letters"),
    Case("scn-known-failure-http-link", 15, "known_failures[0].link", "https://"),
    Case("scn-known-failure-bad-versions", 14, "known_failures[0].versions", "bad version range"),
    # image files: passwd and group
    Case("img-passwd-too-few-fields", 3, "passwd line", "needs 7 ':'-separated fields, got 4"),
    Case("img-passwd-non-numeric-uid", 3, "uid", "got 'thousand'"),
    Case("img-passwd-uid-too-large", 3, "uid", "2147483648 is outside"),
    Case("img-passwd-negative-gid", 2, "gid", "got '-2'"),
    Case("img-passwd-empty-name", 2, "name", "empty user name"),
    Case("img-passwd-not-utf8", 3, "", "not UTF-8"),
    Case("img-group-too-few-fields", 3, "group line", "needs 4 ':'-separated fields, got 3"),
    Case("img-group-non-numeric-gid", 3, "gid", "got 'ten'"),
    Case("img-group-gid-too-large", 5, "gid", "99999999999 is outside"),
    Case("img-group-empty-name", 3, "name", "empty group name"),
    # image files: image.yaml
    Case("img-yaml-bad-user", 5, "user", "got '1000:2000:3000'"),
    Case("img-yaml-user-list", 5, "user", "got [1000]"),
    Case("img-yaml-user-empty-group", 5, "user", "got '1000:'"),
    Case("img-yaml-unknown-key", 5, "entrypoint", "unknown key"),
    Case("img-yaml-syntax", 6, "", "invalid YAML"),
    Case("img-yaml-not-mapping", None, "", "must be a mapping"),
    Case("img-yaml-cmd-string", 5, "cmd", "must be a non-empty list of strings"),
]


@dataclass
class Run:
    broken: Path  # the broken file, in the laid-out copy
    returncode: int
    output: str  # stdout + stderr
    state_dir: Path
    cache_dir: Path
    results_dir: Path
    stragglers: list[int]  # processes still mentioning the state dir


def broken_file(case: Case) -> Path:
    files = [p for p in (CASES_DIR / case.name).rglob("*") if p.is_file()]
    assert len(files) == 1, f"{case.name}: a case holds exactly one broken file, found {files}"
    return files[0]


def run_case(case: Case, base: Path) -> Run:
    work = base / case.name
    shutil.copytree(GOOD, work)
    shutil.copytree(CASES_DIR / case.name, work, dirs_exist_ok=True)
    state, cache, results = work / "state", work / "cache", work / "results"
    state.mkdir()
    env = {**os.environ, "SGP_STATE_DIR": str(state), "SGP_CACHE_DIR": str(cache)}
    res = subprocess.run([str(CLI), "run", "--scenarios", str(work / "scenarios"), "--images", str(work / "images"),
                          "--results-dir", str(results)], capture_output=True, text=True, env=env, timeout=60)
    return Run(work / broken_file(case).relative_to(CASES_DIR / case.name), res.returncode, res.stdout + res.stderr,
               state, cache, results, processes_mentioning(str(state)))


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    base = tmp_path_factory.mktemp("badinput")
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 2)) as pool:
        return dict(zip([c.name for c in CASES], pool.map(lambda c: run_case(c, base), CASES), strict=True))


def test_corpus_is_complete() -> None:
    """Every folder under cases/ has an expectation here, and there are at least 25."""
    assert sorted(p.name for p in CASES_DIR.iterdir() if p.is_dir()) == sorted(c.name for c in CASES)
    assert len(CASES) >= 25


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_bad_input_is_refused(case: Case, runs: dict[str, Run]) -> None:
    run = runs[case.name]
    assert run.returncode == 2, run.output
    assert "Traceback" not in run.output, run.output
    messages = [line for line in run.output.splitlines() if ERROR_PREFIX in line]
    assert len(messages) == 1, f"expected one error message:\n{run.output}"
    message = messages[0].split(ERROR_PREFIX, 1)[1]
    where = f"{run.broken}:{case.line}: " if case.line is not None else f"{run.broken}: "
    assert message.startswith(where), f"expected it to start with {where!r}: {message}"
    rest = message[len(where):]
    if case.field:
        assert rest.startswith(f"{case.field}: "), f"expected field {case.field!r} first: {message}"
    assert case.says in rest, message
    # nothing was started: no state, no image archives, no results, no process
    assert list(run.state_dir.iterdir()) == [], "state dir is not empty"
    assert not run.cache_dir.exists(), "images were built"
    assert not (run.results_dir / "results.json").exists()
    assert run.stragglers == [], f"processes mention {run.state_dir}"
