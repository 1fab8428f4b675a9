"""What a run has recorded, and what the user keeps, survive the harness itself:
--out never deletes what it did not make, a torn results.jsonl is repaired on
--resume, one run directory has one writer, a closed stdout neither stops a matrix
nor fakes its exit status. Real boots of the tiny guest (direct kernel boot)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import ROOT, Harness

from harness.model import Image

PCI, MMIO = "debian-12-tiny/none/virt/pci", "debian-12-tiny/none/virt/mmio"


def wait_for(predicate: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.1)


def start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "harness.cli", *args], cwd=ROOT, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip


def test_run_out_refuses_a_directory_it_did_not_make(harness: Harness, tmp_path: Path) -> None:
    out = tmp_path / "mine"
    (out / "work").mkdir(parents=True)
    (out / "work" / "thesis.tex").write_text("years of work\n")
    (out / "console.log").write_text("my notes\n")
    proc = harness("run", PCI, "--quiet", "--out", str(out))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.strip() == (
        f"harness run: --out {out}: not empty and not made by harness run; "
        "give an empty or new directory (nothing in it was changed)"
    )
    assert (out / "work" / "thesis.tex").read_text() == "years of work\n"
    assert (out / "console.log").read_text() == "my notes\n"
    assert sorted(p.name for p in out.iterdir()) == ["console.log", "work"]


@pytest.mark.parametrize("planted", ["console.log", "cmdline.sh", ".harness-run"])
def test_run_out_never_writes_through_a_symlink(
    planted: str, harness: Harness, tmp_path: Path
) -> None:
    """An earlier run's --out with one of its files replaced by a symlink: the next
    run once wrote the console log (or cmdline.sh) into the symlink's target, a file
    outside --out, destroying it."""
    out = tmp_path / "cell"
    out.mkdir()
    (out / ".harness-run").touch()
    victim = tmp_path / "victim.txt"
    victim.write_text("not the harness's\n")
    (out / planted).unlink(missing_ok=True)
    (out / planted).symlink_to(victim)
    proc = harness("run", MMIO, "--quiet", "--out", str(out))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.strip() == (
        f"harness run: --out {out}: {out / planted} is not a regular file harness run "
        "wrote; give another --out (nothing in it was changed)"
    )
    assert victim.read_text() == "not the harness's\n"
    assert sorted(p.name for p in out.iterdir()) == sorted({".harness-run", planted})


def test_a_second_run_keeps_what_keep_kept(tiny: Image, harness: Harness, tmp_path: Path) -> None:
    out = tmp_path / "cell"
    first = harness("run", PCI, "--quiet", "--keep", "--log-cap", "1KiB", "--out", str(out))
    assert first.returncode == 0, first.stdout + first.stderr
    kept = out / "work" / "disk.qcow2"
    assert kept.is_file()
    # kept, so QEMU was let exit cleanly (SIGTERM): the overlay it flushed is whole
    assert "terminating on signal 15" in (out / "qemu.stderr").read_text()
    check = subprocess.run(["qemu-img", "check", "-q", str(kept)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    log = (out / "console.log").read_bytes()  # --log-cap takes its help's units
    assert log.endswith(b"[harness: console log capped at 1024 bytes]\n") and len(log) < 1100
    second = harness("run", PCI, "--quiet", "--out", str(out))
    assert second.returncode == 2
    assert "holds what --keep kept from an earlier run" in second.stderr
    assert kept.is_file()
    # a run that kept nothing may be run again into its own --out
    again = tmp_path / "again"
    assert harness("run", MMIO, "--quiet", "--out", str(again)).returncode == 0
    # nothing kept: the judged guest's QEMU is killed at once, with no grace period
    assert "terminating on signal" not in (again / "qemu.stderr").read_text()
    assert harness("run", MMIO, "--quiet", "--out", str(again)).returncode == 0


def test_resume_after_a_torn_line_starts_a_fresh_line_and_reruns_the_cell(
    tiny: Image, harness: Harness, tmp_path: Path
) -> None:
    results = tmp_path / "r"
    proc = harness("matrix", "-k", f"{PCI} or {MMIO}", "-j", "2", "--results", str(results))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run = (results / "latest").resolve()
    jsonl = run / "results.jsonl"
    *before, last = jsonl.read_bytes().splitlines(keepends=True)
    torn_cell = json.loads(last)["cell"]
    jsonl.write_bytes(b"".join(before) + last[: len(last) // 2])  # as `head -c` leaves it
    proc = harness("matrix", "--resume", str(run), "-j", "2")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"{jsonl}: its last line was cut short" in proc.stderr
    lines = jsonl.read_bytes().splitlines(keepends=True)
    assert lines[: len(before)] == before and len(lines) == len(before) + 1
    assert json.loads(lines[-1])["cell"] == torn_cell  # booted again, on its own line
    assert (run / "results.jsonl.torn").read_bytes() == last[: len(last) // 2] + b"\n"


def test_one_writer_per_run_and_ctrl_c_tells_how_to_resume(
    tiny: Image, harness: Harness, tmp_path: Path
) -> None:
    results = tmp_path / "r"
    child = start("matrix", "-k", "debian-12-tiny/aavmf/virt/pci", "--results", str(results))
    try:
        wait_for(lambda: (results / "latest" / "cells").is_dir(), 60)
        run = (results / "latest").resolve()
        second = harness("matrix", "--resume", str(run), timeout=60)
        assert second.returncode == 2, second.stdout + second.stderr
        assert second.stderr.strip() == (
            f"harness matrix: {run} is being written by another harness "
            f"(pid {child.pid}); one run directory has one writer"
        )
        assert not (run / "results.jsonl").exists()  # the second booted nothing
        os.kill(child.pid, signal.SIGINT)
        _, stderr = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
    assert child.returncode == 130
    # one closing line, no blank line before it (stderr is not a terminal here)
    lines = stderr.splitlines()
    assert lines[-1] == f"harness matrix: interrupted; to finish it: harness matrix --resume {run}"
    assert "" not in lines, stderr


def test_a_closed_stdout_neither_stops_the_run_nor_fakes_success(
    mmio_only: Image, tmp_path: Path
) -> None:
    matrix = tmp_path / "m.yaml"  # mmio-only on pci fails, and no expectation says so
    matrix.write_text(
        "profiles:\n  p:\n    matrix: {image: debian-12-tiny-mmio-only, firmware: none, "
        "machine: virt, transport: [pci, mmio]}\n"
    )
    results = tmp_path / "r"
    child = start("matrix", "--matrix", str(matrix), "--profile", "p", "-j", "1",
                  "--results", str(results))  # fmt: skip
    assert child.stdout is not None and child.stderr is not None
    head = [child.stdout.readline(), child.stdout.readline()]  # `| head -2`
    child.stdout.close()
    assert head[0].startswith("run ")
    assert child.wait(timeout=240) == 1
    assert "stdout was closed; the run goes on" in child.stderr.read()
    run = (results / "latest").resolve()
    records = [json.loads(line) for line in (run / "results.jsonl").read_text().splitlines()]
    assert sorted((r["cell"], r["outcome"]) for r in records) == [
        ("debian-12-tiny-mmio-only/none/virt/mmio", "pass"),
        ("debian-12-tiny-mmio-only/none/virt/pci", "fail"),
    ]


def test_bisect_keeps_its_own_pointer_and_latest_stays_the_matrix_run(
    tiny: Image, harness: Harness, tmp_path: Path
) -> None:
    """`export ... results/latest` after a bisect must still act on the matrix run."""
    (tmp_path / "images").symlink_to(ROOT / "images")  # bisect writes to <root>/results
    (tmp_path / "matrix.yaml").symlink_to(ROOT / "matrix.yaml")
    env = {"HARNESS_ROOT": str(tmp_path)}
    results = tmp_path / "results"
    matrix = harness("matrix", "-k", PCI, "--results", str(results), env=env)
    assert matrix.returncode == 0, matrix.stdout + matrix.stderr
    run = (results / "latest").resolve()
    proc = harness("bisect", "debian-12-tiny/none/pci", "--machines", "virt-7.1..virt-7.2",
                   env=env)  # fmt: skip
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    assert (results / "latest").resolve() == run
    bisect_run = (results / "latest-bisect").resolve()
    assert bisect_run != run and bisect_run.name.endswith("-bisect")
    assert len((bisect_run / "results.jsonl").read_text().splitlines()) == 2
