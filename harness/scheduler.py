"""Runs tasks on N workers; the caller only sees `run(tasks, work, done)`.

`done` is always called on the calling thread, one result at a time, so whatever it
writes (results.jsonl, the progress line) needs no lock. Every task that finishes is
handed to `done`, whatever happened to the others: a task that raised stops new
starts, the running ones are let finish and recorded, and then its exception is
raised. On Ctrl-C (or when `done` itself raises) the cancel event is set, so every
running task winds down (its QEMU stopped by its own context manager), what they
return is still handed to `done`, and the interrupt is raised again once all workers
have returned.
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


def longest_first(tasks: Sequence[T], cost: Callable[[T], float]) -> list[T]:
    """The tasks by descending cost (seconds expected), ties in their given order, so
    a run does not end with one long task on one core while the others idle."""
    return sorted(tasks, key=lambda task: -cost(task))


class ThreadScheduler(Generic[T, R]):
    def __init__(self, jobs: int, cancel: threading.Event, tick: Callable[[], None] | None = None):
        self.jobs = max(1, jobs)
        self.cancel = cancel
        self.tick = tick or (lambda: None)

    def run(self, tasks: Sequence[T], work: Callable[[T], R], done: Callable[[T, R], None]) -> None:
        """Starts `tasks` in the given order, at most `jobs` at once.

        Raises the first exception a task raised, after every other started task has
        returned and been handed to `done`; KeyboardInterrupt and whatever `done`
        raises are raised again after the running tasks were cancelled and drained.
        """
        pending = list(tasks)
        running: dict[Future[R], T] = {}
        failed: list[BaseException] = []
        with ThreadPoolExecutor(max_workers=self.jobs, thread_name_prefix="cell") as pool:
            try:
                while running or (pending and not failed and not self.cancel.is_set()):
                    while (
                        pending
                        and not failed
                        and len(running) < self.jobs
                        and not self.cancel.is_set()
                    ):
                        task = pending.pop(0)
                        running[pool.submit(work, task)] = task
                    finished, _ = wait(running, timeout=0.5, return_when=FIRST_COMPLETED)
                    for future in finished:
                        self._hand_over(running.pop(future), future, done, failed)
                    self.tick()
            except BaseException:
                self.cancel.set()
                self._drain(running, done)
                raise
        if failed:
            raise failed[0]

    @staticmethod
    def _hand_over(
        task: T, future: Future[R], done: Callable[[T, R], None], failed: list[BaseException]
    ) -> None:
        error = future.exception()
        if error is not None:
            failed.append(error)
        else:
            done(task, future.result())

    @staticmethod
    def _drain(running: dict[Future[R], T], done: Callable[[T, R], None]) -> None:
        """Every running task's result to `done` as it returns; once `done` fails
        (a full disk, say) the rest are only waited for."""
        recording = True
        for future in list(running):
            wait([future])
            if recording and future.exception() is None:
                try:
                    done(running[future], future.result())
                except BaseException:  # the first failure is the one raised
                    recording = False
        running.clear()
