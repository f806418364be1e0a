"""DRY_RUN: the whole plan of a cell, written under RESULTS_DIR/plan/<cell>/ and printed; runs nothing."""

from __future__ import annotations

import hashlib
from pathlib import Path

from conformance.core.catalogue import Catalogue
from conformance.core.options import Options
from conformance.errors import ProvisionError
from conformance.kube.admission import expected_outcome
from conformance.kube.manifests import VARIANTS, kube_cases
from conformance.runtimes.busybox import find as find_busybox
from conformance.targets.kind import nodeimage
from conformance.targets.kind.cells import Cell
from conformance.targets.kind.cli import Command
from conformance.targets.kind.lifecycle import ClusterOptions, KindCell
from conformance.targets.kind.parts import cell_and_images
from conformance.testimages import archive


def planned_archives(catalogue: Catalogue, cache: Path) -> list[archive.ImageArchive]:
    """The test image archives a run would build, computed without writing them (needs busybox for
    the real digests; otherwise the references are marked as placeholders)."""
    try:
        busybox = find_busybox(cache.parent).read_bytes()
    except ProvisionError:
        busybox = None
    out = []
    for name in catalogue.image_names():
        image = catalogue.images[name]
        if busybox is None:
            out.append(archive.ImageArchive(name, cache / f"{name}-<tag>.tar", f"{archive.REPO}/{name}:<tag>", "", ""))
            continue
        layer = archive.layer_bytes(image, busybox)
        layer_digest = "sha256:" + hashlib.sha256(layer).hexdigest()
        config_hex = hashlib.sha256(archive.config_bytes(image, layer_digest)).hexdigest()
        out.append(archive.ImageArchive(name, cache / f"{name}-{config_hex[:12]}.tar",
                                        f"{archive.REPO}/{name}:{config_hex[:12]}", "sha256:" + config_hex,
                                        layer_digest))
    return out


def expectations(cell: Cell, catalogue: Catalogue, variants: tuple[str, ...] = VARIANTS) -> list[str]:
    """One line per case: what the cell must show (rejected / unsupported / identity / create error)."""
    lines = []
    for scn, policy, variant in kube_cases(catalogue, variants):
        exp = catalogue.expectation(scn, policy)
        outcome = expected_outcome(policy, cell.supported, cell.k8s_minor, exp)
        if outcome == "identity":
            ident = exp.identity
            assert ident is not None
            groups = sorted(ident.groups)
            shown = str(groups) if len(groups) <= 12 else f"[{groups[0]}, ... {len(groups)} groups ..., {groups[-1]}]"
            outcome = f"identity uid={ident.uid} gid={ident.gid} groups={shown}"
        elif outcome == "create-error":
            outcome = f"error: {exp.error} refused"
        name = scn.name if variant == "container" else f"{scn.name}.{variant}"
        lines.append(f"{name} [{policy}]: {outcome}")
    return lines


def steps(kc: KindCell, archives: list[archive.ImageArchive]) -> list[tuple[str, Command | str]]:
    """Every step in run order: shell commands, and API steps (described, they are Python calls)."""
    out: list[tuple[str, Command | str]] = [
        ("Engine", "an engine answering at DOCKER_HOST or /var/run/docker.sock is used as it is; else a private "
                   "one: Debian's docker.io, containerd, runc, tini fetched into the cache, dockerd in a network and "
                   "mount namespace of its own (every docker/kind command below runs in that network)"),
        ("Preflight", kc.kind.version())]
    if kc.built:
        out.append(("BuildImage", "each image below: present > `docker load` of its saved copy in the cache > "
                                  "built (build folder assembled first, see Dockerfile)"))
    out += [("BuildImage", c) for c in kc.image_commands()]
    out += [("Up", kc.kind.get_clusters()), ("Up", kc.create_command()),
            ("Up", "on CreateFailed: kind export logs <cell>/kind-logs-attempt1, kind delete cluster, create again "
                   "(once)")]
    dns = "" if kc.built else " and kube-system pods k8s-app=kube-dns are Ready"
    expected = ", ".join(f"{n}: {kc.expected_runtime(n)}" for n in kc.node_names())
    out += [("Ready", f"api: wait until every node is Ready{dns}"),
            ("VerifyRuntime", f"api: status.nodeInfo.containerRuntimeVersion {expected}; record status.features")]
    if kc.built:
        out += [("VerifyRuntime", f"CRI Status() of {n} through /proc/<its pid>/root/run/<runtime socket>")
                for n in kc.node_names()]
    else:
        out += [("VerifyRuntime", kc.crictl_info_command(n)) for n in kc.node_names()]
    out += [("LoadImages", c) for c in kc.load_commands(archives)]
    out += [("Test", "api: create namespace sgp-<run-id> labelled sgp.conformance/run-id; wait for "
                     "serviceaccount default"),
            ("Test", "api: node-features: node.status.features.supplementalGroupsPolicy vs crictl info"),
            ("Test", "api: negatives (dry run): policy 'strict' and 'Foo' -> 422 FieldValueNotSupported; "
                     "Windows pod -> FieldValueForbidden; update Merge->Strict -> 422"),
            ("Test", "api: one pod per case (see expectations.txt); first-process log, exec via "
                     "kubernetes.stream, status.*ContainerStatuses[].user from raw JSON"),
            ("Test", "api: delete namespace sgp-<run-id>")]
    out += [("DumpLogs", f"on failure: {c.render()}") for c in kc.failure_commands()]
    out += [("Down", kc.delete_command()), ("Down", "skipped when KEEP=1 or the cluster was reused (REUSE=1)")]
    return out


def render(kc: KindCell, archives: list[archive.ImageArchive]) -> str:
    lines = []
    for i, (phase, step) in enumerate(steps(kc, archives), 1):
        text = step.render() if isinstance(step, Command) else f"# {step}"
        lines.append(f"{i:02d} [{phase}] {text}")
    return "\n".join(lines) + "\n"


def write(kc: KindCell, catalogue: Catalogue, cache: Path, results_dir: Path) -> tuple[Path, str]:
    """Write RESULTS_DIR/plan/<cell>/{kind-config.yaml, Dockerfile, commands.txt, expectations.txt, README};
    return the folder and the text printed to the user."""
    cell = kc.cell
    folder = results_dir / "plan" / cell.id
    folder.mkdir(parents=True, exist_ok=True)
    kc.config_path = folder / "kind-config.yaml"
    kc.kubeconfig = results_dir / cell.id / "kubeconfig"
    kc.logs_dir = results_dir / cell.id / "kind-logs"
    archives = planned_archives(catalogue, cache / "images")
    config = kc.config_yaml()
    (folder / "kind-config.yaml").write_text(config)
    images = []
    for image in kc.unique_images():
        if image.stock:
            images.append(f"# {image.ref}: stock, pulled by digest (digest source: {cell.digest_source})\n")
        else:
            assert image.parts is not None
            made = "in the cache" if image.parts.base.exists() else "made with debootstrap at run time"
            images.append(f"# {image.ref}: built here, content key {image.cache_key}\n"
                          f"# base {image.parts.base} ({made}); parts: {image.parts.to_json()}\n"
                          f"# rootfs/: the files of {nodeimage.NODE_FILES}, the runtime's and Kubernetes' binaries, "
                          f"images/bundle.tar beside it (control plane, etcd, pause, "
                          f"{len(image.parts.tests)} test images)\n"
                          + nodeimage.dockerfile(image))
    dockerfile = "\n".join(images)
    (folder / "Dockerfile").write_text(dockerfile)
    commands = render(kc, archives)
    (folder / "commands.txt").write_text(commands)
    expect = "\n".join(expectations(cell, catalogue)) + "\n"
    (folder / "expectations.txt").write_text(expect)
    header = (f"Plan for cell {cell.id}: {cell.runtime} {cell.runtime_version} on Kubernetes {cell.k8s} "
              f"({'node images built here' if kc.built else f'kind {cell.kind}'})\n"
              f"  node images: {', '.join(i.ref for i in kc.images)}\n"
              f"  runtime supports supplementalGroupsPolicy: {cell.supported}; kubelet 1.{cell.k8s_minor} "
              f"{'rejects' if cell.k8s_minor >= 33 else 'does not reject'} Strict on unsupported nodes\n"
              + (f"  notes: {cell.notes}\n" if cell.notes else "")
              + f"  written to {folder}/ (nothing was run)\n")
    text = (header + f"\n--- kind-config.yaml\n{config}\n--- node images\n{dockerfile}\n"
            f"--- commands.txt (in order)\n{commands}\n--- expectations.txt\n{expect}")
    (folder / "README").write_text(header)
    return folder, text


def plan(opts: Options, catalogue: Catalogue) -> str:
    """DRY_RUN=1 on TARGET=kind: write the cell's plan under RESULTS_DIR/plan/<cell>/ and return it; nothing
    is built or started."""
    cell, images = cell_and_images(opts, planned_archives(catalogue, opts.cache_dir / "images"), make_base=False)
    kc = KindCell(cell, ClusterOptions(results_dir=opts.results_dir, keep=opts.keep, reuse=opts.reuse), images=images)
    return write(kc, catalogue, opts.cache_dir, opts.results_dir)[1]
