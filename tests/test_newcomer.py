"""A newcomer's first commands, through the real CLI: each wrong turn ends in one
clear line, and each option does what its help says."""

from __future__ import annotations

import time
from pathlib import Path

from conftest import Harness

ARM32_QEMU = "/usr/bin/qemu-system-arm"


def test_a_qemu_that_cannot_run_aarch64_guests_is_one_line_and_doctor_shows_it(
    harness: Harness, tmp_path: Path
) -> None:
    started = time.monotonic()
    proc = harness(
        "run", "debian-12-tiny/none/virt/mmio", "--qemu", ARM32_QEMU, "--timeout", "20",
        "--out", str(tmp_path / "out"),
    )  # fmt: skip
    assert proc.returncode == 2, proc.stdout[-1000:] + proc.stderr
    assert proc.stderr.splitlines() == [
        f"harness run: QEMU {ARM32_QEMU} cannot run aarch64 guests: no AArch64 CPU in -cpu help"
        " (such as cortex-a57); use qemu-system-aarch64 (--qemu or $HARNESS_QEMU)"
    ]
    assert time.monotonic() - started < 10  # no timeout waited out
    assert not (tmp_path / "out").exists()
    doctor = harness("doctor", "--qemu", ARM32_QEMU)
    assert doctor.returncode == 2
    first = doctor.stdout.splitlines()[0]
    assert first.startswith("MISS qemu") and "cannot run aarch64 guests" in first
    assert "fix: point --qemu or $HARNESS_QEMU at qemu-system-aarch64" in doctor.stdout
    assert harness("doctor").stdout.startswith("ok   qemu         /usr/bin/qemu-system-aarch64")
