"""`harness list` and `harness matrix` on the committed matrix.yaml, booting for real."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import Harness

from harness.model import Image


def test_list_shows_the_smoke_cells_with_expectations(harness: Harness) -> None:
    proc = harness("list", "--profile", "smoke")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert (
        "debian-12-tiny-mmio-only/none/virt/pci  (expected to fail: initramfs root-not-found)"
        in lines
    )
    assert lines[-1].startswith(f"{len(lines) - 1} cells in profile smoke")
    assert len(lines) - 1 >= 19  # one of each launcher, topology, firmware and QEMU build


def test_list_filters_with_k(harness: Harness) -> None:
    proc = harness("list", "--profile", "nightly", "-k", "virt-2.6 and aavmf and debian-12-tiny/")
    assert proc.stdout.splitlines()[:2] == [
        "debian-12-tiny/aavmf/virt-2.6/mmio",
        "debian-12-tiny/aavmf/virt-2.6/pci",
    ]


def test_matrix_boots_the_cells_and_meets_expectations(
    mmio_only: Image, harness: Harness, tmp_path: Path
) -> None:
    proc = harness(
        "matrix", "--profile", "smoke", "-k", "mmio-only", "-j", "2", "--results", str(tmp_path)
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (
        "XFAIL    debian-12-tiny-mmio-only/none/virt/pci  initramfs root-not-found" in proc.stdout
    )
    # The run, beside `latest` and the history the run was recorded in.
    (run,) = [p for p in tmp_path.iterdir() if p.is_dir() and not p.is_symlink()]
    assert (tmp_path / "history.sqlite").is_file()
    assert (tmp_path / "latest").resolve() == run
    records = [json.loads(line) for line in (run / "results.jsonl").read_text().splitlines()]
    assert sorted((r["cell"], r["outcome"]) for r in records) == [
        ("debian-12-tiny-mmio-only/none/virt/mmio", "pass"),
        ("debian-12-tiny-mmio-only/none/virt/pci", "xfail"),
    ]
    assert (run / "cells" / "debian-12-tiny-mmio-only_none_virt_pci" / "console.log").is_file()


def test_every_debian_release_of_the_smoke_matrix_boots(harness: Harness, tmp_path: Path) -> None:
    """bullseye's busybox has no findfs, trixie builds virtio_pci in: each release's
    guest is its own, so each is booted."""
    proc = harness(
        "matrix", "--profile", "smoke", "-k", "debian-11 or debian-13", "-j", "2",
        "--results", str(tmp_path), timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run = (tmp_path / "latest").resolve()
    records = [json.loads(line) for line in (run / "results.jsonl").read_text().splitlines()]
    assert sorted((r["cell"], r["outcome"]) for r in records) == [
        ("debian-11-tiny/none/virt/pci", "pass"),
        ("debian-13-tiny/none/virt/pci", "pass"),
    ]


def test_bad_matrix_is_exit_2_with_file_and_line(harness: Harness, tmp_path: Path) -> None:
    bad = tmp_path / "matrix.yaml"
    bad.write_text(
        "profiles:\n  smoke:\n    matrix: {image: nope, firmware: none, machine: virt, transport: pci}\n"
    )
    proc = harness("matrix", "--matrix", str(bad), "--results", str(tmp_path))
    assert proc.returncode == 2
    message = proc.stderr.strip()
    assert message.startswith(
        f"harness matrix: {bad}:3: profiles.smoke.matrix.image: image 'nope' is not one of: "
    )
    assert "debian-12-tiny, debian-12-tiny-mmio-only" in message and "\n" not in message
    assert not any(p.name != "matrix.yaml" for p in tmp_path.iterdir())
