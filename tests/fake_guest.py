"""A guest for the real watch loop (boot._watch): a scripted console and the fake
clock it runs on, so a conversation of minutes is judged in milliseconds."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from harness.boot import _watch
from harness.console.watcher import Verdict, Watcher
from harness.model import Login

ROOT = Login("root", "")

Step = str | bytes | float


class Guest:
    """The console boot._watch reads, with the clock it runs on. A text in the script
    is what the guest prints next; a number is seconds it stays silent, passed one
    read's timeout at a time, as QemuProcess.read waits. Past its script the guest is
    silent, or gone when it `ends` (QEMU exited with `status`). What the loop types is
    kept in `typed` with the index of the script step it came during."""

    def __init__(self, script: Sequence[Step], ends: bool = False, status: str = "0"):
        self.argv = ["qemu-system-aarch64"]
        self.now = 0.0
        self.script = list(script)
        self.done = 0  # steps played through
        self.typed: list[tuple[int, str]] = []
        self._ends = ends
        self._status = status
        self._silent_until: float | None = None

    def clock(self) -> float:
        return self.now

    def read(self, timeout: float) -> bytes | None:
        while self.done < len(self.script):
            step = self.script[self.done]
            if isinstance(step, (str, bytes)):
                self.done += 1
                return step.encode() if isinstance(step, str) else step
            if self._silent_until is None:
                self._silent_until = self.now + step
            if self.now < self._silent_until:
                self.now = min(self.now + timeout, self._silent_until)
                return b""
            self._silent_until = None
            self.done += 1
        if self._ends:
            return None
        self.now += timeout
        return b""

    def send(self, text: str) -> None:
        self.typed.append((self.done, text))

    def texts(self) -> list[str]:
        return [text for _, text in self.typed]

    def texts_by(self, step: int) -> list[str]:
        """What was typed up to the end of script step `step` (0-based)."""
        return [text for at, text in self.typed if at <= step]

    def exit_status(self, wait_s: float = 2.0) -> str:
        return self._status

    def stderr(self) -> str:
        return "qemu: fake stderr"


class Kept:
    """The console log, in memory."""

    def __init__(self) -> None:
        self.data = b""

    def write(self, data: bytes) -> None:
        self.data += data

    def mark(self, line: bytes) -> None:
        self.data += line


def watch(
    script: Sequence[Step],
    login: Login = ROOT,
    *,
    probe_devices: bool = False,
    timeout_s: float = 300.0,
    guest: Guest | None = None,
    cancel: threading.Event | None = None,
) -> tuple[Verdict, Guest]:
    """The verdict of the real watch loop (boot._watch) on a guest that follows
    `script`, with the boot timeout `timeout_s` from a clock starting at 0."""
    guest = guest or Guest(script)
    watcher = Watcher(login, start=0.0, probe_devices=probe_devices)
    verdict = _watch(guest, None, watcher, timeout_s, Kept(), None, cancel, clock=guest.clock)
    return verdict, guest
