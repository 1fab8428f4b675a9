"""harness history: the results history across nights.

harness history import RUN...          record runs (old ones too; again: no change)
harness history CELL                   the cell night by night, and what changed
harness history --since-failing        since when each failing cell fails, and why maybe
harness history --flaky --nights 30    cells whose outcome changed more than once
harness history --slower               cells whose median time grew
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from harness.cli import EXIT_OK
from harness.wording import counted

if TYPE_CHECKING:
    from harness.history.queries import Change, Night


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("words", nargs="*", metavar="CELL | import RUN...")
    parser.add_argument(
        "--db",
        type=Path,
        metavar="PATH",
        help="the history (default: $HARNESS_HISTORY, else results/history.sqlite)",
    )
    ask = parser.add_mutually_exclusive_group()
    ask.add_argument("--since-failing", action="store_true", help="each failing cell's streak")
    ask.add_argument("--flaky", action="store_true", help="cells that flip between nights")
    ask.add_argument("--slower", action="store_true", help="cells whose median time grew")
    parser.add_argument("--nights", type=int, default=30, help="look at the last N nights (30)")
    parser.add_argument(
        "--recent", type=int, default=3, help="--slower: the last N nights against the rest (3)"
    )
    parser.add_argument(
        "--threshold", type=float, default=20.0, help="--slower: growth in percent (20)"
    )


def main(args: argparse.Namespace) -> int:
    import os

    from harness.catalog import Workspace
    from harness.errors import UsageError
    from harness.history.db import history_path

    db = history_path(args.db, os.environ, Workspace.locate(os.environ).results)
    asked = [args.since_failing, args.flaky, args.slower]
    if args.words[:1] == ["import"]:
        if any(asked) or len(args.words) < 2:
            raise UsageError("write harness history import RUN... (one or more run directories)")
        return _import([Path(word) for word in args.words[1:]], db)
    if any(asked) == bool(args.words) or len(args.words) > 1:
        raise UsageError(
            "ask one thing: CELL, --since-failing, --flaky, --slower, or import RUN..."
        )
    if args.nights < 1 or (args.slower and not 1 <= args.recent < args.nights):
        raise UsageError("--nights N and --recent M: 1 <= M < N")
    if args.words:
        return _cell(args.words[0], db)
    if args.since_failing:
        return _since_failing(db)
    if args.flaky:
        return _flaky(db, args.nights)
    return _slower(db, args.nights, args.recent, args.threshold / 100)


def _import(paths: list[Path], db: Path) -> int:
    from harness.history.db import open_history, record_run
    from harness.history.snapshot import read_run

    runs = [read_run(path) for path in paths]  # all checked before the history is touched
    with open_history(db) as connection:
        for path, run in zip(paths, runs, strict=True):
            cells = counted(len(run.cells), "cell")
            print(f"{record_run(connection, run)} {run.run_id} ({cells}) from {path}")
    return EXIT_OK


def short(value: str) -> str:
    """A digest cut to what a person compares: sha256:0123456789ab."""
    if value.startswith("sha256:"):
        return value[:19]
    return value or "-"


def describe(changed: tuple[Change, ...]) -> str:
    names = {"image_digest": "image", "firmware_digest": "firmware",
             "firmware_version": "firmware version", "qemu_version": "QEMU",
             "harness_version": "harness"}  # fmt: skip
    return "; ".join(f"{names[c.what]} {short(c.before)} -> {short(c.after)}" for c in changed)


def _night(night: Night) -> str:
    why = "" if night.outcome in ("pass", "skip") else f" {night.stage} {night.reason}"
    return f"{night.run_id} ({night.outcome}{why})"


def _cell(text: str, db: Path) -> int:
    from harness.errors import UsageError
    from harness.history.db import open_history
    from harness.history.queries import cell_history, changes
    from harness.model import Cell

    cell = Cell.parse(text).id
    with open_history(db, create=False) as connection:
        nights = cell_history(connection, cell)
    if not nights:
        raise UsageError(f"{cell}: not in the history {db}")
    print(f"{'night':<34} {'outcome':<8} {'stage':<10} {'reason':<20} {'time':>7}  changed")
    for before, night in zip([None, *nights], nights, strict=False):
        changed = describe(changes(before, night)) if before else ""
        print(f"{night.run_id:<34} {night.outcome:<8} {night.stage:<10} "
              f"{night.reason if night.outcome != 'pass' else '-':<20} "
              f"{night.duration_s:>6.1f}s  {changed}".rstrip())  # fmt: skip
    return EXIT_OK


def _since_failing(db: Path) -> int:
    from harness.history.db import open_history
    from harness.history.queries import since_failing

    with open_history(db, create=False) as connection:
        found = since_failing(connection)
    for failing in found:
        last = _night(failing.last_passed) if failing.last_passed else "never in the history"
        changed = describe(failing.changed) or "nothing recorded"
        print(f"{failing.cell}: failing since {_night(failing.first_failed)}; "
              f"last passed {last}; changed between: {changed}")  # fmt: skip
    print(f"{counted(len(found), 'failing cell')}")
    return EXIT_OK


def _flaky(db: Path, nights: int) -> int:
    from harness.history.db import open_history
    from harness.history.queries import flaky

    with open_history(db, create=False) as connection:
        found = flaky(connection, nights)
    for cell in found:
        print(f"{cell.flips:>3} flips  {cell.cell}  {' '.join(cell.outcomes)}")
    print(f"{counted(len(found), 'flaky cell')} in the last {counted(nights, 'night')}")
    return EXIT_OK


def _slower(db: Path, nights: int, recent: int, threshold: float) -> int:
    from harness.history.db import open_history
    from harness.history.queries import slower

    with open_history(db, create=False) as connection:
        found = slower(connection, nights, recent, threshold)
    for cell in found:
        changed = describe(cell.changed)
        print(f"+{cell.growth:.0%}  {cell.before_s:.1f}s -> {cell.recent_s:.1f}s  {cell.cell}"
              + (f"  (changed: {changed})" if changed else ""))  # fmt: skip
    print(f"{counted(len(found), 'cell')} slower by more than {threshold:.0%} "
          f"(last {recent} of {counted(nights, 'night')})")  # fmt: skip
    return EXIT_OK
