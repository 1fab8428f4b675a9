"""Cutting a plan into N shards that take about the same time, and the time each cell
is expected to take.

A cell's cost is its recorded duration when there is one (the median of its last
nights in the history, or its duration in a previous run given with --durations),
else an estimate by image and firmware. Shards are cut by the longest-processing-
time-first rule (Graham, "Bounds on multiprocessing timing anomalies", 1969): cells
by descending cost, each into the shard with the least load so far; ties broken by
cell id and shard number, so every shard of one nightly computes the same cut from
the same inputs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from harness.errors import UsageError
from harness.matrix.expand import Plan, Planned
from harness.model import NO_FIRMWARE, Cell

# Seconds to a proven login under TCG on the 2-core bench machine (README,
# Performance): a tiny guest by direct kernel boot; a firmware and its bootloader add
# their own (AAVMF and GRUB about 2.5 s, U-Boot with its 2 s autoboot delay about 4 s).
TINY_S = 5.0
FIRMWARE_EXTRA_S = 3.0
# Images booting a real distribution (systemd, udev, cloud-init) or an installer.
FULL_S = 45.0
INSTALLER_S = 20.0
DOWNLOADED_S = 90.0
SKIP_S = 0.0

Cost = Callable[[Planned], float]


def estimate(cell: Cell) -> float:
    """Seconds a cell is expected to take when nothing was recorded for it: by the
    kind of image (the recipes' naming: *-tiny*, fault-*, quirk-* are the busybox
    guests built here, *-full* the Debian systems, *-installer the netboot
    installer; anything else is a downloaded distro image) and its firmware."""
    name = cell.image
    if "-full" in name:
        seconds = FULL_S
    elif name.endswith("-installer"):
        seconds = INSTALLER_S
    elif "-tiny" in name or name.startswith(("fault-", "quirk-")):
        seconds = TINY_S
    else:
        seconds = DOWNLOADED_S
    return seconds + (FIRMWARE_EXTRA_S if cell.firmware != NO_FIRMWARE else 0.0)


def costs(recorded: Mapping[str, float]) -> Cost:
    """A cell's cost: recorded seconds where known, else `estimate` (its timeout when
    it is expected to time out); a skip is free."""

    def cost(planned: Planned) -> float:
        if planned.skip:
            return SKIP_S
        if planned.cell.id in recorded:
            return recorded[planned.cell.id]
        if planned.expect and planned.expect.reason == "timeout" and planned.timeout_s:
            return planned.timeout_s
        return estimate(planned.cell)

    return cost


def parse_shard(spec: str) -> tuple[int, int]:
    """ "K/N" -> (K, N); raises UsageError naming --shard unless 1 <= K <= N."""
    try:
        k, n = (int(part) for part in spec.split("/"))
    except ValueError:
        k = n = 0
    if not 1 <= k <= n:
        raise UsageError(f"--shard {spec}: write K/N with 1 <= K <= N, e.g. 2/4")
    return k, n


def cut(
    cells: Sequence[Planned], n: int, cost: Cost, together: Mapping[str, str] | None = None
) -> list[list[Planned]]:
    """The cells in `n` shards of near-equal total cost, each in the plan's order.

    `together` maps a cell id to the id of the cell whose boot it is recorded from
    (matrix/sameboot.py): such a cell costs nothing and goes into that cell's shard."""
    together = together or {}
    index = {planned.cell.id: i for i, planned in enumerate(cells)}
    loads = [0.0] * n
    shard_of: dict[int, int] = {}
    booted = [i for i, p in enumerate(cells) if together.get(p.cell.id) not in index]
    for i in sorted(booted, key=lambda i: (-cost(cells[i]), cells[i].cell.id)):
        lightest = min(range(n), key=lambda s: (loads[s], s))
        loads[lightest] += cost(cells[i])
        shard_of[i] = lightest
    for i, planned in enumerate(cells):
        if i not in shard_of:
            shard_of[i] = shard_of[index[together[planned.cell.id]]]
    return [[cells[i] for i in range(len(cells)) if shard_of[i] == s] for s in range(n)]


def shard(plan: Plan, spec: str, cost: Cost) -> Plan:
    """The K-th of N shards of `plan` (spec "K/N"), cut by `cost`; a `virt` cell
    recorded from its versioned twin's boot (matrix/sameboot.py) is in its twin's
    shard."""
    from harness.matrix.sameboot import same_boots

    k, n = parse_shard(spec)
    pairs = same_boots(plan.cells, plan.virt_aliases)
    return dataclasses.replace(plan, cells=tuple(cut(plan.cells, n, cost, pairs)[k - 1]))


def recorded_durations(durations: Path | None, history: Path, nights: int = 30) -> dict[str, float]:
    """Seconds per cell id: from `durations` (a run directory or its results.json)
    when given, else the median of the last `nights` in the history at `history`
    when that file exists, else nothing.

    Raises UsageError when `durations` is not a run, or the history is not
    readable (for the caller to say, and go on with estimates).
    """
    if durations is not None:
        from harness.report.write import load_run_cells

        cells = load_run_cells(durations)
        return {
            str(c["cell"]): float(c["duration_s"])
            for c in cells
            if c.get("duration_s") and c.get("outcome") != "skip"
        }
    if not history.is_file():
        return {}
    return _history_medians(history, nights)


def _history_medians(path: Path, nights: int) -> dict[str, float]:
    from harness.history.db import read_only
    from harness.history.queries import median_durations

    with read_only(path) as connection:  # choosing shards never writes the history
        return median_durations(connection, nights)


def spread(loads: Sequence[float]) -> float:
    """How far the slowest shard is above the mean, as a fraction (0.15 = 15%)."""
    mean = sum(loads) / len(loads)
    return max(loads) / mean - 1 if mean else 0.0


def load_of(
    cells: Sequence[Planned], cost: Cost, together: Mapping[str, str] | None = None
) -> float:
    """Seconds of boots in `cells`; a cell recorded from another's boot (`together`,
    as for `cut`) costs nothing."""
    return sum(cost(p) for p in cells if p.cell.id not in (together or {}))
