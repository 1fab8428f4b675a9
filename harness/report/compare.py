"""What changed between two runs, cell by cell, as KernelCI's kci-dev labels it:
regression, fixed, still-failing, still-passing, unstable, new, missing; plus `error`
(no verdict this time: the host failed) and `skipped`.

"Good" is an outcome that met its expectation (pass, xfail): an expected failure that
keeps failing the expected way is not a regression.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

GOOD = {"pass", "xfail"}
BAD = {"fail", "xpass"}
REGRESSION = "regression"


def label(old: str | None, new: str | None) -> str:
    if new is None:
        return "missing"
    if old is None:
        return "new"
    if new == "unstable":
        return "unstable"
    if new == "error":
        return "error"
    if new == "skip" or old == "skip":
        return "skipped"
    old_good = old in GOOD
    new_good = new in GOOD
    if old_good and new in BAD:
        return REGRESSION
    if not old_good and new_good:
        return "fixed"
    return "still-passing" if new_good else "still-failing"


def compare(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> dict[str, str]:
    """Cell id -> label, for every cell of either run."""
    before = {r["cell"]: r["outcome"] for r in old}
    after = {r["cell"]: r["outcome"] for r in new}
    cells = list(dict.fromkeys([*after, *before]))
    return {cell: label(before.get(cell), after.get(cell)) for cell in cells}


def table(labels: dict[str, str], old: list[dict[str, Any]], new: list[dict[str, Any]]) -> str:
    """The cells whose label is news (not still-passing), one a line."""
    before = {r["cell"]: r for r in old}
    after = {r["cell"]: r for r in new}
    rows = []
    for cell, what in labels.items():
        if what == "still-passing":
            continue
        was = _short(before.get(cell))
        now = _short(after.get(cell))
        rows.append(f"{what:<14} {cell}  {was} -> {now}")
    counts = Counter(labels.values())
    rows.append(", ".join(f"{n} {name}" for name, n in sorted(counts.items())))
    return "\n".join(rows)


def _short(record: dict[str, Any] | None) -> str:
    if record is None:
        return "(none)"
    outcome = str(record["outcome"])
    if outcome in ("pass", "skip"):
        return outcome
    return f"{outcome} {record['stage']} {record['reason']}"
