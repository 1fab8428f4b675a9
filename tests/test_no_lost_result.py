"""No result lost, ever: every cell that finished reaches results.jsonl even when
another cell raised, and a resumed run boots only what is really missing."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import ROOT, Harness, qemu_processes

from harness.model import Image
from harness.scheduler import ThreadScheduler

MATRIX = """\
profiles:
  lost:
    matrix:
      image: debian-12-tiny
      firmware: [aavmf, none]
      machine: virt
      transport: [mmio, pci]
    exclude:
      - {firmware: aavmf, transport: mmio}
"""
LONG, SHORT, PLANTED = (
    "debian-12-tiny/aavmf/virt/pci",
    "debian-12-tiny/none/virt/mmio",
    "debian-12-tiny/none/virt/pci",
)


def test_a_task_that_raises_does_not_lose_the_others_results() -> None:
    started: list[str] = []
    recorded: list[tuple[str, str]] = []

    def work(name: str, _release: Callable[[], None]) -> str:
        started.append(name)
        if name == "boom":
            time.sleep(0.2)
            raise RuntimeError("planted")
        time.sleep(1.0 if name == "slow" else 0.05)
        return f"{name} ok"

    scheduler: ThreadScheduler[str, str] = ThreadScheduler(2, threading.Event())
    with pytest.raises(RuntimeError, match="planted"):
        scheduler.run(
            ["slow", "boom", "quick", "never"], work, lambda t, r: recorded.append((t, r))
        )
    # slow was still running when boom raised: it reaches `done`, and nothing new
    # starts after the failure.
    assert recorded == [("slow", "slow ok")]
    assert started == ["slow", "boom"]


def test_longest_first_is_stable_for_equal_costs() -> None:
    from harness.scheduler import longest_first

    costs = {"a": 5.0, "b": 20.0, "c": 5.0, "d": 20.0}
    assert longest_first(list(costs), costs.__getitem__) == ["b", "d", "a", "c"]


def test_a_cell_whose_setup_raises_loses_no_other_result(
    tiny: Image, harness: Harness, tmp_path: Path
) -> None:
    matrix = tmp_path / "matrix.yaml"
    matrix.write_text(MATRIX)
    results = tmp_path / "r"
    child = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "matrix", "--matrix", str(matrix), "--profile", "lost",
         "-j", "2", "--results", str(results)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not (results / "latest" / "run.json").exists():
        assert time.monotonic() < deadline and child.poll() is None
        time.sleep(0.02)
    run = (results / "latest").resolve()
    # The planted fault: a file where the third cell's directory must go, so that
    # cell's setup fails once a worker is free for it, while the long one boots.
    (run / "cells").mkdir(exist_ok=True)
    (run / "cells" / "debian-12-tiny_none_virt_pci").write_text("in the way\n")
    out, err = child.communicate(timeout=300)
    assert child.returncode == 2, out + err  # an error cell: the host's fault
    records = {
        json.loads(x)["cell"]: json.loads(x)
        for x in (run / "results.jsonl").read_text().splitlines()
    }
    assert sorted(records) == sorted([LONG, SHORT, PLANTED])
    assert records[LONG]["outcome"] == records[SHORT]["outcome"] == "pass"
    assert records[PLANTED]["outcome"] == "error"
    assert "cannot make the output directory" in records[PLANTED]["detail"]
    assert not [p for p in qemu_processes() if str(run) in Path(f"/proc/{p}/cmdline").read_text()]

    (run / "cells" / "debian-12-tiny_none_virt_pci").unlink()
    resumed = harness("matrix", "--resume", str(run), "-j", "2")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    cells = [json.loads(x)["cell"] for x in (run / "results.jsonl").read_text().splitlines()]
    assert sorted(cells) == sorted([LONG, SHORT, PLANTED, PLANTED])  # only the error again
    # The run is in the history once, as its resume left it.
    with sqlite3.connect(results / "history.sqlite") as history:
        assert history.execute("SELECT id FROM runs").fetchall() == [(run.name,)]
        outcomes = dict(history.execute("SELECT cell, outcome FROM results").fetchall())
        assert outcomes == {LONG: "pass", SHORT: "pass", PLANTED: "pass"}
