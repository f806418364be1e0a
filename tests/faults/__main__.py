"""`make faults`: run every injected fault against real containerd; one line per fault, then the diffs.

Exit 0 when every fault is caught and every control passes, 1 when one is missed, 2 when the
runtimes cannot run here.
"""

from __future__ import annotations

import argparse
import os
import sys

from tests.conftest import runtime_missing
from tests.faults.harness import CONTROLS, FAULTS, KUBELET_CONTROLS, KUBELET_FAULTS, Outcome, run_all


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.faults", description=__doc__)
    parser.add_argument("-k", dest="only", default="", help="run only faults whose name contains this")
    parser.add_argument("-q", dest="quiet", action="store_true", help="no expected-vs-observed diffs")
    args = parser.parse_args(argv)
    missing = runtime_missing()
    if missing:
        print(f"error: cannot inject faults here: {missing}", file=sys.stderr)
        return 2
    kubelet = KUBELET_CONTROLS + KUBELET_FAULTS
    if not os.environ.get("K8S_BIN_DIR"):
        print("skipped: the faults behind a real kubelet need K8S_BIN_DIR=<folder with kube-apiserver, "
              "kube-controller-manager, kube-scheduler, kubelet>", flush=True)
        kubelet = []
    selected = [f for f in CONTROLS + FAULTS + kubelet if args.only in f.name]

    def report(outcome: Outcome) -> None:
        print(outcome.line(), flush=True)

    outcomes, leftovers = run_all(selected, report)
    if not args.quiet:
        print("\nexpected vs observed:")
        for outcome in outcomes:
            if outcome.fault.allowed or not outcome.caught:
                print(outcome.diff())
    for item in leftovers:
        print(f"LEFTOVER: {item}")
    caught = sum(o.caught for o in outcomes if o.fault.allowed)
    total = sum(1 for o in outcomes if o.fault.allowed)
    ok = all(o.caught for o in outcomes) and not leftovers
    print(f"\nfaults: {caught}/{total} caught; controls: "
          f"{sum(o.caught for o in outcomes if not o.fault.allowed)}/{len(outcomes) - total} ok")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
