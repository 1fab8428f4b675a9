"""harness compare OLD NEW: what changed between two runs; exit 1 on a regression,
3 where there is none but a cell that met its expectation is an error now."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.cli import EXIT_FAIL, EXIT_OK

# No regression, but cells that met their expectation in OLD are host errors in NEW:
# NEW could not test them, so it must not look green (1 stays "a regression", 2 bad input).
EXIT_UNTESTED = 3


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = (
        "exit status: 0 nothing regressed, 1 a regression (a cell that met its expectation "
        f"fails now), {EXIT_UNTESTED} no regression but a cell that met its expectation is "
        "an error now (labelled untested: the new run could not test it), 2 bad input"
    )
    parser.add_argument("old", type=Path, help="the earlier run (directory or results.json)")
    parser.add_argument("new", type=Path, help="the later run (directory or results.json)")


def main(args: argparse.Namespace) -> int:
    from harness.report.compare import REGRESSION, UNTESTED, compare, table
    from harness.report.write import load_run_cells

    old = load_run_cells(args.old)
    new = load_run_cells(args.new)
    labels = compare(old, new)
    print(table(labels, old, new))
    if REGRESSION in labels.values():
        return EXIT_FAIL
    return EXIT_UNTESTED if UNTESTED in labels.values() else EXIT_OK
