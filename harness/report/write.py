"""Writes every report of a run: results.json, junit.xml, report.html, report.md,
with the comparison against a baseline run when there is one."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from harness.errors import UsageError
from harness.matrix.rundata import load_document
from harness.matrix.rundir import RunDir
from harness.matrix.select import keyword_filter
from harness.report.compare import compare
from harness.report.flaky import write_flaky
from harness.report.junit import write_junit
from harness.report.pages import RunNotes, run_options, write_pages
from harness.report.results import load_final, results_document, write_json

if TYPE_CHECKING:
    from collections.abc import Sequence

    from harness.records import CellEntry, CellRecord, ResultsDocument


@dataclass(frozen=True)
class Reports:
    final: list[CellEntry]  # results.json's cells
    baseline: Sequence[CellRecord] | None
    comparison: dict[str, str] | None


def load_run_cells(path: Path) -> Sequence[CellRecord]:
    """A run's final cells, from its directory or from a results.json file (e.g. the
    artifact of last night's job), checked against results.schema.json with a size
    limit (UsageError: one line naming the file)."""
    if path.is_dir() and (path / "results.jsonl").exists():
        return load_final(RunDir.open(path))
    document = path / "results.json" if path.is_dir() else path
    if not document.exists():
        raise UsageError(f"{path}: not a run directory or results.json")
    try:
        cells = load_document(document)["cells"]
    except UsageError as e:
        problem = str(e).removeprefix(f"{document}: ")
        raise UsageError(f"{path}: not a run directory or results.json: {problem}") from e
    return cells


def _history(run: RunDir, document: ResultsDocument) -> str:
    """report.html's nights-and-stages section, from the history beside the runs
    (or $HARNESS_HISTORY)."""
    import os

    from harness.history.db import history_path
    from harness.report.history import nights_by_cell, render_history
    from harness.report.pages import COLOURS

    cells = document["cells"]
    db = history_path(None, os.environ, run.path.parent)
    nights = nights_by_cell(db, [c["cell"] for c in cells])
    return render_history(cells, document["run"], nights, COLOURS)


def write_reports(run: RunDir, baseline: Path | None = None) -> Reports:
    """Every report of `run`; compared with `baseline` when given, over the cells the
    run's `-k` chose (a filtered-out cell is not `missing`)."""
    final = load_final(run)
    old = load_run_cells(baseline) if baseline else None
    keyword = run.meta().get("keyword")
    if old is not None and keyword:
        wanted = keyword_filter(keyword)
        old = [cell for cell in old if wanted(cell["cell"])]
    comparison = compare(old, final) if old is not None else None
    document = results_document(run, final, comparison)
    if comparison is not None:
        document["comparison"] = {
            "baseline": str(baseline),
            "counts": dict(Counter(comparison.values())),
        }
    write_json(run.path / "results.json", document)
    profile = document["profile"]
    write_junit(run.path / "junit.xml", run.path, profile, document["cells"])
    title = f"{document['run']} ({profile}, QEMU {document['qemu']['version']})"
    flaky = ("flaky.html",) if write_flaky(run, run.path / "flaky.html") else ()
    notes = RunNotes(
        options=run_options(document["options"]),
        reports=(*flaky, "report.md", "junit.xml", "results.json"),
        run_dir=run.path,
        history=_history(run, document),
    )
    write_pages(run.path, title, document["cells"], comparison, notes)
    return Reports(document["cells"], old, comparison)
