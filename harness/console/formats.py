"""Saved console logs as other tools save them, back to the console's own bytes.

`harness classify` reads logs published by others; this is the one place that
recognises their wrappings, from the first lines, before the watcher sees a byte:

- LAVA's log.yaml (lava_common/log.py YAMLLogger): one flow mapping a line,
  `- {"dt": "2024-...", "lvl": "target", "msg": "[    0.000000] Booting Linux ..."}`,
  written with PyYAML's double-quoted style (so `\\e`, `\\x1B` escapes). Only `target`
  lines are the console; the others are LAVA's own (its `info` lines quote the very
  patterns it looks for, "Kernel panic - not syncing" among them). KernelCI and tuxrun
  keep this file too.
- A timestamp the capturing tool put before each line: `[2024-05-01 12:00:01] `
  (minicom, tio, screen logs), `2024-05-01T12:00:01.123Z `, `12:00:01.123 `,
  ts(1)'s `May 01 12:00:01 `, grabserial's `[4.326139 0.000021] `. The kernel's own
  printk time (`[    4.98] `, one number) is the console's and is left alone.
- An HTML page of the log (a CI's "view log"): tags dropped, entities decoded.
- A typescript of script(1) (util-linux term-utils/script.c): its "Script started on"
  and "Script done on" lines are the recorder's, not the console's (the last one
  would hide a prompt the log ends at).

Anything else (our own logs, plain captures, `\\r\\r\\n` line ends) passes unchanged.
"""

from __future__ import annotations

import enum
import html
import itertools
import json
import re
from collections.abc import Callable, Iterable, Iterator

import yaml

HEAD_LINES = 24  # the first lines that tell the format
HEAD_BYTES = 1 << 16
MAX_LINE = 1 << 20  # a longer "line" is passed on as it is: memory stays bounded
STAMPED_SHARE = 0.6  # of the first non-blank lines (a capture tool's own header comes first)

_LAVA = re.compile(rb"^- \{\s*[\"']?dt[\"']?\s*:")
_STAMP = re.compile(
    rb"^(?:\[(?:\d{4}-\d\d-\d\d[ T])?\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?\]"
    rb"|(?:\d{4}-\d\d-\d\d[ T])?\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?(?= )"
    rb"|[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d(?:\.\d+)?(?= )"
    rb"|\[\d+\.\d+ \d+\.\d+\])"
    rb" ?(?:[|>] )?"
)
_SCRIPT = re.compile(rb"^Script (?:started|done) on ")
_HTML = re.compile(rb"^\s*(?:<!DOCTYPE html|<html|<pre\b)", re.IGNORECASE)
_BREAK = re.compile(r"<br\s*/?>|</(?:div|p|tr|li)>", re.IGNORECASE)
_TAG = re.compile(r"<[^>]*>")


class Format(enum.Enum):
    CONSOLE = "console"  # the console's bytes as they came
    LAVA = "lava-yaml"
    STAMPED = "stamped"
    HTML = "html"
    TYPESCRIPT = "typescript"


def detect(head: bytes) -> Format:
    """The format of a log from its first bytes (HEAD_LINES lines are enough)."""
    lines = [line for line in head.split(b"\n")[:HEAD_LINES] if line.strip()]
    if not lines:
        return Format.CONSOLE
    if _LAVA.match(lines[0]):
        return Format.LAVA
    if _HTML.match(lines[0]):
        return Format.HTML
    if _SCRIPT.match(lines[0]):
        return Format.TYPESCRIPT
    stamped = sum(1 for line in lines if _STAMP.match(line))
    if stamped >= 2 and stamped >= STAMPED_SHARE * len(lines):
        return Format.STAMPED
    return Format.CONSOLE


def lava_target(line: bytes) -> bytes | None:
    """The console text of one log.yaml line ("" + newline), or None for a line of
    LAVA's own (another level, a result, a line that is no entry)."""
    if not _LAVA.match(line):
        return None
    text = line[2:].decode("utf-8", "replace")
    try:
        entry = json.loads(text)
    except ValueError:  # PyYAML's escapes (\e, \x1B) are no JSON
        try:
            entry = yaml.safe_load(text)
        except yaml.YAMLError:
            return None
    if not isinstance(entry, dict) or entry.get("lvl") != "target":
        return None
    msg = entry.get("msg")
    return msg.encode("utf-8", "replace") if isinstance(msg, str) else None


def unstamp(line: bytes) -> bytes:
    return _STAMP.sub(b"", line, count=1)


def unscript(line: bytes) -> bytes | None:
    return None if _SCRIPT.match(line) else line


def unhtml(line: bytes) -> bytes:
    text = _BREAK.sub("\n", line.decode("utf-8", "replace"))
    return html.unescape(_TAG.sub("", text)).encode("utf-8")


_READERS: dict[Format, Callable[[bytes], bytes | None]] = {
    Format.LAVA: lava_target,
    Format.STAMPED: unstamp,
    Format.HTML: unhtml,
    Format.TYPESCRIPT: unscript,
}


def console_bytes(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """The console's bytes of a saved log read in `chunks`, whatever tool saved it
    (see the module's list). Lines are rewritten one at a time, so memory stays
    bounded; the last line keeps its missing newline (a prompt waiting)."""
    read = iter(chunks)
    head = b""
    for chunk in read:
        head += chunk
        if head.count(b"\n") >= HEAD_LINES or len(head) >= HEAD_BYTES:
            break
    reader = _READERS.get(detect(head))
    if reader is None:
        yield head
        yield from read
        return
    rest = b""
    for chunk in itertools.chain([head], read):
        rest += chunk
        *lines, rest = rest.split(b"\n")
        # A line left out is a blank one: the watcher skips it, and the deciding
        # line's number is still the file's.
        yield b"".join((reader(line) or b"").replace(b"\n", b" ") + b"\n" for line in lines)
        if len(rest) > MAX_LINE:
            yield rest
            rest = b""
    text = reader(rest) if rest else None
    if text is not None:
        yield text
