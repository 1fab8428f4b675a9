"""`harness compare` through the real CLI on two run directories written here: its
labels and exit status, which a nightly job reads. Nothing boots."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import Harness

PASSING = "debian-12-tiny/none/virt/pci"
FAILING = "debian-12-tiny/none/virt/mmio"


def record(
    cell: str, outcome: str, stage: str = "login", reason: str = "login"
) -> dict[str, object]:
    image, firmware, machine, transport = cell.split("/")
    return {
        "cell": cell, "image": image, "firmware": firmware, "machine": machine,
        "transport": transport, "status": outcome, "outcome": outcome, "stage": stage,
        "reason": reason, "detail": "", "duration_s": 5.0, "stage_times": {}, "repeat": 0,
        "attempts": 1,
    }  # fmt: skip


def run_dir(where: Path, records: list[dict[str, object]]) -> Path:
    """A run directory as `harness matrix` leaves it (run.json, results.jsonl)."""
    where.mkdir(parents=True)
    cells = [str(r["cell"]) for r in records]
    meta = {"run": where.name, "profile": "p", "repeat": 1, "cells": cells, "host": {}}
    (where / "run.json").write_text(json.dumps(meta))
    (where / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return where


def test_a_pass_that_became_an_error_is_untested_and_not_green(
    harness: Harness, tmp_path: Path
) -> None:
    old = run_dir(tmp_path / "old", [record(PASSING, "pass"), record(FAILING, "fail")])
    new = run_dir(
        tmp_path / "new",
        [
            record(PASSING, "error", "none", "download-failed"),
            record(FAILING, "error", "none", "download-failed"),
        ],
    )
    proc = harness("compare", str(old), str(new))
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert proc.stdout.splitlines() == [
        f"untested       {PASSING}  pass -> error none download-failed",
        f"error          {FAILING}  fail login login -> error none download-failed",
        "1 error, 1 untested",
    ]
    assert "3 no regression but a cell that met its expectation is an error now" in " ".join(
        harness("compare", "--help").stdout.split()
    )
    # a regression is still 1, whatever else is untested
    worse = run_dir(
        tmp_path / "worse",
        [record(PASSING, "error", "none", "qemu-failed"), record(FAILING, "fail")],
    )
    old2 = run_dir(tmp_path / "old2", [record(PASSING, "pass"), record(FAILING, "pass")])
    assert harness("compare", str(old2), str(worse)).returncode == 1
    # a verdict after an error has nothing to compare with: new, not fixed nor still failing
    back = run_dir(tmp_path / "back", [record(PASSING, "pass"), record(FAILING, "fail")])
    proc = harness("compare", str(new), str(back))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines() == [
        f"new            {PASSING}  error none download-failed -> pass",
        f"new            {FAILING}  error none download-failed -> fail login login",
        "2 new",
    ]
    # and a run compared with itself is 0
    assert harness("compare", str(old), str(old)).returncode == 0
