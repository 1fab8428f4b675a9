"""Console bytes to clean text lines.

A serial console is not a text file: it carries ANSI colour and cursor codes (edk2,
GRUB, systemd), CR CR LF line ends, NUL padding, invalid UTF-8 and, at the end, a
prompt that has no newline yet. This turns that into numbered lines for the pattern
table, keeping only a bounded tail in memory however much the guest prints.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterator
from dataclasses import dataclass

# A line longer than this is judged in pieces: a guest printing megabytes without a
# newline must not grow the watcher's memory.
MAX_LINE = 4096
# Cursor moves and screen clears end a visual line (edk2 draws its screens with them).
_LINE_BREAKING = re.compile(r"\x1b\[[0-9;?=]*[HfJ]")
_ESCAPE = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI: colours, cursor, probes such as \x1b[6n
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)"  # OSC: terminal titles
    r"|\x1b[PX^_][^\x1b]*\x1b\\"  # DCS, SOS, PM, APC strings
    r"|\x1b[()*+][0-9A-Za-z]"  # character set selection
    r"|\x1b[@-Z\\-_=>78]"  # other two-byte escapes
)
# An escape cut off at the end of a read: kept until the rest arrives.
_UNFINISHED = re.compile(r"\x1b(?:\[[0-?]*[ -/]*|\][^\x07\x1b]*|[PX^_][^\x1b]*|[()*+])?\Z")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_LINE_END = re.compile(r"\r\n|\n|\r")
# What a copy from a terminal adds after the last line (zsh's PROMPT_EOL_MARK, a prompt).
_STRAY_END = re.compile(r"\s*[%$#]\s*$")


@dataclass(frozen=True)
class Line:
    number: int  # 1-based, counting newlines as a text editor does
    text: str


def saved_log_tails(partial: Line, last: Line) -> list[Line]:
    """Where a prompt may wait at the end of a saved log, in the order to try: the
    text after the last line end (`partial`), that text less what a copy from a
    terminal adds (`%`, `$`), or, if nothing is left, the last non-blank line (`last`):
    a saved log ends where the console went quiet, newline or not."""
    bare = Line(partial.number, _STRAY_END.sub("", partial.text))
    tails = [partial, bare] if partial.text.strip() else []
    if bare.text.strip():
        return tails
    return [*tails, last, Line(last.number, _STRAY_END.sub("", last.text))]


def clean(text: str) -> str:
    # A visual line end, not a line of the file: the numbers stay an editor's.
    text = _LINE_BREAKING.sub("\r", text)
    return _CONTROL.sub("", _ESCAPE.sub("", text))


class ConsoleText:
    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._held = ""  # an unfinished escape sequence
        self._partial = ""
        self._number = 1
        self._skipped = 0  # lines others put into the log, counted at the next line end

    @property
    def partial(self) -> Line:
        """The text after the last line end: where prompts wait for input."""
        return Line(self._number, self._partial)

    def skip(self, lines: int) -> int:
        """`lines` newlines that the log holds here but the console did not send (a
        harness mark, marks.py, the first of them ending the line it cut): line
        numbers stay the log's. A line the mark cut in two keeps its first number; the
        lines after it count them. Returns the number of the line after the first."""
        after = self._number + self._skipped + 1
        if self._partial or self._held:
            self._skipped += lines
        else:
            self._number += lines
        return after

    def feed(self, data: bytes) -> Iterator[Line]:
        """The lines that `data` completes, in order."""
        text = self._held + self._decoder.decode(data)
        unfinished = _UNFINISHED.search(text[-256:])
        cut = len(text) - len(unfinished.group()) if unfinished else len(text)
        self._held = text[cut:]
        yield from self._split(clean(text[:cut]))

    def _split(self, text: str) -> Iterator[Line]:
        start = 0
        for end in _LINE_END.finditer(text):
            self._partial += text[start : end.start()]
            yield Line(self._number, self._partial)
            self._partial = ""
            self._number += end.group().count("\n") + self._skipped
            self._skipped = 0
            start = end.end()
        self._partial += text[start:]
        while len(self._partial) > MAX_LINE:
            yield Line(self._number, self._partial[:MAX_LINE])
            self._partial = self._partial[MAX_LINE:]
