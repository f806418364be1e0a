"""The catalogue: images and scenarios loaded together, and the cases they expand to."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from conformance.core.image import ImageDef, load_images
from conformance.core.model import Expectation, RuntimeInfo
from conformance.core.oracle import expected
from conformance.core.scenario import KnownFailure, Scenario, load_catalogue
from conformance.core.verdict import Judgement, Observation, judge_outcomes
from conformance.core.versions import in_range
from conformance.paths import PROJECT  # noqa: F401  (tests read the checkout's root here)

RUNTIME_ALIASES = {"cri-o": "crio", "crio": "crio", "containerd": "containerd"}


@dataclass
class Catalogue:
    images: dict[str, ImageDef]
    scenarios: list[Scenario]

    @classmethod
    def load(cls, scenarios_dir: Path, images_dir: Path) -> Catalogue:
        images = load_images(images_dir)
        return cls(images, load_catalogue(scenarios_dir, images))

    def by_name(self, name: str) -> Scenario:
        return next(s for s in self.scenarios if s.name == name)

    def oracle(self, scn: Scenario, policy: str) -> Expectation:
        return expected(scn, self.images[scn.image], policy)

    def expectation(self, scn: Scenario, policy: str) -> Expectation:
        """The written expectation (lint keeps it equal to the oracle's where the oracle applies)."""
        return scn.expect[policy]

    def judge(self, scn: Scenario, policy: str, obs: Observation, info: RuntimeInfo) -> Judgement:
        """The verdict of one case on any target: every allowed outcome, known failures, and for Strict on
        a runtime without the feature the Merge identity as the evidence of a silent ignore."""
        merge = scn.expect.get("Merge") or self.oracle(scn, "Merge")
        known = known_failure(scn, policy, info.name, info.version)
        return judge_outcomes(policy, scn.outcomes(policy), obs, info, merge, known, scn.choice, scn.user_namespace)

    def image_names(self) -> list[str]:
        """Images the catalogue uses, plus the sandbox image."""
        return sorted({s.image for s in self.scenarios} | {"pause"})


def known_failure(scn: Scenario, policy: str, runtime: str, version: str) -> KnownFailure | None:
    """The recorded upstream issue that applies to this case on this runtime, if any."""
    name = RUNTIME_ALIASES.get(runtime, runtime)
    for kf in scn.known_failures:
        same_runtime = RUNTIME_ALIASES.get(kf.runtime, kf.runtime) == name
        if same_runtime and policy in kf.policies and in_range(version, kf.versions):
            return kf
    return None
