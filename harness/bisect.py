"""Finding where a combination broke: the cells of one axis (machine types oldest
first, or firmware builds in the order given) are booted at both ends, then halved,
as git bisect does, until the first cell whose outcome differs from the first one's.
It assumes one change along the axis; it reports the two neighbours it found."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from harness.errors import InfraError
from harness.model import Cell, CellResult


@dataclass(frozen=True)
class Bisection:
    tried: tuple[CellResult, ...]
    last_same: CellResult | None  # the last cell that ends as the first one does
    first_different: CellResult | None  # None: both ends agree


def bisect(cells: Sequence[Cell], boot: Callable[[Cell], CellResult]) -> Bisection:
    tried: list[CellResult] = []

    def outcome(index: int) -> CellResult:
        result = boot(cells[index])
        tried.append(result)
        if result.status == "error":
            raise InfraError(f"bisect cannot go on: {result.cell} ended in error: {result.detail}")
        return result

    low, high = 0, len(cells) - 1
    first, last = outcome(low), outcome(high)
    if (first.status == "pass") == (last.status == "pass"):
        return Bisection(tuple(tried), last, None)
    good, bad = first, last
    while high - low > 1:
        middle = (low + high) // 2
        result = outcome(middle)
        if (result.status == "pass") == (first.status == "pass"):
            low, good = middle, result
        else:
            high, bad = middle, result
    return Bisection(tuple(tried), good, bad)
