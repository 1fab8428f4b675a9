"""harness compare OLD NEW: what changed between two runs; exit 1 on a regression."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.cli import EXIT_FAIL, EXIT_OK


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("old", type=Path, help="the earlier run (directory or results.json)")
    parser.add_argument("new", type=Path, help="the later run (directory or results.json)")


def main(args: argparse.Namespace) -> int:
    from harness.report.compare import REGRESSION, compare, table
    from harness.report.write import load_run_cells

    old = load_run_cells(args.old)
    new = load_run_cells(args.new)
    labels = compare(old, new)
    print(table(labels, old, new))
    return EXIT_FAIL if REGRESSION in labels.values() else EXIT_OK
