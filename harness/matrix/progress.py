"""What a running matrix shows: on a terminal one status line redrawn in place (cells
done/total, outcome counts, running cells, ETA); elsewhere (CI logs) one plain line
per finished cell.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections import Counter
from collections.abc import Mapping
from typing import TextIO

from harness.matrix.run import Task
from harness.model import Outcome


class Progress:
    def __init__(self, total: int, jobs: int, stream: TextIO):
        self.total = total
        self.jobs = jobs
        self.stream = stream
        self.live = stream.isatty()
        self.counts: Counter[str] = Counter()
        self.done = 0
        self.started = time.monotonic()
        self.running: dict[str, float] = {}
        self._lock = threading.Lock()  # on_start comes from worker threads

    def start(self, task: Task) -> None:
        with self._lock:
            self.running[task.planned.cell.id] = time.monotonic()

    def finish(self, record: Mapping[str, object]) -> None:
        """Counts a finished cell's record (results.jsonl's) and prints its line."""
        outcome = str(record["outcome"])
        with self._lock:
            self.running.pop(str(record["cell"]), None)
        self.done += 1
        self.counts[outcome] += 1
        if self.live:
            self._clear()
        if outcome != Outcome.SKIP or not self.live:
            why = (
                record["stage"]
                if record["status"] == "pass"
                else f"{record['stage']} {record['reason']}"
            )
            self.stream.write(
                f"[{self.done}/{self.total}] {outcome.upper():<7} {record['cell']} "
                f"{why} {record['duration_s']:.1f}s\n"
            )
        self.tick()

    def tick(self) -> None:
        if not self.live:
            self.stream.flush()
            return
        counts = " ".join(f"{k} {v}" for k, v in sorted(self.counts.items()))
        with self._lock:
            running = ", ".join(sorted(self.running))
        line = f"[{self.done}/{self.total}] {counts or '-'} | eta {self._eta()} | {running}"
        width = shutil.get_terminal_size().columns
        self._clear()
        self.stream.write(line[: width - 1])
        self.stream.flush()

    def close(self) -> None:
        if self.live:
            self._clear()
            self.stream.flush()

    def _clear(self) -> None:
        self.stream.write("\r\x1b[K")

    def _eta(self) -> str:
        booted = self.done - self.counts["skip"]
        if booted <= 0:
            return "?"
        left = (time.monotonic() - self.started) / booted * (self.total - self.done)
        return f"{int(left // 60)}m{int(left % 60):02d}s"
