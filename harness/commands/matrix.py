"""harness matrix: boot the cells of a profile (in parallel), record each result as it
finishes, and print the grid."""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from harness.commands.common import (
    add_download_arguments,
    add_log_cap_argument,
    add_matrix_arguments,
    count,
    directory,
    seconds,
)
from harness.commands.sharding import add_shard_arguments
from harness.wording import counted

if TYPE_CHECKING:
    from harness.host import Host
    from harness.matrix.expand import Plan
    from harness.matrix.run import Task
    from harness.matrix.rundir import RunDir
    from harness.records import RunMeta


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_matrix_arguments(parser)
    add_download_arguments(parser)
    parser.add_argument(
        "-j", "--jobs", type=count, help="cells at once (default: what this host carries)"
    )
    parser.add_argument(
        "--resume", type=Path, metavar="RUN", help="finish the run in RUN (results/<run>)"
    )
    parser.add_argument(
        "--results", type=directory, help="where runs go (default: results/ of the checkout)"
    )
    parser.add_argument(
        "--repeat",
        type=count,
        default=1,
        help="boot each cell N times; disagreeing cells are unstable",
    )
    parser.add_argument(
        "--timeout", type=seconds, help="seconds per cell, instead of matrix.yaml's"
    )
    parser.add_argument("--smp", type=count, default=1, help="guest CPUs (default: 1)")
    add_log_cap_argument(parser)
    add_shard_arguments(parser)
    parser.add_argument(
        "--baseline",
        type=Path,
        metavar="RUN",
        help="compare with RUN (a run directory or results.json)",
    )


def _guests_in_memory(host: Host, guest_mib: int) -> int:
    return max(1, (host.memory_mib - 1024) // (guest_mib + 256))


def default_jobs(host: Host, guest_mib: int = 1024) -> int:
    """One guest per core (a TCG vCPU keeps a core busy), as many as memory holds
    with 1 GiB left for the host."""
    return max(1, min(host.cpus, _guests_in_memory(host, guest_mib)))


def workers_for(host: Host, jobs: int, guest_mib: int = 1024) -> int:
    """Guests at once in all: `jobs` booting, and as many again past their login
    prompt (logging in, probing, shutting down: mostly waiting on a quiet guest),
    as memory holds (1 GiB left for the host)."""
    return max(jobs, min(2 * jobs, _guests_in_memory(host, guest_mib)))


def main(args: argparse.Namespace) -> int:
    from harness.boot import BootOptions
    from harness.commands.common import (
        cell_setup,
        discover_host,
        load_plan,
        open_catalog,
        prepare,
    )
    from harness.commands.output import reader_proof
    from harness.commands.sharding import plan_cost
    from harness.errors import HarnessError, Resumable
    from harness.matrix.progress import Progress
    from harness.matrix.run import MatrixRunner
    from harness.matrix.rundir import RunDir, report_torn
    from harness.matrix.shard import shard
    from harness.report.write import load_run_cells
    from harness.scheduler import longest_first

    if args.baseline:
        load_run_cells(args.baseline)  # a bad baseline stops the run before any boot
    catalog = open_catalog(args.offline, not args.no_verify)
    workspace = catalog.workspace
    host = discover_host(args.qemu, catalog)
    if args.resume:
        run = RunDir.open(args.resume)
        run.lock()
        report_torn(run, run.repair(), "matrix")
        run.records()  # every recorded line is checked before anything boots
        _as_recorded(args, run.meta())
    plan = load_plan(catalog, host, args.profile, args.matrix, args.keyword)
    results = run.path.parent if args.resume else args.results or workspace.results
    cost = plan_cost(args.durations, args.db, results, "matrix")
    if args.shard and not args.resume:  # a resumed run keeps the cells it planned
        plan = shard(plan, args.shard, cost)
    if args.resume:
        plan = _recorded_cells(plan, run.meta())
    else:
        run = RunDir.create(
            args.results or workspace.results, plan.profile, _meta(args, plan, host)
        )
    out = reader_proof(
        sys.stdout, f"harness matrix: stdout was closed; the run goes on, results in {run.path}"
    )
    setup = cell_setup(catalog, host)
    jobs = args.jobs or default_jobs(host)
    cancel = catalog.cancel  # one event stops the boots and the builds on workers
    options = BootOptions(timeout_s=args.timeout, smp=args.smp, cancel=cancel, log_cap=args.log_cap)
    cells = counted(len(plan.cells), "cell")
    print(f"run {run.path} | profile {plan.profile} | {cells} | -j {jobs} | "
          f"{host.accel('auto')} | QEMU {host.qemu_version}", file=out, flush=True)  # fmt: skip
    progress = Progress(0, jobs, out)
    marked = threading.Lock()  # boots start on several workers: the first moves `latest`
    booted = threading.Event()

    def on_output(task: Task) -> None:
        # `latest` is the newest run that booted something: moved when a guest of it
        # first prints (run.json is written by then), never by a run whose cells all
        # ended before one did (skips, image builds that failed, a QEMU failing at
        # start, host errors), nor by a resume or bisect.
        with marked:
            if not booted.is_set() and not args.resume:
                run.mark_latest()
            booted.set()

    runner = MatrixRunner(run, setup, host, options, progress.finish, progress.start, on_output)
    stopped_by_error = False
    try:
        # a build may take minutes: Ctrl-C there also says how to resume
        for line in prepare(setup, [p.cell for p in plan.cells if not p.skip], jobs, cancel):
            print(line, file=out, flush=True)
        tasks = longest_first(runner.tasks(plan, args.repeat), lambda task: cost(task.planned))
        progress.total = sum(1 + len(task.twins) for task in tasks)
        runner.execute(tasks, jobs, cancel, progress.tick, workers_for(host, jobs))
    except KeyboardInterrupt as e:
        raise Resumable(f"harness matrix --resume {run.path}") from e
    except HarnessError:
        stopped_by_error = True
        raise
    finally:
        progress.close()
        if cancel.is_set():
            _write_partial_reports(run, say=not stopped_by_error)
    status = _report(run, plan, args.baseline, out)
    if args.shard:  # a night is the merged run: shards would be nights of a few cells
        print("history: a shard is recorded once merged (harness history import MERGED_RUN)",
              file=out)  # fmt: skip
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
        print(f"history: {record_run_dir(db, run)} in {db}", flush=True)
    except HarnessError as e:
        print(f"harness matrix: the run is not in the history: {e}", file=sys.stderr)


def _recorded_cells(plan: Plan, meta: RunMeta) -> Plan:
    """A resumed run finishes the cells it planned, even if matrix.yaml grew since."""
    import dataclasses

    recorded = set(meta.get("cells", []))
    return dataclasses.replace(plan, cells=tuple(p for p in plan.cells if p.cell.id in recorded))


def _as_recorded(args: argparse.Namespace, meta: RunMeta) -> None:
    """A resumed run plans its cells as the first run did."""
    args.profile = meta.get("profile", args.profile)
    matrix = meta.get("matrix")
    args.matrix = Path(matrix) if matrix else None
    args.keyword = meta.get("keyword")
    args.shard = meta.get("shard")
    args.repeat = meta.get("repeat", args.repeat)


def _write_partial_reports(run: RunDir, say: bool) -> None:
    """On Ctrl-C or an error that stops the run: the reports of what finished, marked
    incomplete. Reports that cannot be written are said only when `say`: a run stopped
    by an error has that error's one line (a full disk fails both, and the line naming
    the cause must be the one line)."""
    from harness.errors import HarnessError
    from harness.report.write import write_reports

    try:
        write_reports(run)
    except (OSError, HarnessError) as e:  # a full disk may be why the run stopped
        if say:
            print(f"harness matrix: no partial reports: {e}", file=sys.stderr)


def _meta(args: argparse.Namespace, plan: Plan, host: Host) -> RunMeta:
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


def _report(run: RunDir, plan: Plan, baseline: Path | None, out: TextIO) -> int:
    from harness.report.compare import table
    from harness.report.grid import build_grid, problems, render_text
    from harness.report.results import nothing_booted, verdict_exit
    from harness.report.write import write_reports

    reports = write_reports(run, baseline)
    grid = build_grid(reports.final)
    print(render_text(grid), file=out)
    for line in problems(grid):
        print(line, file=out)
    if reports.comparison is not None and reports.baseline is not None:
        print(f"compared with {baseline}:", file=out)
        print(table(reports.comparison, reports.baseline, reports.final), file=out)
    missing = len(plan.cells) - len(reports.final)
    resume = f"; {missing} missing (harness matrix --resume {run.path})" if missing else ""
    have = "has" if len(reports.final) == 1 else "have"
    print(f"{len(reports.final)} of {counted(len(plan.cells), 'cell')} {have} results in "
          f"{run.path}{resume}",
          file=out)  # fmt: skip
    flaky = ", flaky.html" if (run.path / "flaky.html").exists() else ""
    print(f"reports: {run.path}/report.html, report.md, junit.xml, results.json{flaky}",
          file=out)  # fmt: skip
    out.flush()
    why = nothing_booted(reports.final)
    if why is not None:  # CI must not go green on a run that booted nothing
        print(f"harness matrix: {why}", file=sys.stderr)
    return verdict_exit(reports.final, len(plan.cells), reports.comparison)
