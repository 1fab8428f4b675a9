"""Running a plan: every planned cell booted (or skipped), each result appended to the
run directory the moment it is known.

A cell is retried only on `error` (the host's fault), never on `fail`: retrying a
failing guest until it passes would hide exactly the flaky combinations this harness
exists to find. `--repeat N` boots each cell N times instead, and cells whose repeats
disagree are reported `unstable`.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from dataclasses import dataclass

from harness.boot import BootOptions
from harness.host import Host
from harness.matrix.expand import Expectation, Plan, Planned
from harness.matrix.rundir import RunDir
from harness.matrix.sameboot import same_boots, twins_of
from harness.model import CellResult, Outcome
from harness.records import Record
from harness.runner import CellSetup, run_cell
from harness.scheduler import Release, ThreadScheduler


def outcome(status: Outcome, stage: str, reason: str, expect: Expectation | None) -> Outcome:
    """pass/fail/error/skip, or xfail/xpass where a failure was expected."""
    if expect is None or not status.is_guest:
        return status
    if expect.met_by(status, stage, reason):
        return Outcome.XFAIL
    return Outcome.XPASS if status is Outcome.PASS else status


@dataclass(frozen=True)
class Task:
    planned: Planned
    repeat: int
    # Cells recorded from this task's boot (matrix/sameboot.py), each judged
    # against its own expectation.
    twins: tuple[Planned, ...] = ()


def record_of(result: CellResult, task: Task, attempts: int) -> Record:
    expect = task.planned.expect
    return {
        **result.to_json(),
        "outcome": outcome(result.status, result.stage, result.reason, expect).value,
        "attempts": attempts,
        "repeat": task.repeat,
        "expect": dataclasses.asdict(expect) if expect else None,
    }


def twin_record(result: CellResult, task: Task, twin: Planned, attempts: int) -> Record:
    """The record of `twin` from the boot of `task`: the same verdict and files,
    under the twin's name, with its own expectation, `same_boot_as` the booted cell."""
    as_twin = dataclasses.replace(result, cell=twin.cell)
    record = record_of(as_twin, Task(twin, task.repeat), attempts)
    return {**record, "same_boot_as": task.planned.cell.id}


def skipped(task: Task) -> Record:
    cell = task.planned.cell
    result = CellResult(cell, Outcome.SKIP, "none", "unsupported", detail=task.planned.skip)
    return record_of(result, task, 0)


class MatrixRunner:
    def __init__(
        self,
        run: RunDir,
        setup: CellSetup,
        host: Host,
        options: BootOptions,
        on_record: Callable[[Record], None],
        on_start: Callable[[Task], None] = lambda task: None,
        on_output: Callable[[Task], None] = lambda task: None,
    ):
        self.run = run
        self.setup = setup
        self.host = host
        self.options = options
        self.on_record = on_record
        self.on_start = on_start
        # the task's guest printed its first console bytes: from the booting thread, once
        self.on_output = on_output

    def tasks(self, plan: Plan, repeat: int) -> list[Task]:
        """One task per cell and repeat with no verdict yet; a `virt` cell that is
        its versioned twin's boot rides on that twin's task (a resumed run whose twin
        has its verdict already boots the `virt` cell alone)."""
        done = self.run.done()
        pairs = same_boots(plan.cells, plan.virt_aliases)
        twins = twins_of(pairs)
        by_id = {planned.cell.id: planned for planned in plan.cells}
        tasks = []
        for planned in plan.cells:
            if planned.cell.id in pairs:
                continue  # with the cell it is booted as
            group = [planned, *(by_id[twin] for twin in twins.get(planned.cell.id, ()))]
            for k in range(repeat):
                left = [p for p in group if (p.cell.id, k) not in done]
                if left:
                    tasks.append(Task(left[0], k, tuple(left[1:])))
        return tasks

    def execute(
        self,
        tasks: list[Task],
        jobs: int,
        cancel: threading.Event,
        tick: Callable[[], None],
        workers: int | None = None,
    ) -> None:
        """Boots `tasks`, `jobs` at once up to their login prompt and `workers` at
        once in all (scheduler.py), each record appended as its boot ends."""
        for task in (t for t in tasks if t.planned.skip):
            self._finish(task, skipped(task))
        runnable = [t for t in tasks if not t.planned.skip]
        scheduler: ThreadScheduler[Task, list[Record]] = ThreadScheduler(
            jobs, cancel, tick, workers
        )
        scheduler.run(runnable, self._boot, self._finish_all)

    def _boot(self, task: Task, booted: Release) -> list[Record]:
        """The task's records: its cell's, then its twins'. `booted` is called at the
        login prompt: the guest no longer needs a core of its own. (A retry after an
        `error` past the prompt boots again without a slot: a host fault, rare.)"""
        self.on_start(task)
        planned = task.planned
        options = dataclasses.replace(
            self.options,
            timeout_s=self.options.timeout_s or planned.timeout_s,
            accel=planned.accel,
            at_prompt=booted,
            at_output=lambda: self.on_output(task),
        )
        setup = self.setup
        if planned.login is not None:
            image_of, login = self.setup.image, planned.login
            setup = CellSetup(
                lambda c: dataclasses.replace(image_of(c), login=login),
                self.setup.firmware,
                self.setup.host,
            )
        out = self.run.cell_dir(planned.cell, task.repeat)
        quiet = lambda _: None  # noqa: E731 - cells of a matrix show no console
        attempts = 0
        while True:
            attempts += 1
            # a combination this image cannot do is the cell's `skip` (runner.py)
            result = run_cell(planned.cell, setup, self.host, out, options, None, quiet)
            if not result.status.is_host or attempts > planned.retries:
                twins = [twin_record(result, task, twin, attempts) for twin in task.twins]
                return [record_of(result, task, attempts), *twins]

    def _finish_all(self, task: Task, records: list[Record]) -> None:
        for record in records:
            self._finish(task, record)

    def _finish(self, task: Task, record: Record) -> None:
        self.run.append(record)
        self.on_record(record)
