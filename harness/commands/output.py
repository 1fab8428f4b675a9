"""Standard output that may lose its reader (`harness matrix ... | head -2`).

A long command keeps running when its reader goes away: what it prints is only a
view, the run directory holds the results. Writes after that are dropped, once said
on stderr, and stdout is pointed at /dev/null so the interpreter's last flush cannot
fail either (Python would exit 120).
"""

from __future__ import annotations

import io
import os
import sys
from typing import TextIO, cast


class ReaderProof(io.TextIOBase):
    """Wraps `stream` (a text stream with a file descriptor); BrokenPipeError from a
    write or flush is swallowed and `gone_note` printed on stderr once."""

    def __init__(self, stream: TextIO, gone_note: str):
        self._stream = stream
        self._note = gone_note
        self.gone = False

    def write(self, text: str) -> int:
        if not self.gone:
            try:
                self._stream.write(text)
            except BrokenPipeError:
                self._lost()
        return len(text)

    def flush(self) -> None:
        if not self.gone:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._lost()

    def isatty(self) -> bool:
        return self._stream.isatty()

    def _lost(self) -> None:
        self.gone = True
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, self._stream.fileno())
        os.close(devnull)
        print(self._note, file=sys.stderr, flush=True)


def reader_proof(stream: TextIO, gone_note: str) -> TextIO:
    """`stream` wrapped in ReaderProof, typed as the text stream it stands for."""
    return cast(TextIO, ReaderProof(stream, gone_note))
