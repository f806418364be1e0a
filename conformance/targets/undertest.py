"""The runtime under test, as the node and local targets both use it: started privately at a chosen
version (RUNTIME, VERSION, CONTAINERD_BIN_DIR, CRIO_BIN_DIR) or reached through CRI_ENDPOINT, with the
suite's test images loaded into it; stop() removes what the run put there, and a runtime the suite
started goes whole."""

from __future__ import annotations

import os
import secrets
import shutil
import stat
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from conformance import interrupt
from conformance.core.model import RuntimeInfo
from conformance.core.options import Options
from conformance.cri.client import CRIClient, CRIError
from conformance.cri.sandboxes import remove_sandboxes, runtime_info
from conformance.errors import InputError, ProvisionError, RuntimeBroken, SuiteError
from conformance.runtimes import podnet, provider
from conformance.runtimes.base import Provisioned
from conformance.testimages import archive
from conformance.testimages.imageload import ImageLoader, choose
from conformance.testimages.registry import Registry

HANDLERS = ("", "runc", "crun")
CRIO_DEFAULT_STORAGE = ("/var/lib/containers/storage", "/run/containers/storage")
POLITE_REMOVALS = 32  # sandboxes a stopping run removes one by one through the CRI before it simply kills


def socket_path(endpoint: str) -> Path:
    return Path(endpoint.removeprefix("unix://"))


def check_endpoint(endpoint: str) -> None:
    """An existing CRI socket must exist and be a socket; else a clear input error."""
    path = socket_path(endpoint)
    if not path.exists():
        raise InputError(path, "CRI_ENDPOINT", "no such socket: nothing is listening there")
    if not stat.S_ISSOCK(path.stat().st_mode):
        raise InputError(path, "CRI_ENDPOINT", "is not a unix socket")


def check_storage(storage: tuple[str, str]) -> None:
    """CRIO_STORAGE must name an existing containers-storage (root with a <driver>-images folder, and a
    runroot), or skopeo would create a new, empty one that CRI-O never reads."""
    root, runroot = (Path(p) for p in storage)
    if not root.is_dir() or not any(root.glob("*-images")):
        raise InputError("CRIO_STORAGE", "CRIO_STORAGE", f"{root} is not a containers-storage root (no <driver>-images "
                         "folder): give the root:runroot of the CRI-O under test (crio.conf [crio] root, runroot)")
    if not runroot.is_dir():
        raise InputError("CRIO_STORAGE", "CRIO_STORAGE", f"runroot {runroot} does not exist")


def load_failure(exc: Exception, method: str, runtime: str) -> ProvisionError:
    """One line for a failed image load, naming what to set."""
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
    hint = {"registry": "the runtime must pull from the suite's loopback registry over HTTP (CRI-O: insecure = "
                        "true for it in registries.conf); or set IMAGE_LOAD=skopeo with CRIO_STORAGE=<root>:<runroot>"
                        if runtime == "cri-o" else "or set IMAGE_LOAD=ctr",
            "skopeo": "check CRIO_STORAGE=<root>:<runroot> (the CRI-O's own storage) and that skopeo is installed",
            "ctr": "check that ctr (containerd's client) can reach the socket, or set IMAGE_LOAD=registry"}[method]
    return ProvisionError(f"loading the test images with IMAGE_LOAD={method} failed: {first}; {hint}")


def find_ctr(cache: Path) -> str | None:
    """containerd's `ctr`: on PATH, else one the suite fetched earlier."""
    found = shutil.which("ctr")
    if found:
        return found
    cached = sorted((cache / "runtimes").glob("containerd-*/usr/bin/ctr")) + \
        sorted((cache / "runtimes").glob("containerd-*/bin/ctr"))
    return str(cached[-1]) if cached else None


class RuntimeUnderTest:
    """One run's runtime: provisioned (owned) or attached; its CRI client, image references and facts."""

    def __init__(self, opts: Options):
        self.opts = opts
        self.provisioned: Provisioned | None = None
        self.client: CRIClient | None = None
        self.loader: ImageLoader | None = None
        self.info: RuntimeInfo | None = None
        self.image_refs: dict[str, str] = {}
        self.timings: dict[str, float] = {}  # seconds: "runtime" until it answers, "images" their load

    @property
    def owned(self) -> bool:
        """The suite started this runtime (everything in it is the run's)."""
        return self.provisioned is not None

    def validate(self) -> None:
        """Check the options before anything starts."""
        if self.opts.handler not in (*HANDLERS, *self.opts.extra_handlers):
            raise InputError("HANDLER", "HANDLER", f"{self.opts.handler!r}: must be runc or crun")
        if self.opts.crio_storage is not None:
            check_storage(self.opts.crio_storage)
        if self.opts.cri_endpoint:
            check_endpoint(self.opts.cri_endpoint)
        elif self.opts.runtime not in ("containerd", "crio"):
            raise InputError("RUNTIME", "RUNTIME", f"{self.opts.runtime!r}: must be containerd or crio")

    def start(self, archives: list[archive.ImageArchive], beside: Callable[[], None] | None = None) -> None:
        """Provision or attach, load the images, read what the runtime is. `beside` runs while the images load,
        once the runtime answers (TARGET=local starts its control plane there); an error of either is raised
        once both are done."""
        self.validate()
        if self.opts.cri_endpoint:
            self._attach(archives)
            if beside is not None:
                beside()
        else:
            self._provision(archives, beside)
        assert self.client is not None
        self.info = runtime_info(self.client, self.opts.handler)
        if self.provisioned is not None and self.provisioned.oci is not None:
            self.info.oci = self.provisioned.oci.to_json()
        if self.provisioned is not None:
            self.info.source = self.provisioned.source
        if self.provisioned is not None and self.opts.handler and self.opts.handler not in self.provisioned.handlers:
            raise ProvisionError(f"HANDLER={self.opts.handler}: not installed (have {self.provisioned.handlers})")

    def header(self, startup: float) -> str:
        info = self.info
        assert info is not None
        features = "absent" if info.features is None else ", ".join(f"{k}={v}" for k, v in info.features.items())
        how = f"started by the suite; {info.source}" if self.owned else f"existing socket {info.endpoint}"
        handler = f", handler {info.handler}" if info.handler else ""
        oci_text = f"; {self.oci_text()}" if info.oci else ""
        userns = ("" if info.handler_features is None
                  else f"; handler user_namespaces={info.handler_features.get('user_namespaces')}")
        return (f"runtime: {info.name} {info.version} ({how}{handler}){oci_text}; Status().features: {features}"
                f"{userns}; ready in {startup:.2f}s")

    def oci_text(self) -> str:
        """'OCI runtime: crun 1.21 (<path>; <why this one>)', or '' when the suite cannot know (CRI_ENDPOINT)."""
        oci = (self.info.oci if self.info else None) or {}
        why = f"; {oci['chosen']}" if oci.get("chosen") else ""
        return f"OCI runtime: {oci['name']} {oci['version']} ({oci['path']}{why})" if oci else ""

    def _attach(self, archives: list[archive.ImageArchive]) -> None:
        assert self.opts.cri_endpoint
        self.client = CRIClient(self.opts.cri_endpoint)
        try:
            name = self.client.version(timeout=10).runtime_name
        except RuntimeBroken as exc:
            raise ProvisionError(f"CRI_ENDPOINT={self.opts.cri_endpoint} does not answer: {exc}") from exc
        ctr: tuple[str, ...] = ()
        if name == "containerd":
            binary = find_ctr(self.opts.cache_dir)
            if binary:
                ctr = (binary, "--address", str(socket_path(self.opts.cri_endpoint)))
        storage = self.opts.crio_storage
        if name == "cri-o" and storage is None and all(Path(p).is_dir() for p in CRIO_DEFAULT_STORAGE):
            storage = CRIO_DEFAULT_STORAGE  # CRI-O's default containers-storage on this host
        method = choose(self.opts.image_load, name, bool(ctr), storage is not None)
        self.loader = ImageLoader(method, self.client, ctr, storage, track_new=True,
                                  work_dir=self.opts.state_dir / f"skopeo-{os.getpid()}-{secrets.token_hex(3)}")
        self.image_refs = self._load(archives, name)

    def _load(self, archives: list[archive.ImageArchive], runtime_name: str) -> dict[str, str]:
        assert self.loader is not None
        started = time.monotonic()
        try:
            return self.loader.load(archives)
        except (CRIError, SuiteError, OSError) as exc:
            raise load_failure(exc, self.loader.method, runtime_name) from exc
        finally:
            self.timings["images"] = round(time.monotonic() - started, 2)

    def _provision(self, archives: list[archive.ImageArchive], beside: Callable[[], None] | None = None) -> None:
        prov = provider(self.opts.runtime, self.opts.version, self.opts.containerd_bin_dir, self.opts.crio_bin_dir,
                        self.opts.cache_dir, self.opts.state_dir, self.opts.extra_handlers, self.opts.oci_bin_dir)
        runtime_name = "containerd" if self.opts.runtime == "containerd" else "cri-o"
        # a private runtime always comes with its ctr (containerd) or its known storage (CRI-O)
        method = choose(self.opts.image_load, runtime_name, have_ctr=True, have_storage=True)
        by_name = {a.name: a for a in archives}
        registry = Registry(archives) if method == "registry" else None
        pause_ref = registry.ref(by_name["pause"]) if registry else by_name["pause"].ref
        self.provisioned = prov.start(pause_ref, self.opts.handler)
        daemon = self.provisioned.daemon
        assert daemon is not None
        podnet.install(daemon.state_dir / "cni")  # pods with a network namespace of their own (podnet.py)
        if method == "skopeo":  # CRI-O reads its storage at start: copy before the daemon runs
            pre = ImageLoader(method, None, storage=self.provisioned.storage,  # type: ignore[arg-type]
                              work_dir=daemon.state_dir / "skopeo")
            try:
                pre.copy_only(archives)
            except SuiteError as exc:
                raise load_failure(exc, method, runtime_name) from exc
            finally:
                pre.close()
        self.client = CRIClient(self.provisioned.endpoint)
        client = self.client
        started = time.monotonic()
        daemon.start(lambda: bool(client.version(timeout=0.5)))
        self.timings["runtime"] = round(time.monotonic() - started, 2)
        self.loader = ImageLoader(method, client, self.provisioned.ctr, self.provisioned.storage,
                                  hosts_dir=self.provisioned.hosts_dir, registry=registry,
                                  work_dir=daemon.state_dir / "skopeo")
        if beside is None:
            self.image_refs = self._load(archives, runtime_name)
            return
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sgp-image-load") as pool:
            loading = pool.submit(self._load, archives, runtime_name)
            beside()  # an error here still waits for the load (the pool's exit) before it goes up
            self.image_refs = interrupt.result(loading)

    def restart(self, timeout: float = 30.0) -> None:
        """Restart the daemon the suite started, keeping its state dir: SIGTERM the daemon only (shims
        and containers keep running, as on a real node), then start it again and wait for the CRI."""
        daemon = self.provisioned.daemon if self.provisioned else None
        if daemon is None or daemon.proc is None:
            raise ProvisionError("cannot restart a runtime the suite did not start (CRI_ENDPOINT is set)")
        if not daemon.terminate(timeout):
            raise ProvisionError(f"{daemon.name} did not exit within {timeout:.0f}s of SIGTERM")
        probe = CRIClient(self.provisioned.endpoint)  # a fresh channel: no reconnect back-off
        try:
            daemon.start(lambda: bool(probe.version(timeout=0.5)), timeout)
        finally:
            probe.close()

    def stop(self, run_labels: dict[str, str] | None = None) -> None:
        """Remove the run's sandboxes and images, and the runtime itself if the suite started it (its log
        kept in RESULTS_DIR). In a runtime the suite started every sandbox is the run's (a local kubelet's
        too): up to POLITE_REMOVALS go through the CRI, more are left to the daemon's stop, which kills
        everything in its cgroups and mount namespace at once. In an existing runtime only the sandboxes
        carrying `run_labels` are removed (none without them)."""
        errors = []
        daemon = self.provisioned.daemon if self.provisioned else None
        if self.client is not None and (daemon.alive() if daemon else run_labels):
            remove_sandboxes(self.client, None if self.owned else run_labels,
                             most=POLITE_REMOVALS if self.owned else None)
        if self.loader is not None:
            try:
                self.loader.close()
            except (SuiteError, CRIError, RuntimeBroken) as exc:
                errors.append(str(exc))
            self.loader = None
        if self.client is not None:
            self.client.close()
            self.client = None
        if daemon is not None:
            daemon.stop()
            daemon.remove_state(keep_log_to=self.opts.results_dir / f"{daemon.name}.log")
            self.provisioned = None
        if errors:
            raise SuiteError("; ".join(errors))
