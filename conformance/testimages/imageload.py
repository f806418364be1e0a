"""Getting the test images into a runtime: `ctr import` (containerd), skopeo into
containers-storage (CRI-O), or CRI PullImage from the suite's loopback registry (any runtime)."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

from conformance.cri.client import CRIClient, CRIError
from conformance.errors import CommandError, ProvisionError
from conformance.testimages.archive import ImageArchive, bundle
from conformance.testimages.registry import Registry
from conformance.testimages.skopeo import Skopeo

METHODS = ("auto", "ctr", "skopeo", "registry")


def _run(argv: list[str]) -> None:
    res = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    if res.returncode != 0:
        raise CommandError(argv, res.returncode, res.stdout, res.stderr)


def choose(method: str, runtime_name: str, have_ctr: bool, have_storage: bool) -> str:
    """Resolve 'auto' for the runtime at hand: ctr for containerd (when a ctr is there), skopeo for
    CRI-O (when its storage is known and skopeo is installed), else the loopback registry."""
    if method not in METHODS:
        raise ProvisionError(f"IMAGE_LOAD={method!r}: must be one of {', '.join(METHODS)}")
    if method != "auto":
        return method
    if runtime_name == "containerd" and have_ctr:
        return "ctr"
    if runtime_name == "cri-o" and have_storage and shutil.which("skopeo"):
        return "skopeo"
    return "registry"


class ImageLoader:
    """Loads archives and maps each image name to the reference the runtime knows it by."""

    def __init__(self, method: str, client: CRIClient, ctr: tuple[str, ...] = (),
                 storage: tuple[str, str] | None = None, hosts_dir: Path | None = None,
                 registry: Registry | None = None, track_new: bool = False, work_dir: Path | None = None):
        self.method = method
        self.work_dir = work_dir  # skopeo's temporary files and policy (the run's; removed at close)
        self.client = client
        self.ctr = ctr
        self.storage = storage
        self.hosts_dir = hosts_dir
        self.registry = registry
        self.track_new = track_new  # remove afterwards what this run added to a runtime it did not start
        self.added: list[str] = []
        self.refs: dict[str, str] = {}

    def copy_only(self, archives: list[ImageArchive]) -> None:
        """skopeo copy into containers-storage (used before a private CRI-O starts)."""
        if not self.storage:
            raise ProvisionError("skopeo loading needs CRIO_STORAGE=<root>:<runroot> of the CRI-O under test")
        if self.work_dir is None:
            raise ProvisionError("skopeo loading needs a folder of the run for its temporary files")
        root, runroot = self.storage
        skopeo = Skopeo(self.work_dir, writable=(root, runroot))
        for archive in archives:
            skopeo.run(["copy", "--quiet", f"docker-archive:{archive.path}",
                        f"containers-storage:[overlay@{root}+{runroot}]{archive.ref}"])

    def load(self, archives: list[ImageArchive]) -> dict[str, str]:
        if self.method == "registry":
            return self._pull_all(archives)
        missing = [a for a in archives if self.client.image_status(a.ref) is None]
        if self.method == "ctr" and missing:
            combined = bundle(missing, missing[0].path.parent)
            _run([*self.ctr, "-n", "k8s.io", "images", "import", str(combined)])
        elif self.method == "skopeo" and missing:
            self.copy_only(missing)
        self.added = [a.ref for a in missing]
        for archive in archives:
            self._wait_visible(archive.ref)
            self.refs[archive.name] = archive.ref
        return self.refs

    def _wait_visible(self, ref: str, timeout: float = 10.0) -> None:
        """containerd's CRI learns of imported images through events: give it a moment."""
        deadline = time.monotonic() + timeout
        while self.client.image_status(ref) is None:
            if time.monotonic() > deadline:
                raise ProvisionError(f"image {ref} is not visible to the runtime after {self.method} load")
            time.sleep(0.02)

    def _pull_all(self, archives: list[ImageArchive]) -> dict[str, str]:
        if self.registry is None:
            self.registry = Registry(archives)
        if self.hosts_dir is not None:  # containerd 2.x wants HTTP to loopback spelled out
            host = self.registry.address
            (self.hosts_dir / host).mkdir(parents=True, exist_ok=True)
            (self.hosts_dir / host / "hosts.toml").write_text(
                f'server = "http://{host}"\n[host."http://{host}"]\n  capabilities = ["pull", "resolve"]\n')
        for archive in archives:
            ref = self.registry.ref(archive)
            if self.client.image_status(ref) is None:
                self.client.pull_image(ref)
                self.added.append(ref)
            self.refs[archive.name] = ref
        return self.refs

    def close(self) -> None:
        if self.work_dir is not None:
            shutil.rmtree(self.work_dir, ignore_errors=True)
        if self.track_new:
            for ref in self.added:
                try:
                    self.client.remove_image(ref)
                except CRIError:
                    pass
        if self.registry is not None:
            self.registry.stop()
            self.registry = None
