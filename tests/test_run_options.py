"""`harness run` with a CELL refuses the options of a run whose image is not in the
catalog: the cell names its own, and the result would look as if they had applied."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import Harness


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
