"""harness bisect: the first machine type (or firmware or QEMU build) where a cell changes.

harness bisect IMAGE/FIRMWARE/TRANSPORT --machines virt-2.6..virt-7.2
harness bisect IMAGE/MACHINE/TRANSPORT --firmware aavmf-bullseye,aavmf-bookworm,aavmf-trixie
harness bisect IMAGE/FIRMWARE/MACHINE/TRANSPORT --qemu-builds host,qemu-trixie
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from harness.cli import EXIT_ERROR, EXIT_FAIL, EXIT_OK
from harness.commands.common import add_download_arguments, directory, seconds
from harness.wording import counted

if TYPE_CHECKING:
    from harness.records import RunMeta


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "spec",
        metavar="SPEC",
        help="IMAGE/FIRMWARE/TRANSPORT (--machines), IMAGE/MACHINE/TRANSPORT (--firmware), "
        "IMAGE/FIRMWARE/MACHINE/TRANSPORT (--qemu-builds)",
    )
    axis = parser.add_mutually_exclusive_group(required=True)
    axis.add_argument(
        "--machines",
        metavar="RANGE",
        help="machine types to search, e.g. virt-2.6..virt-7.2, or all",
    )
    axis.add_argument(
        "--firmware", metavar="A,B,...", help="firmware builds to search, in this order"
    )
    # --qemu is every command's QEMU binary.
    axis.add_argument(
        "--qemu-builds",
        metavar="A,B,...",
        help="QEMU builds to search, oldest first (host, names of images/qemu.yaml)",
    )
    parser.add_argument("--timeout", type=seconds, help="seconds per boot")
    parser.add_argument(
        "--results", type=directory, help="where its run goes (default: results/ of the checkout)"
    )
    add_download_arguments(parser)


def main(args: argparse.Namespace) -> int:
    from harness.bisect import bisect
    from harness.boot import BootOptions
    from harness.cells import check_cell
    from harness.commands.common import cell_setup, discover_host, open_catalog, prepare
    from harness.errors import UsageError
    from harness.matrix.expand import select_machines
    from harness.matrix.rundir import RunDir
    from harness.model import Cell, CellResult
    from harness.runner import run_cell

    catalog = open_catalog(args.offline, not args.no_verify)
    host = discover_host(args.qemu, catalog)
    parts = args.spec.split("/")
    if len(parts) != (4 if args.qemu_builds else 3):
        raise UsageError(
            f"bad bisect spec {args.spec!r}: write IMAGE/FIRMWARE/TRANSPORT with --machines, "
            "IMAGE/MACHINE/TRANSPORT with --firmware, "
            "IMAGE/FIRMWARE/MACHINE/TRANSPORT with --qemu-builds"
        )
    image, fixed, transport = parts[0], parts[1], parts[-1]
    setup = cell_setup(catalog, host)
    if args.qemu_builds:
        machine = parts[2]
        cells = [Cell(image, fixed, machine, transport, q) for q in args.qemu_builds.split(",")]
    elif args.machines:
        machines = select_machines(args.machines, host.machines)
        if isinstance(machines, str):
            raise UsageError(f"--machines {args.machines}: {machines}")
        cells = [Cell(image, fixed, machine, transport) for machine in machines]
    else:
        cells = [Cell(image, firmware, fixed, transport) for firmware in args.firmware.split(",")]
    if len(cells) < 2:
        raise UsageError("bisect needs at least two cells along the axis")
    for cell in cells:
        qemu = setup.host(cell) if setup.host is not None else host  # the cell's QEMU build
        check_cell(cell, catalog.image_names(), qemu, catalog.firmware_names())
    meta: RunMeta = {"profile": "bisect", "cells": [c.id for c in cells]}
    run = RunDir.create(args.results or catalog.workspace.results, "bisect", meta)
    run.mark_latest("latest-bisect")  # results/latest stays the newest matrix run
    options = BootOptions(timeout_s=args.timeout)
    # every firmware build along the axis
    for line in prepare(setup, cells, len(cells), catalog.cancel):
        print(line, flush=True)

    def boot(cell: Cell) -> CellResult:
        result = run_cell(cell, setup, host, run.cell_dir(cell), options, None, lambda _: None)
        run.append(
            {
                **result.to_json(),
                "outcome": result.status,
                "attempts": 1,
                "expect": None,
                "repeat": 0,
            }
        )
        print(f"  {result.summary()}", flush=True)
        return result

    print(f"bisecting {counted(len(cells), 'cell')} from {cells[0]} to {cells[-1]} "
          f"(logs in {run.path})")  # fmt: skip
    found = bisect(cells, boot)
    if found.stopped_by is not None:
        failed = found.stopped_by
        print(f"harness bisect: cannot go on: {failed.cell} ended in error: {failed.detail}",
              file=sys.stderr)  # fmt: skip
        return EXIT_ERROR
    axis = (
        "machine type" if args.machines else "QEMU build" if args.qemu_builds else "firmware build"
    )
    if found.first_different is None:
        print(f"no change: {cells[0]} and {cells[-1]} both end {found.tried[0].status}")
        return EXIT_FAIL
    before, after = found.last_same, found.first_different
    assert before is not None
    field = "machine" if args.machines else "qemu" if args.qemu_builds else "firmware"
    changed, unchanged = getattr(after.cell, field), getattr(before.cell, field)
    print(
        f"first {axis} that changes it: {changed} ({after.status} {after.stage} {after.reason}); "
        f"last as before: {unchanged} ({before.status}); {counted(len(found.tried), 'boot')}"
    )
    return EXIT_OK
