"""`-k EXPR`: pick cells by words of their id, as pytest's -k does: `pci and not
aavmf`, `virt-2 or tiny-mmio`, parentheses allowed. A word matches when it occurs in
the cell id (IMAGE/FIRMWARE/MACHINE/TRANSPORT)."""

from __future__ import annotations

import re
from collections.abc import Callable

from harness.errors import UsageError

_TOKEN = re.compile(r"\s*(\(|\)|[^\s()]+)")

Predicate = Callable[[str], bool]


def keyword_filter(expression: str) -> Predicate:
    tokens = _TOKEN.findall(expression)
    position = 0

    def peek() -> str | None:
        return str(tokens[position]) if position < len(tokens) else None

    def take() -> str:
        nonlocal position
        if position >= len(tokens):
            raise UsageError(f"-k {expression!r}: ends too early")
        position += 1
        return str(tokens[position - 1])

    def either() -> Predicate:
        left = both()
        while peek() == "or":
            take()
            left = _any_of(left, both())
        return left

    def both() -> Predicate:
        left = negation()
        while peek() == "and":
            take()
            left = _all_of(left, negation())
        return left

    def negation() -> Predicate:
        if peek() == "not":
            take()
            inner = negation()
            return lambda cell: not inner(cell)
        token = take()
        if token == "(":
            inner = either()
            if take() != ")":
                raise UsageError(f"-k {expression!r}: missing )")
            return inner
        if token in (")", "and", "or"):
            raise UsageError(f"-k {expression!r}: unexpected {token!r}")
        return lambda cell: token in cell

    result = either()
    if peek() is not None:
        raise UsageError(f"-k {expression!r}: unexpected {peek()!r}")
    return result


def _any_of(a: Predicate, b: Predicate) -> Predicate:
    return lambda cell: a(cell) or b(cell)


def _all_of(a: Predicate, b: Predicate) -> Predicate:
    return lambda cell: a(cell) and b(cell)
