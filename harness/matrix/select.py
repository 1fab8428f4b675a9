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
# Nesting of `not` and parentheses: the parser (and the predicate it builds) recurses
# once per level; a real filter nests two or three.
MAX_DEPTH = 50
MAX_LENGTH = 10_000


def keyword_filter(expression: str, aliases: Mapping[str, str] | None = None) -> Predicate:
    """A predicate on cell ids (IMAGE/FIRMWARE/MACHINE/TRANSPORT) for `expression`.

    `aliases` maps a machine type to the one it stands for, as QEMU's `-machine help`
    says ("virt" -> "virt-7.2"): a cell on `virt` then also matches `virt-7.2`.
    Raises UsageError (one line) when it does not parse, nests more than MAX_DEPTH
    levels or is longer than MAX_LENGTH characters."""
    if len(expression) > MAX_LENGTH:
        raise UsageError(f"-k: longer than {MAX_LENGTH} characters")
    matches = _word_matcher(aliases or {})
    tokens = _TOKEN.findall(expression)
    position = 0
    depth = 0

    def peek() -> str | None:
        return str(tokens[position]) if position < len(tokens) else None

    def take() -> str:
        nonlocal position
        if position >= len(tokens):
            raise UsageError(f"-k {expression!r}: ends too early")
        position += 1
        return str(tokens[position - 1])

    # `a or b or ...` is one flat list, not a chain of nested predicates, so a long
    # expression costs no recursion when it is evaluated.
    def either() -> Predicate:
        parts = [both()]
        while peek() == "or":
            take()
            parts.append(both())
        return parts[0] if len(parts) == 1 else _any_of(parts)

    def both() -> Predicate:
        parts = [negation()]
        while peek() == "and":
            take()
            parts.append(negation())
        return parts[0] if len(parts) == 1 else _all_of(parts)

    def deeper() -> None:
        nonlocal depth
        depth += 1
        if depth > MAX_DEPTH:
            raise UsageError(f"-k: nested more than {MAX_DEPTH} levels deep")

    def negation() -> Predicate:
        nonlocal depth
        if peek() == "not":
            take()
            deeper()
            inner = negation()
            depth -= 1
            return lambda cell: not inner(cell)
        token = take()
        if token == "(":
            deeper()
            inner = either()
            if take() != ")":
                raise UsageError(f"-k {expression!r}: missing )")
            depth -= 1
            return inner
        if token in (")", "and", "or"):
            raise UsageError(f"-k {expression!r}: unexpected {token!r}")
        return lambda cell: matches(token, cell)

    result = either()
    if peek() is not None:
        raise UsageError(f"-k {expression!r}: unexpected {peek()!r}")
    return result


def _any_of(parts: list[Predicate]) -> Predicate:
    return lambda cell: any(part(cell) for part in parts)


def _all_of(parts: list[Predicate]) -> Predicate:
    return lambda cell: all(part(cell) for part in parts)


def _word_matcher(aliases: Mapping[str, str]) -> Callable[[str, str], bool]:
    def matches(word: str, cell: str) -> bool:
        if word in cell:
            return True
        # The machine is the third part from the end: a firmware path may hold "/".
        *front, machine, transport = cell.rsplit("/", 2)
        alias = aliases.get(machine)
        return alias is not None and word in "/".join([*front, alias, transport])

    return matches
