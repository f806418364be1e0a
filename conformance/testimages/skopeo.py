"""skopeo as the suite runs it: each call in a mount namespace of its own, so nothing it writes by default
reaches the host. As root, skopeo keeps a blob-info cache in /var/lib/containers/cache (no flag moves it),
puts large temporary files in /var/tmp, and its containers-storage driver bind-mounts `<root>/overlay` onto
itself and never unmounts it. Here the cache is a private tmpfs (or, where the folder does not exist, its
nearest existing parent is read-only, and skopeo keeps the cache in memory), temporary files go to the
run's folder, and every mount dies with the namespace, also when skopeo is killed."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from conformance.errors import CommandError, ProvisionError

# $0 a label; $1 a folder that must stay writable (the run's), $2.. more of them up to "--", then skopeo's argv.
# No scenario data reaches this script.
GUARD = """set -e
keep=""; while [ "$1" != -- ]; do keep="$keep $1"; shift; done; shift
c=/var/lib/containers/cache
if [ -d "$c" ]; then mount -t tmpfs -o mode=0700,size=16m sgp-blobcache "$c"
else p=$c; while [ ! -e "$p" ]; do p=$(dirname "$p"); done
  for w in $keep; do case "$w/" in "$p"/*) mkdir -p "$w"; mount --bind "$w" "$w";; esac; done
  mount --rbind "$p" "$p"; mount -o remount,bind,ro "$p"; fi
exec "$@"
"""
POLICY = '{"default": [{"type": "insecureAcceptAnything"}]}\n'  # the suite's own, locally built images
TIMEOUT = 600


class Skopeo:
    """skopeo calls whose temporary files and policy live in `work_dir` (the run's); `writable`: folders under
    /var/lib it must still write (a containers-storage root and runroot)."""

    def __init__(self, work_dir: Path, writable: Sequence[str | Path] = ()):
        if not shutil.which("skopeo"):
            raise ProvisionError("skopeo is not installed (Debian package skopeo)")
        self.work_dir = work_dir
        self.writable = [str(p) for p in writable]

    def argv(self, args: Sequence[str]) -> list[str]:
        tmp = self.work_dir / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        policy = self.work_dir / "policy.json"
        if not policy.exists():
            policy.write_text(POLICY)
        keep = [str(self.work_dir), *self.writable]
        return ["unshare", "--mount", "--propagation", "private", "--", "/bin/sh", "-c", GUARD, "sgp-skopeo", *keep,
                "--", "skopeo", "--policy", str(policy), "--tmpdir", str(tmp), *args]

    def run(self, args: Sequence[str], timeout: float = TIMEOUT, check: bool = True) -> subprocess.CompletedProcess:
        argv = self.argv(args)
        try:
            res = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        except FileNotFoundError as exc:
            raise ProvisionError("unshare (util-linux) is needed to run skopeo privately") from exc
        except subprocess.TimeoutExpired as exc:
            raise ProvisionError(f"skopeo {args[0]} did not finish in {timeout:.0f}s") from exc
        if check and res.returncode != 0:
            raise CommandError(["skopeo", *args], res.returncode, res.stdout, res.stderr)
        return res
