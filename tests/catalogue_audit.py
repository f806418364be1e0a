"""What the audit must report for a pod the suite ran, from the catalogue alone: per container, the state and
the implicit gids (the scenario's Merge groups minus its Strict groups; none under Strict)."""

from __future__ import annotations

from dataclasses import replace

from conformance.catalogue import Catalogue
from conformance.kube.manifests import PROBE_NAME
from conformance.model import Expectation
from conformance.scenario import ContainerContext, Scenario

POLICIES = {"merge": "Merge", "strict": "Strict", "unset": "unset"}


def case_key(pod: dict) -> tuple[str, str]:
    """(scenario label as in results.json, policy) of a pod the suite ran."""
    labels = pod["metadata"]["labels"]
    variant = labels["sgp.conformance/variant"]
    label = labels["sgp.conformance/scenario"] + ("" if variant == "container" else f".{variant}")
    return label, POLICIES[labels["sgp.conformance/policy"]]


def written(scn: Scenario, policy: str, choice: str) -> Expectation:
    """The scenario's expectation for `policy`; for a runtime_choice, the outcome the runtime took."""
    outcomes = scn.outcomes(policy)
    return next((o for o in outcomes if o.label == choice), outcomes[0])


def catalogue_says(catalogue: Catalogue, pod: dict, case: dict) -> dict[str, tuple[str, list[int]]]:
    """container name -> (state, implicit gids). `case` is the run's results.json entry for the pod: it says
    whether the node rejected the pod and which outcome a runtime took where the scenario allows several.
    The probed container's groups come from the scenario's written Merge and Strict expectations; `main`
    (root, 0:0, hosting the probe in the other container kinds) from the oracle."""
    labels = pod["metadata"]["labels"]
    scn = catalogue.by_name(labels["sgp.conformance/scenario"])
    policy = POLICIES[labels["sgp.conformance/policy"]]
    variant = labels["sgp.conformance/variant"]
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
        if name == PROBE_NAME:
            merge, strict = written(scn, "Merge", choice), written(scn, "Strict", choice)
        else:
            root = replace(scn, container=ContainerContext(run_as_user=0, run_as_group=0))
            merge, strict = catalogue.oracle(root, "Merge"), catalogue.oracle(root, "Strict")
        if probe_fails and (name == PROBE_NAME or variant != "ephemeral"):
            out[name] = ("unknown", [])  # never started (and `main` waits for a failed init or sidecar)
        elif policy == "Strict":
            out[name] = ("ready", [])
        else:
            assert merge.identity is not None and strict.identity is not None
            implicit = sorted(merge.identity.groups - strict.identity.groups)
            out[name] = ("implicit-groups" if implicit else "ready", implicit)
    return out
