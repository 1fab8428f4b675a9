"""harness list: the cells a profile expands to, one a line, with every skip's reason."""

from __future__ import annotations

import argparse

from harness.cli import EXIT_OK
from harness.commands.common import add_download_arguments, add_matrix_arguments


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_matrix_arguments(parser)
    add_download_arguments(parser)


def main(args: argparse.Namespace) -> int:
    from harness.commands.common import discover_host, load_plan, open_catalog

    catalog = open_catalog(args.offline, not args.no_verify)
    host = discover_host(args.qemu, catalog)
    plan = load_plan(catalog, host, args.profile, args.matrix, args.keyword)
    for planned in plan.cells:
        notes = []
        if planned.skip:
            notes.append(f"skip: {planned.skip}")
        if offline := catalog.unavailable_offline(planned.cell.image):
            notes.append(f"skip: {offline}")
        if planned.expect:
            why = " ".join(filter(None, [planned.expect.stage, planned.expect.reason]))
            notes.append(f"expected to fail{': ' + why if why else ''}")
        print(planned.cell.id + ("  (" + "; ".join(notes) + ")" if notes else ""))
    runnable = sum(1 for p in plan.cells if not p.skip)
    print(f"{len(plan.cells)} cells in profile {plan.profile}, {runnable} runnable here")
    return EXIT_OK
