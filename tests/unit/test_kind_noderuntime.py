"""The kind target's runtime descriptions: every file they name exists, names resolve both ways."""

from __future__ import annotations

import pytest

from conformance.errors import InputError
from conformance.targets.kind import noderuntime
from conformance.targets.kind.nodeimage import NODE_FILES


@pytest.mark.parametrize("runtime", noderuntime.NODE_RUNTIMES.values(), ids=noderuntime.NAMES)
def test_named_node_files_exist(runtime: noderuntime.NodeRuntime) -> None:
    named = [runtime.config_file, runtime.handler_file, f"{runtime.unit}.service",
             *(name for _, name in runtime.extra_files)]
    assert [n for n in named if not (NODE_FILES / n).is_file()] == []


def test_names_and_reported_names() -> None:
    assert noderuntime.of("cri-o") is noderuntime.CRIO and noderuntime.of("crio") is noderuntime.CRIO
    assert noderuntime.CONTAINERD.reported_version("2.1.9") == "containerd://2.1.9"
    assert noderuntime.CRIO.built_version == ("/usr/local/bin/crio", "--version")
    with pytest.raises(InputError, match="must be one of containerd, crio"):
        noderuntime.of("podman")
