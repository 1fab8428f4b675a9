"""How a download shows itself: on a terminal one line redrawn in place (bytes, rate,
ETA), elsewhere a plain line at every tenth."""

from __future__ import annotations

import time
from typing import TextIO

MIB = 1 << 20


class DownloadProgress:
    def __init__(self, stream: TextIO):
        self.stream = stream
        self.live = stream.isatty()
        self._started: dict[str, float] = {}
        self._shown: dict[str, int] = {}

    def __call__(self, name: str, done: int, total: int | None) -> None:
        now = time.monotonic()
        started = self._started.setdefault(name, now)
        rate = done / max(now - started, 1e-3)
        if total:
            eta = (total - done) / rate if rate else 0
            text = (f"{name}: {done / MIB:.1f}/{total / MIB:.1f} MiB ({100 * done // total}%) "
                    f"{rate / MIB:.1f} MiB/s ETA {int(eta // 60)}:{int(eta % 60):02d}")  # fmt: skip
        else:
            text = f"{name}: {done / MIB:.1f} MiB {rate / MIB:.1f} MiB/s"
        if self.live:
            self.stream.write(f"\r\x1b[K{text}" + ("\n" if total and done >= total else ""))
            self.stream.flush()
            return
        tenth = 10 * done // total if total else done // (100 * MIB)
        if tenth > self._shown.get(name, -1):
            self._shown[name] = tenth
            self.stream.write(text + "\n")
            self.stream.flush()
