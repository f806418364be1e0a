"""A host that is not Debian: no apt-get, apt-cache, dpkg or dpkg-deb, no /etc/apt, an empty cache. The node
target fetches containerd 2.x and 1.7 from Debian's archive over HTTP itself and runs the whole catalogue
right, leaving nothing behind."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from conformance.runtimes import debian, reaper
from tests.conftest import CLI, PROJECT
from tests.support.leftovers import leftovers

pytestmark = pytest.mark.runtime
HIDDEN = ("apt-get", "apt-cache", "apt-config", "dpkg", "dpkg-deb", "dpkg-query")
# No scenario data reaches this script: $1 is the suite's command, the rest its arguments.
WITHOUT_APT = (
    'for tool in ' + " ".join(HIDDEN) + '; do p=$(command -v "$tool") && mount --bind /bin/false "$p"; done; '
    'mount -t tmpfs none /etc/apt; '
    'for tool in ' + " ".join(HIDDEN) + '; do if "$tool" --version >/dev/null 2>&1; then echo "$tool still works"; '
    'exit 97; fi; done; [ -z "$(ls -A /etc/apt)" ] || exit 98; '
    'for v in 2 1.7; do "$@" --results-dir "$RESULTS/$v" --version "$v" || exit $?; done'
)


def test_node_target_without_apt(real_runtime: None, tmp_path: Path, state_root: Path) -> None:
    mirror = debian.archive_uri()
    assert mirror, "the gate found a Debian archive"
    env = {**os.environ, "SGP_STATE_DIR": str(state_root), "SGP_CACHE_DIR": str(tmp_path / "cache"),
           "DEBIAN_MIRROR": mirror, "RESULTS": str(tmp_path / "results")}
    if debian.expired_allowed():  # a frozen snapshot mirror, allowed here as apt allows it
        env["DEBIAN_ALLOW_EXPIRED"] = "1"
    argv = ["unshare", "--mount", "--propagation", "private", "--", "/bin/sh", "-c", WITHOUT_APT, "without-apt",
            str(CLI), "run"]
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=PROJECT, timeout=1500, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    for version, major in (("2", "2."), ("1.7", "1.7.")):
        doc = json.loads((tmp_path / "results" / version / "results.json").read_text())
        assert doc["runtime"]["version"].startswith(major), doc["runtime"]
        assert doc["summary"]["exit_code"] == 0 and "error" not in doc["summary"]["counts"], doc["summary"]
        assert len(doc["cases"]) > 150
    cache = tmp_path / "cache"
    assert {p.name for p in (cache / "debian").iterdir()} >= {"sid", "trixie", "debs"}
    assert not (cache / "apt").exists()  # nothing went through apt
    assert leftovers(state_root, 0) == [] and reaper.dead_runs(state_root) == []  # no state, process, cgroup
