"""The suite's test images for a cluster the suite did not start: pushed to a registry the nodes pull from
(IMAGE_REGISTRY, `sgp-conformance images push`), or exported as archives with the names the pods will use
(`sgp-conformance images export`). Pushed with skopeo; credentials where the container tools keep them
(REGISTRY_AUTH_FILE, the containers auth file, ~/.docker/config.json), TLS on unless told otherwise."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from conformance.core.options import Options, default_cache, switch
from conformance.errors import InputError, ProvisionError, SuiteError
from conformance.paths import IMAGES, SCENARIOS
from conformance.testimages.archive import ImageArchive, catalogue_archives
from conformance.testimages.skopeo import Skopeo

SKOPEO_TIMEOUT = 300
NAMES_FILE = "images.txt"


def remote_ref(registry: str, archive: ImageArchive) -> str:
    """The name a pod uses for `archive` in `registry[/prefix]`: the archive's repository path and tag
    (`localhost/sgpconf/agnhost-like:<tag>` -> `<registry>/sgpconf/agnhost-like:<tag>`)."""
    return f"{registry.rstrip('/')}/{archive.ref.split('/', 1)[1]}"


def check_registry(registry: str) -> str:
    """IMAGE_REGISTRY as `host[:port][/prefix]`: no scheme, no tag; returned without a trailing slash."""
    value = registry.strip().rstrip("/")
    host = value.split("/", 1)[0]
    if not value or "://" in value or "@" in value or not host or " " in value:
        raise InputError("IMAGE_REGISTRY", "IMAGE_REGISTRY", f"{registry!r}: give host[:port][/prefix], e.g. "
                         "registry.example:5000/team (no scheme, no tag)")
    return value


@dataclass
class Pushed:
    """What a push did, per image reference."""

    pushed: list[str] = field(default_factory=list)
    present: list[str] = field(default_factory=list)  # already there with the same config digest

    def summary(self) -> str:
        return f"{len(self.pushed)} pushed, {len(self.present)} already there (same digest)"


class RemoteRegistry:
    """A registry as skopeo reaches it from here: TLS verified unless `insecure`."""

    def __init__(self, skopeo: Skopeo, insecure: bool = False):
        self.skopeo = skopeo
        self.tls = "false" if insecure else "true"

    def config_digest(self, ref: str) -> str | None:
        """The config digest of `ref` in its registry; None when the registry has no such manifest."""
        res = self.skopeo.run(["inspect", "--raw", f"--tls-verify={self.tls}", f"docker://{ref}"], SKOPEO_TIMEOUT,
                              check=False)
        if res.returncode != 0:
            if _missing(res.stderr):
                return None
            raise ProvisionError(f"registry refused {ref}: {_one_line(res.stderr)}{_hint(res.stderr)}")
        try:
            return str(json.loads(res.stdout)["config"]["digest"])
        except (ValueError, KeyError, TypeError):
            return None  # a manifest list or another shape: push ours over it

    def copy(self, archive: ImageArchive, ref: str) -> None:
        res = self.skopeo.run(["copy", "--quiet", f"--dest-tls-verify={self.tls}", f"docker-archive:{archive.path}",
                               f"docker://{ref}"], SKOPEO_TIMEOUT, check=False)
        if res.returncode != 0:
            raise ProvisionError(f"pushing {ref} failed: {_one_line(res.stderr)}{_hint(res.stderr)}")


def _one_line(stderr: str) -> str:
    lines = [line.strip() for line in stderr.strip().splitlines() if line.strip()]
    text = lines[-1] if lines else "no output"
    return text.removeprefix("time=").split('msg="', 1)[-1].rstrip('"')[:400]


def _missing(stderr: str) -> bool:
    text = stderr.lower()
    return "manifest unknown" in text or ("not found" in text and "no such host" not in text)


def _hint(stderr: str) -> str:
    text = stderr.lower()
    if "http response to https client" in text:
        return " (a plain-HTTP registry: set IMAGE_REGISTRY_INSECURE=1)"
    if "unauthorized" in text or "authentication required" in text or "denied" in text:
        return " (log in with `skopeo login`, or set REGISTRY_AUTH_FILE)"
    if "certificate" in text or "x509" in text:
        return " (its certificate is not trusted here; IMAGE_REGISTRY_INSECURE=1 skips TLS verification)"
    return ""


def push(archives: list[ImageArchive], registry: str, insecure: bool = False,
         state_dir: Path | None = None) -> tuple[dict[str, str], Pushed]:
    """Push every test image missing from `registry` (same config digest = already there); the references
    the pods will use, and what was done. skopeo's temporary files go to a folder in `state_dir` (the run's
    state folder, SGP_STATE_DIR by default), removed afterwards."""
    registry = check_registry(registry)
    done = Pushed()
    refs = {}
    root = state_dir or Options().state_dir
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="push-", dir=root) as tmp:
        remote = RemoteRegistry(Skopeo(Path(tmp)), insecure)
        for archive in archives:
            ref = remote_ref(registry, archive)
            refs[archive.name] = ref
            if remote.config_digest(ref) == archive.config_digest:
                done.present.append(ref)
                continue
            remote.copy(archive, ref)
            done.pushed.append(ref)
    return refs, done


def export(archives: list[ImageArchive], folder: Path, registry: str | None = None) -> Path:
    """Every test image as a docker-archive in `folder`, and `images.txt`: one line per image, the archive's
    file name and the name the pods will use (`registry` given: the name in that registry)."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for archive in archives:
        shutil.copy2(archive.path, folder / archive.path.name)
        name = remote_ref(check_registry(registry), archive) if registry else archive.ref
        lines.append(f"{archive.path.name} {name}")
    names = folder / NAMES_FILE
    names.write_text("# archive  image name the pods use (imagePullPolicy: "
                     f"{'IfNotPresent' if registry else 'Never'})\n" + "\n".join(lines) + "\n")
    return names


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True)
    push_p = actions.add_parser("push", help="push the test images missing from REGISTRY[/PREFIX] (by digest)")
    push_p.add_argument("registry", help="host[:port][/prefix], as the nodes will pull from it")
    push_p.add_argument("--insecure", action="store_true", help="plain HTTP or a certificate not trusted here "
                        "[env IMAGE_REGISTRY_INSECURE]")
    export_p = actions.add_parser("export", help="write every test image as an archive, and images.txt with the "
                                                 "names the pods will use")
    export_p.add_argument("folder")
    export_p.add_argument("--registry", help="the names as in this registry (the run's IMAGE_REGISTRY); default: "
                                             "the local names, for imagePullPolicy Never")


def main(args: argparse.Namespace) -> int:
    """`sgp-conformance images push|export`; exit 2 with one line when it cannot be done."""
    from conformance.core.catalogue import Catalogue

    try:
        archives = catalogue_archives(Catalogue.load(SCENARIOS, IMAGES), default_cache())
        if args.action == "push":
            insecure = args.insecure or switch(os.environ.get("IMAGE_REGISTRY_INSECURE"))
            _, done = push(archives, args.registry, insecure)
            for ref in done.pushed:
                print(f"pushed  {ref}")
            for ref in done.present:
                print(f"present {ref}")
            print(f"{done.summary()}; run with IMAGE_REGISTRY={check_registry(args.registry)}"
                  + (" IMAGE_REGISTRY_INSECURE=1" if insecure else ""))
            return 0
        names = export(archives, Path(args.folder), args.registry)
        print(f"{len(archives)} image archives in {args.folder}; the names the pods use: {names}")
        return 0
    except SuiteError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
