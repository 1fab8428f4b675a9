"""`-k EXPR`: pick cells by words of their id, as pytest's -k does: `pci and not
aavmf`, `virt-2 or tiny-mmio`, parentheses allowed. A word matches when it occurs in
the cell id (IMAGE/FIRMWARE/MACHINE/TRANSPORT), or in the id with the machine type
written as what it is an alias of (`virt` is `virt-7.2` on QEMU 7.2)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from harness.errors import UsageError

_TOKEN = re.compile(r"\s*(\(|\)|[^\s()]+)")

Predicate = Callable[[str], bool]


def keyword_filter(expression: str, aliases: Mapping[str, str] | None = None) -> Predicate:
    """A predicate on cell ids (IMAGE/FIRMWARE/MACHINE/TRANSPORT) for `expression`.

    `aliases` maps a machine type to the one it stands for, as QEMU's `-machine help`
    says ("virt" -> "virt-7.2"): a cell on `virt` then also matches `virt-7.2`.
    Raises UsageError naming the expression when it does not parse."""
    matches = _word_matcher(aliases or {})
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
        return lambda cell: matches(token, cell)

    result = either()
    if peek() is not None:
        raise UsageError(f"-k {expression!r}: unexpected {peek()!r}")
    return result


def _any_of(a: Predicate, b: Predicate) -> Predicate:
    return lambda cell: a(cell) or b(cell)


def _all_of(a: Predicate, b: Predicate) -> Predicate:
    return lambda cell: a(cell) and b(cell)


def _word_matcher(aliases: Mapping[str, str]) -> Callable[[str, str], bool]:
    def matches(word: str, cell: str) -> bool:
        if word in cell:
            return True
        # The machine is the third part from the end: a firmware path may hold "/".
        *front, machine, transport = cell.rsplit("/", 2)
        alias = aliases.get(machine)
        return alias is not None and word in "/".join([*front, alias, transport])

    return matches
