"""The part of report.html that looks back and inside: per cell, its last nights as a
strip of small coloured marks, its boot time night by night as a small trend line,
and the stages of tonight's boot (firmware, bootloader, kernel, initramfs,
userspace, login) as a timeline drawn to one scale for every cell, so a person sees
where the time went.

Nights come from the results history (harness/history/), read only; tonight's
result is added when the history does not hold this run yet. Without a readable
history the strip holds tonight alone. Inline SVG and CSS: the page stays one file
that opens from the file system.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from harness.model import STAGES

if TYPE_CHECKING:
    from harness.records import CellEntry

NIGHTS = 14
TIMELINE_PX = 420  # the longest boot of the run spans this many pixels
STAGE_COLOURS = {
    "none": "#cfd8dc",
    "firmware": "#8e7cc3",
    "bootloader": "#e69138",
    "kernel": "#3d85c6",
    "initramfs": "#45818e",
    "userspace": "#6aa84f",
    "login": "#38761d",
}
CSS = """
table.history { border-collapse: collapse; margin-top: .5em; }
.history td, .history th { padding: 2px 6px; text-align: left; font-size: 12px; }
.history td.cell { font-family: monospace; white-space: nowrap; }
.marks span { display: inline-block; width: 9px; height: 12px; margin-right: 1px;
              border: 1px solid #777; vertical-align: middle; }
.legend span { display: inline-block; padding: 0 6px; margin-right: 4px; color: #fff; }
"""


@dataclass(frozen=True)
class Mark:
    """One night of one cell."""

    run_id: str
    outcome: str
    duration_s: float


def nights_by_cell(db: Path, cells: Sequence[str], nights: int = NIGHTS) -> dict[str, list[Mark]]:
    """The last `nights` recorded nights of each cell from the history at `db`,
    opened read only; {} when there is no readable history there."""
    from harness.errors import UsageError
    from harness.history.db import read_only
    from harness.history.queries import cell_history

    if not db.is_file():
        return {}
    try:
        with read_only(db) as connection:
            return {
                cell: [
                    Mark(n.run_id, n.outcome, n.duration_s) for n in cell_history(connection, cell)
                ][-nights:]
                for cell in cells
            }
    except UsageError:
        return {}


def _with_tonight(marks: list[Mark], tonight: Mark, nights: int) -> list[Mark]:
    if all(m.run_id != tonight.run_id for m in marks):
        marks = [*marks, tonight]
    return marks[-nights:]


def _strip(marks: Sequence[Mark], colours: Mapping[str, str]) -> str:
    spans = "".join(
        f'<span class="mark {html.escape(m.outcome)}" '
        f'style="background:{colours.get(m.outcome, "#fff")}" '
        f'title="{html.escape(m.run_id)}: {html.escape(m.outcome)} {m.duration_s:.1f} s"></span>'
        for m in marks
    )
    return f'<td class="marks">{spans}</td>'


def _trend(marks: Sequence[Mark]) -> str:
    """A 100x20 line of the boot times, 0 s at the bottom."""
    times = [m.duration_s for m in marks]
    if len(times) < 2:
        return '<td class="trend"></td>'
    top = max(times) or 1.0
    step = 100 / (len(times) - 1)
    points = " ".join(f"{i * step:.1f},{20 - 18 * t / top:.1f}" for i, t in enumerate(times))
    label = html.escape(" ".join(f"{t:.1f}" for t in times) + " s")
    return (
        f'<td class="trend"><svg width="100" height="20" role="img"><title>{label}</title>'
        f'<polyline points="{points}" fill="none" stroke="#333" stroke-width="1.5"/></svg></td>'
    )


def stage_spans(
    stage_times: Mapping[str, float], duration_s: float
) -> list[tuple[str, float, float]]:
    """(stage, start s, end s) of a boot: each stage from the moment it was first
    seen (result.json's stage_times: seconds from QEMU's start) to the next one,
    the last to the end of the boot; the time before the first is "none"."""
    seen = sorted(
        ((float(t), s) for s, t in stage_times.items() if s in STAGES), key=lambda x: x[0]
    )
    end = max([duration_s, *(t for t, _ in seen)])
    spans = []
    if seen and seen[0][0] > 0:
        spans.append(("none", 0.0, seen[0][0]))
    for i, (start, stage) in enumerate(seen):
        stop = seen[i + 1][0] if i + 1 < len(seen) else end
        spans.append((stage, start, stop))
    return spans


def _timeline(record: CellEntry, px_per_s: float) -> str:
    spans = stage_spans(record.get("stage_times") or {}, float(record.get("duration_s") or 0))
    if not spans:
        return '<td class="timeline"></td>'
    width = max(1, round(spans[-1][2] * px_per_s))
    rects = "".join(
        f'<rect class="stage {stage}" x="{start * px_per_s:.1f}" y="0" '
        f'width="{(stop - start) * px_per_s:.1f}" height="14" fill="{STAGE_COLOURS[stage]}">'
        f"<title>{stage} {stop - start:.1f} s (from {start:.1f} s)</title></rect>"
        for stage, start, stop in spans
    )
    return f'<td class="timeline"><svg width="{width}" height="14">{rects}</svg></td>'


def render_history(
    final: Sequence[CellEntry],
    run_id: str,
    nights: Mapping[str, list[Mark]],
    colours: Mapping[str, str],
) -> str:
    """The HTML section: one row per cell that booted (skips left out) with its
    marks, trend and timeline; "" when no cell booted."""
    booted = [r for r in final if r.get("outcome") != "skip"]
    if not booted:
        return ""
    longest = max(
        [stop for r in booted for _, _, stop in stage_spans(r.get("stage_times") or {},
                                                           float(r.get("duration_s") or 0))]
        or [1.0]
    )  # fmt: skip
    px_per_s = TIMELINE_PX / (longest or 1.0)
    rows = []
    for record in booted:
        cell = str(record["cell"])
        tonight = Mark(run_id, str(record["outcome"]), float(record.get("duration_s") or 0))
        marks = _with_tonight(list(nights.get(cell, [])), tonight, NIGHTS)
        rows.append(
            f'<tr data-cell="{html.escape(cell, quote=True)}">'
            f'<td class="cell">{html.escape(cell)}</td>'
            f"{_strip(marks, colours)}{_trend(marks)}{_timeline(record, px_per_s)}</tr>"
        )
    legend = "".join(
        f'<span style="background:{colour}">{stage}</span>'
        for stage, colour in STAGE_COLOURS.items()
    )
    return (
        f"<style>{CSS}</style><h2>Nights and stages</h2>\n"
        f"<p>Last {NIGHTS} nights per cell (oldest left), boot time night by night, and "
        f"tonight's stages to one scale ({TIMELINE_PX} px = {longest:.1f} s). "
        f'<span class="legend">{legend}</span></p>\n'
        '<table class="history"><thead><tr><th>cell</th><th>nights</th><th>time</th>'
        "<th>stages</th></tr></thead><tbody>\n" + "\n".join(rows) + "\n</tbody></table>\n"
    )
