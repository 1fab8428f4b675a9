"""harness merge DIR...: joins shard runs into one run, with its reports."""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", type=Path, nargs="+", metavar="RUN", help="shard run directories")
    parser.add_argument(
        "--results", type=Path, help="where the merged run goes (default: results/)"
    )
    parser.add_argument("--baseline", type=Path, metavar="RUN", help="compare with RUN")


def main(args: argparse.Namespace) -> int:
    from harness.catalog import Workspace
    from harness.errors import UsageError
    from harness.matrix.rundir import RunDir
    from harness.report.compare import table
    from harness.report.results import verdict_exit
    from harness.report.write import write_reports

    shards = [RunDir.open(path) for path in args.runs]
    metas = [shard.meta() for shard in shards]
    profiles = {meta.get("profile") for meta in metas}
    if len(profiles) != 1:
        raise UsageError(
            f"runs of different profiles cannot be merged: {', '.join(map(str, profiles))}"
        )
    cells = list(dict.fromkeys(cell for meta in metas for cell in meta.get("cells", [])))
    merged_meta = {
        **metas[0],
        "cells": cells,
        "shards": [f"{meta.get('run')} ({meta.get('shard') or 'whole'})" for meta in metas],
        "shard": None,
    }
    results = args.results or Workspace.locate(os.environ).results
    merged = RunDir.create(results, f"{profiles.pop()}-merged", merged_meta)
    for shard in shards:
        for record in shard.records():
            merged.append(record)
        if (shard.path / "cells").is_dir():
            shutil.copytree(shard.path / "cells", merged.path / "cells", dirs_exist_ok=True)
    reports = write_reports(merged, args.baseline)
    print(
        f"merged {len(shards)} runs, {len(reports.final)} of {len(cells)} cells, into {merged.path}"
    )
    if reports.comparison is not None and reports.baseline is not None:
        print(table(reports.comparison, reports.baseline, reports.final))
    return verdict_exit(reports.final, len(cells), reports.comparison)
