"""harness matrix: boot the cells of a profile (in parallel), record each result as it
finishes, and print the grid."""

from __future__ import annotations

import argparse
import os
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.cli import EXIT_ERROR, EXIT_FAIL, EXIT_OK
from harness.commands.common import add_matrix_arguments

if TYPE_CHECKING:
    from harness.host import Host
    from harness.matrix.expand import Plan


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_matrix_arguments(parser)
    parser.add_argument(
        "-j", "--jobs", type=int, help="cells at once (default: what this host carries)"
    )
    parser.add_argument(
        "--resume", type=Path, metavar="RUN", help="finish the run in RUN (results/<run>)"
    )
    parser.add_argument(
        "--results", type=Path, help="where runs go (default: results/ of the checkout)"
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="boot each cell N times; disagreeing cells are unstable",
    )
    parser.add_argument("--timeout", type=float, help="seconds per cell, instead of matrix.yaml's")
    parser.add_argument("--smp", type=int, default=1, help="guest CPUs (default: 1)")


def default_jobs(host: Host, guest_mib: int = 1024) -> int:
    """One guest per core (a TCG vCPU keeps a core busy), as many as memory holds
    with 1 GiB left for the host."""
    by_memory = max(1, (host.memory_mib - 1024) // (guest_mib + 256))
    return max(1, min(host.cpus, by_memory))


def main(args: argparse.Namespace) -> int:
    from harness.boot import BootOptions
    from harness.catalog import Catalog, Workspace
    from harness.commands.common import cell_setup, load_plan
    from harness.host import discover
    from harness.matrix.progress import Progress
    from harness.matrix.run import MatrixRunner
    from harness.matrix.rundir import RunDir

    workspace = Workspace.locate(os.environ)
    catalog = Catalog(workspace, os.environ, print)
    host = discover(args.qemu, os.environ)
    if args.resume:
        run = RunDir.open(args.resume)
        args.profile = run.meta().get("profile", args.profile)
    plan = load_plan(args, catalog, host)
    if not args.resume:
        run = RunDir.create(
            args.results or workspace.results, plan.profile, _meta(args, plan, host)
        )
    setup = cell_setup(catalog, host)
    jobs = args.jobs or default_jobs(host)
    cancel = threading.Event()
    options = BootOptions(timeout_s=args.timeout, smp=args.smp, cancel=cancel)
    print(f"run {run.path} | profile {plan.profile} | {len(plan.cells)} cells | -j {jobs} | "
          f"{host.accel('auto')} | QEMU {host.qemu_version}", flush=True)  # fmt: skip
    _prepare_images(plan, setup)
    progress = Progress(0, jobs, sys.stdout)
    runner = MatrixRunner(run, setup, host, options, progress.finish, progress.start)
    tasks = runner.tasks(plan, args.repeat)
    progress.total = len(tasks)
    try:
        runner.execute(tasks, jobs, cancel, progress.tick)
    finally:
        progress.close()
    return _report(run, plan, args.repeat)


def _prepare_images(plan: Plan, setup: Any) -> None:
    """Builds what the runnable cells need before any boot, so the progress and the
    cells' durations are about booting."""
    from harness.errors import HarnessError

    seen = set()
    for planned in plan.cells:
        if planned.skip or planned.cell.image in seen:
            continue
        seen.add(planned.cell.image)
        try:
            setup.image(planned.cell)
        except HarnessError as e:
            print(f"image {planned.cell.image}: {e} (its cells will be errors)", flush=True)


def _meta(args: argparse.Namespace, plan: Plan, host: Host) -> dict[str, Any]:
    return {
        "profile": plan.profile,
        "matrix": str(args.matrix or "matrix.yaml"),
        "keyword": args.keyword,
        "repeat": args.repeat,
        "cells": [p.cell.id for p in plan.cells],
        "host": host.facts(),
    }


def _report(run: Any, plan: Plan, repeat: int) -> int:
    from harness.matrix.run import MET, combined
    from harness.matrix.rundir import latest_per_cell
    from harness.report.grid import build_grid, problems, render_text

    latest = latest_per_cell(run.records())
    final = []
    for planned in plan.cells:
        repeats = [
            latest[(planned.cell.id, k)] for k in range(repeat) if (planned.cell.id, k) in latest
        ]
        if repeats:
            final.append({**repeats[-1], "outcome": combined([r["outcome"] for r in repeats])})
    grid = build_grid(final)
    print(render_text(grid))
    for line in problems(grid):
        print(line)
    outcomes = {r["outcome"] for r in final}
    missing = len(plan.cells) - len(final)
    resume = f"; {missing} missing (harness matrix --resume {run.path})" if missing else ""
    print(f"{len(final)} of {len(plan.cells)} cells have results in {run.path}{resume}")
    if "error" in outcomes or missing:
        return EXIT_ERROR
    return EXIT_OK if outcomes <= MET else EXIT_FAIL
