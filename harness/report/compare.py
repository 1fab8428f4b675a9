"""What changed between two runs, cell by cell, as KernelCI's kci-dev labels it:
regression, fixed, still-failing, still-passing, unstable, new, missing; plus `error`
(no verdict this time: the host failed), `untested` (an error this time where the
cell met its expectation before: the run could not test a cell that worked, which
a nightly job must not take for green) and `skipped`. A verdict after an error is `new`,
as if the cell had not been in the old run: neither fixed nor still failing, for
there was no verdict to compare it with.

Good and bad are `Outcome.is_good`/`is_bad`: an expected failure that keeps failing
the expected way is not a regression.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING

from harness.model import Outcome

if TYPE_CHECKING:
    from harness.records import CellRecord

REGRESSION = "regression"
UNTESTED = "untested"


def label(old: str | None, new: str | None) -> str:
    if new is None:
        return "missing"
    if old is None:
        return "new"
    before, after = Outcome(old), Outcome(new)
    if after is Outcome.UNSTABLE:
        return "unstable"
    if after.is_host:
        return UNTESTED if before.is_good else "error"
    if Outcome.SKIP in (before, after):
        return "skipped"
    if before.is_host:  # the old run has no verdict to compare with: as if untested then
        return "new"
    old_good = before.is_good
    new_good = after.is_good
    if old_good and after.is_bad:
        return REGRESSION
    if not old_good and new_good:
        return "fixed"
    return "still-passing" if new_good else "still-failing"


def compare(old: Sequence[CellRecord], new: Sequence[CellRecord]) -> dict[str, str]:
    """Cell id -> label, for every cell of either run."""
    before = {r["cell"]: r["outcome"] for r in old}
    after = {r["cell"]: r["outcome"] for r in new}
    cells = list(dict.fromkeys([*after, *before]))
    return {cell: label(before.get(cell), after.get(cell)) for cell in cells}


def table(labels: dict[str, str], old: Sequence[CellRecord], new: Sequence[CellRecord]) -> str:
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


def _short(record: CellRecord | None) -> str:
    if record is None:
        return "(none)"
    outcome = Outcome(record["outcome"])
    if not outcome.needs_why:
        return outcome.value
    return f"{outcome} {record['stage']} {record['reason']}"
