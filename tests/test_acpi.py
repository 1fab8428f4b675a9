"""ACPI or device tree: what the guest found its machine in, from the probe it runs
after login, on real boots."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import Harness, MadeRun

from harness.model import Image
from harness.report.pages import seen_in_guest


@pytest.mark.parametrize(
    ("cell", "tables"),
    [
        ("debian-12-tiny/none/virt/mmio", "dt"),
        ("debian-12-tiny/aavmf/virt/mmio", "acpi"),
    ],
)
def test_the_probe_says_acpi_or_device_tree(
    cell: str, tables: str, tiny_run: Callable[[str], MadeRun]
) -> None:
    proc = tiny_run(cell)  # booted once for the tests of several files that read it
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr
    result = json.loads((proc.run / "result.json").read_text())
    assert result["guest"]["firmware_tables"] == tables
    assert seen_in_guest(result) == f"mmio, {tables}"


def test_aavmf_with_acpi_off_boots_the_guest_on_a_device_tree(
    tiny: Image, harness: Harness, tmp_path: Path
) -> None:
    cell = "debian-12-tiny/aavmf-noacpi/virt/mmio"
    proc = harness("run", cell, "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr
    result = json.loads((tmp_path / "result.json").read_text())
    machine = result["qemu"]["argv"][result["qemu"]["argv"].index("-machine") + 1]
    assert machine == "virt,acpi=off"
    assert result["firmware"] == "aavmf-noacpi"
    assert result["firmware_digest"].startswith("sha256:")  # UEFI all the same
    assert result["stage_times"]["firmware"] < result["stage_times"]["bootloader"]
    assert result["guest"]["firmware_tables"] == "dt"


def test_libvirt_cell_with_acpi_off_has_no_acpi_feature(
    tiny: Image, harness: Harness, tmp_path: Path
) -> None:
    cell = "debian-12-tiny/aavmf-noacpi/virt/libvirt-mmio"
    proc = harness("run", cell, "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr
    domain = (tmp_path / "domain.xml").read_text()
    assert "<features />" in domain or "<features/>" in domain, domain
    result = json.loads((tmp_path / "result.json").read_text())
    assert "-no-acpi" in result["qemu"]["argv"]  # libvirt 9.0's spelling of acpi=off
    assert result["guest"]["firmware_tables"] == "dt"


def test_a_misspelt_firmware_lists_the_acpi_off_variant(harness: Harness) -> None:
    proc = harness("run", "debian-12-tiny/aavmf-no-acpi/virt/mmio")
    assert proc.returncode == 2
    assert "aavmf-noacpi" in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_the_nightly_grid_has_aavmf_with_acpi_off_beside_aavmf(harness: Harness) -> None:
    proc = harness("list", "--profile", "nightly", "-k", "debian-12-tiny/aavmf")
    assert proc.returncode == 0, proc.stderr
    cells = {line.split()[0] for line in proc.stdout.splitlines() if "/" in line.split()[0]}
    for transport in ("mmio", "pci"):
        assert f"debian-12-tiny/aavmf/virt/{transport}" in cells
        assert f"debian-12-tiny/aavmf-noacpi/virt/{transport}" in cells
