"""`harness run` with a CELL refuses the options of a run whose image is not in the
catalog: the cell names its own, and the result would look as if they had applied."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import Harness

from harness.model import Image


@pytest.mark.parametrize(
    "options",
    [["--machine", "nonsense"], ["--firmware", "aavmf"], ["--transport", "mmio"],
     ["--initrd", "/nonexist"], ["--append", "quiet"], ["--login", "root"]],
)  # fmt: skip
def test_a_cell_with_an_option_for_an_image_not_in_the_catalog_is_refused(
    options: list[str], harness: Harness, tmp_path: Path
) -> None:
    out = tmp_path / "o"
    proc = harness("run", "debian-12-tiny/none/virt/mmio", *options, "--out", str(out))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"harness run: give either a CELL or {options[0]}, not both"
    ]
    assert not out.exists()  # nothing booted


def test_a_relative_out_with_a_colon_boots(tiny: Image, harness: Harness, tmp_path: Path) -> None:
    # qemu-img took "x:y/work/disk.qcow2" for protocol "x" (found by a new-user trial),
    # and left x:y/work behind, which the next run took for a --keep's
    proc = harness("run", "debian-12-tiny/none/virt/mmio", "--quiet", "--out", "x:y", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith("PASS debian-12-tiny/none/virt/mmio login ")
    assert not (tmp_path / "x:y" / "work").exists()


def test_a_qemu_that_printed_nothing_leaves_no_blank_line_before_the_verdict(
    tiny: Image, harness: Harness, tmp_path: Path
) -> None:
    cell = "debian-12-tiny/none/virt/mmio"
    proc = harness("run", cell, "--qemu-arg=-no-such-option", "--out", str(tmp_path / "o"))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    argv, verdict, where = proc.stdout.splitlines()  # no console shown: no line ended for it
    assert argv.endswith(" -no-such-option") and verdict.startswith(
        f"ERROR {cell} none qemu-failed"
    )
    assert where == f"results in {tmp_path / 'o'}"
