"""What the audit must report for a pod the suite ran, from the catalogue alone: per container, the state and
the implicit gids (the scenario's Merge groups minus its Strict groups; none under Strict)."""

from __future__ import annotations

from dataclasses import replace

from conformance.core.catalogue import Catalogue
from conformance.core.model import USERNS_LENGTH, Expectation
from conformance.core.scenario import ContainerContext, Scenario
from conformance.kube.manifests import HOST_NAME, POLICY_LABEL, SCENARIO_LABEL, VARIANTS_LABEL, probe_name

POLICIES = {"merge": "Merge", "strict": "Strict", "unset": "unset"}


def case_keys(pod: dict) -> dict[str, tuple[str, str]]:
    """Each probe container of a pod the suite ran -> (scenario label as in results.json, policy) of its case."""
    labels = pod["metadata"]["labels"]
    policy = POLICIES[labels[POLICY_LABEL]]
    return {probe_name(v): (labels[SCENARIO_LABEL] + ("" if v == "container" else f".{v}"), policy)
            for v in labels[VARIANTS_LABEL].split(".")}


def written(scn: Scenario, policy: str, choice: str) -> Expectation:
    """The scenario's expectation for `policy`; for a runtime_choice, the outcome the runtime took."""
    outcomes = scn.outcomes(policy)
    return next((o for o in outcomes if o.label == choice), outcomes[0])


def catalogue_says(catalogue: Catalogue, pod: dict,
                   cases: dict[tuple[str, str], dict]) -> dict[str, tuple[str, list[int]]]:
    """container name -> (state, implicit gids). `cases` are the run's results.json entries by (label, policy):
    they say whether the node rejected the pod and which outcome a runtime took where the scenario allows
    several. A probe's groups come from the scenario's written Merge and Strict expectations (from the oracle
    without the user namespace where the runtime created the container and only its start failed); `main`
    (root, 0:0, hosting the pod where no probe does) from the oracle. A container never created is unknown."""
    labels = pod["metadata"]["labels"]
    scn = catalogue.by_name(labels[SCENARIO_LABEL])
    policy = POLICIES[labels[POLICY_LABEL]]
    keys = case_keys(pod)
    case = cases[next(iter(keys.values()))]  # one pod: admission and the runtime's choice are the same for all
    names = [c["name"] for key in ("initContainers", "containers", "ephemeralContainers")
             for c in pod["spec"].get(key) or []]
    if case["verdict"] == "rejected":
        return {n: ("rejected", []) for n in names}
    if case["verdict"] == "unsupported" and "RunPodSandbox failed" in case["detail"]:
        return {n: ("unknown", []) for n in names}  # hostUsers: false refused: no container ever starts
    choice = case.get("choice") or ""
    outcome = written(scn, policy, choice)
    if outcome.error == "RunPodSandbox":
        return {n: ("unknown", []) for n in names}  # no container ever starts
    # a container refused at StartContainer was created: the runtime resolved its user (and reports it) before
    # the OCI runtime's setgroups failed in the pod's user namespace; the groups are those without the namespace
    resolved = replace(scn, user_namespace=False)
    root = replace(resolved, container=ContainerContext(run_as_user=0, run_as_group=0))
    host_refused = scn.user_namespace and _unmappable(catalogue.oracle(root, policy))  # `main` fails as well
    only_ephemeral = list(keys) == [probe_name("ephemeral")]
    out: dict[str, tuple[str, list[int]]] = {}
    for name in names:
        if name == HOST_NAME:
            merge, strict = catalogue.oracle(root, "Merge"), catalogue.oracle(root, "Strict")
            # the call that refuses the probe refuses `main`; behind a failed init or sidecar `main` waits
            never_created = (host_refused and outcome.error == "CreateContainer") or (
                bool(outcome.error) and not only_ephemeral)
        else:
            started = outcome.error == "StartContainer"
            merge = catalogue.oracle(resolved, "Merge") if started else written(scn, "Merge", choice)
            strict = catalogue.oracle(resolved, "Strict") if started else written(scn, "Strict", choice)
            # CreateContainer refused it; an ephemeral probe is never added to a pod whose `main` failed
            never_created = outcome.error == "CreateContainer" or (name == probe_name("ephemeral") and host_refused)
        if never_created:
            out[name] = ("unknown", [])  # no user (and `main` waits for a failed init or sidecar)
        elif policy == "Strict":
            out[name] = ("ready", [])
        else:
            assert merge.identity is not None and strict.identity is not None
            implicit = sorted(merge.identity.groups - strict.identity.groups)
            out[name] = ("implicit-groups" if implicit else "ready", implicit)
    return out


def _unmappable(expectation: Expectation) -> bool:
    """The identity holds a group a hostUsers: false pod cannot map (container IDs 0..65535)."""
    return expectation.identity is not None and any(g >= USERNS_LENGTH for g in expectation.identity.groups)
