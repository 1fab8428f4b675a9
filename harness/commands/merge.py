"""harness merge DIR...: joins shard runs into one run, with its reports."""

from __future__ import annotations

import argparse
import errno
import os
import shutil
import stat
import sys
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from harness.commands.common import add_log_cap_argument, directory
from harness.wording import counted

if TYPE_CHECKING:
    from harness.matrix.rundir import RunDir
    from harness.records import Record, RunMeta

LOG = "console.log"  # a cell's console, capped as the runner caps it (--log-cap)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", type=Path, nargs="+", metavar="RUN", help="shard run directories")
    parser.add_argument(
        "--results", type=directory, help="where the merged run goes (default: results/)"
    )
    parser.add_argument("--baseline", type=Path, metavar="RUN", help="compare with RUN")
    add_log_cap_argument(parser)


def main(args: argparse.Namespace) -> int:
    from harness.catalog import Workspace
    from harness.errors import UsageError
    from harness.matrix.rundir import RunDir
    from harness.report.write import load_run_cells

    if args.baseline:
        load_run_cells(args.baseline)
    # Every shard is read and checked (run.json and each line of results.jsonl against
    # results.schema.json) before the merged run exists.
    shards = [RunDir.open(path) for path in args.runs]
    metas = [shard.meta() for shard in shards]
    records = [shard.records() for shard in shards]
    profiles = {meta.get("profile") for meta in metas}
    if len(profiles) != 1:
        raise UsageError(
            f"runs of different profiles cannot be merged: {', '.join(map(str, profiles))}"
        )
    cells = list(dict.fromkeys(cell for meta in metas for cell in meta.get("cells", [])))
    merged_meta: RunMeta = {
        **metas[0],
        "cells": cells,
        "shards": [f"{meta.get('run')} ({meta.get('shard') or 'whole'})" for meta in metas],
        "shard": None,
    }
    results = args.results or Workspace.locate(os.environ).results
    merged = RunDir.create(results, f"{profiles.pop()}-merged", merged_meta)
    try:
        status = _fill(merged, shards, records, cells, args.baseline, args.log_cap)
    except BaseException:
        shutil.rmtree(merged.path, ignore_errors=True)  # half a run is no run
        raise
    merged.mark_latest()
    return status


def _fill(
    merged: RunDir,
    shards: list[RunDir],
    records: list[list[Record]],
    cells: list[str],
    baseline: Path | None,
    log_cap: int,
) -> int:
    from harness.report.compare import table
    from harness.report.results import nothing_booted, verdict_exit
    from harness.report.write import write_reports

    for shard, shard_records in zip(shards, records, strict=True):
        for record in shard_records:
            merged.append(record)
        cells_dir = shard.path / "cells"
        for skipped in copy_regular_tree(cells_dir, merged.path / "cells", log_cap):
            print(f"harness merge: {skipped}: not a regular file, not copied", file=sys.stderr)
    reports = write_reports(merged, baseline)
    print(
        f"merged {counted(len(shards), 'run')}, {len(reports.final)} of "
        f"{counted(len(cells), 'cell')}, into {merged.path}"
    )
    if reports.comparison is not None and reports.baseline is not None:
        print(table(reports.comparison, reports.baseline, reports.final))
    why = nothing_booted(reports.final)
    if why is not None:
        print(f"harness merge: {why}", file=sys.stderr)
    return verdict_exit(reports.final, len(cells), reports.comparison)


def copy_regular_tree(source: Path, target: Path, log_cap: int) -> list[Path]:
    """Copies the directories and regular files under `source` into `target`; a
    symlink (to a file or a directory), FIFO, socket or device is not followed, not
    opened for long and not copied: a shard is data from elsewhere. A console.log
    keeps at most `log_cap` bytes, cut with the runner's mark (console/marks.py ConsoleLog).
    Returns what was left out."""
    left_out: list[Path] = []
    if not source.is_dir() or source.is_symlink():
        return left_out
    for walked, subdirs, files in os.walk(source):
        here = Path(walked)
        into = target / here.relative_to(source)
        into.mkdir(parents=True, exist_ok=True)
        for name in list(subdirs):
            if (here / name).is_symlink():
                subdirs.remove(name)
                left_out.append(here / name)
        for name in files:
            if not _copy_regular(here / name, into / name, log_cap if name == LOG else None):
                left_out.append(here / name)
    return left_out


def _copy_regular(source: Path, target: Path, cap: int | None) -> bool:
    try:
        # O_NOFOLLOW: a symlink fails to open; O_NONBLOCK: a FIFO opens at once
        # (and is then seen by fstat) instead of waiting for a writer forever.
        fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.ENXIO):
            return False
        raise
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return False
        with open(fd, "rb", closefd=False) as src:
            if cap is None:
                with target.open("wb") as dst:
                    shutil.copyfileobj(src, dst)
            else:
                _copy_capped(src, target, cap)
    finally:
        os.close(fd)
    return True


def _copy_capped(source: BinaryIO, target: Path, cap: int) -> None:
    """`source` into `target` as the runner keeps a console: its first `cap` bytes,
    then the cap's mark if there was more; nothing past the cap is read."""
    from harness.console.marks import ConsoleLog

    log = ConsoleLog(target, cap)
    try:
        while not log.full and (chunk := source.read(min(1 << 20, cap + 1))):
            log.write(chunk)
    finally:
        log.close()
