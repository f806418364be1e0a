"""Console command `sgp-conformance`: run | lint | audit | images. `run` is a thin wrapper over pytest."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from conformance.core.options import FLAGS, from_environment, from_mapping, switch
from conformance.errors import SuiteError
from conformance.paths import CHECKOUT, DATA, IMAGES, PYTEST_CONFIG, SCENARIOS


def run_argv(args: argparse.Namespace, extra: list[str]) -> list[str]:
    """The pytest command line for a run: one item per case, JUnit next to results.json."""
    results = Path(getattr(args, "results_dir", None) or "results")
    scenarios = Path(getattr(args, "scenarios", None) or SCENARIOS)
    argv = [str(scenarios), "-p", "conformance.front.plugin", "-q", "--no-header",
            f"--junitxml={results / 'junit.xml'}",
            "-o", "junit_suite_name=sgp-conformance", "-o", "junit_family=xunit1", "-rN", "--tb=no",
            f"--rootdir={DATA}", "-c", str(PYTEST_CONFIG)]
    if not CHECKOUT:  # an installed package writes nothing beside itself: pytest's cache goes with the results
        argv += ["-o", f"cache_dir={results.absolute() / '.pytest_cache'}"]
    for option in FLAGS:
        value = getattr(args, option.name.replace("-", "_"), None)
        if value:
            argv.append(f"--sgp-{option.name}={value}")
    if not getattr(args, "target", None):
        argv.append("--sgp-target=node")
    return argv + extra


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sgp-conformance", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the scenarios (extra arguments go to pytest, e.g. -k, -m, --lf, -n)")
    for option in FLAGS:
        run.add_argument(f"--{option.name}", help=f"{option.help} [{option.env}; {', '.join(option.targets)}]")
    run.add_argument("--dry-run", action="store_true", help="print the plan (TARGET=kind, cluster); run nothing "
                     "[DRY_RUN]")
    run.add_argument("--cleanup", action="store_true", help="remove what runs that died left (TARGET=cluster: "
                     "the namespaces earlier KEEP=1 runs left)")
    run.add_argument("--options-from-env", action="store_true",
                     help="take every option not given as a flag from its variable in the environment (make)")
    lint = sub.add_parser("lint", help="validate scenarios and images; expectations must equal the oracle's")
    lint.add_argument("--scenarios", default=str(SCENARIOS))
    lint.add_argument("--images", default=str(IMAGES))
    from conformance.audit import cli as audit_cli

    audit = sub.add_parser("audit", help="read-only: which workloads would lose groups under Strict, which nodes "
                                         "would reject Strict pods")
    audit_cli.add_arguments(audit)
    from conformance.testimages import imagepush

    images = sub.add_parser("images", help="the test images for a cluster the suite did not start: push them to a "
                                           "registry, or export them as archives")
    imagepush.add_arguments(images)
    argv = list(argv if argv is not None else sys.argv[1:])
    if argv[:1] == ["run"]:  # `make conformance`: variables become flags
        argv = from_environment(argv)
    args, extra = parser.parse_known_args(argv)
    if args.command == "run" and (args.cleanup or args.dry_run or switch(os.environ.get("DRY_RUN"))):
        from conformance.targets import without_cases

        try:
            opts = from_mapping({o.name: getattr(args, o.name.replace("-", "_")) for o in FLAGS})
        except SuiteError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        return without_cases(opts, cleanup=args.cleanup)  # a plan or a cleanup runs no case
    if args.command == "audit":
        if extra:
            parser.error(f"unknown arguments: {extra}")
        return audit_cli.main(args)
    if args.command == "images":
        if extra:
            parser.error(f"unknown arguments: {extra}")
        return imagepush.main(args)
    if args.command == "lint":
        from conformance.tools.lint import main as lint_main

        if extra:
            parser.error(f"unknown arguments: {extra}")
        return lint_main(Path(args.scenarios), Path(args.images))
    import pytest

    code = int(pytest.main(run_argv(args, extra)))
    return code if code in (0, 1) else 2


if __name__ == "__main__":
    sys.exit(main())
