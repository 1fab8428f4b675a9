"""The options that cut a plan into shards and say what each cell costs, shared by
`harness matrix` (which runs a shard, longest cells first) and `harness list`
(which shows one)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from harness.matrix.shard import Cost


def add_shard_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--shard",
        metavar="K/N",
        help="only the K-th of N slices, cut to take equal time "
        "(by the history's durations, else estimates per image and firmware)",
    )
    parser.add_argument(
        "--durations",
        type=Path,
        metavar="RUN",
        help="cut shards and order cells by the durations of RUN (a run or its results.json)",
    )
    parser.add_argument(
        "--db",
        type=Path,
        metavar="PATH",
        help="the results history (default: $HARNESS_HISTORY, else history.sqlite beside "
        "the runs); matrix records its run there as it ends",
    )


def plan_cost(durations: Path | None, db: Path | None, results: Path, say: str) -> Cost:
    """Seconds each cell is expected to take: recorded (`durations`, a run or its
    results.json, else the history `db`, None: the default beside `results`) where
    known, else estimated. A bad `durations` is the user's error (UsageError); an
    unreadable history is one line on stderr, naming command `say`, and estimates."""
    from harness.errors import UsageError
    from harness.history.db import history_path
    from harness.matrix.shard import costs, recorded_durations

    history = history_path(db, os.environ, results)
    try:
        return costs(recorded_durations(durations, history))
    except UsageError as e:
        if durations is not None:
            raise
        print(f"harness {say}: {e}; estimating instead", file=sys.stderr)
        return costs({})
