#!/usr/bin/env python3
"""Measures the harness against its goals, side by side in one run (not timed tests):

  overhead      `harness run CELL` from its start to its exit vs the same QEMU argv
                run by hand (cmdline.sh) to its "login: ", alternating, median of 5
                (--overhead-only)                                          goal <=+0.8 s
  after prompt  in the same rounds, a third run showing the console: its "login: " to
                its exit, its result.json's prompt to verdict (duration_s less
                stage_times' login) and the device checks' share (guest works_s)
                                                                           goal <0.6 s idle
  parallel      the same cells with -j 2 against -j 1                      goal >=90% efficiency
  fail->verdict from the failure line on the console to the FAIL line      goal <=2 s
  startup       harness --help                                             goal <0.5 s
  flood         the runner's memory while a console prints 100 MB          goal <100 MiB
  warm cache    bytes received and images rebuilt by a second build        goal 0
  shards        the nightly profile cut into --shards N (4) shards: the slowest
                shard's time above the mean, by recorded durations (--durations RUN
                or the history) where known, else estimates; computed, not booted
                (--shards-only; bench/shards.py)                             goal <=15%
  shards booted the nightly sample (--nightly-sample, as below) booted whole once to
                record its cells' durations (or --durations RUN / --db PATH), then
                cut into N shards by `harness matrix --shard K/N --durations RUN`
                itself, each booted in turn at -j: each shard's wall time, the
                slowest above the mean, beside the same cut's predicted spread
                (--shards-boot; bench/shards.py)                             goal <=15%
  nightly       a fixed sample of the nightly profile (--nightly-sample K/N of its
                tiny-guest cells on none/aavmf/uboot) booted by the harness at
                --revision (a temporary git worktree) and by this tree, in
                --nightly-rounds rounds of alternating order (ABBA...): each run's
                wall time, boots and load average, medians and means, and every
                verdict that differs (bench/nightly.py)
                                                        goal >=25% less, 0 differ

Run it on an idle machine: `make bench` (or bench/bench.py [--quick]).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import nightly  # bench/nightly.py, beside this script
import pexpect
import shards  # bench/shards.py
from overhead import CELL, HARNESS, overhead, overhead_lines

ROOT = Path(__file__).resolve().parent.parent
FAILING = "debian-12-tiny-mmio-only/none/virt/pci"
PARALLEL_CELLS = "debian-12-tiny/none/ and (virt-2.6/ or virt-4.2/ or virt-6.2/ or virt/)"


def matrix_seconds(jobs: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        started = time.monotonic()
        subprocess.run(
            [*HARNESS, "matrix", "--profile", "nightly", "-k", PARALLEL_CELLS, "-j", str(jobs),
             "--results", tmp],
            cwd=ROOT, check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        return time.monotonic() - started


def parallel() -> dict[str, float]:
    one, two = matrix_seconds(1), matrix_seconds(2)
    return {"j1_s": one, "j2_s": two, "efficiency_pct": 100 * one / (2 * two)}


def fail_to_verdict(rounds: int) -> dict[str, float]:
    gaps = []
    for _ in range(rounds):
        child = pexpect.spawn(
            HARNESS[0],
            [*HARNESS[1:], "run", FAILING, "--out", tempfile.mkdtemp()],
            cwd=str(ROOT),
            timeout=120,
        )
        try:
            child.expect("Gave up waiting for root file system device")
            seen = time.monotonic()
            child.expect(r"\nFAIL \S+ initramfs root-not-found")
            gaps.append(time.monotonic() - seen)
        finally:
            child.close(force=True)
    return {"median_s": statistics.median(gaps), "max_s": max(gaps)}


def startup(rounds: int = 10) -> dict[str, float]:
    times = []
    for _ in range(rounds):
        started = time.monotonic()
        subprocess.run(
            [str(ROOT / ".venv/bin/harness"), "--help"], stdout=subprocess.DEVNULL, check=True
        )
        times.append(time.monotonic() - started)
    return {"median_s": statistics.median(times)}


def received_bytes() -> int:
    total = 0
    for line in Path("/proc/net/dev").read_text().splitlines()[2:]:
        name, fields = line.split(":", 1)
        if name.strip() != "lo":
            total += int(fields.split()[0])
    return total


def warm_cache() -> dict[str, float]:
    subprocess.run([*HARNESS, "images", "build"], cwd=ROOT, check=True, capture_output=True)
    before = received_bytes()
    proc = subprocess.run(
        [*HARNESS, "images", "build"], cwd=ROOT, check=True, capture_output=True, text=True
    )
    rebuilt = sum(1 for line in proc.stdout.splitlines() if ": built in " in line)
    check_bytes = received_bytes() - before
    with tempfile.TemporaryDirectory() as tmp:
        before = received_bytes()
        subprocess.run(
            [*HARNESS, "matrix", "--profile", "smoke", "-k", "tiny/none/virt/pci", "--results", tmp],
            cwd=ROOT, check=True, capture_output=True,
        )  # fmt: skip
        run_bytes = received_bytes() - before
    return {
        "images_rebuilt": rebuilt,
        "build_check_bytes": check_bytes,
        "matrix_run_bytes": run_bytes,
    }


FAKE_QEMU = """#!/bin/sh
# QEMU's answers about itself are the real ones; the "guest" floods the console.
case "$1" in --version|-machine|-device|-L) exec qemu-system-aarch64 "$@";; esac
yes 'flood: the quick brown fox jumps over the lazy dog 0123456789 abcdefghijklmnop' | head -c {size}
echo 'Kernel panic - not syncing: the flood is over'
sleep 30
"""


def peak_rss(argv: list[str]) -> tuple[float, float]:
    """(peak resident MiB of the harness process itself, seconds) for one command."""
    started = time.monotonic()
    child = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peak = 0
    while child.poll() is None:
        try:
            status = Path(f"/proc/{child.pid}/status").read_text()
            peak = max(peak, int(status.split("VmRSS:")[1].split()[0]))
        except (OSError, IndexError):
            pass
        time.sleep(0.05)
    return peak / 1024, time.monotonic() - started


def flood(size_mb: int = 100) -> dict[str, float]:
    """A console of `size_mb` MB through the whole runner: QEMU is a script that prints
    it as fast as the pipe takes (a real guest's PL011 manages ~150 KB/s under TCG)."""
    with tempfile.TemporaryDirectory() as tmp:
        fake = Path(tmp) / "qemu-system-aarch64"
        fake.write_text(FAKE_QEMU.replace("{size}", str(size_mb << 20)))
        fake.chmod(0o755)
        rss, seconds = peak_rss([*HARNESS, "run", CELL, "--qemu", str(fake), "--quiet", "--out", f"{tmp}/out",
                                 "--log-cap", str(1 << 20), "--timeout", "600"])  # fmt: skip
        log = Path(tmp) / "out" / "console.log"
        capped = log.read_bytes().endswith(b"capped at 1048576 bytes]\n")
        return {
            "mb": size_mb,
            "peak_rss_mib": rss,
            "seconds": seconds,
            "mb_per_s": size_mb / seconds,
            "capped": capped,
        }


def stop_on_signal(signum: int) -> dict[str, float]:
    """Seconds from a signal to a running matrix to its exit, every QEMU reaped."""

    with tempfile.TemporaryDirectory() as tmp:
        child = subprocess.Popen(
            [*HARNESS, "matrix", "--profile", "smoke", "-k", "aavmf", "-j", "2", "--results", tmp],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip

        def qemus() -> list[str]:
            found = subprocess.run(
                ["pgrep", "-f", f"qemu-system-aarch64.*{tmp}"], capture_output=True, text=True
            )
            return found.stdout.split()

        while len(qemus()) < 2:
            time.sleep(0.1)
        time.sleep(2)
        started = time.monotonic()
        os.kill(child.pid, signum)
        child.wait(timeout=30)
        exited = time.monotonic() - started
        left = len(qemus())
        return {"seconds": exited, "exit": child.returncode, "qemu_left": left}


def at_least_one(text: str) -> int:
    """A count option's value: a whole number >= 1 (argparse says which option)."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: a whole number, at least 1")
    return int(text)


def arguments() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    only = parser.add_mutually_exclusive_group()
    only.add_argument("--overhead-only", action="store_true",
                      help="only the overhead: `harness run` to its exit vs cmdline.sh to "
                           "`login: `, alternating, median of 5, with the time after the prompt "
                           "and the device checks' share (goal <=+0.8 s)")  # fmt: skip
    only.add_argument("--shards-only", action="store_true",
                      help="only the predicted shard spread of the whole nightly profile, from "
                           "recorded or estimated durations; boots nothing (goal <=15%%)")  # fmt: skip
    only.add_argument("--shards-boot", action="store_true",
                      help="only the booted shards: the nightly sample booted whole once, then "
                           "in --shards shards by `harness matrix --shard K/N`, one after the "
                           "other; each shard's wall time, the measured and predicted spread "
                           "(goal <=15%%)")  # fmt: skip
    only.add_argument("--nightly-only", action="store_true",
                      help="only the nightly sample booted at --revision and by this tree, "
                           "--nightly-rounds rounds alternating (goal >=25%% less, 0 differ)")  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="one round each")
    parser.add_argument("--shards", type=at_least_one, default=4, metavar="N",
                        help="shards to cut (--shards-only, --shards-boot; default 4)")  # fmt: skip
    parser.add_argument("--durations", type=Path, metavar="RUN",
                        help="cut shards by the durations of RUN (a run or its results.json); "
                             "--shards-boot then boots no whole run first")  # fmt: skip
    parser.add_argument("--db", type=Path, metavar="PATH",
                        help="cut shards by this history's durations (as `harness matrix --db`); "
                             "--shards-boot then boots no whole run first")  # fmt: skip
    parser.add_argument(
        "--revision", default=nightly.BEFORE, help="the harness to compare the nightly with"
    )
    parser.add_argument("--nightly-sample", default="1/12", metavar="K/N",
                        help="the slice of the nightly's tiny-guest cells booted by "
                             "--nightly-only and --shards-boot (default 1/12)")  # fmt: skip
    parser.add_argument("-j", "--jobs", type=at_least_one, default=2,
                        help="-j of the nightly sample and of each shard (default 2)")  # fmt: skip
    parser.add_argument(
        "--nightly-rounds",
        type=at_least_one,
        default=2,
        help="rounds of one run each, the order alternating (ABBA...; default 2)",
    )
    return parser


def main() -> None:
    options = arguments().parse_args()
    rounds = 1 if options.quick else 3
    import signal

    if options.overhead_only:
        o = overhead(5 if rounds > 1 else 1)
        print(json.dumps(o, indent=2))
        print("\n".join(overhead_lines(o)))
        return
    if options.nightly_only:
        figures = nightly.nightly(
            options.revision, options.nightly_sample, options.jobs, options.nightly_rounds
        )
        print(json.dumps(figures, indent=2))
        print("\n".join(nightly.lines(figures)))
        return
    if options.shards_boot:
        booted = shards.booted(options.nightly_sample, options.shards, options.jobs,
                               options.durations, options.db)  # fmt: skip
        print(json.dumps(booted, indent=2))
        print("\n".join(shards.booted_lines(booted)))
        return
    if not options.shards_only:  # a bad sample is said now, not after an hour of boots
        shards.sample_for(options.nightly_sample, options.shards)
    sh = shards.predicted(options.shards, options.durations, options.db)
    if options.shards_only:
        print(json.dumps(sh, indent=2))
        print(shards.predicted_line(sh, options.shards))
        return
    figures = {
        "sigint": stop_on_signal(signal.SIGINT),
        "sigterm": stop_on_signal(signal.SIGTERM),
        "flood": flood(),
        "startup": startup(),
        "warm_cache": warm_cache(),
        "fail_to_verdict": fail_to_verdict(rounds),
        "overhead": overhead(5 if rounds > 1 else 1),
        "parallel": parallel(),
        "shards": sh,
        "shards_booted": shards.booted(options.nightly_sample, options.shards, options.jobs,
                                       options.durations, options.db),
        "nightly": nightly.nightly(
            options.revision, options.nightly_sample, options.jobs, options.nightly_rounds
        ),
    }  # fmt: skip
    print(json.dumps(figures, indent=2))
    o, p, f, s = (
        figures["overhead"],
        figures["parallel"],
        figures["fail_to_verdict"],
        figures["startup"],
    )
    print("\n".join(overhead_lines(o)))
    print(
        f"-j 2 efficiency     {p['efficiency_pct']:.0f}% [-j1 {p['j1_s']:.1f} s, -j2 {p['j2_s']:.1f} s]   goal >=90%"
    )
    print(f"fail line->verdict  {f['median_s']:.2f} s median, {f['max_s']:.2f} s max   goal <=2 s")
    print(f"harness --help      {s['median_s']:.3f} s   goal <0.5 s")
    for name in ("sigint", "sigterm"):
        sig = figures[name]
        print(f"{name:<19} matrix stopped in {sig['seconds']:.2f} s, exit {sig['exit']}, "
              f"{sig['qemu_left']} QEMU left   goal <5 s, 0 left")  # fmt: skip
    fl = figures["flood"]
    print(f"100 MB console      runner peak RSS {fl['peak_rss_mib']:.0f} MiB, {fl['mb_per_s']:.1f} MB/s judged, "
          f"log capped: {fl['capped']}   goal <100 MiB")  # fmt: skip
    w = figures["warm_cache"]
    print(f"warm cache          {w['matrix_run_bytes']} bytes received by a matrix run, "
          f"{w['images_rebuilt']} images rebuilt by `images build` ({w['build_check_bytes']} bytes: "
          "apt revalidating its indexes)   goal 0")  # fmt: skip
    print(shards.predicted_line(sh, options.shards))
    print("\n".join(shards.booted_lines(figures["shards_booted"])))
    print("\n".join(nightly.lines(figures["nightly"])))


if __name__ == "__main__":
    main()
