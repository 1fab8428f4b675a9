"""bench.py's `nightly` section: the nightly profile's wall time, before and after.

The whole nightly takes hours here; this boots a fixed, deterministic sample of it:
its tiny-guest cells on firmware none, aavmf and uboot (every QEMU build made here),
cut as `--shard K/N` cuts a plan (by estimates, a `virt` cell with its versioned
twin) and the K-th slice taken. The same cells are booted by the harness at an
earlier git revision (checked out with `git worktree add` into a temporary
directory, its images/cache a symlink to this checkout's, so nothing is rebuilt)
and by this tree, one after the other with the same -j, each from its start to its
exit. Every cell's verdict (outcome, stage, reason) is compared: any that differs
is reported.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
BEFORE = "51e3605"  # where the scheduling work of issue 15 started
FIRMWARE = ("none", "aavmf", "uboot")
PROFILE = "bench-nightly"
Verdict = tuple[str, str, str]  # outcome, stage, reason


def sample(cells: Sequence[Any], aliases: Mapping[str, str], k: int, n: int) -> list[Any]:
    """The K-th of N slices of the runnable tiny-guest cells of `cells` (Planned) on
    FIRMWARE, cut as harness.matrix.shard cuts a plan by estimates."""
    from harness.matrix.sameboot import same_boots
    from harness.matrix.shard import costs, cut

    tiny = [
        p for p in cells
        if not p.skip and "-tiny" in p.cell.image and p.cell.firmware in FIRMWARE
    ]  # fmt: skip
    return cut(tiny, n, costs({}), same_boots(tiny, aliases))[k - 1]


def matrix_text(matrix: Mapping[str, Any], cells: Sequence[Any]) -> str:
    """matrix.yaml's defaults, images and expectations, with one profile PROFILE
    of exactly `cells`: a file both revisions read alike."""
    axes = [
        {"image": c.image, "firmware": c.firmware, "machine": c.machine,
         "transport": c.transport, "qemu": c.qemu}
        for c in (p.cell for p in cells)
    ]  # fmt: skip
    document = {key: matrix[key] for key in ("defaults", "images", "expect") if key in matrix}
    document["profiles"] = {PROFILE: {"matrix": axes[0], "include": axes[1:]}}
    return yaml.safe_dump(document, sort_keys=False)


def verdicts(run: Path) -> dict[str, Verdict]:
    """Cell id -> (outcome, stage, reason), from the run's results.json."""
    document = json.loads((run / "results.json").read_text())
    return {c["cell"]: (c["outcome"], c["stage"], c["reason"]) for c in document["cells"]}


def differences(before: Mapping[str, Verdict], after: Mapping[str, Verdict]) -> list[str]:
    """One line per cell whose verdict differs, or that only one run has."""
    lines = []
    for cell in sorted(set(before) | set(after)):
        old, new = before.get(cell), after.get(cell)
        if old != new:
            show = lambda v: " ".join(v) if v else "no result"  # noqa: E731
            lines.append(f"{cell}: {show(old)} -> {show(new)}")
    return lines


@contextmanager
def checkout(revision: str) -> Iterator[Path]:
    """The harness at `revision` in a temporary git worktree sharing images/cache."""
    with tempfile.TemporaryDirectory(prefix="bench-nightly-") as tmp:
        tree = Path(tmp) / "tree"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(tree),
                        revision], check=True)  # fmt: skip
        cache = tree / "images" / "cache"
        try:
            cache.symlink_to((ROOT / "images" / "cache").resolve())
            yield tree
        finally:
            cache.unlink(missing_ok=True)  # the link only, never the shared cache
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)],
                           check=False)  # fmt: skip


def boot_all(tree: Path, matrix: Path, results: Path, jobs: int) -> dict[str, Any]:
    """`harness matrix` of `tree` over PROFILE: its seconds from start to exit, exit
    status, verdicts and the machine's load average around it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HARNESS_")}
    env.update(PYTHONPATH=str(tree), HARNESS_HISTORY=str(results / "history.sqlite"))
    argv = [sys.executable, "-m", "harness.cli", "matrix", "--matrix", str(matrix), "--profile",
            PROFILE, "-j", str(jobs), "--results", str(results), "--offline"]  # fmt: skip
    load = os.getloadavg()[0]
    started = time.monotonic()
    proc = subprocess.run(argv, cwd=tree, env=env, capture_output=True, text=True, check=False)
    seconds = time.monotonic() - started
    if proc.returncode not in (0, 1):
        raise SystemExit(f"bench nightly: {tree}: exit {proc.returncode}\n{proc.stderr[-2000:]}")
    run = (results / "latest").resolve()
    return {"seconds": seconds, "exit": proc.returncode, "verdicts": verdicts(run),
            "boots": len(list((run / "cells").iterdir())),
            "load_before": load, "load_after": os.getloadavg()[0]}  # fmt: skip


def nightly(
    revision: str = BEFORE, part: str = "1/12", jobs: int = 2, rounds: int = 1
) -> dict[str, Any]:
    """The sample `part` ("K/N") of the nightly booted by the harness at `revision`
    and by this tree, alternating `rounds` times (a change in the machine's load hits
    both alike); median wall times, the saving and every verdict that differs from
    the first run at `revision`."""
    import statistics

    from harness.catalog import Catalog, Workspace
    from harness.commands.common import load_plan
    from harness.host import discover
    from harness.matrix.shard import parse_shard

    k, n = parse_shard(part)
    catalog = Catalog(Workspace.locate(os.environ), os.environ, lambda _: None)
    plan = load_plan(catalog, discover(None, os.environ), "nightly", None, None)
    cells = sample(plan.cells, plan.virt_aliases, k, n)
    runs: dict[str, list[dict[str, Any]]] = {"before": [], "after": []}
    with (
        tempfile.TemporaryDirectory(prefix="bench-nightly-runs-") as tmp,
        checkout(revision) as before_tree,
    ):
        matrix = Path(tmp) / "matrix.yaml"
        matrix.write_text(matrix_text(yaml.safe_load((ROOT / "matrix.yaml").read_text()), cells))
        for r in range(rounds):
            for name, tree in (("before", before_tree), ("after", ROOT)):
                runs[name].append(boot_all(tree, matrix, Path(tmp) / f"{name}-{r}", jobs))
    reference = runs["before"][0]["verdicts"]
    differ = sorted({d for run in [*runs["before"][1:], *runs["after"]]
                     for d in differences(reference, run["verdicts"])})  # fmt: skip
    before, after = (statistics.median(x["seconds"] for x in runs[name]) for name in runs)
    return {
        "revision": revision, "sample": part, "cells": len(cells), "jobs": jobs,
        "rounds": rounds, "before_s": before, "after_s": after,
        "saving_pct": 100 * (1 - after / before),
        "runs": {name: [{key: v for key, v in x.items() if key != "verdicts"} for x in runs[name]]
                 for name in runs},
        "differ": differ,
    }  # fmt: skip


def line(figures: Mapping[str, Any]) -> str:
    b, a = figures["runs"]["before"][0], figures["runs"]["after"][0]
    loads = [x["load_before"] for name in ("before", "after") for x in figures["runs"][name]]
    return (f"nightly sample      {figures['cells']} cells ({figures['sample']}), -j {figures['jobs']}, "
            f"median of {figures['rounds']}: {figures['after_s']:.0f} s ({a['boots']} boots) vs "
            f"{figures['before_s']:.0f} s ({b['boots']} boots) at {figures['revision']}: "
            f"{figures['saving_pct']:.0f}% less; load average {min(loads):.1f}-{max(loads):.1f}; "
            f"{len(figures['differ'])} verdicts differ   goal >=25% less, 0 differ")  # fmt: skip
