"""bench.py's `shards` sections: the nightly cut into N shards as `--shard K/N` cuts it.

predicted (`--shards-only`): the whole nightly profile's plan and each cell's cost
  (recorded: --durations RUN, else the history; estimated otherwise), cut as
  harness.matrix.shard cuts it; the spread of the shards' summed costs. Nothing boots.
booted (`--shards-boot`): the nightly sample (bench/nightly.py, the same cells as
  --nightly-only, its images built first into a cache of its own as nightly.py does)
  booted once whole by this tree to record its cells' durations
  (unless --durations RUN or --db PATH gives them), then each shard booted in turn by
  the real CLI, `harness matrix --shard K/N --durations RUN` (or `--db PATH`), with
  the same -j: in a nightly the shards run on separate machines at once, here one
  after the other. Each shard's wall time from start to exit, their mean and how far
  the slowest is above it, beside the same cut's predicted spread (the recorded
  durations summed per shard, as `harness list --shard K/N` says); a shard that ran
  other cells than predicted, and every verdict that differs from the whole run, are
  reported.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn

import nightly  # bench/nightly.py, beside this script
import yaml


def predicted(
    count: int = 4, durations: Path | None = None, db: Path | None = None
) -> dict[str, float]:
    """The spread of shard times on the nightly plan, cut as `--shard K/N` cuts it and
    as the old round robin did, from the plan and each cell's cost (no boot)."""
    from harness.errors import UsageError
    from harness.history.db import history_path
    from harness.matrix.sameboot import same_boots
    from harness.matrix.shard import costs, cut, load_of, recorded_durations, spread

    plan = nightly.load_plan_of("nightly")
    try:
        recorded = recorded_durations(
            durations, history_path(db, os.environ, nightly.ROOT / "results")
        )
    except UsageError as e:
        refuse(str(e))
    cost = costs(recorded)
    together = same_boots(plan.cells, plan.virt_aliases)
    balanced = [load_of(shard, cost, together) for shard in cut(plan.cells, count, cost, together)]
    round_robin = [load_of(plan.cells[k::count], cost, together) for k in range(count)]
    known = sum(1 for p in plan.cells if p.cell.id in recorded)
    return {
        "cells": len(plan.cells),
        "recorded": known,
        "mean_s": sum(balanced) / count,
        "slowest_s": max(balanced),
        "spread_pct": 100 * spread(balanced),
        "round_robin_spread_pct": 100 * spread(round_robin),
    }


def predicted_line(sh: Mapping[str, float], count: int = 4) -> str:
    return (f"nightly in {count} shards  slowest {sh['spread_pct']:.1f}% above the mean "
            f"({sh['slowest_s']:.0f} s vs {sh['mean_s']:.0f} s; {sh['recorded']:.0f} of "
            f"{sh['cells']:.0f} cells recorded, the rest estimated; round robin: "
            f"{sh['round_robin_spread_pct']:.1f}%)   goal <=15%")  # fmt: skip


def predicted_cut(
    matrix: Path, count: int, durations: Path | None, db: Path | None
) -> list[tuple[list[str], float]]:
    """Each shard of the profile nightly.PROFILE in `matrix`, as `harness matrix
    --shard K/N` with the same --durations/--db cuts it: (its cell ids in plan
    order, its summed recorded or estimated seconds of boots)."""
    from harness.commands.sharding import plan_cost
    from harness.errors import UsageError
    from harness.matrix.sameboot import same_boots
    from harness.matrix.shard import cut, load_of

    plan = nightly.load_plan_of(nightly.PROFILE, matrix)
    try:
        cost = plan_cost(durations, db, nightly.ROOT / "results", "bench")
    except UsageError as e:
        refuse(str(e))
    together = same_boots(plan.cells, plan.virt_aliases)
    return [([p.cell.id for p in shard], load_of(shard, cost, together))
            for shard in cut(plan.cells, count, cost, together)]  # fmt: skip


def spread_of(seconds: Sequence[float]) -> dict[str, float]:
    """Mean, slowest and how far the slowest is above the mean (percent) of `seconds`."""
    from harness.matrix.shard import spread

    return {"mean_s": sum(seconds) / len(seconds), "slowest_s": max(seconds),
            "spread_pct": 100 * spread(seconds)}  # fmt: skip


def refuse(problem: str) -> NoReturn:
    """The user's mistake: one line on stderr, exit 2 (the harness's usage status)."""
    print(f"bench shards: {problem}", file=sys.stderr)
    raise SystemExit(2)


def sample_for(part: str, count: int) -> list[Any]:
    """The nightly sample `part` ("K/N"), refused (exit 2) when it has fewer cells
    than `count` shards: checked before anything boots."""
    cells: list[Any] = nightly.sample_of(part)
    if len(cells) < count:
        refuse(f"--nightly-sample {part} is {len(cells)} cells, fewer than --shards {count}")
    return cells


def booted(
    part: str = "1/12",
    count: int = 4,
    jobs: int = 2,
    durations: Path | None = None,
    db: Path | None = None,
) -> dict[str, Any]:
    """The nightly sample `part` ("K/N") in `count` shards, each booted by this tree's
    `harness matrix --shard K/N` at -j `jobs`, cut by `durations` (a run or its
    results.json), else the history `db`, else the durations of a whole run of the
    sample booted first. Seconds per shard measured and predicted, with each spread."""
    cells = sample_for(part, count)
    figures: dict[str, Any] = {"sample": part, "cells": len(cells), "shards": count, "jobs": jobs}
    with tempfile.TemporaryDirectory(prefix="bench-shards-") as tmp:
        matrix = Path(tmp) / "matrix.yaml"
        matrix.write_text(
            nightly.matrix_text(yaml.safe_load((nightly.ROOT / "matrix.yaml").read_text()), cells)
        )
        cache = nightly.private_cache(nightly.ROOT / "images" / "cache", Path(tmp) / "cache")
        figures["images_build_s"] = nightly.prepare(
            nightly.ROOT, cache, [p.cell.image for p in cells]
        )
        whole: dict[str, Any] | None = None
        if durations is None and db is None:
            whole = nightly.boot_all(nightly.ROOT, cache, matrix, Path(tmp) / "whole", jobs)
            durations = Path(whole["run"])
            figures["whole_s"] = whole["seconds"]
        figures["durations"] = "the whole run" if whole else str(durations or db)
        source = ["--durations", str(durations)] if durations else ["--db", str(db)]
        cut_ = predicted_cut(matrix, count, durations, db)
        if not all(ids for ids, _ in cut_):
            refuse(
                f"a shard of {count} of --nightly-sample {part} would be empty; "
                "take a larger sample or fewer --shards"
            )
        runs = []
        for k, (ids, predicted_s) in enumerate(cut_, start=1):
            spec = f"{k}/{count}"
            run = nightly.boot_all(nightly.ROOT, cache, matrix, Path(tmp) / f"shard-{k}", jobs,
                                   ["--shard", spec, *source])  # fmt: skip
            runs.append({"shard": spec, "predicted_s": predicted_s, "cut_as_predicted":
                         sorted(run["verdicts"]) == sorted(ids), **run})  # fmt: skip
    verdicts = {cell: v for run in runs for cell, v in run["verdicts"].items()}
    reference = whole["verdicts"] if whole else verdicts
    figures.update(
        measured=spread_of([run["seconds"] for run in runs]),
        predicted=spread_of([run["predicted_s"] for run in runs]),
        runs=[{key: v for key, v in run.items() if key not in ("verdicts", "run")} for run in runs],
        differ=nightly.differences(reference, verdicts),
    )
    return figures


def booted_lines(figures: Mapping[str, Any]) -> list[str]:
    """The booted shards as text: one line per shard, then the spreads against the goal."""
    out = [
        f"sample images       built into the shards' own cache in {figures['images_build_s']:.0f} s, untimed"
    ]
    if "whole_s" in figures:
        out.append(f"sample whole        {figures['whole_s']:6.1f} s (to record its durations)")
    for run in figures["runs"]:
        cut = "" if run["cut_as_predicted"] else "; NOT the cells predicted"
        out.append(f"shard {run['shard']:<13} {run['seconds']:6.1f} s measured, "
                   f"{run['predicted_s']:6.1f} s of boots predicted, {run['boots']} boots, "
                   f"load average {run['load_before']:.1f} -> {run['load_after']:.1f}{cut}"
                   + (f"; BUILT {run['images_built']} images first" if run["images_built"] else ""))  # fmt: skip
    m, p = figures["measured"], figures["predicted"]
    out.append(
        f"shards booted       {figures['cells']} cells ({figures['sample']}) in {figures['shards']} "
        f"shards, -j {figures['jobs']}, cut by {figures['durations']}: slowest "
        f"{m['spread_pct']:.1f}% above the mean ({m['slowest_s']:.0f} s vs {m['mean_s']:.0f} s); "
        f"predicted {p['spread_pct']:.1f}% ({p['slowest_s']:.0f} s vs {p['mean_s']:.0f} s); "
        f"{len(figures['differ'])} verdicts differ from the whole run   goal <=15%"
    )
    out.extend(f"  differs: {d}" for d in figures["differ"])
    return out
