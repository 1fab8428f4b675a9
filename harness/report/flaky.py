"""flaky.html: for every cell whose repeats disagreed (`--repeat N`), its outcomes and
the console logs of a repeat of each kind, side by side, so a person sees where the
boots parted."""

from __future__ import annotations

import html
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from harness.matrix.rundir import RunDir
from harness.model import Cell, Outcome
from harness.report.junit import console_tail
from harness.report.results import combined, repeats_by_cell

if TYPE_CHECKING:
    from harness.records import Record

TAIL = 120


def unstable_cells(records: Iterable[Record]) -> dict[str, list[Record]]:
    """Cell -> its repeats (last try of each), for the cells whose outcomes differ."""
    by_cell = repeats_by_cell(records)
    return {
        c: rs
        for c, rs in by_cell.items()
        if combined([r["outcome"] for r in rs]) == Outcome.UNSTABLE
    }


def write_flaky(run: RunDir, path: Path) -> int:
    """Writes the page when some cell was unstable; returns how many were."""
    flaky = unstable_cells(run.records())
    if not flaky:
        path.unlink(missing_ok=True)
        return 0
    sections = []
    for cell, repeats in flaky.items():
        shown: dict[str, Record] = {}
        for record in repeats:
            shown.setdefault(record["outcome"], record)
        columns = []
        for outcome, record in list(shown.items())[:2]:
            log = run.cell_dir(Cell.parse(cell), record.get("repeat", 0)) / "console.log"
            repeat = record.get("repeat", 0) + 1
            title = html.escape(f"repeat {repeat}: {outcome} {record['stage']} {record['reason']}")
            tail = html.escape(console_tail(log, TAIL))
            columns.append(f"<td><h3>{title}</h3><pre>{tail}</pre></td>")
        outcomes = ", ".join(r["outcome"] for r in repeats)
        sections.append(
            f"<h2>{html.escape(cell)}</h2><p>repeats: {html.escape(outcomes)}</p>"
            f"<table><tr>{''.join(columns)}</tr></table>"
        )
    path.write_text(
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>flaky cells</title><style>"
        "td{vertical-align:top;width:50%} pre{font-size:11px;white-space:pre-wrap}</style></head>"
        f"<body><h1>Cells whose repeats disagree ({len(flaky)})</h1>"
        f"{''.join(sections)}</body></html>\n"
    )
    return len(flaky)
