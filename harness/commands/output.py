"""Standard output that may lose its reader (`harness matrix ... | head -2`, or the
terminal window closed: EIO).

A long command keeps running when its reader goes away: what it prints is only a
view, the run directory holds the results. Writes after that are dropped, once said
on stderr, and stdout is pointed at /dev/null so the interpreter's last flush cannot
fail either (Python would exit 120).
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import sys
from collections.abc import Iterator
from typing import TextIO, cast


class ReaderProof(io.TextIOBase):
    """Wraps `stream` (a text stream with a file descriptor); BrokenPipeError (or
    EIO, a terminal hung up) from a write or flush is swallowed and `gone_note` printed
    on stderr once, where stderr still is."""

    def __init__(self, stream: TextIO, gone_note: str):
        self._stream = stream
        self._note = gone_note
        self.gone = False

    def write(self, text: str) -> int:
        if not self.gone:
            try:
                self._stream.write(text)
            except OSError as e:
                self._lost(e)
        return len(text)

    def flush(self) -> None:
        if not self.gone:
            try:
                self._stream.flush()
            except OSError as e:
                self._lost(e)

    def isatty(self) -> bool:
        return self._stream.isatty()

    def _lost(self, error: OSError) -> None:
        drop_if_gone(error, self._stream, self._note)
        self.gone = True


def drop_if_gone(error: OSError, stream: TextIO, note: str) -> None:
    """After `error` from writing `stream`: re-raised unless the reader is gone (EPIPE,
    or EIO from a hung-up terminal); then `stream` writes to /dev/null from now on and
    `note` is said on stderr, where stderr still is."""
    if not isinstance(error, BrokenPipeError) and error.errno != errno.EIO:
        raise error  # a full disk, say: not a reader gone
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, stream.fileno())
    os.close(devnull)
    with contextlib.suppress(OSError):  # stderr: the same hung-up terminal
        print(note, file=sys.stderr, flush=True)


@contextlib.contextmanager
def view_of(stream: TextIO, note: str) -> Iterator[None]:
    """Writes to `stream` within it are a view: a reader gone (drop_if_gone) drops
    them from then on, anything else is raised."""
    try:
        yield
    except OSError as e:
        drop_if_gone(e, stream, note)


def reader_proof(stream: TextIO, gone_note: str) -> TextIO:
    """`stream` wrapped in ReaderProof, typed as the text stream it stands for."""
    return cast(TextIO, ReaderProof(stream, gone_note))
