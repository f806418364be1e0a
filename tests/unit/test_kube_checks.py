"""Kubernetes-level checks against API objects shaped as the API server returns them (fakes: no cluster)."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from conformance.core.case import Case
from conformance.core.catalogue import PROJECT, Catalogue
from conformance.core.model import Verdict
from conformance.core.observe import EXITING_PROBE, MESSAGE_PATH, PROBE, ProbeError, exited_block
from conformance.errors import SuiteError
from conformance.kube import admission, checks, manifests, pods, status
from conformance.kube.api import ApiError, ClientApi
from conformance.kube.pods import KubeTarget
from conformance.kube.runner import KubeRunner
from conformance.kube.waits import Waits
from conformance.targets.kind.lifecycle import crictl_feature
from tests.support.fakes import kubeapi as fk


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return Catalogue.load(PROJECT / "scenarios", PROJECT / "images")


@pytest.fixture
def scn(catalogue):
    return catalogue.by_name("upstream-e2e")


FAST = Waits(pod=5, event=2, ready=2, interval=0.01, sleep=lambda s: None)
SLOW = Waits(pod=60, event=60, ready=60, interval=0.01)  # a test that must end long before these
REFS = {"agnhost-like": "localhost/sgpconf/agnhost-like:abc", "pause": "localhost/sgpconf/pause:abc"}
SUPPORTED = fk.node("w1", features={"supplementalGroupsPolicy": True})
UNSUPPORTED_134 = fk.node("w1", runtime="containerd://1.7.28", kubelet="v1.34.0")
UNSUPPORTED_132 = fk.node("w1", runtime="containerd://1.7.24", kubelet="v1.32.0")
MERGE = (1000, 1000, [1000, 50000, 60000])
STRICT = (1000, 1000, [1000, 60000])


def running(ident, key="containerStatuses", with_user=True, name="probe"):
    def behaviour(pod, poll):
        usr = fk.user(*ident) if with_user else None
        if poll == 1:
            return {"phase": "Pending", "containerStatuses": [fk.waiting_status(name, "ContainerCreating", "")]}
        status = {"phase": "Running", key: [fk.running_status(name, usr)]}
        if key != "containerStatuses":
            status["containerStatuses"] = [fk.running_status("main", usr)]
        return status
    return behaviour


def run(api, catalogue, scn, policy, variant="container"):
    target = KubeTarget(api, REFS, run_id="t1", waits=FAST)
    target.setup()
    outcome = target.run_pod(scn, policy, variant)
    return outcome, pods.judge_case(catalogue, scn, policy, outcome, variant)


def verdict_of(target, catalogue, scn, policy="Merge", variant="container", node=None):
    """What the runner records: a judged pod, or ERROR when running it broke (as a pytest setup error)."""
    try:
        outcome = target.run_pod(scn, policy, variant, node)
    except SuiteError as exc:
        return Verdict.ERROR, f"{type(exc).__name__}: {exc}"
    judgement = pods.judge_case(catalogue, scn, policy, outcome, variant)
    return judgement.verdict, judgement.detail


# --- manifests ----------------------------------------------------------------------------------


def test_pod_manifest_carries_policy_and_ids(scn):
    pod = manifests.pod_manifest(scn, "Strict", "img:1", "r1", "p1")
    sc = pod["spec"]["securityContext"]
    assert sc == {"runAsUser": 1000, "supplementalGroups": [60000], "supplementalGroupsPolicy": "Strict"}
    assert pod["metadata"]["labels"][manifests.RUN_LABEL] == "r1"
    ctr = pod["spec"]["containers"][0]
    assert ctr["name"] == "probe" and ctr["imagePullPolicy"] == "Never"
    assert ctr["command"][:2] == ["/bin/sh", "-c"] and "SGP-BEGIN" in ctr["command"][2]
    unset = manifests.pod_manifest(scn, "unset", "i", "r", "p")
    assert "supplementalGroupsPolicy" not in unset["spec"]["securityContext"]


def test_init_and_sidecar_variants(scn):
    init = manifests.pod_manifest(scn, "Merge", "i", "r", "p", ("init",))["spec"]
    assert init["initContainers"][0]["name"] == "probe-init" and "exit 0" in init["initContainers"][0]["command"][2]
    assert "restartPolicy" not in init["initContainers"][0]
    assert [c["name"] for c in init["containers"]] == ["main"]
    side = manifests.pod_manifest(scn, "Merge", "i", "r", "p", ("sidecar",))["spec"]
    assert side["initContainers"][0]["restartPolicy"] == "Always"
    eph = manifests.ephemeral_manifest(scn, "i")
    assert "targetContainerName" not in eph and eph["name"] == "probe-ephemeral"  # startable before any other


def test_one_pod_carries_every_container_kind(catalogue, scn):
    pod = manifests.pod_manifest(scn, "Strict", "i", "r", "p", manifests.VARIANTS)
    spec = pod["spec"]
    assert [c["name"] for c in spec["initContainers"]] == ["probe-init", "probe-sidecar"]
    assert [c["name"] for c in spec["containers"]] == ["probe"]  # the ephemeral probe joins `probe`
    assert manifests.ephemeral_target(scn, manifests.VARIANTS) == "probe"
    assert pod["metadata"]["labels"][manifests.VARIANTS_LABEL] == "container.init.sidecar.ephemeral"
    exits = next(s for s in catalogue.scenarios if s.first_exit is not None)
    spec = manifests.pod_manifest(exits, exits.policies[0], "i", "r", "p", ("container", "sidecar"))["spec"]
    assert [c["name"] for c in spec["containers"]] == ["probe", "main"]  # `main` outlives the exiting probe
    assert manifests.pod_manifest(exits, exits.policies[0], "i", "r", "p")["spec"]["containers"][0]["name"] == "probe"


def test_cases_share_a_pod_unless_a_container_may_be_refused(catalogue, scn):
    refused = catalogue.by_name("username-not-in-passwd")
    cases = [Case(s, p, v, node) for v in manifests.VARIANTS for s in (scn, refused) for p in s.policies
             for node in ("w1", "w2")]
    cases.insert(0, Case(None, "n/a", check="node-features"))
    groups = manifests.pod_groups(cases)
    assert groups[0] == [cases[0]]
    shared = [g for g in groups if g[0].scenario is scn]
    assert len(shared) == len(scn.policies) * 2 and all(len(g) == 4 for g in shared)
    assert all(len({(c.policy, c.node) for c in g}) == 1 for g in shared)
    blocking = [p for p in refused.policies if manifests.blocks_others(refused, p)]
    assert blocking and all(len(g) == 1 for g in groups if g[0].scenario is refused and g[0].policy in blocking)


def test_namespace_labelled_for_cleanup():
    ns = manifests.namespace_manifest("abcd")
    assert ns["metadata"]["name"] == "sgp-abcd"
    assert ns["metadata"]["labels"] == {manifests.RUN_LABEL: "abcd", "app.kubernetes.io/managed-by": "sgp-conformance"}


# --- reading raw JSON ---------------------------------------------------------------------------


def test_status_user_from_raw_json():
    entry = fk.running_status("probe", fk.user(1000, 1000, [1000, 60000]))
    assert status.status_user(entry) == {"uid": 1000, "gid": 1000, "supplemental_groups": [1000, 60000]}
    assert status.status_user(fk.running_status("probe", None)) is None
    assert status.status_user(fk.running_status("probe", {})) == {}


def test_node_feature_absent_is_not_false():
    assert status.node_feature(SUPPORTED) is True
    assert status.node_feature(UNSUPPORTED_134) is None
    assert status.node_feature(fk.node("n", features={"supplementalGroupsPolicy": False})) is False
    assert status.runtime_info(SUPPORTED).supports_policy
    assert status.runtime_info(UNSUPPORTED_134).features is None


def test_feature_problems_against_crictl():
    assert status.feature_problems(SUPPORTED, True) == []
    assert status.feature_problems(UNSUPPORTED_134, None) == []
    assert status.feature_problems(fk.node("n", features={"supplementalGroupsPolicy": False}), None)
    assert status.feature_problems(SUPPORTED, False)
    assert status.feature_problems(UNSUPPORTED_134, True)
    assert crictl_feature({"status": {}, "features": {"supplemental_groups_policy": True}}) is True
    assert crictl_feature({"status": {}, "features": {"supplementalGroupsPolicy": False}}) is False
    assert crictl_feature({"status": {}}) is None
    assert crictl_feature({"features": None}) is None


def test_client_api_reads_raw_json_and_types_errors():
    from kubernetes.client.exceptions import ApiException

    class Resp:
        data = json.dumps({"kind": "Pod", "status": {"containerStatuses": [
            fk.running_status("probe", fk.user(1, 2, [2]))]}}).encode()

    seen = {}

    def read(name, ns, **kw):
        seen.update(kw)
        return Resp()

    def invalid(*a, **kw):
        exc = ApiException(status=422, reason="Unprocessable Entity")
        exc.body = json.dumps(fk.status_422("p", "FieldValueNotSupported", manifests.FIELD, 'Unsupported value: "x"'))
        raise exc

    api = object.__new__(ClientApi)
    api.core = type("Core", (), {"read_namespaced_pod": staticmethod(read),
                                 "create_namespaced_pod": staticmethod(invalid)})()
    pod = api.get_pod("ns", "p")
    assert seen["_preload_content"] is False
    assert pod["status"]["containerStatuses"][0]["user"]["linux"]["supplementalGroups"] == [2]
    with pytest.raises(ApiError) as info:
        api.create_pod("ns", {"metadata": {"name": "p"}}, dry_run=True)
    assert info.value.status == 422 and info.value.causes[0]["field"] == manifests.FIELD


# --- verdicts per case --------------------------------------------------------------------------


@pytest.mark.parametrize("policy,ident", [("unset", MERGE), ("Merge", MERGE), ("Strict", STRICT)])
def test_supported_node_passes(catalogue, scn, policy, ident):
    api = fk.FakeApi([SUPPORTED], running(ident), log=fk.probe(*ident), exec_out=fk.probe(*ident))
    outcome, judgement = run(api, catalogue, scn, policy)
    assert judgement.verdict == Verdict.PASS, judgement.detail
    assert ("exec", outcome.pod["metadata"]["name"], "probe", ["/bin/sh", "-c", PROBE]) in api.calls
    assert ("delete_pod", outcome.pod["metadata"]["name"]) in api.calls


def test_strict_showing_image_groups_fails(catalogue, scn):
    api = fk.FakeApi([SUPPORTED], running(MERGE), log=fk.probe(*MERGE), exec_out=fk.probe(*MERGE))
    _, judgement = run(api, catalogue, scn, "Strict")
    assert judgement.verdict == Verdict.FAIL and "50000" in judgement.detail


def test_status_user_missing_on_supported_node_fails(catalogue, scn):
    api = fk.FakeApi([SUPPORTED], running(MERGE, with_user=False), log=fk.probe(*MERGE), exec_out=fk.probe(*MERGE))
    _, judgement = run(api, catalogue, scn, "Merge")
    assert judgement.verdict == Verdict.FAIL and "status user: absent" in judgement.detail


def test_strict_rejected_on_unsupported_node(catalogue, scn):
    api = fk.FakeApi([UNSUPPORTED_134], lambda pod, poll: fk.rejected_status(),
                     events=lambda ns, pod: [fk.rejection_event(ns, pod)])
    outcome, judgement = run(api, catalogue, scn, "Strict")
    assert judgement.verdict == Verdict.REJECTED, judgement.detail
    assert not [c for c in api.calls if c[0] == "exec"]
    assert pods.case_observed(outcome)["pod"]["reason"] == admission.REJECT_REASON


def test_rejection_needs_exactly_one_event_and_exact_message(catalogue, scn):
    api = fk.FakeApi([UNSUPPORTED_134], lambda pod, poll: fk.rejected_status(),
                     events=lambda ns, pod: [fk.rejection_event(ns, pod, count=2)])
    _, judgement = run(api, catalogue, scn, "Strict")
    assert judgement.verdict == Verdict.FAIL and "expected exactly 1" in judgement.detail
    bad = dict(fk.rejected_status(), message="Pod was rejected: something else")
    api = fk.FakeApi([UNSUPPORTED_134], lambda pod, poll: bad, events=lambda ns, pod: [fk.rejection_event(ns, pod)])
    _, judgement = run(api, catalogue, scn, "Strict")
    assert judgement.verdict == Verdict.FAIL and "status.message" in judgement.detail


def test_strict_running_on_unsupported_133_node_fails(catalogue, scn):
    api = fk.FakeApi([UNSUPPORTED_134], running(MERGE, with_user=False), log=fk.probe(*MERGE),
                     exec_out=fk.probe(*MERGE))
    _, judgement = run(api, catalogue, scn, "Strict")
    assert judgement.verdict == Verdict.FAIL and "must reject" in judgement.detail


def test_strict_on_alpha_kubelet_is_silent_merge(catalogue, scn):
    api = fk.FakeApi([UNSUPPORTED_132], running(MERGE, with_user=False), log=fk.probe(*MERGE),
                     exec_out=fk.probe(*MERGE))
    _, judgement = run(api, catalogue, scn, "Strict")
    assert judgement.verdict == Verdict.UNSUPPORTED and "silently ignored" in judgement.detail


@pytest.mark.parametrize("policy", ["unset", "Merge"])
def test_merge_on_unsupported_node_runs_without_user(catalogue, scn, policy):
    api = fk.FakeApi([UNSUPPORTED_134], running(MERGE, with_user=False), log=fk.probe(*MERGE),
                     exec_out=fk.probe(*MERGE))
    _, judgement = run(api, catalogue, scn, policy)
    assert judgement.verdict == Verdict.PASS, judgement.detail
    api = fk.FakeApi([UNSUPPORTED_134], running(MERGE), log=fk.probe(*MERGE), exec_out=fk.probe(*MERGE))
    _, judgement = run(api, catalogue, scn, policy)
    assert judgement.verdict == Verdict.FAIL and "expected absent" in judgement.detail


def test_merge_rejected_is_failure(catalogue, scn):
    api = fk.FakeApi([UNSUPPORTED_134], lambda pod, poll: fk.rejected_status(),
                     events=lambda ns, pod: [fk.rejection_event(ns, pod)])
    _, judgement = run(api, catalogue, scn, "Merge")
    assert judgement.verdict == Verdict.FAIL and "only Strict may be rejected" in judgement.detail


@pytest.mark.parametrize("variant", ["sidecar", "ephemeral"])
def test_sidecar_and_ephemeral_report_user(catalogue, scn, variant):
    key, name = status.STATUS_KEY[variant], manifests.probe_name(variant)
    api = fk.FakeApi([SUPPORTED], running(STRICT, key=key, name=name), log=fk.probe(*STRICT),
                     exec_out=fk.probe(*STRICT))
    _outcome, judgement = run(api, catalogue, scn, "Strict", variant)
    assert judgement.verdict == Verdict.PASS, judgement.detail
    if variant == "ephemeral":
        added = [c for c in api.calls if c[0] == "add_ephemeral"]
        assert added and added[0][2]["name"] == "probe-ephemeral"
    api = fk.FakeApi([SUPPORTED], running(STRICT, key=key, with_user=False, name=name), log=fk.probe(*STRICT),
                     exec_out=fk.probe(*STRICT))
    _, judgement = run(api, catalogue, scn, "Strict", variant)
    assert judgement.verdict == Verdict.FAIL


def test_init_container_judged_on_first_process_and_exit(catalogue, scn):
    def behaviour(pod, poll):
        return {"phase": "Running", "initContainerStatuses": [fk.terminated_status("probe-init", fk.user(*STRICT))],
                "containerStatuses": [fk.running_status("main", fk.user(*STRICT))]}

    api = fk.FakeApi([SUPPORTED], behaviour, log=fk.probe(*STRICT))
    _outcome, judgement = run(api, catalogue, scn, "Strict", "init")
    assert judgement.verdict == Verdict.PASS, judgement.detail
    assert not [c for c in api.calls if c[0] == "exec"]
    api = fk.FakeApi([SUPPORTED], behaviour, log=fk.probe(*MERGE))
    _, judgement = run(api, catalogue, scn, "Strict", "init")
    assert judgement.verdict == Verdict.FAIL


def test_an_exited_probe_is_read_from_its_termination_message(catalogue, scn):
    """An exited probe's block comes with its status (state.terminated.message, from the file the probe wrote
    before it exited): its log, which the runtime may still be copying, is not needed; a probe whose message
    and log both lack the block is an error at once, not after a grace period."""
    def behaviour(message):
        def status(pod, poll):
            init = fk.terminated_status("probe-init", fk.user(*STRICT))
            init["state"]["terminated"]["message"] = message
            return {"phase": "Running", "initContainerStatuses": [init],
                    "containerStatuses": [fk.running_status("main", fk.user(*STRICT))]}
        return status

    api = fk.FakeApi([SUPPORTED], behaviour("Completed: \n" + fk.probe(*STRICT)), log="")
    _outcome, judgement = run(api, catalogue, scn, "Strict", "init")
    assert judgement.verdict == Verdict.PASS, judgement.detail
    assert not [c for c in api.calls if c[0] == "pod_log"]
    api = fk.FakeApi([SUPPORTED], behaviour(""), log="")
    started = time.monotonic()
    with pytest.raises(ProbeError, match="without its probe block"):
        run(api, catalogue, scn, "Strict", "init")
    assert time.monotonic() - started < 1


def test_exiting_probes_leave_their_block_in_the_termination_message(catalogue):
    """Every probe whose first process exits writes the termination message file; running ones do not."""
    for scn in catalogue.scenarios:
        for variants in (("init", "sidecar", "container", "ephemeral"), ("container",)):
            body = manifests.pod_manifest(scn, "Merge", "img", "r", "p", variants)
            for ctr in (*body["spec"].get("initContainers", []), *body["spec"]["containers"]):
                script = ctr["command"][-1]
                exits = "exec sleep" not in script
                assert (MESSAGE_PATH in script) == exits, (scn.name, ctr["name"])
def test_a_block_too_large_for_the_message_is_read_from_the_log_once_whole(tmp_path):
    """many-groups-512's block is larger than the kubelet's share of a pod's messages: the message gives its
    size, and the log counts only once its block has that size (NotYet meanwhile, never a guess)."""
    block = "SGP-BEGIN\nSGP-ID uid=1 gid=1 groups=" + ",".join(map(str, range(10000, 10600))) + \
        "\nSGP-STATUS Uid: 1\nSGP-STATUS Gid: 1\nSGP-END"
    script = EXITING_PROBE.replace(PROBE, f"cat {tmp_path}/block").replace(MESSAGE_PATH, f"{tmp_path}/message")
    (tmp_path / "block").write_text(block + "\n")
    log = subprocess.run(["/bin/sh", "-c", script], capture_output=True, text=True, check=True).stdout
    message = (tmp_path / "message").read_text()
    assert message == f"SGP-BYTES {len(block)}\n"
    assert exited_block(message, log) == log
    assert exited_block(message, log[:-40]) is None
    assert exited_block(message, "") is None
    with pytest.raises(ProbeError, match="without its probe block"):
        exited_block("", "partial")


def every_kind(ident, failing: str = ""):
    """Statuses of whatever containers the pod has: init probes exited, the others running; `failing` never
    created (CreateContainerError), and every container after it waiting as the kubelet leaves them."""
    def behaviour(pod, poll):
        held = []

        def entry(ctr, terminated=False):
            if held:
                return fk.waiting_status(ctr["name"], "PodInitializing", "")
            if ctr["name"] == failing:
                held.append(ctr["name"])
                return fk.waiting_status(ctr["name"], "CreateContainerError", "cannot create")
            make = fk.terminated_status if terminated else fk.running_status
            return make(ctr["name"], fk.user(*ident))

        spec = pod["spec"]
        return {"phase": "Pending" if failing else "Running",
                "initContainerStatuses": [entry(c, "restartPolicy" not in c) for c in spec.get("initContainers", [])],
                "containerStatuses": [entry(c) for c in spec["containers"]],
                "ephemeralContainerStatuses": [entry(c) for c in spec.get("ephemeralContainers", [])]}
    return behaviour


def test_one_pod_answers_every_container_kind(catalogue, scn):
    api = fk.FakeApi([SUPPORTED], every_kind(STRICT), log=fk.probe(*STRICT), exec_out=fk.probe(*STRICT))
    target = KubeTarget(api, REFS, run_id="t1", waits=FAST)
    outcomes = target.run_group(scn, "Strict", manifests.VARIANTS)
    assert len([c for c in api.calls if c[0] == "create_pod"]) == 1
    calls = [c[0] for c in api.calls]  # the ephemeral probe joins right after the pod is created, status unseen
    assert calls[calls.index("create_pod") + 1] == "add_ephemeral"
    for variant, outcome in outcomes.items():
        judgement = pods.judge_case(catalogue, scn, "Strict", outcome, variant)
        assert judgement.verdict == Verdict.PASS, (variant, judgement.detail)
    assert sorted(c[2] for c in api.calls if c[0] == "exec") == ["probe", "probe-ephemeral", "probe-sidecar"]
    target.close()
    assert [c for c in api.calls if c[0] == "delete_pod"] == [("delete_pod", outcomes["init"].pod["metadata"]["name"])]


def test_a_kind_kept_from_running_by_another_runs_alone(catalogue, scn):
    """A shared pod whose init probe cannot be created holds up the rest: that failure is the init case's
    evidence, and each other kind runs again in a pod of its own."""
    api = fk.FakeApi([SUPPORTED], every_kind(STRICT, failing="probe-init"), log=fk.probe(*STRICT),
                     exec_out=fk.probe(*STRICT))
    target = KubeTarget(api, REFS, run_id="t1", waits=FAST)
    outcomes = target.run_group(scn, "Strict", ("container", "init", "sidecar"))
    created = [c[1]["metadata"]["labels"][manifests.VARIANTS_LABEL] for c in api.calls if c[0] == "create_pod"]
    assert created[0] == "container.init.sidecar" and sorted(created[1:]) == ["container", "sidecar"]
    assert outcomes["init"].observation.create_error.startswith("CreateContainerError")
    assert pods.judge_case(catalogue, scn, "Strict", outcomes["sidecar"], "sidecar").verdict == Verdict.PASS


def test_a_kind_that_breaks_in_a_shared_pod_keeps_its_error_to_itself(catalogue, scn):
    """The init probe of a shared pod exits without its block (an error, not evidence): only the init case
    carries that error; every other kind runs again in a pod of its own and passes there."""
    api = fk.FakeApi([SUPPORTED], every_kind(STRICT), log=fk.probe(*STRICT), exec_out=fk.probe(*STRICT))
    shared_init_log = api.pod_log

    def pod_log(ns, name, container):
        shared = "." in api.pods[name]["metadata"]["labels"][manifests.VARIANTS_LABEL]
        return "" if container == "probe-init" and shared else shared_init_log(ns, name, container)

    api.pod_log = pod_log  # type: ignore[method-assign]
    target = KubeTarget(api, REFS, run_id="t1", waits=FAST)
    outcomes = target.run_group(scn, "Strict", manifests.VARIANTS)
    created = [c[1]["metadata"]["labels"][manifests.VARIANTS_LABEL] for c in api.calls if c[0] == "create_pod"]
    assert created[0] == "container.init.sidecar.ephemeral"
    assert sorted(created[1:]) == ["container", "ephemeral", "sidecar"]
    assert isinstance(outcomes["init"], pods.CaseError) and "without its probe block" in str(outcomes["init"])
    for variant in ("container", "sidecar", "ephemeral"):
        judgement = pods.judge_case(catalogue, scn, "Strict", outcomes[variant], variant)
        assert judgement.verdict == Verdict.PASS, (variant, judgement.detail)
    runner = KubeRunner(target, catalogue, 1, None)
    cases = [Case(scn, "Strict", v) for v in manifests.VARIANTS]
    results = runner.run_batch(cases)
    assert [type(r).__name__ for r in results] == ["PodOutcome", "CaseError", "PodOutcome", "PodOutcome"]


def test_a_rejected_pod_is_every_kind_s_evidence(catalogue, scn):
    api = fk.FakeApi([UNSUPPORTED_134], lambda pod, poll: fk.rejected_status(),
                     events=lambda ns, pod: [fk.rejection_event(ns, pod)])
    target = KubeTarget(api, REFS, run_id="t1", waits=FAST)
    outcomes = target.run_group(scn, "Strict", manifests.VARIANTS)
    assert len([c for c in api.calls if c[0] == "create_pod"]) == 1
    assert {pods.judge_case(catalogue, scn, "Strict", o, v).verdict for v, o in outcomes.items()} == {Verdict.REJECTED}


def test_create_container_error_stops_waiting_early(catalogue):
    scn = catalogue.by_name("username-not-in-passwd")
    def behaviour(pod, poll):
        return {"phase": "Pending", "containerStatuses": [fk.waiting_status(
            "probe", "CreateContainerError", "unable to find user ghost: no matching entries in passwd file")]}

    api = fk.FakeApi([SUPPORTED], behaviour)
    target = KubeTarget(api, {**REFS, scn.image: "img"}, run_id="t1", waits=SLOW)
    began = time.monotonic()
    outcome = target.run_pod(scn, "Merge")
    assert time.monotonic() - began < 5  # the first status with the error ends the wait
    assert outcome.observation.create_error.startswith("CreateContainerError")


def test_image_missing_is_an_error_not_a_verdict(catalogue, scn):
    api = fk.FakeApi([SUPPORTED], lambda pod, poll: {"phase": "Pending", "containerStatuses": [
        fk.waiting_status("probe", "ErrImageNeverPull", 'Container image "img" is not present')]})
    target = KubeTarget(api, REFS, run_id="t1", waits=FAST)
    verdict, detail = verdict_of(target, catalogue, scn)
    assert verdict == Verdict.ERROR and "image not in the node" in detail


def test_wait_is_bounded(catalogue, scn):
    api = fk.FakeApi([SUPPORTED], lambda pod, poll: {"phase": "Pending"})
    waits = Waits(pod=0.05, event=0.05, ready=0.05, interval=0.01)
    target = KubeTarget(api, REFS, run_id="t1", waits=waits)
    verdict, detail = verdict_of(target, catalogue, scn)
    assert verdict == Verdict.ERROR and "not done after" in detail


def test_transient_errors_retried_assertions_not(catalogue, scn):  # on create: reads come from the watch
    api = fk.FakeApi([SUPPORTED], running(MERGE), log=fk.probe(*MERGE), exec_out=fk.probe(*MERGE))
    api.fail_next = [ApiError(503, {"message": "etcdserver: leader changed"}), ApiError(429, {"message": "slow"})]
    _, judgement = run(api, catalogue, scn, "Merge")
    assert judgement.verdict == Verdict.PASS
    api = fk.FakeApi([SUPPORTED], running(MERGE), log=fk.probe(*MERGE), exec_out=fk.probe(*MERGE))
    api.fail_next = [ApiError(403, {"message": "forbidden"})]
    target = KubeTarget(api, REFS, run_id="t1", waits=FAST)
    verdict, detail = verdict_of(target, catalogue, scn)
    assert verdict == Verdict.ERROR and "403" in detail
    calls = []

    def never():
        calls.append(1)
        raise AssertionError("mismatch")

    with pytest.raises(AssertionError):
        FAST.until(never, 1, "x")
    assert calls == [1]


def test_per_node_cases_are_pinned(catalogue, scn):
    nodes = [fk.node("w1", features={"supplementalGroupsPolicy": True}),
             fk.node("w2", features={"supplementalGroupsPolicy": True})]
    api = fk.FakeApi(nodes, running(MERGE), log=fk.probe(*MERGE), exec_out=fk.probe(*MERGE))
    target = KubeTarget(api, REFS, run_id="t1", waits=FAST)
    assert [verdict_of(target, catalogue, scn, node=n)[0] for n in ("w1", "w2")] == [Verdict.PASS, Verdict.PASS]
    created = [c[1] for c in api.calls if c[0] == "create_pod"]
    assert [p["spec"]["nodeName"] for p in created] == ["w1", "w2"]
    assert Case(scn, "Merge", node="w1").label == "upstream-e2e@w1"
    assert Case(scn, "Merge", "init", node="w2").item_name == "upstream-e2e.init@w2[Merge]"


def test_kube_cases_skip_node_only_scenarios(catalogue):
    cases = manifests.kube_cases(catalogue)
    names = {s.name for s, _, _ in cases}
    assert not any(s.raw_cri or s.restart for s, _, _ in cases)
    assert "upstream-e2e" in names
    assert {v for _, _, v in cases} == set(manifests.VARIANTS)


# --- API negatives ------------------------------------------------------------------------------


def _negatives_api() -> fk.FakeApi:
    api = fk.FakeApi([SUPPORTED])
    api.create_errors = {
        "strict": ApiError(422, fk.status_422("p", "FieldValueNotSupported", manifests.FIELD,
                                              'Unsupported value: "strict": supported values: "Merge", "Strict"')),
        "Foo": ApiError(422, fk.status_422("p", "FieldValueNotSupported", manifests.FIELD,
                                           'Unsupported value: "Foo": supported values: "Merge", "Strict"')),
        "Strict": ApiError(422, fk.status_422("p", "FieldValueForbidden", manifests.FIELD,
                                              "Forbidden: cannot be set for a windows pod")),
    }
    api.patch_error = ApiError(422, fk.status_422(
        "p", "FieldValueForbidden", "spec", "Forbidden: pod updates may not change fields other than "
        "`spec.containers[*].image`,..."))
    return api


def api_checks(api):
    return {name: checks.api_check(api, "ns", "r1", "img", name) for name in checks.API_CHECKS}


def test_api_negatives_pass_on_expected_422():
    api = _negatives_api()
    results = api_checks(api)
    assert {k: v.judgement.verdict for k, v in results.items()} == {
        "api-wrong-case": Verdict.PASS, "api-unknown-value": Verdict.PASS, "api-windows-pod": Verdict.PASS,
        "api-update-immutable": Verdict.PASS}
    assert results["api-wrong-case"].expected["reason"] == "FieldValueNotSupported"
    dry = [c for c in api.calls if c[0] == "create_pod" and c[2]]
    assert len(dry) == 3
    windows = [c[1] for c in dry if c[1]["spec"].get("os")]
    assert windows[0]["spec"]["os"] == {"name": "windows"}
    assert next(c for c in api.calls if c[0] == "patch_pod")[3] is True  # update tried as a dry run


def test_api_negatives_fail_when_accepted_or_wrong_cause():
    api = _negatives_api()
    api.create_errors.pop("Foo")
    api.create_errors["strict"] = ApiError(422, fk.status_422("p", "FieldValueInvalid", "spec", "x"))
    api.patch_error = None
    results = {k: v.judgement for k, v in api_checks(api).items()}
    assert results["api-unknown-value"].verdict == Verdict.FAIL
    assert results["api-wrong-case"].verdict == Verdict.FAIL and "no cause" in results["api-wrong-case"].detail
    assert results["api-update-immutable"].verdict == Verdict.FAIL


def feature_check(catalogue, node, behaviour, advertised=None, known=False, log="", events=None):
    api = fk.FakeApi([node], behaviour, log=log, exec_out=log, events=events)
    target = KubeTarget(api, REFS, run_id="t1", waits=FAST)
    return checks.node_features_check(target, catalogue, "w1", advertised, known)


def test_node_claim_judged_against_its_strict_pods(catalogue):
    ok = feature_check(catalogue, SUPPORTED, running(STRICT), True, True, fk.probe(*STRICT))
    assert ok.judgement.verdict == Verdict.PASS, ok.judgement.detail
    lying = feature_check(catalogue, SUPPORTED, running(MERGE), True, True, fk.probe(*MERGE))
    assert lying.judgement.verdict == Verdict.FAIL and "Strict behaves as Merge" in lying.judgement.detail
    silent = feature_check(catalogue, UNSUPPORTED_134, running(MERGE, with_user=False), None, True, fk.probe(*MERGE))
    assert silent.judgement.verdict == Verdict.FAIL and "must reject it" in silent.judgement.detail
    rejected = feature_check(catalogue, UNSUPPORTED_134, lambda pod, poll: fk.rejected_status(), None, True,
                             events=lambda ns, pod: [fk.rejection_event(ns, pod)])
    assert rejected.judgement.verdict == Verdict.PASS, rejected.judgement.detail
    alpha = feature_check(catalogue, UNSUPPORTED_132, running(MERGE, with_user=False), None, False, fk.probe(*MERGE))
    assert alpha.judgement.verdict == Verdict.UNSUPPORTED


def test_node_claim_judged_against_the_runtime(catalogue):
    said_false = feature_check(catalogue, fk.node("w1", features={"supplementalGroupsPolicy": False}),
                               lambda pod, poll: fk.rejected_status(), True, True,
                               events=lambda ns, pod: [fk.rejection_event(ns, pod)])
    assert said_false.judgement.verdict == Verdict.FAIL and "runtime advertises True" in said_false.judgement.detail
    absent = feature_check(catalogue, fk.node("w1", features={}), lambda pod, poll: fk.rejected_status(), None,
                           True, events=lambda ns, pod: [fk.rejection_event(ns, pod)])
    assert absent.judgement.verdict == Verdict.PASS, absent.judgement.detail


def test_refused_sandbox_is_evidence_only_where_allowed(catalogue):
    def pending(pod, poll):
        return {"phase": "Pending", "containerStatuses": [fk.waiting_status("probe", "ContainerCreating", "")]}

    def refused(ns, pod):
        return [dict(fk.rejection_event(ns, pod), reason="FailedCreatePodSandBox",
                     message='failed to create sandbox: user group "3000" is specified without user')]

    api = fk.FakeApi([SUPPORTED], pending, events=refused)
    target = KubeTarget(api, {**REFS, "critest-like": "img"}, run_id="t1", waits=SLOW)
    allowed = catalogue.by_name("pod-run-as-group-without-user")
    began = time.monotonic()
    outcome = target.run_pod(allowed, "Merge")
    assert outcome.observation.sandbox_error and time.monotonic() - began < 5
    judgement = pods.judge_case(catalogue, allowed, "Merge", outcome, "container")
    assert judgement.verdict == Verdict.PASS and judgement.choice == "refuses-sandbox"
    verdict, detail = verdict_of(target, catalogue, catalogue.by_name("upstream-e2e"))
    assert verdict == Verdict.ERROR and "refuses its sandbox" in detail  # at once, not after the pod wait


def test_pod_commands_survive_the_api_variable_expansion(scn):
    pod = manifests.pod_manifest(scn, "Strict", "img:1", "r1", "p1")
    script = pod["spec"]["containers"][0]["command"][2]
    assert "/proc/$$$$/status" in script and "$$(id)" in script  # the API turns $$ into $


def test_cleanup_all_deletes_only_managed_namespaces():
    api = fk.FakeApi([SUPPORTED])
    api.namespaces = {"sgp-old": manifests.namespace_manifest("old"), "default": {"metadata": {"name": "default"}}}
    api.namespaces["sgp-old"]["metadata"]["name"] = "sgp-old"
    assert KubeTarget(api, {}).cleanup_all() == ["sgp-old"]
    assert "default" in api.namespaces
