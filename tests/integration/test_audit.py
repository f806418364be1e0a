"""`sgp-conformance audit` on real clusters (K8S_BIN_DIR): the catalogue's pods kept running by a KEEP=1
TARGET=local run. The audit's implicit groups must equal, pod by pod and container by container, what the
catalogue says Strict would remove; workloads are named by their real controllers; the ClusterRole of docs/audit.md
is enough and the audit writes nothing; a runtime without the feature gives 'unknown' and 'would-reject'."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from conformance.core.catalogue import Catalogue
from conformance.kube.manifests import kube_cases, pod_security_context
from tests.conftest import CLI, PROJECT
from tests.support.catalogue_audit import case_keys, catalogue_says
from tests.support.suite import local_args, release, start_suite

pytestmark = pytest.mark.runtime
CATALOGUE = Catalogue.load(PROJECT / "scenarios", PROJECT / "images")
KEPT = re.compile(r"KEEP=1: the cluster keeps running .* KUBECONFIG=(\S+)")
WORKLOAD_NS = "audit-workloads"


def start_kept(results: Path, state_root: Path, *args: str) -> tuple[subprocess.Popen, Path, str]:
    """A KEEP=1 TARGET=local run, read until it holds its cluster: (process, kubeconfig, output so far)."""
    proc = start_suite(results, state_root, *args, "--keep", "1")
    seen = []
    deadline = time.monotonic() + 1800
    while time.monotonic() < deadline:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        if not line:
            break
        seen.append(line)
        found = KEPT.search(line)
        if found:
            return proc, Path(found.group(1)), "".join(seen)
    proc.kill()
    raise AssertionError("the run did not hold its cluster:\n" + "".join(seen[-60:]))


def audit(kubeconfig: Path, *args: str) -> tuple[int, str]:
    res = subprocess.run([str(CLI), "audit", "--kubeconfig", str(kubeconfig), *args], capture_output=True, text=True,
                         timeout=120, check=False)
    return res.returncode, res.stdout + res.stderr


def audit_json(kubeconfig: Path, *args: str) -> tuple[int, dict]:
    code, out = audit(kubeconfig, "-o", "json", *args)
    assert code in (0, 1), out
    return code, json.loads(out)


def by_pod(doc: dict) -> dict[tuple[str, str], dict[str, dict]]:
    """(namespace, pod) -> container -> finding."""
    out: dict[tuple[str, str], dict[str, dict]] = {}
    for w in doc["workloads"]:
        for c in w["containers"]:
            out.setdefault((w["namespace"], c["pod"]), {})[c["container"]] = c
    return out


def kubectl(kubeconfig: Path, *args: str, stdin: str | None = None) -> str:
    """kubectl with its discovery and HTTP cache beside the kubeconfig (the run's state), not in ~/.kube."""
    res = subprocess.run([os.path.join(os.environ["K8S_BIN_DIR"], "kubectl"), "--kubeconfig", str(kubeconfig),
                          "--cache-dir", str(kubeconfig.parent / "kubectl-cache"), *args], input=stdin,
                         capture_output=True, text=True, timeout=120, check=False)
    assert res.returncode == 0, res.stderr
    return res.stdout


def compare_with_catalogue(kubeconfig: Path, results: Path) -> tuple[int, dict]:
    """Audit every namespace; check each suite pod against the catalogue; return (pods compared, the audit)."""
    cases = {(c["scenario"], c["policy"]): c for c in json.loads((results / "results.json").read_text())["cases"]}
    code, doc = audit_json(kubeconfig, "-A")
    assert code == 1, "the catalogue has Merge pods with implicit groups"
    pods = json.loads(kubectl(kubeconfig, "get", "pods", "-A", "-l", "sgp.conformance/scenario", "-o", "json"))["items"]
    probed = [key for pod in pods for key in case_keys(pod).values()]
    assert len(probed) == len(kube_cases(CATALOGUE)) + 1  # + node-features' Strict probe pod (upstream-e2e)
    assert len(pods) < len(probed)  # a scenario's container kinds share a pod
    found = by_pod(doc)
    mismatches = []
    for pod in pods:
        want = catalogue_says(CATALOGUE, pod, cases)
        seen = found[(pod["metadata"]["namespace"], pod["metadata"]["name"])]
        got = {name: (c["state"], c["implicit"]) for name, c in seen.items()}
        for container, key in case_keys(pod).items():
            case = cases[key]
            if got != want and case["verdict"] == "known-failure":
                probe = case["observed"]["status_user"]  # what the runtime attached, recorded by the run
                extra = set(probe["supplemental_groups"]) - set(seen[container]["requested"])
                want[container] = ("implicit-groups" if extra else "ready", sorted(extra))
        if got != want:
            mismatches.append(f"{pod['metadata']['name']}: audit {got}, catalogue {want}")
    assert mismatches == [], "\n".join(mismatches)
    return len(probed), doc


def workloads(kubeconfig: Path, image: str, security_context: dict) -> None:
    """A Deployment, a StatefulSet, a DaemonSet, a Job and a Job created from a CronJob, all with the pod
    security context of one scenario, in WORKLOAD_NS; waits until their pods run."""
    spec = {"hostNetwork": True, "automountServiceAccountToken": False, "terminationGracePeriodSeconds": 0,
            "securityContext": security_context, "tolerations": [{"operator": "Exists"}],
            "containers": [{"name": "app", "image": image, "imagePullPolicy": "Never",
                            "command": ["/bin/sh", "-c", "exec sleep 3600"]}]}
    template = {"metadata": {"labels": {"app": "audit"}}, "spec": spec}
    select = {"matchLabels": {"app": "audit"}}
    job_template = {"metadata": {"labels": {"app": "audit"}}, "spec": {**spec, "restartPolicy": "Never"}}
    objects = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": WORKLOAD_NS}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": WORKLOAD_NS},
         "spec": {"replicas": 2, "selector": select, "template": template}},
        {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db", "namespace": WORKLOAD_NS},
         "spec": {"replicas": 1, "serviceName": "db", "selector": select, "template": template}},
        {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent", "namespace": WORKLOAD_NS},
         "spec": {"selector": select, "template": template}},
        {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "batch", "namespace": WORKLOAD_NS},
         "spec": {"template": job_template}},
        {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "nightly", "namespace": WORKLOAD_NS},
         "spec": {"schedule": "0 3 * * *", "suspend": True, "jobTemplate": {"spec": {"template": job_template}}}},
    ]
    kubectl(kubeconfig, "apply", "-f", "-", stdin=yaml.safe_dump_all(objects))
    kubectl(kubeconfig, "-n", WORKLOAD_NS, "create", "job", "nightly-manual", "--from=cronjob/nightly")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        pods = json.loads(kubectl(kubeconfig, "-n", WORKLOAD_NS, "get", "pods", "-o", "json"))["items"]
        if len(pods) == 6 and all(p["status"].get("phase") == "Running" for p in pods):
            return
        time.sleep(1)
    raise AssertionError(kubectl(kubeconfig, "-n", WORKLOAD_NS, "get", "pods", "-o", "wide"))


def readme_rbac() -> list[dict]:
    """The ClusterRole and its binding, exactly as docs/audit.md ships them."""
    text = (PROJECT / "docs" / "audit.md").read_text()
    block = re.search(r"<!-- audit-rbac -->\n```yaml\n(.*?)```", text, re.S)
    assert block, "docs/audit.md has no audit-rbac block"
    return list(yaml.safe_load_all(block.group(1)))


def service_account_kubeconfig(admin: Path, name: str, out: Path) -> Path:
    """A kubeconfig that authenticates as service account audit/`name` (a short-lived token)."""
    token = kubectl(admin, "-n", "audit", "create", "token", name, "--duration=10m").strip()
    cfg = yaml.safe_load(admin.read_text())
    cluster = cfg["clusters"][0]["cluster"]
    ca = cluster.get("certificate-authority-data") or base64.b64encode(
        Path(cluster["certificate-authority"]).read_bytes()).decode()
    out.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": name,
        "clusters": [{"name": "c", "cluster": {"server": cluster["server"], "certificate-authority-data": ca}}],
        "users": [{"name": name, "user": {"token": token}}],
        "contexts": [{"name": name, "context": {"cluster": "c", "user": name}}]}))
    return out


def check_rbac(admin: Path, tmp: Path) -> None:
    """The README's ClusterRole is enough for the same report; without `list nodes` the audit says so, exit 2.
    The API server's audit of writes is the service account's 403s: it makes none (checked by RBAC itself:
    the role grants only get/list, so any write would fail the run)."""
    docs = readme_rbac()
    kubectl(admin, "create", "namespace", "audit")
    kubectl(admin, "apply", "-f", "-", stdin=yaml.safe_dump_all(docs))
    reader = service_account_kubeconfig(admin, "sgp-conformance-audit", tmp / "reader.kubeconfig")
    code, doc = audit_json(reader, "-A")
    _, full = audit_json(admin, "-A")
    assert code == 1 and doc["workloads"] == full["workloads"] and doc["nodes"][0]["name"] == full["nodes"][0]["name"]
    kubectl(admin, "-n", "audit", "create", "serviceaccount", "no-nodes")
    role = next(d for d in docs if d["kind"] == "ClusterRole")
    partial = {**role, "metadata": {"name": "no-nodes"},
               "rules": [r for r in role["rules"] if "nodes" not in r["resources"]]}
    binding = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
               "metadata": {"name": "no-nodes"}, "roleRef": {"apiGroup": "rbac.authorization.k8s.io",
                                                            "kind": "ClusterRole", "name": "no-nodes"},
               "subjects": [{"kind": "ServiceAccount", "name": "no-nodes", "namespace": "audit"}]}
    kubectl(admin, "apply", "-f", "-", stdin=yaml.safe_dump_all([partial, binding]))
    limited = service_account_kubeconfig(admin, "no-nodes", tmp / "limited.kubeconfig")
    code, out = audit(limited, "-A")
    assert code == 2 and "missing permission: list nodes cluster-wide" in out, out


@pytest.mark.parametrize("runtime", ["containerd-2", "crio"])
def test_audit_equals_catalogue(runtime: str, k8s_bin_dir: Path, tmp_path: Path, state_root: Path) -> None:
    args: tuple[str, ...] = ("--version", "2")
    if runtime == "crio":
        if not os.environ.get("CRIO_BIN_DIR"):
            pytest.skip("needs CRIO_BIN_DIR as well")
        args = ("--runtime", "crio", "--crio-bin-dir", os.environ["CRIO_BIN_DIR"])
    proc, kubeconfig, _ = start_kept(tmp_path / "run", state_root, *local_args(k8s_bin_dir, *args))
    try:
        compared, full = compare_with_catalogue(kubeconfig, tmp_path / "run")
        assert compared == len(kube_cases(CATALOGUE)) + 1
        node = full["nodes"][0]
        assert node["feature"] is True and node["strict"] == "supported" and node["wouldRejectUnderStrict"] == 0
        scn = CATALOGUE.by_name("blog-example")
        image = json.loads(kubectl(kubeconfig, "get", "pods", "-A", "-l", "sgp.conformance/scenario=blog-example",
                                   "-o", "json"))["items"][0]["spec"]["containers"][0]["image"]
        workloads(kubeconfig, image, pod_security_context(scn, "Merge"))
        code, doc = audit_json(kubeconfig, "-n", WORKLOAD_NS, "-l", "app=audit")
        merge, strict = CATALOGUE.oracle(scn, "Merge"), CATALOGUE.oracle(scn, "Strict")
        assert merge.identity is not None and strict.identity is not None
        implicit = sorted(merge.identity.groups - strict.identity.groups)
        assert code == 1 and implicit
        assert {(w["kind"], w["name"], w["state"], tuple(w["implicit"]), len(w["containers"]))
                for w in doc["workloads"]} == {
            ("Deployment", "web", "implicit-groups", tuple(implicit), 2),
            ("StatefulSet", "db", "implicit-groups", tuple(implicit), 1),
            ("DaemonSet", "agent", "implicit-groups", tuple(implicit), 1),
            ("Job", "batch", "implicit-groups", tuple(implicit), 1),
            ("CronJob", "nightly", "implicit-groups", tuple(implicit), 1)}
        code, table = audit(kubeconfig, "-n", WORKLOAD_NS)
        assert code == 1 and f"{WORKLOAD_NS}/Deployment/web" in table and "exit 1" in table, table
        code, markdown = audit(kubeconfig, "-n", WORKLOAD_NS, "-o", "markdown")
        assert code == 1 and markdown.startswith("## Strict readiness audit"), markdown
        check_rbac(kubeconfig, tmp_path)
    finally:
        out, took = release(proc, state_root)
    assert proc.returncode == 0 and took < 120, out[-4000:]


def test_audit_without_the_feature(k8s_bin_dir: Path, tmp_path: Path, state_root: Path) -> None:
    """containerd 1.7: no container reports a user (unknown), every Strict pod was rejected, the node would
    reject every other pod under Strict."""
    proc, kubeconfig, _ = start_kept(tmp_path / "run", state_root, *local_args(k8s_bin_dir, "--version", "1.7"))
    try:
        compared, _ = compare_with_catalogue_without_feature(kubeconfig)
        assert compared == len(kube_cases(CATALOGUE)) + 1
    finally:
        out, took = release(proc, state_root)
    assert proc.returncode == 0 and took < 120, out[-4000:]


def compare_with_catalogue_without_feature(kubeconfig: Path) -> tuple[int, dict]:
    code, doc = audit_json(kubeconfig, "-A")
    assert code == 1
    found = by_pod(doc)
    pods = json.loads(kubectl(kubeconfig, "get", "pods", "-A", "-l", "sgp.conformance/scenario", "-o", "json"))["items"]
    rejected = 0
    for pod in pods:
        containers = found[(pod["metadata"]["namespace"], pod["metadata"]["name"])]
        states = {c["state"] for c in containers.values()}
        if pod["metadata"]["labels"]["sgp.conformance/policy"] == "strict":
            assert states == {"rejected"}, containers
            rejected += 1
        else:
            assert states == {"unknown"}, containers
    node = doc["nodes"][0]
    assert node["feature"] is None and node["strict"] == "would-reject"
    assert node["alreadyRejected"] == rejected and node["wouldRejectUnderStrict"] == len(pods) - rejected
    assert doc["summary"]["podsWouldBeRejected"] == len(pods) - rejected
    return sum(len(case_keys(pod)) for pod in pods), doc
