"""Shards cut by time: recorded durations (a previous run or the history) where known,
else estimates per image and firmware; longest cells first inside a run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import ROOT, Harness

from harness.catalog import Catalog
from harness.commands.common import load_plan
from harness.host import Host
from harness.matrix.shard import costs, cut, load_of, spread
from harness.model import Image

MATRIX = """\
profiles:
  four:
    matrix: {image: debian-12-tiny, firmware: none, machine: [virt, virt-7.1], transport: [mmio, pci]}
"""
A, B, C, D = (
    "debian-12-tiny/none/virt/mmio",
    "debian-12-tiny/none/virt/pci",
    "debian-12-tiny/none/virt-7.1/mmio",
    "debian-12-tiny/none/virt-7.1/pci",
)
# Round robin would put A and C (190 s) against B and D (20 s); by time: A, C first,
# then D (lower id) into the lighter shard, then B into the tie's first: 110 s / 100 s.
SECONDS = {A: 100.0, B: 10.0, C: 90.0, D: 10.0}


AXES = ("image", "firmware", "machine", "transport")


def planted_run(path: Path, seconds: dict[str, float], started: str = "20261201T011700Z") -> Path:
    """A run directory as `harness matrix` writes one, with the given durations."""
    path.mkdir(parents=True)
    meta = {"run": f"{started}-four", "started_at": started, "profile": "four",
            "cells": list(seconds), "host": {"qemu_version": "7.2.0"}}  # fmt: skip
    (path / "run.json").write_text(json.dumps(meta))
    records = [
        {"cell": cell, **dict(zip(AXES, cell.split("/"), strict=True)), "outcome": "pass",
         "status": "pass", "stage": "login", "reason": "login",
         "duration_s": s, "stage_times": {"kernel": 1.0, "login": s - 1}, "repeat": 0}
        for cell, s in seconds.items()
    ]  # fmt: skip
    (path / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def shard_cells(harness: Harness, matrix: Path, spec: str, *more: str) -> list[str]:
    proc = harness("list", "--matrix", str(matrix), "--profile", "four", "--shard", spec, *more)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout.splitlines()[:-1]


def test_shards_are_cut_by_a_previous_runs_durations_or_the_history(
    harness: Harness, tmp_path: Path
) -> None:
    matrix = tmp_path / "matrix.yaml"
    matrix.write_text(MATRIX)
    run = planted_run(tmp_path / "run", SECONDS)
    for source in (("--durations", str(run)), ("--durations", str(run / "results.jsonl"))):
        if source[1].endswith(".jsonl"):
            bad = harness(
                "list", "--matrix", str(matrix), "--profile", "four", "--shard", "1/2", *source
            )  # fmt: skip
            assert bad.returncode == 2 and "not a run directory or results.json" in bad.stderr
            continue
        first = shard_cells(harness, matrix, "1/2", *source)
        assert first == ["shard 1/2: about 110 s of boots", A, B]
        second = shard_cells(harness, matrix, "2/2", *source)
        assert second == ["shard 2/2: about 100 s of boots", C, D]
    db = tmp_path / "h.sqlite"
    assert harness("history", "import", str(run), "--db", str(db)).returncode == 0
    by_history = shard_cells(harness, matrix, "1/2", "--db", str(db))
    assert by_history == ["shard 1/2: about 110 s of boots", A, B]
    estimated = shard_cells(harness, matrix, "1/2", "--db", str(tmp_path / "none.sqlite"))
    assert estimated == ["shard 1/2: about 10 s of boots", A, C]  # 5 s each, by cell id


def test_the_nightly_profile_in_four_shards_is_balanced_and_deterministic(
    catalog: Catalog, host: Host
) -> None:
    plan = load_plan(catalog, host, "nightly", None, None)
    cost = costs({})
    shards = cut(plan.cells, 4, cost)
    ids = sorted(p.cell.id for shard in shards for p in shard)
    assert ids == sorted(p.cell.id for p in plan.cells)  # each cell in exactly one shard
    # The same cut whatever order the plan came in: every shard computes it alike.
    again = cut(tuple(reversed(plan.cells)), 4, cost)
    assert [{p.cell.id for p in s} for s in again] == [{p.cell.id for p in s} for s in shards]
    assert spread([load_of(shard, cost) for shard in shards]) <= 0.15


def test_inside_a_run_the_longest_cells_start_first(
    tiny: Image, harness: Harness, tmp_path: Path
) -> None:
    matrix = tmp_path / "matrix.yaml"
    matrix.write_text(MATRIX.replace("[virt, virt-7.1]", "virt"))
    run = planted_run(tmp_path / "before", {A: 3.0, B: 40.0})
    proc = subprocess.run(
        [sys.executable, "-m", "harness.cli", "matrix", "--matrix", str(matrix), "--profile", "four",
         "-j", "1", "--durations", str(run), "--results", str(tmp_path / "r")],
        capture_output=True, text=True, cwd=ROOT, timeout=300, check=False,
        env={**os.environ, "HARNESS_HISTORY": str(tmp_path / "h.sqlite")},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = (tmp_path / "r" / "latest" / "results.jsonl").read_text().splitlines()
    assert [json.loads(line)["cell"] for line in lines] == [B, A]  # the plan's order is A, B


def test_an_unreadable_history_is_said_and_the_cut_estimated(
    harness: Harness, tmp_path: Path
) -> None:
    matrix = tmp_path / "matrix.yaml"
    matrix.write_text(MATRIX)
    corrupt = tmp_path / "h.sqlite"
    corrupt.write_bytes(b"not a database at all" * 100)
    proc = harness("list", "--matrix", str(matrix), "--profile", "four", "--shard", "1/2",
                   "--db", str(corrupt))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert str(corrupt) in line and line.endswith("; estimating instead")
    assert proc.stdout.splitlines()[:3] == ["shard 1/2: about 10 s of boots", A, C]
    assert corrupt.read_bytes() == b"not a database at all" * 100
