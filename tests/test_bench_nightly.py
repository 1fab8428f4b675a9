"""bench/nightly.py's pure parts: the sample of the nightly is fixed and both
revisions read it as the same cells; a verdict that differs is reported."""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest
import yaml
from conftest import ROOT, Harness

from harness.catalog import Catalog
from harness.commands.common import load_plan
from harness.host import Host


def bench_nightly() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_nightly", ROOT / "bench" / "nightly.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_the_sample_is_fixed_and_listed_as_the_same_cells(
    catalog: Catalog, host: Host, harness: Harness, tmp_path: Path
) -> None:
    nightly = bench_nightly()
    plan = load_plan(catalog, host, "nightly", None, None)
    cells = nightly.sample(plan.cells, plan.virt_aliases, 1, 12)
    again = nightly.sample(tuple(reversed(plan.cells)), plan.virt_aliases, 1, 12)
    assert {p.cell.id for p in again} == {p.cell.id for p in cells}
    assert 20 <= len(cells) <= 100
    assert {p.cell.firmware for p in cells} <= {"none", "aavmf", "uboot"}
    matrix = tmp_path / "matrix.yaml"
    matrix.write_text(
        nightly.matrix_text(yaml.safe_load((ROOT / "matrix.yaml").read_text()), cells)
    )
    proc = harness("list", "--matrix", str(matrix), "--profile", nightly.PROFILE)
    assert proc.returncode == 0, proc.stderr
    listed = [line.split()[0] for line in proc.stdout.splitlines()[:-1]]
    assert listed == [p.cell.id for p in cells]
    # the expectations came along: the mmio-only guest on PCI is still expected to fail
    expected = {p.cell.id for p in cells if p.expect}
    assert expected == {
        line.split()[0] for line in proc.stdout.splitlines() if "expected to fail" in line
    }


def test_every_differing_verdict_is_reported() -> None:
    nightly = bench_nightly()
    before = {"a": ("pass", "login", "login"), "b": ("xfail", "initramfs", "root-not-found"),
              "c": ("pass", "login", "login")}  # fmt: skip
    after = {"a": ("pass", "login", "login"), "b": ("fail", "kernel", "timeout")}
    assert nightly.differences(before, after) == [
        "b: xfail initramfs root-not-found -> fail kernel timeout",
        "c: pass login login -> no result",
    ]
    assert nightly.differences(before, before) == []


def test_rounds_alternate_which_harness_boots_first() -> None:
    nightly = bench_nightly()
    assert [nightly.order(r) for r in range(4)] == [
        ("before", "after"),
        ("after", "before"),
        ("before", "after"),
        ("after", "before"),
    ]


def test_the_summary_gives_medians_means_and_the_saving_of_each() -> None:
    nightly = bench_nightly()
    runs = [{"harness": "before", "seconds": 100.0}, {"harness": "after", "seconds": 60.0},
            {"harness": "after", "seconds": 90.0}, {"harness": "before", "seconds": 140.0},
            {"harness": "before", "seconds": 300.0}, {"harness": "after", "seconds": 75.0}]  # fmt: skip
    figures = nightly.summary(runs)
    assert figures["before_s"] == 140.0 and figures["after_s"] == 75.0
    assert figures["before_mean_s"] == 180.0 and figures["after_mean_s"] == 75.0
    assert round(figures["saving_pct"], 6) == round(100 * (1 - 75 / 140), 6)
    assert round(figures["mean_saving_pct"], 6) == round(100 * (1 - 75 / 180), 6)
    assert nightly.less(28.4) == "28% less" and nightly.less(-2.96) == "3% more"


def test_the_booted_shards_are_predicted_as_harness_matrix_cuts_them(
    harness: Harness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """bench --shards-boot boots `harness matrix --shard K/N --durations RUN` and
    predicts each shard's cells and seconds in-process: both must be the CLI's cut."""
    monkeypatch.syspath_prepend(str(ROOT / "bench"))  # shards.py imports nightly beside it
    shards = importlib.import_module("shards")
    nightly = importlib.import_module("nightly")
    cells = nightly.sample_of("1/24")
    matrix = tmp_path / "matrix.yaml"
    matrix.write_text(
        nightly.matrix_text(yaml.safe_load((ROOT / "matrix.yaml").read_text()), cells)
    )
    run = tmp_path / "run"
    run.mkdir()
    meta = {"run": "20261201T011700Z-x", "started_at": "20261201T011700Z",
            "profile": nightly.PROFILE, "cells": [p.cell.id for p in cells]}  # fmt: skip
    (run / "run.json").write_text(json.dumps(meta))
    # uneven recorded seconds, so the cut by durations is not the cut by estimates
    records = [
        {"cell": p.cell.id, "image": p.cell.image, "firmware": p.cell.firmware,
         "machine": p.cell.machine, "transport": p.cell.transport, "qemu_build": p.cell.qemu,
         "outcome": "pass", "status": "pass", "stage": "login", "reason": "login",
         "duration_s": 3.0 + (7 * i) % 29, "stage_times": {"login": 2.0}, "repeat": 0}
        for i, p in enumerate(cells)
    ]  # fmt: skip
    (run / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    predicted = shards.predicted_cut(matrix, 3, run, None)
    for k, (ids, seconds) in enumerate(predicted, start=1):
        proc = harness("list", "--matrix", str(matrix), "--profile", nightly.PROFILE,
                       "--shard", f"{k}/3", "--durations", str(run))  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        lines = proc.stdout.splitlines()
        assert lines[0] == f"shard {k}/3: about {seconds:.0f} s of boots"
        assert [line.split()[0] for line in lines[1:-1]] == ids
    measured = shards.spread_of([10.0, 12.0, 14.0])
    assert measured == {"mean_s": 12.0, "slowest_s": 14.0, "spread_pct": 100 * (14 / 12 - 1)}


def test_the_overhead_reads_the_time_after_the_prompt_from_result_json(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    overhead = importlib.import_module("overhead")
    result = {"duration_s": 7.25, "stage_times": {"kernel": 0.5, "login": 6.0},
              "guest": {"works_s": 0.31}}  # fmt: skip
    assert overhead.after_prompt(result) == {"prompt_to_verdict_s": 1.25, "device_checks_s": 0.31}
    round_ = {"by_hand_s": 5.0, "harness_s": 5.5, "to_prompt_s": 4.9, "prompt_to_exit_s": 1.0,
              "prompt_to_verdict_s": 0.8, "device_checks_s": 0.25, "rebuilt": 0.0}  # fmt: skip
    figures = {"overhead_s": 0.5, "harness_s": 5.5, "by_hand_s": 5.0, "to_prompt_overhead_s": -0.1,
               "prompt_to_exit_s": 1.0, "prompt_to_verdict_s": 0.8, "device_checks_s": 0.25,
               "device_checks_pct": 25.0, "rounds": [round_, {**round_, "rebuilt": 1.0}],
               "rounds_rebuilt": 1.0, "rounds_counted": 1}  # fmt: skip
    lines = overhead.overhead_lines(figures)
    assert lines[0].startswith("overhead per cell   +0.50 s") and "median of 1" in lines[0]
    assert "device checks 0.25 s in the guest, 25% of it" in lines[1]
    assert lines[2].startswith("  1 of 2 rounds built an image first") and "left out" in lines[2]


def test_each_harness_gets_its_own_builds_and_shares_the_rest_of_the_cache(
    tmp_path: Path,
) -> None:
    """Two trees whose image recipes differ must not switch each other's `current`
    build mid-run (or, --offline, find it changed and skip the cells)."""
    nightly = bench_nightly()
    shared = tmp_path / "shared"
    for entry in ("built/debian-12-tiny/abc", "qemu/trixie", "firmware/uboot", "apt"):
        (shared / entry).mkdir(parents=True)
    (shared / "qemu-facts.json").write_text("{}")
    (shared / "built/debian-12-tiny/current").symlink_to("abc")
    mine = nightly.private_cache(shared, tmp_path / "mine")
    assert sorted(p.name for p in mine.iterdir()) == [
        "apt", "built", "firmware", "qemu", "qemu-facts.json"
    ]  # fmt: skip
    assert (mine / "qemu").resolve() == (shared / "qemu").resolve()
    assert (mine / "qemu-facts.json").read_text() == "{}"
    assert not (mine / "built").is_symlink() and list((mine / "built").iterdir()) == []
    env = nightly.tree_env(tmp_path / "tree", mine, tmp_path / "runs")
    assert env["HARNESS_CACHE"] == str(mine) and env["PYTHONPATH"] == str(tmp_path / "tree")
    assert env["HARNESS_HISTORY"] == str(tmp_path / "runs" / "history.sqlite")
