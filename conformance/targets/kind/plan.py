"""DRY_RUN: the whole plan of a cell, written under RESULTS_DIR/plan/<cell>/ and printed; runs nothing."""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

from conformance import archive
from conformance.catalogue import PROJECT, Catalogue
from conformance.errors import ProvisionError, SuiteError
from conformance.kube.admission import expected_outcome
from conformance.kube.manifests import VARIANTS, kube_cases
from conformance.options import default_cache
from conformance.targets.kind import cells
from conformance.targets.kind.cells import Cell
from conformance.targets.kind.cli import Command
from conformance.targets.kind.lifecycle import ClusterOptions, KindCell


def planned_archives(catalogue: Catalogue, cache: Path) -> list[archive.ImageArchive]:
    """The test image archives a run would build, computed without writing them (needs busybox for
    the real digests; otherwise the references are marked as placeholders)."""
    try:
        busybox = archive.find_busybox().read_bytes()
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
    out: list[tuple[str, Command | str]] = [("Preflight", kc.kind.version())]
    out += [("BuildImage", c) for c in kc.image_commands()]
    out += [("Up", kc.kind.get_clusters()), ("Up", kc.create_command()),
            ("Up", "on CreateFailed: kind export logs <cell>/kind-logs-attempt1, kind delete cluster, create again "
                   "(once)")]
    out += [("Ready", "api: wait until every node is Ready and kube-system pods k8s-app=kube-dns are Ready"),
            ("VerifyRuntime", f"api: every node status.nodeInfo.containerRuntimeVersion == "
                              f"{kc.cell.expected_runtime_version}; record status.features")]
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


def write(cell: Cell, opts: ClusterOptions, catalogue: Catalogue, cache: Path) -> tuple[Path, str]:
    """Write RESULTS_DIR/plan/<cell>/{kind-config.yaml, Dockerfile, build-args, commands.txt,
    expectations.txt, README}; return the folder and the text printed to the user."""
    folder = opts.results_dir / "plan" / cell.id
    folder.mkdir(parents=True, exist_ok=True)
    plan_opts = ClusterOptions(results_dir=folder.parent.parent, workers=opts.workers, keep=opts.keep,
                               reuse=opts.reuse, wait=opts.wait, arch=opts.arch)
    kc = KindCell(cell, plan_opts)
    kc.config_path = folder / "kind-config.yaml"
    kc.kubeconfig = opts.results_dir / cell.id / "kubeconfig"
    kc.logs_dir = opts.results_dir / cell.id / "kind-logs"
    archives = planned_archives(catalogue, cache / "images")
    config = kc.config_yaml()
    (folder / "kind-config.yaml").write_text(config)
    if kc.image.stock:
        dockerfile = f"# stock node image, nothing to build: {kc.image.ref}\n"
    else:
        dockerfile = kc.image.dockerfile_text()
    (folder / "Dockerfile").write_text(dockerfile)
    (folder / "build-args").write_text(kc.image.build_args_text())
    commands = render(kc, archives)
    (folder / "commands.txt").write_text(commands)
    expect = "\n".join(expectations(cell, catalogue)) + "\n"
    (folder / "expectations.txt").write_text(expect)
    kind_of = "stock" if kc.image.stock else f"derived, cache key {kc.image.cache_key}"
    source = "stock" if kc.image.stock else str(kc.image.dockerfile)
    header = (f"Plan for cell {cell.id}: {cell.runtime} {cell.runtime_version} on Kubernetes {cell.k8s} "
              f"(kind {cell.kind})\n"
              f"  base node image: {cell.base_node_image} (digest source: {cell.digest_source})\n"
              f"  node image: {kc.image.ref} ({kind_of})\n"
              f"  runtime supports supplementalGroupsPolicy: {cell.supported}; kubelet 1.{cell.k8s_minor} "
              f"{'rejects' if cell.k8s_minor >= 33 else 'does not reject'} Strict on unsupported nodes\n"
              + (f"  notes: {cell.notes}\n" if cell.notes else "")
              + f"  written to {folder}/ (nothing was run)\n")
    text = (header + f"\n--- kind-config.yaml\n{config}\n--- Dockerfile ({source})\n"
            f"{dockerfile}\n--- build-args\n{kc.image.build_args_text() or '(none)'}\n"
            f"--- commands.txt (in order)\n{commands}\n--- expectations.txt\n{expect}")
    (folder / "README").write_text(header)
    return folder, text


def without_cases(argv: list[str]) -> int:
    """`sgp-conformance run --target kind` with DRY_RUN=1 (or --dry-run): write and print the cell's plan."""
    p = argparse.ArgumentParser(prog="sgp-conformance run --target kind --dry-run", description=__doc__)
    p.add_argument("--runtime", help="containerd or crio")
    p.add_argument("--version", help="runtime version, e.g. 1.7, 2.1, 1.34 (cells in versions.yaml)")
    p.add_argument("--k8s", help="Kubernetes version when a runtime version has several cells")
    p.add_argument("--workers", type=int, default=1, help="worker nodes (default 1)")
    p.add_argument("--results-dir", default="results", help="where the plan goes (default results/)")
    p.add_argument("--versions-file", default=str(cells.VERSIONS_FILE), help=argparse.SUPPRESS)
    args, _ = p.parse_known_args(argv)
    try:
        if not args.runtime:
            raise SuiteError("TARGET=kind needs RUNTIME=containerd|crio (and VERSION)")
        catalogue = Catalogue.load(PROJECT / "scenarios", PROJECT / "images")
        cell = cells.select(cells.load(Path(args.versions_file)), args.runtime, args.version, args.k8s)
        _, text = write(cell, ClusterOptions(results_dir=Path(args.results_dir), workers=args.workers), catalogue,
                        default_cache())
        print(text)
        return 0
    except SuiteError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
