"""`results/latest` is the newest matrix run that booted something: a run whose every
QEMU fails at start booted nothing and leaves it (found by a new-user trial)."""

from __future__ import annotations

import shutil
from pathlib import Path

from conftest import Harness

from harness.model import Image


def test_a_run_whose_qemu_fails_at_start_leaves_latest(
    tiny: Image, harness: Harness, tmp_path: Path
) -> None:
    real = shutil.which("qemu-system-aarch64")
    assert real is not None
    # answers the harness's questions (-version, -machine help), fails every boot
    qemu = tmp_path / "qemu-that-fails"
    qemu.write_text(
        f'#!/bin/sh\ncase " $* " in *" -name "*) exec {real} "$@" -bogus ;; esac\nexec {real} "$@"\n'
    )
    qemu.chmod(0o755)
    matrix = tmp_path / "m.yaml"
    matrix.write_text(
        "profiles:\n  p:\n    matrix: {image: debian-12-tiny, firmware: none, machine: virt, "
        "transport: [pci, mmio]}\n"
    )
    results = tmp_path / "r"
    earlier = results / "20200101T000000Z-smoke"
    earlier.mkdir(parents=True)
    (results / "latest").symlink_to(earlier.name)
    proc = harness("matrix", "--matrix", str(matrix), "--profile", "p", "--results",
                   str(results), "--qemu", str(qemu))  # fmt: skip
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stdout.count("none qemu-failed  QEMU exited at start") == 2, proc.stdout
    assert (results / "latest").resolve() == earlier
