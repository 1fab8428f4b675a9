"""ACPI or device tree: what the guest found its machine in, from the probe it runs
after login, on real boots."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import Harness

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
    cell: str, tables: str, tiny: Image, harness: Harness, tmp_path: Path
) -> None:
    proc = harness("run", cell, "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["guest"]["firmware_tables"] == tables
    assert seen_in_guest(result) == f"mmio, {tables}"
