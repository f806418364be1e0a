"""User namespaces (hostUsers: false): the scenario key, the oracle's rule for unmappable IDs, the probe's
maps, the verdicts, what the targets send, the suite's CNI plugin and the matrix's section."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conformance.core.catalogue import PROJECT, Catalogue
from conformance.core.model import CaseResult, Expectation, Identity, RuntimeInfo, Verdict
from conformance.core.observe import PROBE, parse_probe
from conformance.core.scenario import load_scenario
from conformance.core.verdict import Observation, judge
from conformance.cri import api_pb2 as pb
from conformance.errors import InputError
from conformance.kube.manifests import pod_manifest
from conformance.kube.status import runtime_info
from conformance.report.collect import Cell, Matrix, Row
from conformance.report.markdown import render_markdown
from conformance.runtimes import podnet
from conformance.targets.local.controlplane import KUBELET_NS
from conformance.targets.node.target import namespace_options
from tests.unit.test_verdict import proc

CAT = Catalogue.load(PROJECT / "scenarios", PROJECT / "images")
WITH = RuntimeInfo("containerd", "2.1.9", features={"supplemental_groups_policy": True},
                   handler_features={"user_namespaces": True, "recursive_read_only_mounts": True})
WITHOUT = RuntimeInfo("containerd", "2.1.9", features={"supplemental_groups_policy": True},
                      handler_features={"user_namespaces": False, "recursive_read_only_mounts": True})
BLOG = Expectation(Identity(1000, 3000, frozenset({3000, 4000})))
MAP = [(0, 655360, 65536)]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(text)
    return path


BASE = ("source: x\nimage: agnhost-like\npolicies: [Strict]\npod: {runAsUser: 1000, runAsGroup: 3000, "
        "supplementalGroups: [4000]}\n")


def test_user_namespace_key_and_tag(tmp_path: Path) -> None:
    scn = load_scenario(write(tmp_path, BASE + "user_namespace: true\nexpect:\n  Strict: {uid: 1000, gid: 3000, "
                                        "groups: [3000, 4000]}\n"), CAT.images)
    assert scn.user_namespace and "userns" in scn.tags
    with pytest.raises(InputError, match=r"s\.yaml:\d+: user_namespace: must be true or false"):
        load_scenario(write(tmp_path, BASE + "user_namespace: yes please\nexpect:\n  Strict: {uid: 1, gid: 1, "
                                             "groups: [1]}\n"), CAT.images)


def test_oracle_ids_outside_the_mapping_cannot_start(tmp_path: Path) -> None:
    above = load_scenario(write(tmp_path, BASE.replace("[4000]", "[4000, 70000]") + "user_namespace: true\nexpect:\n"
                                "  Strict: {error: StartContainer}\n"), CAT.images)
    assert CAT.oracle(above, "Strict") == Expectation(error="StartContainer")
    host = load_scenario(write(tmp_path, BASE.replace("[4000]", "[4000, 70000]") + "expect:\n  Strict: "
                               "{uid: 1000, gid: 3000, groups: [3000, 4000, 70000]}\n"), CAT.images)
    assert CAT.oracle(host, "Strict").identity == Identity(1000, 3000, frozenset({3000, 4000, 70000}))
    image_group = CAT.by_name("userns-image-group-above-mapping")
    assert CAT.oracle(image_group, "Merge").error == "StartContainer"
    assert CAT.oracle(image_group, "Strict").identity == Identity(1000, 3000, frozenset({3000, 4000}))
    assert CAT.oracle(CAT.by_name("userns-top-of-mapping"), "Strict").identity.groups == {3000, 65535}


def test_probe_reads_the_maps() -> None:
    out = subprocess.run(["/bin/sh", "-c", PROBE], capture_output=True, text=True, check=True).stdout
    ident = parse_probe(out)
    assert ident.uid_map == [(0, 0, 4294967295)] and not ident.in_userns and "uid_map" not in ident.to_json()
    ident = parse_probe("SGP-BEGIN\nSGP-ID uid=0 gid=0 groups=0\nSGP-STATUS Uid: 0 0 0 0\nSGP-STATUS Gid: 0 0 0 0\n"
                        "SGP-MAP uid_map 0 655360 65536\nSGP-MAP gid_map 0 655360 65536\nSGP-END\n")
    assert ident.in_userns and ident.to_json()["gid_map"] == [[0, 655360, 65536]]


def userns_obs(groups: list[int], maps: list[tuple[int, int, int]] | None = None) -> Observation:
    first, exec_ = proc(groups, gid=3000), proc(groups, gid=3000)
    for p in (first, exec_):
        p.uid_map = p.gid_map = list(MAP if maps is None else maps)
    return Observation(first=first, exec=exec_, user={"uid": 1000, "gid": 3000, "supplemental_groups": groups})


def test_userns_verdicts() -> None:
    assert judge("Strict", BLOG, userns_obs([3000, 4000]), WITH, userns=True).verdict == Verdict.PASS
    ignored = judge("Strict", BLOG, userns_obs([3000, 4000], [(0, 0, 4294967295)]), WITH, userns=True)
    assert ignored.verdict == Verdict.FAIL and "not in a user namespace" in ignored.detail
    narrow = judge("Strict", BLOG, userns_obs([3000, 4000], [(0, 655360, 1000)]), WITH, userns=True)
    assert narrow.verdict == Verdict.FAIL and "does not map container IDs 0..65535" in narrow.detail
    refused = Observation(start_error="idmap mounts not supported")
    unsupported = judge("Strict", BLOG, refused, WITHOUT, userns=True)
    assert unsupported.verdict == Verdict.UNSUPPORTED and "user_namespaces=false" in unsupported.detail
    assert "StartContainer failed: idmap mounts not supported" in unsupported.detail
    ran = judge("Strict", BLOG, userns_obs([3000, 4000]), WITHOUT, userns=True)
    assert ran.verdict == Verdict.UNSUPPORTED and "every piece of evidence matched" in ran.detail
    old = judge("Strict", BLOG, userns_obs([3000, 4000]), RuntimeInfo("containerd", "1.7.24"), userns=True)
    assert old.verdict == Verdict.UNSUPPORTED and "no runtime handlers" in old.detail
    started = judge("Strict", Expectation(error="StartContainer", message="setgroups"), userns_obs([3000]), WITH,
                    userns=True)
    assert started.verdict == Verdict.FAIL and "expected StartContainer to fail" in started.detail
    failed = Observation(start_error="setgroups: Invalid argument")
    assert judge("Strict", Expectation(error="StartContainer", message="setgroups"), failed, WITH,
                 userns=True).verdict == Verdict.PASS


def test_node_target_sends_what_the_kubelet_sends() -> None:
    plain = namespace_options(CAT.by_name("blog-example"), 65536 * 20)
    assert plain.network == pb.NODE and not plain.HasField("userns_options")
    opts = namespace_options(CAT.by_name("userns-blog-example"), 65536 * 20)
    assert opts.network == pb.POD and opts.userns_options.mode == pb.POD
    for ids in (opts.userns_options.uids, opts.userns_options.gids):
        assert [(m.host_id, m.container_id, m.length) for m in ids] == [(65536 * 20, 0, 65536)]


def test_pods_get_host_users_false_and_no_host_network() -> None:
    spec = pod_manifest(CAT.by_name("userns-fsgroup"), "Strict", "img", "r", "n", host_network=True)["spec"]
    assert spec["hostUsers"] is False and "hostNetwork" not in spec
    assert pod_manifest(CAT.by_name("fsgroup-strict"), "Strict", "img", "r", "n", host_network=True)["spec"][
        "hostNetwork"] is True


def test_node_handler_features() -> None:
    node = {"metadata": {"name": "n"}, "status": {"nodeInfo": {"containerRuntimeVersion": "cri-o://1.37.0"},
            "runtimeHandlers": [{"name": "crun", "features": {"userNamespaces": True}},
                                {"name": "", "features": {"recursiveReadOnlyMounts": True, "userNamespaces": False}}]}}
    assert runtime_info(node).handler_features == {"user_namespaces": False, "recursive_read_only_mounts": True}
    assert runtime_info({"status": {}}).handler_features is None


def test_kubelet_binds_live_in_its_own_namespace(tmp_path: Path) -> None:
    """The script that binds the kubelet's tunables in a child namespace, then execs the kubelet."""
    (tmp_path / "a").write_text("1")
    target = tmp_path / "t"
    target.write_text("0")
    out = subprocess.run(["unshare", "--mount", "--propagation", "private", "--", "/bin/sh", "-c", KUBELET_NS,
                          "label", str(tmp_path / "a"), str(target), "--", "cat", str(target)],
                         capture_output=True, text=True, check=True).stdout
    assert out == "1" and target.read_text() == "0"


def test_podnet_plugin_protocol(tmp_path: Path) -> None:
    podnet.install(tmp_path / "cni")
    conf = json.loads((tmp_path / "cni" / "conf" / podnet.CONF_NAME).read_text())
    assert conf["plugins"] == [{"type": "sgp-podnet"}]
    for name in ("sgp-podnet", "loopback"):
        launcher = tmp_path / "cni" / "bin" / name
        assert os.access(launcher, os.X_OK) and launcher.read_text().startswith(f"#!{sys.executable} -IS\n")
    run = lambda command, stdin: subprocess.run(  # noqa: E731
        [str(tmp_path / "cni" / "bin" / "sgp-podnet")], input=stdin, capture_output=True, text=True,
        env={"CNI_COMMAND": command, "CNI_NETNS": str(tmp_path / "no-such-netns"), "CNI_IFNAME": "eth0",
             "PATH": os.environ.get("PATH", "")})
    version = run("VERSION", "")
    assert version.returncode == 0 and "1.0.0" in json.loads(version.stdout)["supportedVersions"]
    assert run("DEL", '{"cniVersion": "1.0.0"}').returncode == 0
    failed = run("ADD", '{"cniVersion": "1.0.0", "type": "sgp-podnet"}')
    assert failed.returncode == 1 and json.loads(failed.stdout)["code"] == 100


def test_matrix_shows_user_namespace_cases_per_cell() -> None:
    case = CaseResult("userns-blog-example", "Strict", Verdict.UNSUPPORTED, tags=["blog", "userns"])
    other = CaseResult("blog-example", "Strict", Verdict.PASS, tags=["blog"])
    cell = Cell("c", runtime={"name": "containerd", "version": "2.1.9", "handler_features": {
        "user_namespaces": False}}, cases={("userns-blog-example", "Strict"): case,
                                           ("blog-example", "Strict"): other})
    assert cell.userns == {"handler_user_namespaces": False, "cases": 1,
                           "counts": {**dict.fromkeys(cell.counts, 0), "unsupported": 1}}
    md = render_markdown(Matrix([cell], [Row("userns-blog-example", "Strict"), Row("blog-example", "Strict")]))
    section = md.split("### User namespaces (hostUsers: false)")[1]
    assert "| `c` | containerd 2.1.9 (default handler) | false | 1 | 0 | 0 | 1 |" in section
