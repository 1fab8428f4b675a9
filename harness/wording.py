"""How counts are written in what the harness prints: `1 cell`, `2 cells`."""

from __future__ import annotations


def counted(n: int, noun: str, plural: str = "") -> str:
    """`n` and `noun`, the noun in the plural (`plural`, else noun + "s") unless n is 1:
    counted(1, "cell") == "1 cell", counted(0, "cell") == "0 cells"."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"
