"""`harness classify RUN` through the real CLI on run directories written here, as an
interrupted matrix leaves them: every planned cell is either judged again or named
with why not. Nothing boots (tests/test_rejudge.py re-judges a real run)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from conftest import FIXTURES, Harness, hand_record, hand_run

from harness.matrix.rundir import RunDir
from harness.model import Cell

FINISHED = "debian-12-tiny/none/virt/mmio"
INTERRUPTED = "debian-12-tiny/none/virt/pci"  # Ctrl-C while it booted
KILLED = "debian-12-tiny/aavmf/virt/pci"  # the harness killed while it booted
NEVER = "debian-12-tiny/aavmf/virt/mmio"  # not started yet
PASS_LOG = FIXTURES / "consoles" / "tiny-direct-mmio-pass.log"


def cell_dir(run: Path, cell: str) -> Path:
    where = RunDir(run).cell_dir(Cell.parse(cell))
    where.mkdir(parents=True)
    return where


def test_an_interrupted_run_names_every_planned_cell_it_cannot_judge(
    harness: Harness, tmp_path: Path
) -> None:
    # As `harness matrix` leaves a run stopped by Ctrl-C: the cell that was booting
    # has its result.json and log but no line in results.jsonl; the others nothing.
    planned = [FINISHED, INTERRUPTED, KILLED, NEVER]
    run = hand_run(tmp_path / "run", [hand_record(FINISHED, "pass")], planned)
    shutil.copy(PASS_LOG, cell_dir(run, FINISHED) / "console.log")
    cut = cell_dir(run, INTERRUPTED)
    (cut / "result.json").write_text(
        json.dumps(hand_record(INTERRUPTED, "error", "initramfs", "interrupted"))
    )
    head = PASS_LOG.read_text(errors="replace").splitlines()[:20]
    (cut / "console.log").write_text("\n".join(head) + "\n")
    (cell_dir(run, KILLED) / "console.log").write_text("\n".join(head) + "\n")

    proc = harness("classify", str(run))
    assert (proc.returncode, proc.stderr) == (0, "")
    assert proc.stdout.splitlines() == [
        f"same    {FINISHED}: pass login login -> pass login login",
        f"not judged {INTERRUPTED}: error initramfs interrupted "
        "(not in results.jsonl: the run was interrupted before it ended)",
        f"not judged {KILLED}: no result (the run stopped while it booted)",
        f"not judged {NEVER}: no result "
        "(never started: the run stopped before it, or is still running)",
        f"0 of 1 verdict would change in {run}",
    ]
    lines = [
        json.loads(line) for line in harness("classify", "--json", str(run)).stdout.splitlines()
    ]
    assert [(line["cell"], line["judged"], line["was"]) for line in lines] == [
        (FINISHED, True, "pass login login"),
        (INTERRUPTED, False, "error initramfs interrupted"),
        (KILLED, False, None),
        (NEVER, False, None),
    ]


def test_a_run_stopped_before_any_result_names_its_planned_cells(
    harness: Harness, tmp_path: Path
) -> None:
    # A SIGTERM'd libvirt matrix said "0 of 0 verdicts would change" and no more.
    run = hand_run(tmp_path / "run", [], [INTERRUPTED, KILLED])
    (cell_dir(run, INTERRUPTED) / "console.log").write_text("UEFI firmware starting.\n")
    assert harness("classify", str(run)).stdout.splitlines() == [
        f"not judged {INTERRUPTED}: no result (the run stopped while it booted)",
        f"not judged {KILLED}: no result "
        "(never started: the run stopped before it, or is still running)",
        f"0 of 0 verdicts would change in {run}",
    ]


def test_a_virt_cell_recorded_from_its_twins_boot_is_judged_from_that_boots_log(
    harness: Harness, tmp_path: Path
) -> None:
    # matrix/sameboot.py: the virt cell is recorded from virt-7.2's boot, and has no
    # directory of its own; it said "not judged ... (no console.log)".
    booted, twin = "debian-12-tiny/aavmf/virt-7.2/pci", "debian-12-tiny/aavmf/virt/pci"
    records = [hand_record(booted, "pass"), {**hand_record(twin, "pass"), "same_boot_as": booted}]
    run = hand_run(tmp_path / "run", records)
    log = cell_dir(run, booted) / "console.log"
    shutil.copy(FIXTURES / "consoles" / "tiny-aavmf-pci-pass.log", log)

    proc = harness("classify", str(run))
    assert (proc.returncode, proc.stderr) == (0, "")
    assert proc.stdout.splitlines() == [
        f"same    {booted}: pass login login -> pass login login",
        f"same    {twin}: pass login login -> pass login login (same boot as {booted})",
        f"0 of 2 verdicts would change in {run}",
    ]
    lines = [
        json.loads(line) for line in harness("classify", "--json", str(run)).stdout.splitlines()
    ]
    assert [(line["file"], line["same_boot_as"]) for line in lines] == [
        (str(log), None),
        (str(log), booted),
    ]
    # its twin's log gone, it says whose log it is
    log.unlink()
    assert harness("classify", str(run)).stdout.splitlines()[1] == (
        f"not judged {twin}: pass login login (no console.log of {booted}, the same boot)"
    )
