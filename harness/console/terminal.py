"""The guest's console made safe to show on the user's terminal.

A guest writes to its serial console as if it owned a terminal: edk2 clears the
screen and positions the cursor (the QEMU command line printed just before is
wiped), shells ask where the cursor is (`ESC [ 6 n`, and the user's terminal
answers into the user's own shell), systemd asks for the window size. While the
harness shows a boot live, the terminal is the user's: this filter passes the text,
line ends, tabs and colour (SGR) and drops every other control sequence.
`--interactive` is the one place where the raw console is handed over.

The grammar is ECMA-48 (5th edition, 1991) section 5.4 as xterm parses it
(ctlseqs, "C1 (8-Bit) Control Characters" and "Controls beginning with ESC"):
CSI is `ESC [`, parameter bytes 0x30-0x3F, intermediate bytes 0x20-0x2F, one final
byte 0x40-0x7E; OSC (`ESC ]`) ends at BEL or ST (`ESC \\`); DCS, SOS, PM and APC
(`ESC P`, `ESC X`, `ESC ^`, `ESC _`) end at ST; CAN and SUB abort a sequence; other
escapes are `ESC`, intermediates, one final byte 0x30-0x7E. In UTF-8 a C1 control
is the two bytes C2 80..C2 9F (xterm acts on U+009B as CSI and so on), so those are
read as their C1 meaning; raw bytes 0x80-0x9F are UTF-8 continuation bytes and pass.
"""

from __future__ import annotations

import enum
import re

ESC = 0x1B
BEL = 0x07
CAN, SUB = 0x18, 0x1A
# C0 controls that a plain text console needs: BS, TAB, LF, CR. Every other C0 (NUL,
# BEL, SO/SI that switch to line-drawing characters, FF...) is dropped.
_KEPT_C0 = frozenset(b"\x08\t\n\r")
# A colour sequence longer than this is not one a guest means; it is dropped.
_MAX_CSI = 64
# Cursor positioning and erasing end a visual line: edk2 draws its screens with them,
# so each becomes a line end (at most one in a row) instead of running text together.
_LINE_BREAKING_FINALS = frozenset(b"HfJd")
_PLAIN = re.compile(rb"[^\x00-\x07\x0b\x0c\x0e-\x1f\x7f\xc2]*")
# SGR 0: every colour and attribute back to the terminal's default (ECMA-48 8.3.117).
RESET_COLOUR = b"\x1b[0m"
# What a guest given the raw terminal (`--interactive`) may leave behind and the
# user's shell would live with, undone (xterm ctlseqs): colours and attributes (SGR
# 0), a hidden cursor (DECTCEM, CSI ? 25 h), line-drawing characters (G0 back to
# ASCII, ESC ( B, and SI to select G0), mouse reporting (CSI ? 1000/1002/1003/1006
# l). Not DECSTR or RIS: tmux and others clear the screen for them, and the
# verdict is on it.
RESTORE_AFTER_HANDOVER = (
    RESET_COLOUR + b"\x1b[?25h\x1b(B\x0f\x1b[?1000l\x1b[?1002l\x1b[?1003l\x1b[?1006l"
)


class _State(enum.Enum):
    GROUND = enum.auto()
    C2 = enum.auto()  # saw 0xC2: the next byte may make a C1 control
    ESCAPE = enum.auto()  # saw ESC
    ESCAPE_INTERMEDIATE = enum.auto()  # ESC then 0x20-0x2F bytes
    CSI = enum.auto()
    STRING = enum.auto()  # OSC, DCS, SOS, PM, APC: dropped up to BEL/ST
    STRING_ESCAPE = enum.auto()  # ESC inside a string: ST if `\` follows


class TerminalFilter:
    """Feed it console bytes as they arrive, in chunks cut anywhere; it returns the
    bytes that are safe to write to a terminal. Sequences cut by a chunk boundary are
    finished on the next feed. Memory is bounded (a held CSI is at most 64 bytes)."""

    def __init__(self) -> None:
        self._state = _State.GROUND
        self._csi = bytearray()  # the CSI being read, from ESC on
        self._at_line_start = True
        self._coloured = False  # a colour passed and not reset since

    @property
    def at_line_start(self) -> bool:
        """Nothing shown yet, or what was shown last ended a line."""
        return self._at_line_start

    def end(self) -> bytes:
        """What to write once the console is no longer shown: SGR 0 if a colour
        the guest set is still in force (GRUB leaves its own), so the verdict and
        the user's shell prompt are in the terminal's colours; else nothing."""
        coloured, self._coloured = self._coloured, False
        return RESET_COLOUR if coloured else b""

    def feed(self, data: bytes) -> bytes:
        """The part of `data` (plus any sequence held from before) to show."""
        out = bytearray()
        at, end = 0, len(data)
        while at < end:
            if self._state is _State.GROUND:
                # Plain text is copied in runs: the per-byte path is only for controls.
                plain = _PLAIN.match(data, at)
                if plain is not None and plain.end() > at:
                    out += plain.group()
                    at = plain.end()
                    continue
            self._step(data[at], out)
            at += 1
        if out:
            self._at_line_start = out[-1] == 0x0A
        return bytes(out)

    def _step(self, byte: int, out: bytearray) -> None:
        state = self._state
        if state is _State.GROUND:
            self._ground(byte, out)
        elif state is _State.C2:
            self._state = _State.GROUND
            if 0x80 <= byte <= 0x9F:
                self._c1(byte, out)
            else:
                out.append(0xC2)
                self._ground(byte, out)
        elif byte in (CAN, SUB) and state is not _State.STRING:
            self._state = _State.GROUND
        elif state is _State.ESCAPE:
            self._escape(byte, out)
        elif state is _State.ESCAPE_INTERMEDIATE:
            if byte == ESC:
                self._state = _State.ESCAPE
            elif not 0x20 <= byte <= 0x2F:
                self._state = _State.GROUND
        elif state is _State.CSI:
            self._csi_byte(byte, out)
        elif state is _State.STRING:
            if byte == BEL or byte in (CAN, SUB):
                self._state = _State.GROUND
            elif byte == ESC:
                self._state = _State.STRING_ESCAPE
        elif state is _State.STRING_ESCAPE:
            # ST ends the string; any other escape ends it too and starts anew (xterm).
            self._state = _State.GROUND
            if byte != ord("\\"):
                self._escape(byte, out)

    def _ground(self, byte: int, out: bytearray) -> None:
        if byte == ESC:
            self._state = _State.ESCAPE
        elif byte == 0xC2:
            self._state = _State.C2
        elif (byte >= 0x20 and byte != 0x7F) or byte in _KEPT_C0:
            out.append(byte)

    def _c1(self, byte: int, out: bytearray) -> None:
        """A C1 control in its 8-bit form: the same as ESC and byte - 0x40."""
        self._state = _State.ESCAPE
        self._escape(byte - 0x40, out)

    def _escape(self, byte: int, out: bytearray) -> None:
        if byte == ord("["):
            self._state = _State.CSI
            self._csi[:] = b"\x1b["
        elif byte in b"]PX^_":
            self._state = _State.STRING
        elif byte == ESC:
            self._state = _State.ESCAPE
        elif 0x20 <= byte <= 0x2F:
            self._state = _State.ESCAPE_INTERMEDIATE
        else:
            # ESC c (a full reset, which clears the screen), ESC 7/8, ESC =, ...
            self._state = _State.GROUND

    def _csi_byte(self, byte: int, out: bytearray) -> None:
        if byte == ESC:
            self._state = _State.ESCAPE
            return
        if 0x40 <= byte <= 0x7E:
            self._state = _State.GROUND
            self._csi.append(byte)
            if _is_colour(bytes(self._csi)):
                out += self._csi
                self._coloured = bytes(self._csi) not in (b"\x1b[m", RESET_COLOUR)
            elif byte in _LINE_BREAKING_FINALS and not self._line_start(out):
                out += b"\r\n"
            return
        if not 0x20 <= byte <= 0x3F:
            return  # a C0 control inside CSI acts, in a terminal; here it is dropped
        if len(self._csi) < _MAX_CSI:
            self._csi.append(byte)
        else:
            self._csi[:] = b"\x1b[\x00"  # too long to be a colour: dropped when it ends

    def _line_start(self, out: bytearray) -> bool:
        return out[-1] == 0x0A if out else self._at_line_start


def _is_colour(sequence: bytes) -> bool:
    """SGR (`ESC [ params m`, params digits, `;` or `:`) and nothing else."""
    params = sequence[2:-1]
    return sequence.endswith(b"m") and all(b in b"0123456789;:" for b in params)
