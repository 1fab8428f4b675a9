"""bench.py's `nightly` section: the nightly profile's wall time, before and after.

The whole nightly takes hours here; this boots a fixed, deterministic sample of it:
its tiny-guest cells on firmware none, aavmf and uboot (every QEMU build made here),
cut as `--shard K/N` cuts a plan (by estimates, a `virt` cell with its versioned
twin) and the K-th slice taken. The same cells are booted by the harness at an
earlier git revision (checked out with `git worktree add` into a temporary
directory) and by this tree, each with its own images cache (`private_cache`: the
shared one's QEMU builds, firmware and package caches, and its own builds of the
sample's images, made as its recipes say before anything is timed), with the same
-j, each from its start to its exit, in rounds of alternating order (ABBA: round 0 before then after, round 1 after then before, ...),
so a load that rises or falls during the run favours neither. Every cell's verdict
(outcome, stage, reason) is compared: any that differs is reported.
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


def tree_env(tree: Path, cache: Path, results: Path | None = None) -> dict[str, str]:
    """The environment the harness of `tree` runs in: its own code, images cache
    `cache`, and (given `results`) a history there, none of the caller's HARNESS_*."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HARNESS_")}
    env.update(PYTHONPATH=str(tree), HARNESS_CACHE=str(cache))
    if results is not None:
        env["HARNESS_HISTORY"] = str(results / "history.sqlite")
    return env


def private_cache(shared: Path, into: Path) -> Path:
    """An images cache for one tree at `into`: every entry of `shared` linked (QEMU
    builds, firmware, the package caches) but built/, which starts empty. An image's
    `current` build is one per cache (harness/images/store.py): two trees whose
    recipes differ, sharing it, switch each other's images (or, --offline, skip
    them) mid-run; each builds its own here, untimed (`prepare`)."""
    into.mkdir(parents=True)
    for entry in shared.resolve().iterdir():
        if entry.name != "built":
            (into / entry.name).symlink_to(entry)
    (into / "built").mkdir()
    return into


def prepare(tree: Path, cache: Path, images: Sequence[str]) -> float:
    """`harness images build IMAGES` of `tree` into `cache`, before anything is timed;
    its seconds. Exits naming the tree when it fails."""
    argv = [sys.executable, "-m", "harness.cli", "images", "build", *sorted(set(images))]
    started = time.monotonic()
    proc = subprocess.run(argv, cwd=tree, env=tree_env(tree, cache), capture_output=True,
                          text=True, check=False)  # fmt: skip
    if proc.returncode != 0:
        raise SystemExit(
            f"bench: {tree}: images build: exit {proc.returncode}\n{proc.stderr[-2000:]}"
        )
    return time.monotonic() - started


def boot_all(
    tree: Path, cache: Path, matrix: Path, results: Path, jobs: int, extra: Sequence[str] = ()
) -> dict[str, Any]:
    """`harness matrix` of `tree` over PROFILE with images cache `cache` (and `extra`
    arguments, e.g. --shard): its seconds from start to exit, exit status, verdicts,
    boots (cell directories), the machine's 1-minute load average at its start and
    end, and how many images it built first (a build inflates its seconds). Exits
    naming the tree when the matrix exits other than 0 or 1."""
    argv = [sys.executable, "-m", "harness.cli", "matrix", "--matrix", str(matrix), "--profile",
            PROFILE, "-j", str(jobs), "--results", str(results), "--offline", *extra]  # fmt: skip
    load = os.getloadavg()[0]
    started = time.monotonic()
    proc = subprocess.run(argv, cwd=tree, env=tree_env(tree, cache, results), capture_output=True,
                          text=True, check=False)  # fmt: skip
    seconds = time.monotonic() - started
    if proc.returncode not in (0, 1):
        raise SystemExit(f"bench nightly: {tree}: exit {proc.returncode}\n{proc.stderr[-2000:]}")
    run = (results / "latest").resolve()
    # An image built during the run (harness/catalog.py says "NAME: built in ...")
    # times a build, not boots.
    built = (proc.stdout + proc.stderr).count(": built in ")
    return {"seconds": seconds, "exit": proc.returncode, "verdicts": verdicts(run),
            "boots": len(list((run / "cells").iterdir())), "run": str(run), "images_built": built,
            "load_before": load, "load_after": os.getloadavg()[0]}  # fmt: skip


def order(round_: int) -> tuple[str, str]:
    """Which harness boots first in round `round_` (0-based): before first in even
    rounds, after first in odd ones, so two rounds are ABBA."""
    return ("after", "before") if round_ % 2 else ("before", "after")


def summary(runs: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """Median and mean seconds of the runs whose "harness" is "before" and of those
    whose "harness" is "after" (each run a mapping with "harness" and "seconds"), and
    how much less "after" takes by each, in percent."""
    import statistics

    figures: dict[str, float] = {}
    for name in ("before", "after"):
        times = [float(run["seconds"]) for run in runs if run["harness"] == name]
        figures[f"{name}_s"] = statistics.median(times)
        figures[f"{name}_mean_s"] = statistics.mean(times)
    figures["saving_pct"] = 100 * (1 - figures["after_s"] / figures["before_s"])
    figures["mean_saving_pct"] = 100 * (1 - figures["after_mean_s"] / figures["before_mean_s"])
    return figures


def load_plan_of(profile: str, matrix: Path | None = None) -> Any:
    """The plan of `profile` (in `matrix`, else this checkout's matrix.yaml) as
    `harness matrix` expands it here: the checkout is ROOT whatever the cwd."""
    from harness.catalog import Catalog, Workspace
    from harness.commands.common import load_plan
    from harness.host import discover

    env = {**os.environ, "HARNESS_ROOT": os.environ.get("HARNESS_ROOT", str(ROOT))}
    catalog = Catalog(Workspace.locate(env), env, lambda _: None)
    return load_plan(catalog, discover(None, env), profile, matrix, None)


def sample_of(part: str) -> list[Any]:
    """The cells (Planned) of the nightly sample `part` ("K/N"); a bad `part` is one
    line on stderr and exit 2."""
    from harness.errors import UsageError
    from harness.matrix.shard import parse_shard

    try:
        k, n = parse_shard(part)
    except UsageError as e:  # it names --shard, the option that cuts the sample alike
        print(f"bench: --nightly-sample {part}: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    plan = load_plan_of("nightly")
    return sample(plan.cells, plan.virt_aliases, k, n)


def nightly(
    revision: str = BEFORE, part: str = "1/12", jobs: int = 2, rounds: int = 2
) -> dict[str, Any]:
    """The sample `part` ("K/N") of the nightly booted by the harness at `revision`
    and by this tree, `rounds` rounds in alternating order (`order`); each run's
    seconds, boots and load average, the median and mean of each side, the saving,
    and every verdict that differs from the first run at `revision`."""
    cells = sample_of(part)
    runs: list[dict[str, Any]] = []  # in the order they ran
    with (
        tempfile.TemporaryDirectory(prefix="bench-nightly-runs-") as tmp,
        checkout(revision) as before_tree,
    ):
        matrix = Path(tmp) / "matrix.yaml"
        matrix.write_text(matrix_text(yaml.safe_load((ROOT / "matrix.yaml").read_text()), cells))
        trees = {"before": before_tree, "after": ROOT}
        caches = {name: private_cache(ROOT / "images" / "cache", Path(tmp) / f"cache-{name}")
                  for name in trees}  # fmt: skip
        images = [p.cell.image for p in cells]
        prepared = {name: prepare(trees[name], caches[name], images) for name in trees}
        for r in range(rounds):
            for name in order(r):
                run = boot_all(trees[name], caches[name], matrix, Path(tmp) / f"{name}-{r}", jobs)
                runs.append({"harness": name, "round": r, **run})
    reference = next(run for run in runs if run["harness"] == "before")["verdicts"]
    differ = sorted({d for run in runs for d in differences(reference, run["verdicts"])})
    return {
        "revision": revision, "sample": part, "cells": len(cells), "jobs": jobs,
        "rounds": rounds, **summary(runs), "images_build_s": prepared,
        "runs": [{key: v for key, v in run.items() if key not in ("verdicts", "run")}
                 for run in runs],
        "differ": differ,
    }  # fmt: skip


def less(saving_pct: float) -> str:
    """A saving in percent as words: "28% less", or "3% more" when negative."""
    return f"{saving_pct:.0f}% less" if saving_pct >= 0 else f"{-saving_pct:.0f}% more"


def lines(figures: Mapping[str, Any]) -> list[str]:
    """The nightly section as text: one line per run in the order they ran, then the
    medians and means against the goal, then each verdict that differs."""
    built = ", ".join(
        f"{name} {seconds:.0f} s" for name, seconds in figures["images_build_s"].items()
    )
    out = [f"sample images       built into each harness's own cache, untimed: {built}"]
    out += [f"nightly run         round {run['round']} {run['harness']:<6} {run['seconds']:6.1f} s, "
           f"{run['boots']} boots, load average {run['load_before']:.1f} -> {run['load_after']:.1f}"
           + (f"; BUILT {run['images_built']} images first: not comparable" if run["images_built"] else "")
           for run in figures["runs"]]  # fmt: skip
    out.append(
        f"nightly sample      {figures['cells']} cells ({figures['sample']}), -j {figures['jobs']}, "
        f"{figures['rounds']} rounds alternating: median {figures['after_s']:.0f} s vs "
        f"{figures['before_s']:.0f} s at {figures['revision']} ({less(figures['saving_pct'])}), "
        f"mean {figures['after_mean_s']:.0f} s vs {figures['before_mean_s']:.0f} s "
        f"({less(figures['mean_saving_pct'])}); {len(figures['differ'])} verdicts differ"
        "   goal >=25% less, 0 differ"
    )
    out.extend(f"  differs: {d}" for d in figures["differ"])
    return out
