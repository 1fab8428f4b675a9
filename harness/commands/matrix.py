"""harness matrix: boot the cells of a profile (in parallel), record each result as it
finishes, and print the grid."""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.commands.common import (
    add_download_arguments,
    add_log_cap_argument,
    add_matrix_arguments,
)
from harness.commands.sharding import add_shard_arguments

if TYPE_CHECKING:
    from harness.host import Host
    from harness.matrix.expand import Plan
    from harness.matrix.rundir import RunDir


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_matrix_arguments(parser)
    add_download_arguments(parser)
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
    add_log_cap_argument(parser)
    add_shard_arguments(parser)
    parser.add_argument(
        "--baseline",
        type=Path,
        metavar="RUN",
        help="compare with RUN (a run directory or results.json)",
    )


def default_jobs(host: Host, guest_mib: int = 1024) -> int:
    """One guest per core (a TCG vCPU keeps a core busy), as many as memory holds
    with 1 GiB left for the host."""
    by_memory = max(1, (host.memory_mib - 1024) // (guest_mib + 256))
    return max(1, min(host.cpus, by_memory))


def main(args: argparse.Namespace) -> int:
    from harness.boot import BootOptions
    from harness.commands.common import (
        cell_setup,
        discover_host,
        load_plan,
        open_catalog,
        prepare,
    )
    from harness.commands.sharding import plan_cost
    from harness.matrix.progress import Progress
    from harness.matrix.run import MatrixRunner
    from harness.matrix.rundir import RunDir
    from harness.matrix.shard import shard
    from harness.scheduler import longest_first

    catalog = open_catalog(args.offline, not args.no_verify)
    workspace = catalog.workspace
    host = discover_host(args.qemu, catalog)
    if args.resume:
        run = RunDir.open(args.resume)
        _as_recorded(args, run.meta())
    plan = load_plan(catalog, host, args.profile, args.matrix, args.keyword)
    results = run.path.parent if args.resume else args.results or workspace.results
    cost = plan_cost(args, results, "matrix")
    if args.shard and not args.resume:  # a resumed run keeps the cells it planned
        plan = shard(plan, args.shard, cost)
    if args.resume:
        plan = _recorded_cells(plan, run.meta())
    else:
        run = RunDir.create(
            args.results or workspace.results, plan.profile, _meta(args, plan, host)
        )
    setup = cell_setup(catalog, host)
    jobs = args.jobs or default_jobs(host)
    cancel = threading.Event()
    options = BootOptions(timeout_s=args.timeout, smp=args.smp, cancel=cancel, log_cap=args.log_cap)
    print(f"run {run.path} | profile {plan.profile} | {len(plan.cells)} cells | -j {jobs} | "
          f"{host.accel('auto')} | QEMU {host.qemu_version}", flush=True)  # fmt: skip
    for line in prepare(setup, [p.cell for p in plan.cells if not p.skip], jobs):
        print(line, flush=True)
    progress = Progress(0, jobs, sys.stdout)
    runner = MatrixRunner(run, setup, host, options, progress.finish, progress.start)
    tasks = longest_first(runner.tasks(plan, args.repeat), lambda task: cost(task.planned))
    progress.total = len(tasks)
    try:
        runner.execute(tasks, jobs, cancel, progress.tick)
    finally:
        progress.close()
        if cancel.is_set():
            _write_partial_reports(run)
    status = _report(run, plan, args.baseline)
    if args.shard:  # a night is the merged run: shards would be nights of a few cells
        print("history: a shard is recorded once merged (harness history import MERGED_RUN)")
    else:
        _record_history(run.path, args.db)
    return status


def _record_history(run: Path, option: Path | None) -> None:
    """The finished run into the history (an interrupted one is recorded when its
    --resume ends: once, under the same run id); a history that cannot take it is
    one line, and the run's own exit status stands."""
    import os

    from harness.errors import HarnessError
    from harness.history.db import history_path, record_run_dir

    db = history_path(option, os.environ, run.parent)
    try:
        print(f"history: {record_run_dir(db, run)} in {db}")
    except HarnessError as e:
        print(f"harness matrix: the run is not in the history: {e}", file=sys.stderr)


def _recorded_cells(plan: Plan, meta: dict[str, Any]) -> Plan:
    """A resumed run finishes the cells it planned, even if matrix.yaml grew since."""
    import dataclasses

    recorded = set(meta.get("cells", []))
    return dataclasses.replace(plan, cells=tuple(p for p in plan.cells if p.cell.id in recorded))


def _as_recorded(args: argparse.Namespace, meta: dict[str, Any]) -> None:
    """A resumed run plans its cells as the first run did."""
    args.profile = meta.get("profile", args.profile)
    args.matrix = Path(meta["matrix"]) if meta.get("matrix") else None
    args.keyword = meta.get("keyword")
    args.shard = meta.get("shard")
    args.repeat = meta.get("repeat", args.repeat)


def _write_partial_reports(run: RunDir) -> None:
    """On Ctrl-C: the reports of what finished, marked incomplete, then the interrupt."""
    from harness.errors import HarnessError
    from harness.report.write import write_reports

    try:
        write_reports(run)
    except (OSError, HarnessError) as e:  # a full disk may be why the run stopped
        print(f"harness matrix: no partial reports: {e}", file=sys.stderr)


def _meta(args: argparse.Namespace, plan: Plan, host: Host) -> dict[str, Any]:
    return {
        "profile": plan.profile,
        "matrix": str(args.matrix.resolve()) if args.matrix else None,
        "keyword": args.keyword,
        "repeat": args.repeat,
        "timeout": args.timeout,
        "smp": args.smp,
        "shard": args.shard,
        "cells": [p.cell.id for p in plan.cells],
        "host": host.facts(),
    }


def _report(run: RunDir, plan: Plan, baseline: Path | None) -> int:
    from harness.report.compare import table
    from harness.report.grid import build_grid, problems, render_text
    from harness.report.results import verdict_exit
    from harness.report.write import write_reports

    reports = write_reports(run, baseline)
    grid = build_grid(reports.final)
    print(render_text(grid))
    for line in problems(grid):
        print(line)
    if reports.comparison is not None and reports.baseline is not None:
        print(f"compared with {baseline}:")
        print(table(reports.comparison, reports.baseline, reports.final))
    missing = len(plan.cells) - len(reports.final)
    resume = f"; {missing} missing (harness matrix --resume {run.path})" if missing else ""
    print(f"{len(reports.final)} of {len(plan.cells)} cells have results in {run.path}{resume}")
    flaky = ", flaky.html" if (run.path / "flaky.html").exists() else ""
    print(f"reports: {run.path}/report.html, report.md, junit.xml, results.json{flaky}")
    return verdict_exit(reports.final, len(plan.cells), reports.comparison)
