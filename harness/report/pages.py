"""report.html and report.md: the grid a person reads at a glance.

Rows are image x firmware, columns machine type x transport; each cell shows its
outcome (coloured in HTML), the stage and reason when it did not pass, the comparison
label when there is a baseline, and links to its console log. The HTML page is one
self-contained file that works from the file system, without a server.
"""

from __future__ import annotations

import html
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from harness.model import Cell, Outcome
from harness.records import object_of, text_of
from harness.report.builds import build_differences
from harness.report.grid import Grid, build_grid, reason_line

if TYPE_CHECKING:
    from harness.records import CellEntry, JSONObject

COLOURS = {
    "pass": "#b9e4bb",
    "fail": "#f4a6a6",
    "xfail": "#f9d9a6",
    "xpass": "#d9b8ea",
    "error": "#9aa5ad",
    "skip": "#eeeeee",
    "unstable": "#fff176",
}
CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
table.grid { border-collapse: collapse; }
.grid th, .grid td { border: 1px solid #999; padding: 3px 6px; text-align: center; }
.grid th.row { text-align: left; white-space: nowrap; }
.grid td a { color: inherit; }
.grid td small { display: block; font-size: 11px; }
.label { font-weight: bold; font-size: 10px; text-transform: uppercase; }
.label.regression, .label.untested { color: #b00020; }
.label.fixed { color: #1b5e20; }
ul.problems { font-family: monospace; font-size: 12px; }
ul.problems .expected { font-family: system-ui, sans-serif; color: #555; }
p.options { background: #fff3cd; padding: 4px 8px; display: inline-block; }
"""


def _summary(final: list[CellEntry]) -> str:
    counts = Counter(r["outcome"] for r in final)
    return ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items()))


def _timeouts(final: list[CellEntry]) -> str:
    """The boot timeouts in force (to the login prompt; a --timeout override included)."""
    values = sorted({float(t) for t in (r.get("timeout_s") for r in final) if t})
    return ("timeout to the prompt: " + ", ".join(f"{v:g} s" for v in values)) if values else ""


def _resets(count: int) -> str:
    return f"{count} reset" + ("s" if count > 1 else "")


def seen_in_guest(record: CellEntry) -> str:
    """The transports the guest itself reported its virtio devices on and what it
    found the machine in (probe.py), e.g. "pci, acpi"; "" when the probe said nothing."""
    guest = record.get("guest") or {}
    transports = guest.get("transports", [])
    names = [t for t in transports if isinstance(t, str)] if isinstance(transports, list) else []
    seen = ["+".join(names), text_of(guest.get("firmware_tables"))]
    return ", ".join(filter(None, seen))


def libvirt_chose(record: CellEntry) -> str:
    """Where libvirt put a libvirt cell's virtio devices (results.json's placement,
    a cell's result.json's qemu.placement: export/libvirt.placement), e.g.
    "pcie-root-port"; "" otherwise."""
    placement = record.get("placement") or object_of(record.get("qemu")).get("placement")
    return str(placement or "")


@dataclass(frozen=True)
class RunNotes:
    """What report.html says about the run beyond its cells."""

    # Command-line options that changed verdicts, as typed: ("--timeout 2",)
    options: tuple[str, ...] = ()
    # The other reports beside report.html, e.g. ("flaky.html", "report.md", ...)
    reports: tuple[str, ...] = ()
    run_dir: Path | None = None  # where the cells' console logs are (for timeouts)
    history: str = ""  # HTML after the grid: each cell's nights and stages (history.py)


def run_options(options: JSONObject) -> tuple[str, ...]:
    """results.json's `options` (what the command line changed) as typed options."""
    shown = []
    timeout, repeat, smp = options.get("timeout"), options.get("repeat", 1), options.get("smp", 1)
    # the schema says: timeout a number, repeat and smp integers (2.0 is one)
    if isinstance(timeout, (int, float)) and timeout:
        shown.append(f"--timeout {timeout:g} (instead of matrix.yaml's timeouts)")
    if isinstance(repeat, (int, float)) and repeat > 1:
        shown.append(f"--repeat {repeat}")
    if isinstance(smp, (int, float)) and smp > 1:
        shown.append(f"--smp {smp}")
    return tuple(shown)


def same_boot_machine(record: CellEntry) -> str:
    """The machine type of the cell this one was recorded from (results.json's
    same_boot_as, matrix/sameboot.py), e.g. virt-7.2 for a virt cell; "" when it
    booted itself."""
    booted = record.get("same_boot_as")
    return Cell.parse(booted).machine if booted else ""


@dataclass(frozen=True)
class CellView:
    """What a report shows of one cell, whatever it is drawn in."""

    outcome: str
    why: str  # stage and reason, when it did not plainly pass
    seen: str  # transports the guest reported, and acpi or dt
    chose: str  # libvirt cells: what libvirt put the devices behind
    resets: int  # guest resets QEMU reported (a first-boot reboot, say)
    same_boot: str  # the machine type whose boot this cell's verdict is (virt's alias)
    log: str
    label: str  # the comparison with a baseline, when it is news
    title: str


def view(record: CellEntry, comparison: dict[str, str] | None) -> CellView:
    outcome = str(record["outcome"])
    label = comparison.get(record["cell"], "new") if comparison is not None else ""
    why = f"{record['stage']} {record['reason']}" if Outcome(outcome).needs_why else ""
    if outcome == "unstable":
        why = repeats_passed(record)
    return CellView(
        outcome=outcome,
        why=why,
        seen=seen_in_guest(record),
        chose=libvirt_chose(record),
        resets=int(record.get("resets") or 0),
        same_boot=same_boot_machine(record),
        log=record.get("log") or "",
        label="" if label == "still-passing" else label,
        title=f"{record['cell']}: {record.get('detail') or outcome}",
    )


def _cell_html(record: CellEntry | None, comparison: dict[str, str] | None) -> str:
    if record is None:
        return "<td></td>"
    cell = view(record, comparison)
    text = html.escape(cell.outcome)
    if cell.why:
        text += f"<small>{html.escape(cell.why)}</small>"
    if cell.seen:
        text += f"<small>seen in guest: {html.escape(cell.seen)}</small>"
    if cell.chose:
        text += f"<small>libvirt chose: {html.escape(cell.chose)}</small>"
    if cell.resets:
        text += f"<small>{_resets(cell.resets)}</small>"
    if cell.same_boot:
        text += f"<small>same boot as {html.escape(cell.same_boot)}</small>"
    if cell.log:
        text = f'<a href="{html.escape(cell.log)}">{text}</a>'
    if cell.label:
        label = html.escape(cell.label, quote=True)
        text += f'<span class="label {label}">{label}</span>'
    # Every string from a record is escaped, attributes too: records may come from a
    # shard made elsewhere (harness merge).
    style = f"background:{COLOURS.get(cell.outcome, '#fff')}"
    title = html.escape(cell.title, quote=True)
    outcome = html.escape(cell.outcome, quote=True)
    return f'<td class="{outcome}" style="{style}" title="{title}">{text}</td>'


def repeats_passed(record: CellEntry) -> str:
    """`3/5 repeats passed` for a cell booted with --repeat."""
    outcomes = record.get("repeats") or [record["outcome"]]
    passed = sum(1 for o in outcomes if Outcome(o).reached_login)
    return f"{passed}/{len(outcomes)} repeats passed"


def why_others_failed(record: CellEntry) -> str:
    """The reasons of the repeats that did not pass, counted: `fail kernel
    kernel-panic x2`."""
    outcomes = record.get("repeats") or []
    reasons = record.get("repeat_reasons") or [""] * len(outcomes)
    counted = Counter(
        f"{o} {r}".strip()
        for o, r in zip(outcomes, reasons, strict=False)
        if not Outcome(o).reached_login
    )
    return ", ".join(f"{why} x{n}" if n > 1 else why for why, n in counted.items())


def _problem_html(record: CellEntry, run_dir: Path | None) -> str:
    """One "Not passing" entry: the cell linked to its console log, why it stopped
    (for a timeout, the last console line before the silence), an expected failure's
    note and bug link, and for repeats how many passed and why the others did not."""
    name = html.escape(f"{record['outcome'].upper()} {record['cell']}")
    if record.get("log"):
        name = f'<a href="{html.escape(record["log"], quote=True)}">{name}</a>'
    line = reason_line(record, run_dir)
    text = f"{name}: " + html.escape(f"{record['stage']} {record['reason']}")
    if record["outcome"] == "unstable":
        text += html.escape(f"; {repeats_passed(record)}; the others: {why_others_failed(record)}")
    text += f" &mdash; {html.escape(line[:160])}"
    expect = record.get("expect") or {}
    note, bug = text_of(expect.get("note")), text_of(expect.get("bug"))
    if note or bug:
        said = html.escape(note)
        if bug:
            link = html.escape(bug, quote=True)
            said += f' <a href="{link}">{html.escape(bug)}</a>' if "://" in bug else f" {link}"
        text += f'<br><span class="expected">expected to fail: {said.strip()}</span>'
    return f"<li>{text}</li>"


def _notes_html(notes: RunNotes) -> str:
    parts = []
    if notes.options:
        changed = ", ".join(html.escape(o) for o in notes.options)
        parts.append(f'<p class="options">Options that changed verdicts: {changed}</p>')
    if notes.reports:
        links = ", ".join(f'<a href="{html.escape(r)}">{html.escape(r)}</a>' for r in notes.reports)
        parts.append(f'<p class="reports">reports: {links}</p>')
    return "\n".join(parts) + ("\n" if parts else "")


def render_html(
    title: str,
    final: list[CellEntry],
    comparison: dict[str, str] | None = None,
    notes: RunNotes | None = None,
) -> str:
    notes = notes or RunNotes()
    grid = build_grid(final)
    machines = list(dict.fromkeys(m for m, _ in grid.columns))
    spans = {m: sum(1 for mm, _ in grid.columns if mm == m) for m in machines}
    head1 = "".join(f'<th colspan="{spans[m]}">{html.escape(m)}</th>' for m in machines)
    head2 = "".join(f"<th>{html.escape(t)}</th>" for _, t in grid.columns)
    body = []
    for row in grid.rows:
        cells = "".join(_cell_html(grid.at(row, column), comparison) for column in grid.columns)
        body.append(
            f'<tr><th class="row">{html.escape(row[0])} / {html.escape(row[1])}</th>{cells}</tr>'
        )
    problems = [_problem_html(r, notes.run_dir) for r in final if Outcome(r["outcome"]).needs_why]
    return (
        f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{CSS}</style></head><body>\n<h1>{html.escape(title)}</h1>\n"
        f"<p>{html.escape(_summary(final))}</p>\n"
        + _notes_html(notes)
        + (f"<p>{html.escape(_timeouts(final))}</p>\n" if _timeouts(final) else "")
        + f'<table class="grid"><thead><tr><th rowspan="2">image / firmware</th>{head1}</tr>'
        f"<tr>{head2}</tr></thead><tbody>\n"
        + "\n".join(body)
        + "\n</tbody></table>\n"
        + (
            f"<h2>Not passing</h2><ul class='problems'>{''.join(problems)}</ul>\n"
            if problems
            else ""
        )
        + notes.history
        + _differences_html(final)
        + "</body></html>\n"
    )


def _differences_html(final: list[CellEntry]) -> str:
    differ = build_differences(final)
    if not differ:
        return ""
    items = "".join(f"<li>{html.escape(line)}</li>" for line in differ)
    return f"<h2>Verdicts that differ between QEMU builds</h2><ul class='problems'>{items}</ul>\n"


def _cell_md(record: CellEntry | None, comparison: dict[str, str] | None) -> str:
    if record is None:
        return ""
    cell = view(record, comparison)
    # Stage and reason as one word (initramfs/root-not-found); a count of repeats as said.
    why = cell.why if cell.outcome == "unstable" else cell.why.replace(" ", "/")
    text = cell.outcome + (f" {why}" if why else "")
    text += f" (seen {cell.seen})" if cell.seen else ""
    text += f" (libvirt chose {cell.chose})" if cell.chose else ""
    text += f" ({_resets(cell.resets)})" if cell.resets else ""
    text += f" (same boot as {cell.same_boot})" if cell.same_boot else ""
    text = f"[{text}]({cell.log})" if cell.log else text
    return text + (f" **{cell.label}**" if cell.label else "")


def render_markdown(
    title: str, final: list[CellEntry], comparison: dict[str, str] | None = None
) -> str:
    grid: Grid[CellEntry] = build_grid(final)
    header = ["image / firmware", *(f"{m} {t}" for m, t in grid.columns)]
    lines = [f"## {title}", "", _summary(final), ""]
    lines += [_timeouts(final), ""] if _timeouts(final) else []
    lines += ["| " + " | ".join(header) + " |"]
    lines.append("|" + "---|" * len(header))
    for row in grid.rows:
        cells = [_cell_md(grid.at(row, column), comparison) for column in grid.columns]
        lines.append(f"| {row[0]} / {row[1]} | " + " | ".join(cells) + " |")
    differ = build_differences(final)
    if differ:
        lines += ["", "### Verdicts that differ between QEMU builds", ""]
        lines += [f"- {line}" for line in differ]
    return "\n".join(lines) + "\n"


def write_pages(
    run_dir: Path,
    title: str,
    final: list[CellEntry],
    comparison: dict[str, str] | None,
    notes: RunNotes | None = None,
) -> None:
    notes = notes or RunNotes(run_dir=run_dir)
    (run_dir / "report.html").write_text(render_html(title, final, comparison, notes))
    (run_dir / "report.md").write_text(render_markdown(title, final, comparison))
