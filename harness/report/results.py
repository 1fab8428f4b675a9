"""A run's final word on each cell, and results.json.

results.jsonl holds every boot as it finished (retries, repeats, a resume's second
try); the final record of a cell is its last try of each repeat, and its outcome is
the repeats' common outcome or `unstable`. Every report is made from these.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from harness.atomic import write_atomic
from harness.matrix.rundir import RunDir, latest_per_cell
from harness.model import Cell, Outcome
from harness.records import text_of
from harness.report.compare import REGRESSION

if TYPE_CHECKING:
    from harness.records import (
        CellEntry,
        CellRecord,
        FinalRecord,
        JSONObject,
        Record,
        ResultsDocument,
        RunMeta,
    )

SCHEMA_VERSION = 1


def combined(outcomes: list[str]) -> str:
    """One outcome for the repeats of a cell: theirs when they agree."""
    return outcomes[0] if len(set(outcomes)) == 1 else Outcome.UNSTABLE.value


def repeats_by_cell(records: Iterable[Record]) -> dict[str, list[Record]]:
    """Cell id -> the last try of each of its repeats, in repeat order."""
    latest = latest_per_cell(records)
    by_cell: dict[str, list[Record]] = {}
    for (cell, _repeat), record in sorted(latest.items(), key=lambda item: item[0][1]):
        by_cell.setdefault(cell, []).append(record)
    return by_cell


def final_records(records: Iterable[Record], order: Iterable[str] = ()) -> list[FinalRecord]:
    """One record per cell, in `order` first, then in the order first seen."""
    by_cell = repeats_by_cell(records)
    ranked = list(dict.fromkeys([*order, *by_cell]))
    final: list[FinalRecord] = []
    for cell in ranked:
        repeats = by_cell.get(cell)
        if repeats:
            outcomes = [r["outcome"] for r in repeats]
            outcome = combined(outcomes)
            # An unstable cell stands for its first repeat that did not pass: its stage,
            # reason, deciding line and console log say why the cell is not stable.
            failed = [r for r in repeats if not Outcome(r["outcome"]).reached_login]
            base = failed[0] if outcome == Outcome.UNSTABLE.value and failed else repeats[-1]
            final.append({
                **base, "outcome": outcome, "repeats": outcomes,
                "repeat_reasons": [f"{r['stage']} {r['reason']}" for r in repeats],
            })  # fmt: skip
    return final


def nothing_booted(final: Sequence[CellRecord]) -> str | None:
    """Why a run that booted nothing must not go green (every cell a skip), or None."""
    if not final or any(Outcome(r["outcome"]) is not Outcome.SKIP for r in final):
        return None
    first = final[0]
    return (
        f"nothing booted: {_all_skipped(len(final))} "
        f"(e.g. {first['cell']}: {first.get('detail') or first['reason']})"
    )


def verdict_exit(
    final: Sequence[CellRecord], planned: int, comparison: dict[str, str] | None = None
) -> int:
    """0 every cell met its expectation, 1 some did not (or, with a `comparison`
    from report/compare.py, some regressed), 2 errors, missing cells or nothing booted."""
    outcomes = {Outcome(r["outcome"]) for r in final}
    if Outcome.ERROR in outcomes or len(final) < planned or nothing_booted(final):
        return 2
    if comparison and REGRESSION in comparison.values():
        return 1
    return 0 if all(o.met for o in outcomes) else 1


def load_final(run: RunDir) -> list[FinalRecord]:
    return final_records(run.records(), run.meta().get("cells", []))


def results_document(
    run: RunDir, final: list[FinalRecord], comparison: dict[str, str] | None = None
) -> ResultsDocument:
    meta = run.meta()
    planned = meta.get("cells", [])
    cells = []
    for record in final:
        entry = cell_entry(record, _relative_log(run, record))
        if comparison is not None:
            entry["comparison"] = comparison.get(record["cell"], "new")
        cells.append(entry)
    host = meta.get("host", {})
    return {
        "schema_version": SCHEMA_VERSION,
        "run": meta.get("run", run.path.name),
        "profile": meta.get("profile", ""),
        "started_at": meta.get("started_at", ""),
        "written_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "complete": len(final) >= len(planned),
        "planned": len(planned),
        "host": host,
        "qemu": {
            "binary": text_of(host.get("qemu", "")),
            "version": text_of(host.get("qemu_version", "")),
        },
        "images": {r["image"]: r["image_digest"] for r in final if r.get("image_digest")},
        "firmware": {
            r["firmware"]: r["firmware_digest"] for r in final if r.get("firmware_digest")
        },
        "summary": dict(Counter(r["outcome"] for r in final)),
        "options": run_options_of(meta),
        "cells": cells,
    }


def run_options_of(meta: RunMeta) -> JSONObject:
    """The command-line options of `harness matrix` that can change verdicts, as
    run.json keeps them, that were given (None and absent are left out): --timeout,
    --smp and --repeat (which makes `unstable`). Not -k (the run's keyword): it picks
    the cells, it changes no verdict."""
    given: JSONObject = {
        "timeout": meta.get("timeout"), "repeat": meta.get("repeat"), "smp": meta.get("smp")
    }  # fmt: skip
    return {key: value for key, value in given.items() if value is not None}


def cell_entry(record: FinalRecord, log: str) -> CellEntry:
    """One of results.json's cells: the final record's keys the schema's `cell` has
    (None where the record has none), QEMU's argv and libvirt's placement, and `log`
    (the console log relative to the run directory, "" when none)."""
    qemu = record.get("qemu", {})
    argv = qemu.get("argv", [])
    return {
        "cell": record["cell"], "image": record["image"], "firmware": record["firmware"],
        "machine": record["machine"], "transport": record["transport"],
        "accel": record.get("accel"), "status": record["status"], "outcome": record["outcome"],
        "stage": record["stage"], "reason": record["reason"], "detail": record.get("detail"),
        "deciding_line": record.get("deciding_line"), "stage_times": record["stage_times"],
        "duration_s": record["duration_s"], "started_at": record.get("started_at"),
        "attempts": record.get("attempts"), "repeats": record["repeats"],
        "repeat_reasons": record["repeat_reasons"], "expect": record.get("expect"),
        "guest": record.get("guest"), "image_verified": record.get("image_verified"),
        "firmware_version": record.get("firmware_version"), "proof": record.get("proof"),
        "resets": record.get("resets"), "timeout_s": record.get("timeout_s"),
        "qemu_build": record.get("qemu_build"), "qemu_version": record.get("qemu_version"),
        "same_boot_as": record.get("same_boot_as"),
        # the schema's `record` says argv is strings
        "cmdline": [a for a in argv if isinstance(a, str)] if isinstance(argv, list) else [],
        "placement": text_of(qemu.get("placement", "")),
        "log": log,
    }  # fmt: skip


def console_log(run: RunDir, record: Record) -> Path:
    """Where the console log of `record`'s boot is, whether or not it exists: its
    cell's directory, or, for a cell recorded from another's boot (`same_boot_as`,
    matrix/sameboot.py), that boot's. UsageError if the cell id is malformed."""
    booted = record.get("same_boot_as") or record["cell"]
    return run.cell_dir(Cell.parse(booted), record.get("repeat", 0)) / "console.log"


def _relative_log(run: RunDir, record: Record) -> str:
    """The console log's path inside the run directory, so reports link to it."""
    log = console_log(run, record)
    return str(log.relative_to(run.path)) if log.exists() else ""


def write_json(path: Path, document: ResultsDocument) -> None:
    write_atomic(path, json.dumps(document, indent=2) + "\n")


def schema() -> JSONObject:
    text = resources.files("harness.schemas").joinpath("results.schema.json").read_text()
    data: JSONObject = json.loads(text)
    return data


def _all_skipped(n: int) -> str:
    return "its 1 cell was skipped" if n == 1 else f"all {n} cells were skipped"
