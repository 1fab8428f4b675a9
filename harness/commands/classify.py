"""harness classify: judge saved console logs with the watcher that judges live boots.

`harness classify LOG...` prints, per log, the status (pass, fail, or incomplete when
the log ends without an outcome), the furthest stage, the reason and the deciding
line. `harness classify RUN` re-judges every cell of a run from its console logs, as
the live run judged it (harness/judge.py: the image's login and ready pattern, the
transport check of the device probe), and shows which verdicts would change (after
the pattern table improved, say).
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from harness.cli import EXIT_FAIL, EXIT_OK
from harness.wording import counted

if TYPE_CHECKING:
    from collections.abc import Sequence

    from harness.console.watcher import Verdict
    from harness.matrix.rundir import RunDir
    from harness.records import Record

# A live boot that ended without a verdict is, saved, a log that ends undecided.
_UNDECIDED_LIVE = {"timeout", "qemu-exited"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "paths", type=Path, nargs="+", metavar="LOG|RUN", help="console logs, or run directories"
    )
    parser.add_argument("--json", action="store_true", help="one JSON object a line")


def _line(path: Path, verdict: Verdict, as_json: bool) -> str:
    fields = {
        "file": str(path),
        "status": verdict.status,
        "stage": verdict.stage,
        "reason": verdict.reason,
        "line": verdict.line,
        "text": verdict.text,
        "proof": verdict.proof,
    }
    if as_json:
        return json.dumps(fields)
    where = f"line {verdict.line}: {verdict.text}" if verdict.line else "(no deciding line)"
    return f"{verdict.status.upper():<10} {verdict.stage:<10} {verdict.reason:<18} {path}  {where}"


def main(args: argparse.Namespace) -> int:
    from harness.errors import UsageError
    from harness.judge import judge_log

    worst = EXIT_OK
    for path in args.paths:
        if path.is_dir():
            worst = max(worst, _rejudge_run(path, args.json))
            continue
        if not path.is_file():
            raise UsageError(f"{path}: no such log or run directory")
        verdict = judge_log(path)
        print(_line(path, verdict, args.json))
        worst = max(worst, EXIT_OK if verdict.status == "pass" else EXIT_FAIL)
    return worst


@dataclass(frozen=True)
class Unrecorded:
    """A planned cell with no final record in results.jsonl: `was` is its result.json's
    `status stage reason` ("" when it has none), `why` says why it has no record."""

    cell: str
    was: str
    why: str


def _rejudge_run(path: Path, as_json: bool) -> int:
    """Re-judges a run directory: a matrix run's (run.json, every cell's final record
    and its log under cells/; a planned cell without a record is named, see
    _unrecorded) or a `harness run --out` directory's (its result.json and the
    console.log beside it), with the same output."""
    from harness.matrix.rundata import load_result
    from harness.matrix.rundir import RUN, RunDir
    from harness.report.results import console_log, load_final
    from harness.runner import RESULT

    if not (path / RUN).exists() and (path / RESULT).is_file():
        single = load_result(path / RESULT)
        return _rejudge(path, [(single, path / "console.log")], as_json)
    run = RunDir.open(path)
    final = {record["cell"]: record for record in load_final(run)}
    cells: list[tuple[Record, Path] | Unrecorded] = []
    # load_final's order: the planned cells', then any others recorded
    for cell in dict.fromkeys([*run.meta().get("cells", []), *final]):
        record = final.get(cell)
        if record is None:
            cells.append(_unrecorded(run, cell))
            continue
        cells.append((record, console_log(run, record)))
    return _rejudge(path, cells, as_json)


def _unrecorded(run: RunDir, cell: str) -> Unrecorded:
    """Why planned `cell` has no record: results.jsonl gets a cell's line when its boot
    ends, unless the run was interrupted (matrix/rundir.py), so a cell of an
    interrupted (or still running) run has its result.json and no line (its boot was
    cut short), a directory without result.json (killed mid-boot), or nothing."""
    from harness.errors import UsageError
    from harness.matrix.rundata import load_result
    from harness.matrix.rundir import RESULTS
    from harness.model import Cell
    from harness.runner import RESULT

    where = run.cell_dir(Cell.parse(cell))
    if (where / RESULT).is_file():
        try:
            result = load_result(where / RESULT)
        except UsageError as e:
            return Unrecorded(cell, "", str(e))
        why = f"not in {RESULTS}: the run was interrupted before it ended"
        return Unrecorded(cell, _was(result), why)
    if where.is_dir():
        return Unrecorded(cell, "", "the run stopped while it booted")
    return Unrecorded(cell, "", "never started: the run stopped before it, or is still running")


def _rejudge(path: Path, cells: Sequence[tuple[Record, Path] | Unrecorded], as_json: bool) -> int:
    """Each judged cell's log judged again with its image's context, against its record."""
    from harness.catalog import Catalog, Workspace
    from harness.judge import image_context, judge_log
    from harness.model import Cell

    catalog = Catalog(Workspace.locate(os.environ), os.environ, lambda _: None, offline=True)
    changed = judged = 0
    for entry in cells:
        if isinstance(entry, Unrecorded):
            _not_judged(entry.cell, entry.was, entry.why, as_json)
            continue
        record, log = entry
        if record["status"] not in ("pass", "fail") or not log.is_file():
            why = "no guest verdict" if log.is_file() else _no_log(record)
            _not_judged(record["cell"], _was(record), why, as_json)
            continue
        judged += 1
        cell = Cell.parse(record["cell"])
        verdict = judge_log(log, cell, image_context(catalog, cell.image))
        same = _same(record, verdict)
        changed += not same
        if as_json:
            fields = json.loads(_line(log, verdict, True))
            print(json.dumps({**fields, "cell": record["cell"], "was": _was(record),
                              "same_boot_as": record.get("same_boot_as"),
                              "judged": True, "changed": not same}))  # fmt: skip
        else:
            mark = "same   " if same else "CHANGED"
            now = f"{verdict.status} {verdict.stage} {verdict.reason}"
            print(f"{mark} {record['cell']}: {_was(record)} -> {now}{_of_boot(record)}")
    if not as_json:
        print(f"{changed} of {counted(judged, 'verdict')} would change in {path}")
    return EXIT_FAIL if changed else EXIT_OK


def _not_judged(cell: str, was: str, why: str, as_json: bool) -> None:
    """A cell of the run that has nothing to judge again (interrupted, never started,
    skipped, a host error, its log gone): said, not passed over. `was`: its
    `status stage reason`, "" when it has no result (JSON: null)."""
    if as_json:
        print(json.dumps({"cell": cell, "was": was or None, "judged": False, "why": why}))
    else:
        print(f"not judged {cell}: {was or 'no result'} ({why})")


def _of_boot(record: Record) -> str:
    """ " (same boot as CELL)" for a cell recorded from another's boot, whose log is
    that cell's (matrix/sameboot.py); else ""."""
    booted = record.get("same_boot_as")
    return f" (same boot as {booted})" if booted else ""


def _no_log(record: Record) -> str:
    booted = record.get("same_boot_as")
    return f"no console.log of {booted}, the same boot" if booted else "no console.log"


def _was(record: Record) -> str:
    return f"{record['status']} {record['stage']} {record['reason']}"


def _same(record: Record, verdict: Verdict) -> bool:
    if record["reason"] in _UNDECIDED_LIVE:
        return verdict.status == "incomplete" and verdict.stage == record["stage"]
    return (record["status"], record["stage"], record["reason"]) == (
        verdict.status,
        verdict.stage,
        verdict.reason,
    )
