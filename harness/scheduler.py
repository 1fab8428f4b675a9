"""Runs tasks on worker threads; the caller only sees `run(tasks, work, done)`.

A task's first phase (for a cell: preparing its files and booting QEMU up to the
login prompt) keeps a core busy; the rest of it (the login, the probe, the
shutdown) mostly waits on a quiet guest. So the scheduler counts two things: at most
`jobs` tasks in their first phase (a boot slot each), and at most `workers` tasks at
all. A task gives its boot slot back by calling the `release` it is handed (the
runner does when the watcher sees the prompt), or by returning, whichever comes
first; the next task starts then, not only when one ends.

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

import contextlib
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, InvalidStateError, ThreadPoolExecutor, wait
from typing import Any, Generic, Protocol, TypeVar

T = TypeVar("T")
R = TypeVar("R")

# Called by a task when its first phase is over (idempotent, from the task's thread).
Release = Callable[[], None]


class Scheduler(Protocol):
    def run(
        self,
        tasks: Sequence[T],
        work: Callable[[T, Release], R],
        done: Callable[[T, R], None],
    ) -> None: ...


def longest_first(tasks: Sequence[T], cost: Callable[[T], float]) -> list[T]:
    """The tasks by descending cost (seconds expected), ties in their given order, so
    a run does not end with one long task on one core while the others idle."""
    return sorted(tasks, key=lambda task: -cost(task))


def _release(slot: Future[None]) -> None:
    with contextlib.suppress(InvalidStateError):  # given back already
        slot.set_result(None)


class ThreadScheduler(Generic[T, R]):
    def __init__(
        self,
        jobs: int,
        cancel: threading.Event,
        tick: Callable[[], None] | None = None,
        workers: int | None = None,
    ):
        """`jobs`: tasks in their first phase at once; `workers`: tasks at once in
        all (None or fewer than `jobs`: `jobs`, i.e. a task holds its slot to the end)."""
        self.jobs = max(1, jobs)
        self.workers = max(self.jobs, workers or 0)
        self.cancel = cancel
        self.tick = tick or (lambda: None)

    def run(
        self, tasks: Sequence[T], work: Callable[[T, Release], R], done: Callable[[T, R], None]
    ) -> None:
        """Starts `tasks` in the given order, each when a boot slot and a worker are
        free; `work(task, release)` runs on a worker thread.

        Raises the first exception a task raised, after every other started task has
        returned and been handed to `done`; KeyboardInterrupt and whatever `done`
        raises are raised again after the running tasks were cancelled and drained.
        """
        pending = list(tasks)
        running: dict[Future[R], T] = {}
        booting: set[Future[None]] = set()  # boot slots not given back yet
        failed: list[BaseException] = []
        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="cell") as pool:
            try:
                while running or (pending and not failed and not self.cancel.is_set()):
                    while (
                        pending
                        and not failed
                        and len(running) < self.workers
                        and len(booting) < self.jobs
                        and not self.cancel.is_set()
                    ):
                        task = pending.pop(0)
                        slot: Future[None] = Future()
                        booting.add(slot)
                        running[pool.submit(self._phases, work, task, slot)] = task
                    # a slot given back wakes this loop as a task ending does
                    watched: list[Future[Any]] = [*running, *booting]
                    finished, _ = wait(watched, timeout=0.5, return_when=FIRST_COMPLETED)
                    for future in finished:
                        if future in running:
                            self._hand_over(running.pop(future), future, done, failed)
                    booting = {slot for slot in booting if not slot.done()}
                    self.tick()
            except BaseException:
                self.cancel.set()
                self._drain(running, done)
                raise
        if failed:
            raise failed[0]

    @staticmethod
    def _phases(work: Callable[[T, Release], R], task: T, slot: Future[None]) -> R:
        try:
            return work(task, lambda: _release(slot))
        finally:
            _release(slot)  # a task that ended (or raised) before its prompt

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
