"""A reset told by the log itself: its earliest lines seen again.

Firmware we have no row for (a vendor's, a board's boot ROM) still prints the same
first lines every time the machine starts. When those lines come back after the boot
went past them (bootloader or kernel output), whatever printed them started over: a
reset, found without knowing the firmware.
"""

from __future__ import annotations

import re

EARLIEST = 2  # the most first lines that make the sequence
DISTINCT = 8  # a shorter line ("OK", ".") says nothing of who printed it
# The host's command line that started QEMU, as a report starts: not the firmware's.
_HOST_COMMAND = re.compile(r"\bqemu-system-")


def _key(text: str) -> str:
    return " ".join(text.split())


class EarliestLines:
    """The log's first non-blank lines printed before the bootloader, and whether
    they are being seen again."""

    def __init__(self) -> None:
        self._lines: list[str] = []
        self._learning = True
        self._seen = 0  # how many of them were just seen again, in order

    def learn(self, text: str, past_firmware: bool) -> None:
        """Takes the log's first lines while they come from before the bootloader
        (`past_firmware`: the line itself showed the bootloader or a later stage). A
        log that starts there has no firmware sequence: its loader's and kernel's
        restart banners are table rows."""
        if not self._learning or (len(_key(text)) < DISTINCT and not past_firmware):
            return
        if _HOST_COMMAND.search(text) and not past_firmware:
            return
        if not past_firmware:
            self._lines.append(_key(text))
        self._learning = not past_firmware and len(self._lines) < EARLIEST

    def recur(self, text: str) -> bool:
        """True when `text` completes the sequence seen again; call it only for lines
        the boot printed after it went past the firmware."""
        if self._learning or not self._lines:
            return False
        if _key(text) != self._lines[self._seen]:
            self._seen = 1 if _key(text) == self._lines[0] else 0
            return self._seen == len(self._lines)
        self._seen += 1
        if self._seen < len(self._lines):
            return False
        self._seen = 0
        return True

    def restart(self) -> None:
        self._seen = 0
