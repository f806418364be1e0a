"""The node target on a real CRI-O (CRIO_BIN_DIR): the whole catalogue, restarts, the OCI runtime asked for,
an existing CRI-O reached through CRI_ENDPOINT, and nothing left behind."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conformance.core.catalogue import Catalogue
from conformance.runtimes import busybox, ocidefault
from conformance.runtimes.process import cgroup_dirs, remove_cgroups
from tests.conftest import CLI, PROJECT
from tests.support.leftovers import leftovers
from tests.support.suite import interrupt_after, old_crun, run_suite
from tests.support.userns import check_userns, is_userns

pytestmark = pytest.mark.runtime
CATALOGUE = Catalogue.load(PROJECT / "scenarios", PROJECT / "images")


def verdicts(results: Path) -> dict[tuple[str, str], tuple[str, str]]:
    doc = json.loads((results / "results.json").read_text())
    return {(c["scenario"], c["policy"]): (c["verdict"], c.get("choice", "")) for c in doc["cases"]}


def test_whole_catalogue_on_crio(crio_bin_dir: Path, tmp_path: Path, state_root: Path) -> None:
    code, out, pid = run_suite(tmp_path, state_root, "--runtime", "crio", "--crio-bin-dir", str(crio_bin_dir))
    assert code == 0, out[-6000:]
    assert "warning" not in out.lower(), out[-4000:]
    doc = json.loads((tmp_path / "results.json").read_text())
    runtime = doc["runtime"]
    assert runtime["name"] == "cri-o" and runtime["features"] == {"supplemental_groups_policy": True}
    assert runtime["oci_runtime"]["chosen"].startswith("default: ") and runtime["oci_runtime"]["version"]
    if not ocidefault.kernel_problem():  # the default OCI runtime has idmapped mounts: no userns case unsupported
        assert runtime["handler_features"]["user_namespaces"] is True, runtime["oci_runtime"]
    assert len(doc["cases"]) == sum(len(s.policies) for s in CATALOGUE.scenarios)
    for case in doc["cases"]:
        if is_userns(case):  # pass where the handler says user_namespaces=true, else unsupported with the evidence
            check_userns(case, runtime)
            continue
        assert case["verdict"] in ("pass", "known-failure"), case
        scn = CATALOGUE.by_name(case["scenario"])
        if scn.choice is not None and case["policy"] in scn.choices:
            assert case["choice"], case  # which allowed outcome CRI-O took is on record
    choices = {(c["scenario"], c["policy"]): c.get("choice") for c in doc["cases"]}
    assert choices[("pod-run-as-group-without-user", "Merge")] == "runs-pod"
    assert choices[("raw-image-user-uid-gid", "Merge")] == "explicit-group-only"
    restarts = [c for c in doc["cases"] if "restart" in c["tags"]]
    assert restarts and all(c["verdict"] == "pass" and c["duration"] < 10 for c in restarts)
    assert leftovers(state_root, pid) == []


def test_old_crun_is_refused_before_anything_starts(crio_bin_dir: Path, tmp_path: Path, state_root: Path) -> None:
    """HANDLER=crun finds a crun 1.8.1 (as Debian bookworm ships) in OCI_BIN_DIR: refused in one line, nothing
    started."""
    old = old_crun(tmp_path / "old")
    res = subprocess.run([str(CLI), "run", "--runtime", "crio", "--crio-bin-dir", str(crio_bin_dir), "--handler",
                          "crun", "--oci-bin-dir", str(old), "--results-dir", str(tmp_path)], capture_output=True,
                         text=True, timeout=120, env={**os.environ, "SGP_STATE_DIR": str(state_root)}, cwd=PROJECT)
    assert res.returncode == 2, res.stdout + res.stderr
    line = next(x for x in (res.stdout + res.stderr).splitlines() if "HANDLER=crun" in x)
    assert "crun 1.8" in line and "OCI_BIN_DIR" in line
    assert list(state_root.iterdir()) == []


def test_crun_from_oci_bin_dir(crio_bin_dir: Path, tmp_path: Path, state_root: Path) -> None:
    from conformance.core.options import default_cache
    from conformance.runtimes import crun

    built = crun.ensure_crun(default_cache())
    code, out, pid = run_suite(tmp_path, state_root, "--runtime", "crio", "--crio-bin-dir", str(crio_bin_dir),
                               "--handler", "crun", "--oci-bin-dir", str(built.parent),
                               "-k", "upstream or blog or critest or fsgroup or many-groups or restart or userns")
    assert code == 0, out[-4000:]
    doc = json.loads((tmp_path / "results.json").read_text())
    oci = doc["runtime"]["oci_runtime"]
    assert oci["name"] == "crun" and oci["path"] == str(built) and oci["version"] == crun.crun_version(built)
    assert {c["verdict"] for c in doc["cases"]} == {"pass"} and len(doc["cases"]) >= 20
    userns = [c for c in doc["cases"] if is_userns(c)]
    assert len(userns) == 18
    for case in userns:  # CRI-O runs the OCI runtime's create at CreateContainer: the unmappable groups fail there
        check_userns(case, doc["runtime"])
        if "any_of" in case["expected"]:
            assert case["choice"] == "refuses-create" and "setgroups" in case["observed"]["create_error"], case
    assert leftovers(state_root, pid) == []


def test_existing_crio_gives_the_same_verdicts(crio_bin_dir: Path, tmp_path: Path, state_root: Path) -> None:
    """A CRI-O started by hand with its own storage (CRI_ENDPOINT + CRIO_STORAGE, IMAGE_LOAD left at auto):
    images arrive with skopeo and every verdict equals the private CRI-O's."""
    from conformance.core.options import default_cache
    from conformance.testimages import archive

    # the node's own pause image
    pause = archive.build(CATALOGUE.images["pause"], default_cache() / "images", busybox.find()).ref
    default_parent_existed = bool(cgroup_dirs("crio"))  # CRI-O's parent for sandboxes that name none (cgroupfs)
    holder = subprocess.Popen([sys.executable, "-c", HAND_STARTED, str(crio_bin_dir), str(state_root / "hand"),
                               pause], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=PROJECT)
    try:
        info = json.loads(holder.stdout.readline())  # type: ignore[union-attr]
        storage = ":".join(info["storage"])
        code, out, _ = run_suite(tmp_path / "existing", state_root, "--cri-endpoint", info["endpoint"],
                                 "--crio-storage", storage)
        assert code == 0, out[-4000:]
        assert "IMAGE_LOAD" not in out and "registry" not in out.lower()
        not_run = [line for line in out.splitlines() if " NOT-RUN " in line]
        assert len(not_run) == 6 and all("runtime-restart" in line for line in not_run), out[-4000:]
        assert re.search(r"^summary: \d+ cases: .*, 6 not run in ", out, re.M), out[-2000:]  # a line of its own
    finally:
        holder.communicate("stop\n", timeout=60)
        if not default_parent_existed:
            remove_cgroups("crio")
    code, out, _ = run_suite(tmp_path / "private", state_root, "--runtime", "crio", "--crio-bin-dir",
                             str(crio_bin_dir))
    assert code == 0, out[-4000:]
    private, existing = verdicts(tmp_path / "private"), verdicts(tmp_path / "existing")
    restarts = {k for k in private if "restart" in k[0]}  # need a runtime the suite started: not run there
    assert set(existing) == set(private) - restarts
    assert {k: private[k] for k in existing} == existing
    assert list((state_root / "hand").iterdir()) == [] if (state_root / "hand").exists() else True


# a node's CRI-O has a pod network: without a CNI config it waits for one in every RunPodSandbox that asks
# for a network namespace of its own (the user-namespace cases). Its OCI runtime is the one the private CRI-O
# gets by default (with the suite's cache: the built crun where the bin folder's runc lacks idmapped mounts),
# so the user-namespace cases compare like with like.
HAND_STARTED = """
import json, sys
from pathlib import Path
from conformance.core.options import default_cache
from conformance.runtimes import podnet
from conformance.cri.client import CRIClient
from conformance.runtimes.crio import Crio
prov = Crio(Path(sys.argv[1]), Path(sys.argv[2]), cache=default_cache()).start(sys.argv[3])
podnet.install(prov.daemon.state_dir / "cni")
client = CRIClient(prov.endpoint)
prov.daemon.start(lambda: bool(client.version(timeout=0.5)))
print(json.dumps({"endpoint": prov.endpoint, "storage": prov.storage}), flush=True)
sys.stdin.readline()
client.close()
prov.daemon.stop()
prov.daemon.remove_state()
"""


def test_interrupt_on_crio_leaves_nothing(crio_bin_dir: Path, tmp_path: Path, state_root: Path) -> None:
    interrupt_after(tmp_path, state_root, ("--runtime", "crio", "--crio-bin-dir", str(crio_bin_dir)), 5, 15)
