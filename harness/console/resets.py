"""A reset told by the log itself: its earliest lines seen again.

Firmware we have no row for (a vendor's, U-Boot's SPL, a board's boot ROM) still
prints the same first lines every time the machine starts. When those lines come
back after the boot went past them (bootloader or kernel output), whatever printed
them started over: a reset, found without knowing the firmware.
"""

from __future__ import annotations

EARLIEST = 2  # how many first lines make the sequence: one could recur by chance


def _key(text: str) -> str:
    return " ".join(text.split())


class EarliestLines:
    """The log's first non-blank lines, and whether they are being seen again."""

    def __init__(self) -> None:
        self._lines: list[str] = []
        self._usable = True
        self._seen = 0  # how many of them were just seen again, in order

    def learn(self, text: str, past_firmware: bool) -> None:
        """Takes the first EARLIEST non-blank lines. A log whose first lines already
        come from the bootloader or kernel has no firmware sequence (its kernel's
        restart banner is a table row)."""
        if len(self._lines) >= EARLIEST or not self._usable:
            return
        self._lines.append(_key(text))
        self._usable = not past_firmware

    def recur(self, text: str) -> bool:
        """True when `text` completes the sequence seen again; call it only for lines
        the boot printed after it went past the firmware."""
        if len(self._lines) < EARLIEST or not self._usable:
            return False
        if _key(text) != self._lines[self._seen]:
            self._seen = 0
            return False
        self._seen += 1
        if self._seen < EARLIEST:
            return False
        self._seen = 0
        return True

    def restart(self) -> None:
        self._seen = 0
