"""The harness's own lines in a cell's console.log: `[harness: ...]` between newlines.

The console log is the guest's bytes; the harness adds two kinds of line to it, each
`\\n[harness: ...]\\n` (a leading newline always, so a reader takes off exactly what
was added, even where the guest was mid-line):

- the cap (`--log-cap`): where the log was cut, its last line;
- each guest reset QEMU reported (a QMP RESET event), where the live boot saw it.
  QEMU's last reset before a stop prints nothing more, but its mark is there.

A log with reset marks is the harness's own: judging it counts its resets from the
marks as the live boot counted QEMU's events (judge.py), not from the console text.
ConsoleLog writes the log (the runner's and merge's); split_resets reads it back.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Final, Protocol

_RESET_HEAD = b"\n[harness: QEMU reported guest reset "
_RESET = re.compile(re.escape(_RESET_HEAD) + rb"\d{1,9}\]\n")
# The longest mark: what a reader holds back at a chunk's end until it knows.
_LONGEST = len(_RESET_HEAD) + 11
RESET_LINES: Final = 2  # the newlines a reset mark adds: the log's line numbers count them


class Reset:
    """Where a reset mark was, in what `split_resets` yields."""


RESET: Final = Reset()


def cap_mark(cap: int) -> bytes:
    """The line that ends a log cut at `cap` bytes."""
    return b"\n[harness: console log capped at %d bytes]\n" % cap


def reset_mark(number: int) -> bytes:
    """The line for the guest's `number`-th reset (1-based) QEMU reported."""
    return _RESET_HEAD + b"%d]\n" % number


def has_resets(path: Path, chunk: int = 1 << 16) -> bool:
    """True if the log at `path` holds a reset mark (read in chunks, memory bounded).
    Raises OSError if it cannot be read."""
    tail = b""
    with path.open("rb") as log:
        while data := log.read(chunk):
            if _RESET.search(tail + data):
                return True
            tail = data[-_LONGEST:]
    return False


def split_resets(chunks: Iterable[bytes]) -> Iterator[bytes | Reset]:
    """The console's bytes of `chunks` with each reset mark taken out and RESET in its
    place: the bytes before it, as the live boot had read them when QEMU reported it,
    then RESET, then the bytes after."""
    held = b""
    for chunk in chunks:
        held += chunk
        start = 0
        for found in _RESET.finditer(held):
            if found.start() > start:
                yield held[start : found.start()]
            yield RESET
            start = found.end()
        held = held[start:]
        # A mark cut by the chunk's end starts at one of its last newlines.
        keep = held.rfind(b"\n", max(0, len(held) - _LONGEST))
        if keep < 0:
            keep = len(held)
        if keep:
            yield held[:keep]
        held = held[keep:]
    if held:
        yield held


class Log(Protocol):
    """Where the watch loop keeps the console's bytes and the harness's marks: a
    ConsoleLog."""

    def write(self, data: bytes) -> None: ...
    def mark(self, line: bytes) -> None: ...


class ConsoleLog:
    """The console, byte for byte, up to a cap; the harness's marks (above) say
    where it was cut and where QEMU reset the guest."""

    def __init__(self, path: Path, cap: int):
        self._file = path.open("wb")
        self._room = cap
        self._cap = cap

    def write(self, data: bytes) -> None:
        if self._room <= 0:
            return
        self._file.write(data[: self._room])
        self._room -= len(data)
        if self._room <= 0:
            self._file.write(cap_mark(self._cap))
        self._file.flush()

    @property
    def full(self) -> bool:
        """The cap is reached: nothing more is kept."""
        return self._room <= 0

    def mark(self, line: bytes) -> None:
        """A harness mark at this point of the console, outside the cap (a mark cut in
        two would be none); nothing once the log was cut."""
        if self._room > 0:
            self._file.write(line)
            self._file.flush()

    def close(self) -> None:
        self._file.close()
