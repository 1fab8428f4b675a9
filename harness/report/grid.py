"""The grid every report draws: rows image x firmware, columns machine type x
transport (grouped by QEMU build), one outcome per cell. Built from the final records
(a pure function, so each report that draws it builds its own); the terminal,
Markdown and HTML reports only render it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Generic, TypeVar

from harness.host import machine_sort_key
from harness.model import HOST_QEMU, Outcome

if TYPE_CHECKING:
    from harness.records import CellEntry, CellRecord

# A grid holds what it was built from: final records, or results.json's cells.
R = TypeVar("R", bound="CellRecord")

# Terminal marks, 4 wide; the legend is printed under the grid.
MARKS = {
    Outcome.PASS: "ok",
    Outcome.FAIL: "FAIL",
    Outcome.XFAIL: "xf",
    Outcome.XPASS: "XP",
    Outcome.ERROR: "ERR",
    Outcome.SKIP: "-",
    Outcome.UNSTABLE: "~",
}
# What the harness itself types and the guest echoes (watcher.SHELL_PROOF,
# probe.SCRIPT): never the reason a boot went silent.
HARNESS_TEXT = "harness-"
# How much of a log's end is read for the last line before a timeout.
TAIL_BYTES = 16384
LEGEND = (
    "ok pass, FAIL fail, xf expected failure, XP unexpected pass, ERR error, - skip, ~ unstable"
)


@dataclass(frozen=True)
class Grid(Generic[R]):
    rows: list[tuple[str, str]]  # (image, firmware)
    columns: list[tuple[str, str]]  # (machine, transport)
    cells: dict[tuple[tuple[str, str], tuple[str, str]], R]

    def at(self, row: tuple[str, str], column: tuple[str, str]) -> R | None:
        return self.cells.get((row, column))


def build_grid(records: Iterable[R]) -> Grid[R]:
    cells: dict[tuple[tuple[str, str], tuple[str, str]], R] = {}
    rows: dict[tuple[str, str], None] = {}
    columns: set[tuple[str, str]] = set()
    for record in records:
        row = (record["image"], record["firmware"])
        column = (machine_column(record), record["transport"])
        rows.setdefault(row)
        columns.add(column)
        cells[(row, column)] = record
    ordered = sorted(columns, key=_column_order)
    return Grid(list(rows), ordered, cells)


def machine_column(record: CellRecord) -> str:
    """The machine type, prefixed `BUILD:` on a QEMU build other than the host's, so
    that each build is a group of columns of its own."""
    build = record.get("qemu_build", HOST_QEMU)
    return record["machine"] if build == HOST_QEMU else f"{build}:{record['machine']}"


def _column_order(column: tuple[str, str]) -> tuple[str, tuple[int, ...], str]:
    build, _, machine = column[0].rpartition(":")
    return (build, machine_sort_key(machine), column[1])


def render_text(grid: Grid[R]) -> str:
    machines = list(dict.fromkeys(m for m, _ in grid.columns))
    transports = sorted({t for _, t in grid.columns})
    # A line per row and transport that has cells (a profile may boot a row on one).
    marked: dict[str, list[str]] = {}
    for image, firmware in grid.rows:
        for transport in transports:
            records = [grid.at((image, firmware), (m, transport)) for m in machines]
            if any(records):
                marks = [MARKS.get(Outcome(r["outcome"]), "?") if r else "" for r in records]
                marked[f"{image} / {firmware} / {transport}"] = marks
    width = max([len(label) for label in marked] + [10])
    short = [m.removeprefix("virt-").replace(":virt-", ":") for m in machines]
    col = max([len(s) for s in short] + [4]) + 1
    lines = [" " * width + " " + "".join(f"{s:>{col}}" for s in short)]
    for label, marks in marked.items():
        lines.append(f"{label:<{width}} " + "".join(f"{m:>{col}}" for m in marks))
    lines.append(f"({LEGEND})")
    return "\n".join(lines)


def problems(grid: Grid[R]) -> list[str]:
    """One line per cell that did not plainly pass: what happened, where, why."""
    out = []
    records: list[CellRecord] = list(grid.cells.values())
    for record in records:
        if not Outcome(record["outcome"]).needs_why:
            continue
        out.append(
            f"{record['outcome'].upper():<8} {record['cell']}  {record['stage']} "
            f"{record['reason']}  {(record.get('detail') or '')[:100]}"
        )
    return sorted(out)


def reason_line(record: CellEntry, run_dir: Path | None) -> str:
    """The console line that explains a cell: the watcher's deciding line, except
    for a timeout whose last line is the harness's own typing (the login proof or
    the device probe echoed back), where it is the last line the guest printed by
    itself before the silence, read from the cell's console log in `run_dir`."""
    detail = str(record.get("detail") or "")
    if record.get("reason") != "timeout" or HARNESS_TEXT not in detail or run_dir is None:
        return detail
    return last_guest_line(run_dir / (record.get("log") or "")) or detail


def last_guest_line(log: Path) -> str:
    """The last non-empty console line of `log` that is not the harness's typing
    ("" when there is none or the log cannot be read)."""
    from harness.console.text import ConsoleText

    try:
        with log.open("rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - TAIL_BYTES))
            data = f.read()
    except OSError:
        return ""
    text = ConsoleText()
    lines = [line.text for line in text.feed(data)] + [text.partial.text]
    guest = [line.strip() for line in lines if line.strip() and HARNESS_TEXT not in line]
    return guest[-1] if guest else ""
