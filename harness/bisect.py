"""Finding where a combination broke: the cells of one axis (machine types oldest
first, or firmware builds in the order given) are booted at both ends, then halved,
as git bisect does, until the first cell whose outcome differs from the first one's.
It assumes one change along the axis; it reports the two neighbours it found. A cell
that ends in `error` (the host's fault) stops the search: it has no verdict to halve
on, and the result says which cell it was."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from harness.model import Cell, CellResult, Outcome


@dataclass(frozen=True)
class Bisection:
    tried: tuple[CellResult, ...]
    last_same: CellResult | None  # the last cell that ends as the first one does
    first_different: CellResult | None  # None: both ends agree, or the search stopped
    stopped_by: CellResult | None = None  # the `error` result that ended the search


class _Stopped(Exception):
    """Internal: unwinds the halving when a boot ends in error."""


def bisect(cells: Sequence[Cell], boot: Callable[[Cell], CellResult]) -> Bisection:
    """Boots at most about log2(len(cells)) + 2 of `cells` through `boot`."""
    tried: list[CellResult] = []

    def outcome(index: int) -> CellResult:
        result = boot(cells[index])
        tried.append(result)
        if result.status.is_host:
            raise _Stopped
        return result

    low, high = 0, len(cells) - 1
    try:
        first, last = outcome(low), outcome(high)
        if (first.status is Outcome.PASS) == (last.status is Outcome.PASS):
            return Bisection(tuple(tried), last, None)
        good, bad = first, last
        while high - low > 1:
            middle = (low + high) // 2
            result = outcome(middle)
            if (result.status is Outcome.PASS) == (first.status is Outcome.PASS):
                low, good = middle, result
            else:
                high, bad = middle, result
    except _Stopped:
        return Bisection(tuple(tried), None, None, stopped_by=tried[-1])
    return Bisection(tuple(tried), good, bad)
