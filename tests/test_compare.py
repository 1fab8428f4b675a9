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


def compared(harness: Harness, old: Path, new: Path) -> tuple[int, list[str]]:
    """`harness compare OLD NEW`: its exit status and its lines."""
    proc = harness("compare", str(old), str(new))
    assert not proc.stderr, proc.stderr
    return proc.returncode, proc.stdout.splitlines()


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
    assert compared(harness, old, new) == (3, [
        f"untested       {PASSING}  pass -> error none download-failed",
        f"error          {FAILING}  fail login login -> error none download-failed",
        "1 error, 1 untested",
    ])  # fmt: skip
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
    # and a run compared with itself is 0
    assert harness("compare", str(old), str(old)).returncode == 0


def test_a_verdict_after_an_error_is_new(harness: Harness, tmp_path: Path) -> None:
    # no verdict to compare it with: neither fixed nor still failing (it said fixed)
    errors = [record(cell, "error", "none", "download-failed") for cell in (PASSING, FAILING)]
    old = run_dir(tmp_path / "old", errors)
    new = run_dir(tmp_path / "new", [record(PASSING, "pass"), record(FAILING, "fail")])
    assert compared(harness, old, new) == (0, [
        f"new            {PASSING}  error none download-failed -> pass",
        f"new            {FAILING}  error none download-failed -> fail login login",
        "2 new",
    ])  # fmt: skip
