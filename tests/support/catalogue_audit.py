"""What the audit must report for a pod the suite ran, from the catalogue alone: per container, the state and
the implicit gids (the scenario's Merge groups minus its Strict groups; none under Strict)."""

from __future__ import annotations

from dataclasses import replace

from conformance.core.catalogue import Catalogue
from conformance.core.model import Expectation
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
    several. A probe's groups come from the scenario's written Merge and Strict expectations; `main` (root,
    0:0, hosting the pod where no probe does) from the oracle."""
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
    if written(scn, policy, choice).error == "RunPodSandbox":
        return {n: ("unknown", []) for n in names}  # no container ever starts
    probe_fails = bool(written(scn, policy, choice).error)
    out: dict[str, tuple[str, list[int]]] = {}
    for name in names:
        if name == HOST_NAME:
            root = replace(scn, container=ContainerContext(run_as_user=0, run_as_group=0))
            merge, strict = catalogue.oracle(root, "Merge"), catalogue.oracle(root, "Strict")
        else:
            merge, strict = written(scn, "Merge", choice), written(scn, "Strict", choice)
        if probe_fails and (name != HOST_NAME or list(keys) != [probe_name("ephemeral")]):
            out[name] = ("unknown", [])  # never started (and `main` waits for a failed init or sidecar)
        elif policy == "Strict":
            out[name] = ("ready", [])
        else:
            assert merge.identity is not None and strict.identity is not None
            implicit = sorted(merge.identity.groups - strict.identity.groups)
            out[name] = ("implicit-groups" if implicit else "ready", implicit)
    return out
