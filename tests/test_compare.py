"""`harness compare` through the real CLI on two run directories written here: its
labels and exit status, which a nightly job reads. Nothing boots."""

from __future__ import annotations

from pathlib import Path

from conftest import Harness, hand_record, hand_run

PASSING = "debian-12-tiny/none/virt/pci"
FAILING = "debian-12-tiny/none/virt/mmio"


def compared(harness: Harness, old: Path, new: Path) -> tuple[int, list[str]]:
    """`harness compare OLD NEW`: its exit status and its lines."""
    proc = harness("compare", str(old), str(new))
    assert not proc.stderr, proc.stderr
    return proc.returncode, proc.stdout.splitlines()


def test_a_pass_that_became_an_error_is_untested_and_not_green(
    harness: Harness, tmp_path: Path
) -> None:
    old = hand_run(tmp_path / "old", [hand_record(PASSING, "pass"), hand_record(FAILING, "fail")])
    new = hand_run(
        tmp_path / "new",
        [
            hand_record(PASSING, "error", "none", "download-failed"),
            hand_record(FAILING, "error", "none", "download-failed"),
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
    worse = hand_run(
        tmp_path / "worse",
        [hand_record(PASSING, "error", "none", "qemu-failed"), hand_record(FAILING, "fail")],
    )
    old2 = hand_run(tmp_path / "old2", [hand_record(PASSING, "pass"), hand_record(FAILING, "pass")])
    assert harness("compare", str(old2), str(worse)).returncode == 1
    # and a run compared with itself is 0
    assert harness("compare", str(old), str(old)).returncode == 0


def test_a_verdict_after_an_error_is_new(harness: Harness, tmp_path: Path) -> None:
    # no verdict to compare it with: neither fixed nor still failing (it said fixed)
    errors = [hand_record(cell, "error", "none", "download-failed") for cell in (PASSING, FAILING)]
    old = hand_run(tmp_path / "old", errors)
    new = hand_run(tmp_path / "new", [hand_record(PASSING, "pass"), hand_record(FAILING, "fail")])
    assert compared(harness, old, new) == (0, [
        f"new            {PASSING}  error none download-failed -> pass",
        f"new            {FAILING}  error none download-failed -> fail login login",
        "2 new",
    ])  # fmt: skip
