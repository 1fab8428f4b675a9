"""The questions asked of the history, night by night (a night is one recorded run,
in the order the runs started).

- `cell_history`: one cell's outcomes, with what changed since the night before.
- `since_failing`: each cell failing now, the first night of its failing streak, the
  last night it passed before, and what changed between those two nights.
- `flaky`: cells whose outcome changed more than once in the last N nights, ranked.
- `slower`: cells whose median passing time in the last nights grew by more than a
  threshold over the nights before.

Outcomes pass and xfail meet their expectation; fail, error, xpass and unstable do
not; skip says nothing and is left out.
"""

from __future__ import annotations

import itertools
import sqlite3
import statistics
from dataclasses import dataclass

from harness.model import Outcome

# What a night's result depends on besides the guest; a change in one of these
# between two nights is the first suspect when a cell's outcome changed.
SUSPECTS = ("image_digest", "firmware_digest", "firmware_version", "qemu_version",
            "harness_version")  # fmt: skip


@dataclass(frozen=True)
class Night:
    """One cell in one recorded run; duration in seconds."""

    run_id: str
    started_at: str
    outcome: str
    stage: str
    reason: str
    duration_s: float
    stage_times: str
    image_digest: str
    firmware_digest: str
    firmware_version: str
    qemu_version: str
    harness_version: str

    def suspect(self, name: str) -> str:
        value: str = getattr(self, name)
        return value


@dataclass(frozen=True)
class Change:
    what: str  # one of SUSPECTS
    before: str
    after: str


def changes(before: Night, after: Night) -> tuple[Change, ...]:
    """What differs between two nights of a cell besides its outcome."""
    return tuple(
        Change(name, before.suspect(name), after.suspect(name))
        for name in SUSPECTS
        if before.suspect(name) != after.suspect(name)
    )


_NIGHTS = """
    SELECT r.id, r.started_at, x.outcome, x.stage, x.reason, x.duration_s, x.stage_times,
           x.image_digest, x.firmware_digest, x.firmware_version, r.qemu_version,
           r.harness_version, x.cell
    FROM results x JOIN runs r ON r.id = x.run_id
"""


def cell_history(connection: sqlite3.Connection, cell: str) -> list[Night]:
    """Every recorded night of `cell`, oldest first."""
    rows = connection.execute(_NIGHTS + " WHERE x.cell = ? ORDER BY r.started_at, r.id", (cell,))
    return [Night(*row[:12]) for row in rows]


def recent_runs(connection: sqlite3.Connection, nights: int) -> list[str]:
    """The ids of the last `nights` runs, oldest first."""
    rows = connection.execute(
        "SELECT id FROM runs ORDER BY started_at DESC, id DESC LIMIT ?", (nights,)
    ).fetchall()
    return [row[0] for row in reversed(rows)]


def by_cell(connection: sqlite3.Connection, nights: int | None = None) -> dict[str, list[Night]]:
    """Each cell's nights (of the last `nights` runs, or all), oldest first."""
    wanted = set(recent_runs(connection, nights)) if nights is not None else None
    cells: dict[str, list[Night]] = {}
    for row in connection.execute(_NIGHTS + " ORDER BY r.started_at, r.id, x.cell"):
        if wanted is None or row[0] in wanted:
            cells.setdefault(row[12], []).append(Night(*row[:12]))
    return cells


@dataclass(frozen=True)
class Failing:
    cell: str
    first_failed: Night
    last_passed: Night | None  # None: it never passed in the history
    changed: tuple[Change, ...]  # between last_passed and first_failed


def since_failing(connection: sqlite3.Connection) -> list[Failing]:
    """Cells whose latest (non-skip) outcome does not meet its expectation, by cell."""
    found = []
    for cell, nights in sorted(by_cell(connection).items()):
        judged = [n for n in nights if n.outcome != "skip"]
        if not judged or Outcome(judged[-1].outcome).met:
            continue
        start = len(judged) - 1
        while start > 0 and not Outcome(judged[start - 1].outcome).met:
            start -= 1
        before = judged[start - 1] if start > 0 else None
        changed = changes(before, judged[start]) if before else ()
        found.append(Failing(cell, judged[start], before, changed))
    return found


@dataclass(frozen=True)
class Flaky:
    cell: str
    flips: int  # how many times the outcome changed from one night to the next
    outcomes: tuple[str, ...]  # oldest first


def flaky(connection: sqlite3.Connection, nights: int) -> list[Flaky]:
    """Cells whose outcome changed more than once in the last `nights` runs, the
    most changes first, then by cell."""
    found = []
    for cell, seen in by_cell(connection, nights).items():
        outcomes = tuple(n.outcome for n in seen if n.outcome != "skip")
        flips = sum(1 for a, b in itertools.pairwise(outcomes) if a != b)
        if flips > 1:
            found.append(Flaky(cell, flips, outcomes))
    return sorted(found, key=lambda f: (-f.flips, f.cell))


@dataclass(frozen=True)
class Slower:
    cell: str
    before_s: float  # median passing time of the earlier nights
    recent_s: float  # median passing time of the last `recent` nights
    growth: float  # recent_s / before_s - 1
    changed: tuple[Change, ...]  # between the last earlier and the first recent night


def slower(
    connection: sqlite3.Connection, nights: int, recent: int, threshold: float
) -> list[Slower]:
    """Cells whose median passing time over the last `recent` of the last `nights`
    runs grew by more than `threshold` (0.2 = 20%) over the median of the nights
    before them; the most grown first."""
    runs = recent_runs(connection, nights)
    latest = set(runs[-recent:])
    found = []
    for cell, seen in by_cell(connection, nights).items():
        passed = [n for n in seen if n.outcome == "pass"]
        now = [n for n in passed if n.run_id in latest]
        then = [n for n in passed if n.run_id not in latest]
        if not now or not then:
            continue
        before_s = statistics.median(n.duration_s for n in then)
        recent_s = statistics.median(n.duration_s for n in now)
        if before_s > 0 and recent_s / before_s - 1 > threshold:
            found.append(
                Slower(cell, before_s, recent_s, recent_s / before_s - 1, changes(then[-1], now[0]))
            )
    return sorted(found, key=lambda s: (-s.growth, s.cell))


def median_durations(connection: sqlite3.Connection, nights: int) -> dict[str, float]:
    """Each cell's median duration (seconds) over the last `nights` runs, skips and
    zero durations left out."""
    found: dict[str, list[float]] = {}
    for cell, nights_of_cell in by_cell(connection, nights).items():
        times = [n.duration_s for n in nights_of_cell if n.outcome != "skip" and n.duration_s > 0]
        if times:
            found[cell] = times
    return {cell: statistics.median(times) for cell, times in found.items()}
