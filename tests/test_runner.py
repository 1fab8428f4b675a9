"""Exceptions become outcomes in one place (harness/runner.py): every fault of one
cell is its result, Ctrl-C passes through unchanged, a cell that cannot be booted is
a skip decided before QEMU starts, and a QEMU that fails at launch is one typed error."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from harness.bisect import bisect
from harness.boot import BootOptions
from harness.host import Host
from harness.model import Cell, CellResult, Firmware, Image, Outcome
from harness.runner import CellSetup, run_cell

CELL = Cell("tiny", "none", "virt", "pci")


def setup_of(image: Image) -> CellSetup:
    return CellSetup(lambda cell: image, lambda cell: Firmware("none"))


def quiet(_: str) -> None:
    pass


def test_an_output_directory_that_cannot_be_made_is_the_cells_error(
    tiny: Image, host: Host, tmp_path: Path
) -> None:
    (tmp_path / "file").write_text("")
    result = run_cell(
        CELL, setup_of(tiny), host, tmp_path / "file" / "out", BootOptions(), None, quiet
    )
    assert (result.status, result.reason) == (Outcome.ERROR, "infrastructure")
    assert result.detail.startswith(f"cannot make the output directory {tmp_path / 'file'}")


def test_a_result_that_cannot_be_written_is_returned_as_an_error(
    host: Host, tmp_path: Path
) -> None:
    (tmp_path / "result.json" / "in-the-way").mkdir(parents=True)  # os.replace cannot
    no_kernel = Image("tiny", disk=None)
    result = run_cell(CELL, setup_of(no_kernel), host, tmp_path, BootOptions(), None, quiet)
    assert (result.status, result.reason) == (Outcome.ERROR, "host-error")
    assert "cannot write" in result.detail
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.json"]  # no temporary left


def test_ctrl_c_passes_through_even_when_its_result_cannot_be_written(
    host: Host, tmp_path: Path
) -> None:
    (tmp_path / "result.json" / "in-the-way").mkdir(parents=True)

    def interrupted(cell: Cell) -> Image:
        raise KeyboardInterrupt

    setup = CellSetup(interrupted, lambda cell: Firmware("none"))
    with pytest.raises(KeyboardInterrupt):
        run_cell(CELL, setup, host, tmp_path, BootOptions(), None, quiet)


def test_a_cell_the_image_cannot_boot_is_a_skip_before_qemu_starts(
    tiny: Image, host: Host, tmp_path: Path
) -> None:
    uefi_only = dataclasses.replace(tiny, kernel=None, initrd=None)
    result = run_cell(CELL, setup_of(uefi_only), host, tmp_path, BootOptions(), None, quiet)
    assert (result.status, result.reason) == (Outcome.SKIP, "impossible")
    assert "has no kernel for direct boot" in result.detail
    assert not (tmp_path / "cmdline.sh").exists() and not (tmp_path / "console.log").exists()
    assert json.loads((tmp_path / "result.json").read_text())["status"] == "skip"


def test_a_qemu_failing_at_launch_is_one_line_with_argv_and_exit_status(
    tiny: Image, host: Host, tmp_path: Path
) -> None:
    failing = tmp_path / "qemu-system-aarch64"
    failing.write_text(
        "#!/bin/sh\necho 'qemu: -machine virt-9.9: unsupported machine type' >&2\nexit 1\n"
    )
    failing.chmod(0o755)
    result = run_cell(
        CELL, setup_of(tiny), dataclasses.replace(host, qemu=str(failing)), tmp_path / "a",
        BootOptions(), None, quiet,
    )  # fmt: skip
    assert (result.status, result.reason) == (Outcome.ERROR, "qemu-failed")
    assert result.detail == (
        "QEMU exited at start (exit status 1): qemu: -machine virt-9.9: unsupported machine type"
    )
    assert result.qemu["argv"][0] == str(failing) and result.qemu["exit"] == "1"
    missing = dataclasses.replace(host, qemu=str(tmp_path / "no-such-qemu"))
    gone = run_cell(CELL, setup_of(tiny), missing, tmp_path / "b", BootOptions(), None, quiet)
    assert (gone.status, gone.reason, gone.qemu["exit"]) == (
        Outcome.ERROR,
        "qemu-failed",
        "not started",
    )
    assert gone.detail.startswith("QEMU did not start (exit status not started): ")
    assert "\n" not in gone.detail


def test_a_qemu_build_failing_at_launch_is_recorded_as_that_build(
    tiny: Image, host: Host, tmp_path: Path
) -> None:
    failing = tmp_path / "qemu-system-aarch64"
    failing.write_text("#!/bin/sh\necho 'qemu: cannot start' >&2\nexit 1\n")
    failing.chmod(0o755)
    build = dataclasses.replace(host, qemu=str(failing), qemu_version="10.0.9")
    setup = dataclasses.replace(setup_of(tiny), host=lambda cell: build)
    cell = dataclasses.replace(CELL, qemu="qemu-test")
    result = run_cell(cell, setup, host, tmp_path / "out", BootOptions(), None, quiet)
    assert (result.status, result.reason) == (Outcome.ERROR, "qemu-failed")
    # the build that failed, not the host's QEMU the command started with
    assert result.qemu["binary"] == result.qemu["argv"][0] == str(failing)
    assert result.to_json()["qemu_version"] == "10.0.9"
    assert result.host == build.facts()
    assert (
        result.accel
        == build.accel("auto")
        == result.qemu["argv"][result.qemu["argv"].index("-accel") + 1]
    )


def test_bisect_stops_on_an_error_without_raising() -> None:
    cells = [Cell("tiny", "none", f"virt-{n}.0", "pci") for n in range(2, 9)]

    def boot(cell: Cell) -> CellResult:
        status = Outcome.ERROR if cell.machine == "virt-8.0" else Outcome.PASS
        return CellResult(cell, status, "none", "qemu-failed", detail="QEMU exited at start")

    found = bisect(cells, boot)
    assert found.stopped_by is not None and found.stopped_by.cell == cells[-1]
    assert found.first_different is None and len(found.tried) == 2
