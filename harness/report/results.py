"""A run's final word on each cell, and results.json.

results.jsonl holds every boot as it finished (retries, repeats, a resume's second
try); the final record of a cell is its last try of each repeat, and its outcome is
the repeats' common outcome or `unstable`. Every report is made from these.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Any

from harness.atomic import write_atomic
from harness.matrix.rundir import RunDir, latest_per_cell
from harness.model import Cell, Outcome
from harness.report.compare import REGRESSION

SCHEMA_VERSION = 1


def combined(outcomes: list[str]) -> str:
    """One outcome for the repeats of a cell: theirs when they agree."""
    return outcomes[0] if len(set(outcomes)) == 1 else Outcome.UNSTABLE.value


def repeats_by_cell(records: Iterable[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Cell id -> the last try of each of its repeats, in repeat order."""
    latest = latest_per_cell(records)
    by_cell: dict[str, list[dict[str, Any]]] = {}
    for (cell, _repeat), record in sorted(latest.items(), key=lambda item: item[0][1]):
        by_cell.setdefault(cell, []).append(record)
    return by_cell


def final_records(
    records: Iterable[dict[str, Any]], order: Iterable[str] = ()
) -> list[dict[str, Any]]:
    """One record per cell, in `order` first, then in the order first seen."""
    by_cell = repeats_by_cell(records)
    ranked = list(dict.fromkeys([*order, *by_cell]))
    final = []
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


def nothing_booted(final: list[dict[str, Any]]) -> str | None:
    """Why a run that booted nothing must not go green (every cell a skip), or None."""
    if not final or any(Outcome(r["outcome"]) is not Outcome.SKIP for r in final):
        return None
    first = final[0]
    return (
        f"nothing booted: all {len(final)} cells were skipped "
        f"(e.g. {first['cell']}: {first.get('detail') or first['reason']})"
    )


def verdict_exit(
    final: list[dict[str, Any]], planned: int, comparison: dict[str, str] | None = None
) -> int:
    """0 every cell met its expectation, 1 some did not (or, with a `comparison`
    from report/compare.py, some regressed), 2 errors, missing cells or nothing booted."""
    outcomes = {Outcome(r["outcome"]) for r in final}
    if Outcome.ERROR in outcomes or len(final) < planned or nothing_booted(final):
        return 2
    if comparison and REGRESSION in comparison.values():
        return 1
    return 0 if all(o.met for o in outcomes) else 1


def load_final(run: RunDir) -> list[dict[str, Any]]:
    return final_records(run.records(), run.meta().get("cells", []))


def results_document(
    run: RunDir, final: list[dict[str, Any]], comparison: dict[str, str] | None = None
) -> dict[str, Any]:
    meta = run.meta()
    planned = meta.get("cells", [])
    cells = []
    for record in final:
        entry = {key: record.get(key) for key in _CELL_KEYS}
        entry["cmdline"] = record.get("qemu", {}).get("argv", [])
        entry["placement"] = record.get("qemu", {}).get("placement", "")
        entry["log"] = _relative_log(run, record)
        if comparison is not None:
            entry["comparison"] = comparison.get(record["cell"], "new")
        cells.append(entry)
    return {
        "schema_version": SCHEMA_VERSION,
        "run": meta.get("run", run.path.name),
        "profile": meta.get("profile", ""),
        "started_at": meta.get("started_at", ""),
        "written_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "complete": len(final) >= len(planned),
        "planned": len(planned),
        "host": meta.get("host", {}),
        "qemu": {
            "binary": meta.get("host", {}).get("qemu", ""),
            "version": meta.get("host", {}).get("qemu_version", ""),
        },
        "images": _digests(final, "image", "image_digest"),
        "firmware": _digests(final, "firmware", "firmware_digest"),
        "summary": dict(Counter(r["outcome"] for r in final)),
        "options": run_options_of(meta),
        "cells": cells,
    }


# The command-line options of `harness matrix` that can change verdicts, as run.json
# keeps them (--repeat makes `unstable`). Not -k (the run's keyword): it picks the
# cells, it changes no verdict.
OPTION_KEYS = ("timeout", "repeat", "smp")


def run_options_of(meta: dict[str, Any]) -> dict[str, Any]:
    """The options of run.json that were given (None and absent are left out)."""
    return {key: meta[key] for key in OPTION_KEYS if meta.get(key) is not None}


_CELL_KEYS = (
    "cell", "image", "firmware", "machine", "transport", "accel", "status", "outcome",
    "stage", "reason", "detail", "deciding_line", "stage_times", "duration_s",
    "started_at", "attempts", "repeats", "repeat_reasons", "expect", "guest", "image_verified",
    "firmware_version", "proof", "resets", "timeout_s", "qemu_build", "qemu_version",
    "same_boot_as",
)  # fmt: skip


def _digests(final: list[dict[str, Any]], key: str, digest: str) -> dict[str, str]:
    return {r[key]: r[digest] for r in final if r.get(digest)}


def _relative_log(run: RunDir, record: dict[str, Any]) -> str:
    """The console log's path inside the run directory, so reports link to it (a
    cell recorded from another's boot: that boot's log)."""
    booted = record.get("same_boot_as") or record["cell"]
    cell_dir = run.cell_dir(Cell.parse(booted), record.get("repeat", 0))
    log = cell_dir / "console.log"
    return str(log.relative_to(run.path)) if log.exists() else ""


def write_json(path: Path, document: dict[str, Any]) -> None:
    write_atomic(path, json.dumps(document, indent=2) + "\n")


def schema() -> dict[str, Any]:
    text = resources.files("harness.schemas").joinpath("results.schema.json").read_text()
    data: dict[str, Any] = json.loads(text)
    return data
