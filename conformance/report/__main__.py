"""`python -m conformance.report RESULTS_DIR`: regenerate matrix.{json,md,html} from existing cell folders."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from conformance.report import build


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m conformance.report", description=__doc__)
    parser.add_argument("results_dir", type=Path, help="folder holding one sub-folder per cell (results.json)")
    parser.add_argument("--cells", default="", help="only these cell ids, in this order (default: every cell folder)")
    parser.add_argument("--exit-zero", action="store_true", help="exit 0 even when the matrix has failures")
    args = parser.parse_args(argv)
    if not args.results_dir.is_dir():
        print(f"error: {args.results_dir} is not a folder", file=sys.stderr)
        return 2
    matrix, paths = build(args.results_dir, args.cells.replace(",", " ").split() or None)
    if not matrix.cells:
        print(f"error: no cell folders with results.json under {args.results_dir}", file=sys.stderr)
        return 2
    for cell in matrix.cells:
        counts = ", ".join(f"{n} {v}" for v, n in cell.counts.items() if n) or "no cases"
        print(f"{cell.id}: {cell.label}: {counts}; exit {cell.exit_code}")
    print(f"matrix: exit {matrix.exit_code}; " + ", ".join(str(p) for p in paths.values()))
    return 0 if args.exit_zero else matrix.exit_code


if __name__ == "__main__":
    sys.exit(main())
