"""The scheduler with fake tasks: boot slots given back at the prompt let the next
task start while the first is still running, never more than `jobs` in their first
phase; every finished task reaches `done`, on the calling thread."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from harness.scheduler import Release, ThreadScheduler


class Phases:
    """Fake tasks: `boot_s` before giving the slot back (if `releases`), then
    `after_s`; counts what ran at once."""

    def __init__(self, boot_s: float, after_s: float, releases: bool = True):
        self.boot_s, self.after_s, self.releases = boot_s, after_s, releases
        self.lock = threading.Lock()
        self.booting = self.running = 0
        self.most_booting = self.most_running = 0
        self.events: list[str] = []

    def _count(self, booting: int, running: int, event: str) -> None:
        with self.lock:
            self.booting += booting
            self.running += running
            self.most_booting = max(self.most_booting, self.booting)
            self.most_running = max(self.most_running, self.running)
            self.events.append(event)

    def work(self, task: str, release: Release) -> str:
        self._count(1, 1, f"start {task}")
        time.sleep(self.boot_s)
        if self.releases:
            self._count(-1, 0, f"prompt {task}")
            release()
            release()  # giving it back twice is harmless
        time.sleep(self.after_s)
        self._count(0 if self.releases else -1, -1, f"end {task}")
        return f"{task} ok"


def run(phases: Phases, tasks: list[str], jobs: int, workers: int | None) -> list[tuple[str, str]]:
    recorded: list[tuple[str, str]] = []
    threads: set[threading.Thread] = set()

    def done(task: str, result: str) -> None:
        threads.add(threading.current_thread())
        recorded.append((task, result))

    ThreadScheduler[str, str](jobs, threading.Event(), workers=workers).run(
        tasks, phases.work, done
    )
    assert threads <= {threading.main_thread()}
    return recorded


def test_the_next_task_starts_at_the_prompt_not_at_the_end() -> None:
    phases = Phases(boot_s=0.2, after_s=0.6)
    recorded = run(phases, ["a", "b", "c"], jobs=1, workers=3)
    assert sorted(recorded) == [("a", "a ok"), ("b", "b ok"), ("c", "c ok")]
    assert phases.most_booting == 1  # never two in their first phase
    assert phases.most_running >= 2  # b booted while a was past its prompt
    assert phases.events.index("start b") < phases.events.index("end a")
    assert phases.events.index("start b") > phases.events.index("prompt a")


def test_a_task_that_never_gives_its_slot_back_holds_it_to_its_end() -> None:
    phases = Phases(boot_s=0.2, after_s=0.2, releases=False)
    run(phases, ["a", "b"], jobs=1, workers=4)
    assert phases.events == ["start a", "end a", "start b", "end b"]


def test_workers_bound_the_tasks_at_once() -> None:
    phases = Phases(boot_s=0.01, after_s=0.3)
    run(phases, list("abcdef"), jobs=2, workers=3)
    assert phases.most_running == 3
    assert phases.most_booting <= 2


def test_without_workers_a_task_keeps_its_slot_to_the_end() -> None:
    phases = Phases(boot_s=0.05, after_s=0.3)
    run(phases, list("abcd"), jobs=2, workers=None)
    assert phases.most_running == 2


def test_a_task_that_raises_after_its_prompt_loses_no_other_result() -> None:
    recorded: list[str] = []
    started: list[str] = []

    def work(task: str, release: Release) -> str:
        started.append(task)
        release()
        time.sleep(0.6 if task == "slow" else 0.1)
        if task == "boom":
            raise RuntimeError("planted")
        return task

    scheduler = ThreadScheduler[str, str](1, threading.Event(), workers=2)
    with pytest.raises(RuntimeError, match="planted"):
        scheduler.run(["slow", "boom", "never"], work, lambda t, r: recorded.append(r))
    assert recorded == ["slow"]  # still running when boom raised: recorded
    assert started == ["slow", "boom"]  # nothing new after the failure


def test_ctrl_c_in_done_drains_every_running_task() -> None:
    cancel = threading.Event()
    recorded: list[str] = []

    def work(task: str, release: Release) -> str:
        release()
        end = time.monotonic() + (0.5 if task == "first" else 5)
        while time.monotonic() < end and not cancel.is_set():
            time.sleep(0.01)
        return task

    def done(task: str, result: str) -> None:
        recorded.append(result)
        if task == "first":
            raise KeyboardInterrupt

    scheduler = ThreadScheduler[str, str](1, cancel, workers=3)
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        scheduler.run(["first", "second", "third", "fourth"], work, done)
    assert cancel.is_set()
    assert time.monotonic() - started < 3  # the running ones were cancelled
    assert recorded[0] == "first" and set(recorded[1:]) <= {"second", "third"}
    assert "second" in recorded and "fourth" not in recorded


def _never(task: str, release: Release) -> str:
    raise AssertionError("no task may start")


def test_a_cancelled_run_starts_nothing() -> None:
    cancel = threading.Event()
    cancel.set()
    done: Callable[[str, str], None] = lambda t, r: None  # noqa: E731
    ThreadScheduler[str, str](2, cancel, workers=4).run(["a", "b"], _never, done)


def test_the_watch_loop_gives_the_slot_back_once_when_the_prompt_shows() -> None:
    """boot._watch on a scripted guest and its fake clock: `at_prompt` comes once,
    right after the login prompt, not during the boot nor again after the login."""
    from fake_guest import ROOT as LOGIN
    from fake_guest import Guest, Kept

    from harness.boot import POLL_S, _watch
    from harness.console.conversation import ANSWER_QUIET_S
    from harness.console.watcher import QUIET_S, Watcher

    guest = Guest(["Booting Linux on physical CPU 0x0\r\n", 3.0, "host login: ", QUIET_S + 0.2,
                   "root\r\n# ", 5.0])  # fmt: skip
    called: list[float] = []
    _watch(guest, None, Watcher(LOGIN, start=0.0), 300.0, Kept(), None, None,
           clock=guest.clock, at_prompt=lambda: called.append(guest.now))  # fmt: skip
    assert len(called) == 1
    # a login prompt is one once quiet for ANSWER_QUIET_S; the loop calls on its next turn
    assert 3.0 + ANSWER_QUIET_S <= called[0] <= 3.0 + ANSWER_QUIET_S + POLL_S
