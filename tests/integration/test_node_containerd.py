"""The node target on real containerd 1.6, 1.7 and 2.x, driven through the console command."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conformance.core.catalogue import Catalogue
from conformance.core.options import default_cache
from conformance.runtimes import containerd, ocidefault
from tests.conftest import CLI, PROJECT
from tests.support.leftovers import leftovers
from tests.support.releases import Layout, serve
from tests.support.suite import old_crun, run_suite
from tests.support.userns import check_userns, is_userns

pytestmark = pytest.mark.runtime


def released(version: str, root: Path) -> tuple[str, Layout]:
    """Debian's containerd `version` laid out as containerd's release tarballs are (tests/support/releases.py)."""
    found, bin_dir = containerd.resolve_binaries(version, None, default_cache())
    layout = Layout(root)
    layout.containerd(found, bin_dir, listed=("1.7.24", "2.2.0-rc.1"))
    shutil.rmtree(default_cache() / "runtimes" / f"containerd-{found}", ignore_errors=True)
    return found, layout


@pytest.mark.parametrize("version", ["2", "1.7", "1.6"])
def test_catalogue_on_containerd(version: str, real_runtime: None, tmp_path: Path, state_root: Path,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """containerd 2.x from a release layout on loopback (download, checksum, unpack), 1.7 and 1.6 from Debian's
    archive."""
    if version == "2":
        found, layout = released(version, tmp_path / "www")
        with serve(layout) as server:
            monkeypatch.setenv("CONTAINERD_RELEASE_URL", server.env()["CONTAINERD_RELEASE_URL"])
            code, out, pid = run_suite(tmp_path, state_root, "--version", version, "-n", "2")
        tarball = f"/containerd/releases/download/v{found}/containerd-{found}-linux-amd64.tar.gz"
        assert server.requests[tarball] == 1 and server.requests["/containerd/releases"] == 1
        assert (default_cache() / "runtimes" / f"containerd-{found}" / "bin" / "containerd").is_file()
    else:
        code, out, pid = run_suite(tmp_path, state_root, "--version", version, "-n", "2")
    assert code == 0, out[-6000:]
    doc = json.loads((tmp_path / "results.json").read_text())
    assert (tmp_path / "junit.xml").exists()
    runtime = doc["runtime"]
    assert runtime["name"] == "containerd"
    catalogue = Catalogue.load(PROJECT / "scenarios", PROJECT / "images")
    assert len(doc["cases"]) == sum(len(s.policies) for s in catalogue.scenarios)
    for case in doc["cases"]:
        assert case["verdict"] != "error", case
        assert set(case) >= {"scenario", "policy", "verdict", "expected", "observed", "detail"}
        if is_userns(case):  # judged by the handler's user_namespaces (the default OCI runtime has idmap mounts)
            check_userns(case, runtime)
    userns = [c for c in doc["cases"] if is_userns(c)]
    assert len(userns) >= 18
    if version == "2" and not ocidefault.kernel_problem():  # every case runs: none unsupported
        assert runtime["handler_features"]["user_namespaces"] is True, runtime["oci_runtime"]
    doc["cases"] = [c for c in doc["cases"] if not is_userns(c)]
    if version == "2":
        assert runtime["version"].startswith("2.")
        assert runtime["features"] == {"supplemental_groups_policy": True}
        assert {c["verdict"] for c in doc["cases"]} <= {"pass", "known-failure"}
        for case in doc["cases"]:
            if case["verdict"] == "known-failure":
                assert case["links"], case
            elif "any_of" in case["expected"]:
                assert case["choice"], case  # which allowed outcome containerd took is on record
            elif "error" not in case["expected"]:
                user = case["observed"]["status_user"]
                assert user is not None and sorted(user["supplemental_groups"]) == case["expected"]["groups"]
    else:
        assert runtime["version"].startswith(version + ".")
        assert runtime["features"] is None
        for case in doc["cases"]:
            if case["policy"] == "Strict":
                assert case["verdict"] == "unsupported", case
                scn = catalogue.by_name(case["scenario"])
                merge, strict = scn.expect.get("Merge"), scn.expect["Strict"]
                plain = scn.raw_cri is None and not scn.known_failures  # else the runtime's quirk shows instead
                m, st = merge.identity if merge else None, strict.identity
                differ = m is not None and st is not None and m.groups != st.groups
                if plain and differ:
                    assert "silently ignored" in case["detail"], case
            else:
                raw = catalogue.by_name(case["scenario"]).raw_cri
                needs_feature = raw is not None and raw.policy_value not in (None, 0)  # an enum only 2.x knows
                allowed = ("pass", "known-failure", "unsupported") if needs_feature else ("pass", "known-failure")
                assert case["verdict"] in allowed, case
                if case["verdict"] == "pass" and "error" not in case["expected"]:
                    assert case["observed"]["status_user"] is None
    assert "summary:" in out
    assert leftovers(state_root, pid) == []


def test_shared_sandboxes_give_the_verdicts_of_cases_alone(real_runtime: None, tmp_path: Path,
                                                           state_root: Path) -> None:
    """The whole catalogue in one process (cases whose sandboxes agree share one) and with xdist (each case in a
    sandbox of its own): the same verdict and outcome, case by case, and nothing left."""
    verdicts = []
    for name, extra in (("shared", ()), ("alone", ("-n", "2"))):
        code, out, pid = run_suite(tmp_path / name, state_root, *extra)
        assert code == 0, out[-4000:]
        doc = json.loads((tmp_path / name / "results.json").read_text())
        verdicts.append({(c["scenario"], c["policy"]): (c["verdict"], c.get("choice"), c["expected"])
                         for c in doc["cases"]})
        assert leftovers(state_root, pid) == []
    assert verdicts[0] == verdicts[1] and len(verdicts[0]) >= 150


def test_last_failed_reruns_only_those(real_runtime: None, tmp_path: Path, state_root: Path) -> None:
    """--lf runs only the cases pytest saved as failed (here written by hand into a cache of the test's own)."""
    cache = tmp_path / "cache"
    (cache / "v" / "cache").mkdir(parents=True)
    (cache / "v" / "cache" / "lastfailed").write_text(json.dumps(
        {"scenarios/blog-example.yaml::blog-example[Merge]": True,
         "scenarios/upstream-e2e.yaml::upstream-e2e[Strict]": True}))
    code, out, _ = run_suite(tmp_path / "lf", state_root, "-o", f"cache_dir={cache}", "--lf")
    assert code == 0, out[-4000:]
    doc = json.loads((tmp_path / "lf" / "results.json").read_text())
    assert sorted((c["scenario"], c["policy"]) for c in doc["cases"]) == [("blog-example", "Merge"),
                                                                          ("upstream-e2e", "Strict")]


def test_crun_handler(real_runtime: None, tmp_path: Path, state_root: Path) -> None:
    """The same cases under crun: pass or known-failure on containerd 2.x (crun#1543 broke exactly this).
    The crun is the suite's build from Debian's source, given as OCI_BIN_DIR, and recorded."""
    from conformance.core.options import default_cache
    from conformance.runtimes import crun

    built = crun.ensure_crun(default_cache())
    code, out, pid = run_suite(tmp_path, state_root, "--version", "2", "--handler", "crun", "--oci-bin-dir",
                               str(built.parent),
                               "-k", "upstream or blog or critest or fsgroup or many-groups or status-exited or "
                               "above-mapping")
    assert code == 0, out[-4000:]
    doc = json.loads((tmp_path / "results.json").read_text())
    assert doc["runtime"]["handler"] == "crun" and len(doc["cases"]) >= 20
    assert doc["runtime"]["oci_runtime"]["path"] == str(built)
    assert {c["verdict"] for c in doc["cases"]} <= {"pass", "known-failure"}
    userns = [c for c in doc["cases"] if is_userns(c)]  # crun 1.21 gives containerd 2 idmapped mounts
    assert len(userns) == 12 and doc["runtime"]["handler_features"]["user_namespaces"] is True
    for case in userns:
        check_userns(case, doc["runtime"])
        if "any_of" in case["expected"]:
            assert case["choice"] == "refuses-start" and "setgroups" in case["observed"]["start_error"], case
    assert leftovers(state_root, pid) == []


def test_default_and_stock_runc_recorded_and_old_crun_refused(real_runtime: None, tmp_path: Path,
                                                              state_root: Path) -> None:
    """The OCI runtime is part of what is tested: results.json names it and why. The default gives pods user
    namespaces where this kernel can (here: the suite's crun, as Debian's runc 1.1.5 lacks idmapped mounts);
    HANDLER=runc is the stock runc exactly, its userns cases unsupported in containerd's words; a crun too old
    for containerd 2.x's bundles (1.8.1, as Debian bookworm ships) is refused in one line before anything starts."""
    code, out, _ = run_suite(tmp_path / "default", state_root, "--version", "2", "-k", "blog-example")
    assert code == 0, out[-3000:]
    runtime = json.loads((tmp_path / "default" / "results.json").read_text())["runtime"]
    oci = runtime["oci_runtime"]
    assert oci["chosen"].startswith("default: ") and oci["version"] and oci["chosen"] in out
    if not ocidefault.kernel_problem():
        assert runtime["handler_features"]["user_namespaces"] is True, oci
    code, out, _ = run_suite(tmp_path / "runc", state_root, "--version", "2", "--handler", "runc",
                             "-k", "userns-blog-example")
    assert code == 0, out[-3000:]
    doc = json.loads((tmp_path / "runc" / "results.json").read_text())
    oci = doc["runtime"]["oci_runtime"]
    assert oci["name"] == "runc" and Path(oci["path"]).name == "runc" and oci["chosen"] == "HANDLER=runc"
    for case in doc["cases"]:
        check_userns(case, doc["runtime"])
    env = {**os.environ, "SGP_STATE_DIR": str(state_root)}
    res = subprocess.run([str(CLI), "run", "--version", "2", "--handler", "crun", "--oci-bin-dir",
                          str(old_crun(tmp_path / "old")), "--results-dir", str(tmp_path)],
                         capture_output=True, text=True, env=env, timeout=300, cwd=PROJECT)
    text = res.stdout + res.stderr
    assert res.returncode == 2, text and "crun 1.8" in text and "OCI_BIN_DIR" in text
    assert list(state_root.iterdir()) == []
