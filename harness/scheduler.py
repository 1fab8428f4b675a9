"""Runs tasks on N workers; the caller only sees `run(tasks, work, done)`.

`done` is always called on the calling thread, one result at a time, so whatever it
writes (results.jsonl, the progress line) needs no lock. On Ctrl-C the cancel event
is set, so every running task winds down (its QEMU stopped by its own context
manager), and the interrupt is raised again once all workers have returned.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Generic, Protocol, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Scheduler(Protocol):
    def run(
        self, tasks: Sequence[T], work: Callable[[T], R], done: Callable[[T, R], None]
    ) -> None: ...


class ThreadScheduler(Generic[T, R]):
    def __init__(self, jobs: int, cancel: threading.Event, tick: Callable[[], None] | None = None):
        self.jobs = max(1, jobs)
        self.cancel = cancel
        self.tick = tick or (lambda: None)

    def run(self, tasks: Sequence[T], work: Callable[[T], R], done: Callable[[T, R], None]) -> None:
        pending = list(tasks)
        running: dict[Future[R], T] = {}
        with ThreadPoolExecutor(max_workers=self.jobs, thread_name_prefix="cell") as pool:
            try:
                while pending or running:
                    while pending and len(running) < self.jobs and not self.cancel.is_set():
                        task = pending.pop(0)
                        running[pool.submit(work, task)] = task
                    finished, _ = wait(running, timeout=0.5, return_when=FIRST_COMPLETED)
                    for future in finished:
                        done(running.pop(future), future.result())
                    self.tick()
            except BaseException:
                self.cancel.set()
                wait(running)
                raise
