from __future__ import annotations

from pathlib import Path

import pytest
from conftest import Harness

from harness.cells import check_cell
from harness.errors import UsageError
from harness.host import Host
from harness.model import Cell

HOST = Host(
    qemu="/usr/bin/qemu-system-aarch64", qemu_version="7.2.22",
    machines=("virt-2.6", "virt-7.2", "virt"), virt_alias="virt-7.2",
    arch="x86_64", kvm=False, cpus=2, memory_mib=4096, tcg_cpu_options=(),
)  # fmt: skip


def test_parse_the_four_parts() -> None:
    cell = Cell.parse("debian-12-tiny/aavmf/virt-7.2/pci")
    assert (cell.image, cell.firmware, cell.machine, cell.transport) == (
        "debian-12-tiny",
        "aavmf",
        "virt-7.2",
        "pci",
    )
    assert cell.id == "debian-12-tiny/aavmf/virt-7.2/pci"


def test_a_firmware_path_may_hold_slashes() -> None:
    cell = Cell.parse("img//usr/share/AAVMF/AAVMF_CODE.fd/virt/mmio")
    assert cell.firmware == "/usr/share/AAVMF/AAVMF_CODE.fd"


@pytest.mark.parametrize("text", ["", "a/b/c", "a//virt/pci", "/aavmf/virt/pci", "a/none/virt/"])
def test_malformed_cells_say_how_to_write_one(text: str) -> None:
    with pytest.raises(UsageError, match="IMAGE/FIRMWARE/MACHINE/TRANSPORT"):
        Cell.parse(text)


def test_each_bad_part_is_named_with_the_valid_choices() -> None:
    with pytest.raises(UsageError) as caught:
        check_cell(Cell.parse("nosuch/bios/virt-9.9/isa"), ["debian-12-tiny"], HOST)
    message = str(caught.value)
    assert "\n" not in message
    assert "image 'nosuch' is not one of: debian-12-tiny" in message
    assert "firmware 'bios'" in message
    assert "machine 'virt-9.9' is not one of" in message and "virt-2.6, virt-7.2, virt" in message
    assert "transport 'isa' is not one of: mmio, pci" in message


def test_a_good_cell_passes_the_check() -> None:
    check_cell(Cell.parse("debian-12-tiny/none/virt-2.6/mmio"), ["debian-12-tiny"], HOST)


def test_a_code_file_without_its_vars_template_is_refused_before_anything_boots(
    harness: Harness, tmp_path: Path
) -> None:
    # It used to pass the check (a file) and fail at boot as a UsageError, which
    # stopped a whole matrix after its first boots; it is now the cell's bad input.
    code = tmp_path / "MY_CODE.fd"
    code.write_bytes(bytes(1 << 16))
    with pytest.raises(UsageError, match=r"no VARS template beside it \(MY_VARS.fd\)"):
        check_cell(Cell("debian-12-tiny", str(code), "virt", "pci"), ["debian-12-tiny"], HOST)
    matrix = tmp_path / "m.yaml"
    matrix.write_text(
        "profiles:\n  p:\n"
        "    matrix: {image: debian-12-tiny, firmware: none, machine: virt, transport: pci}\n"
        f"    include: [{{image: debian-12-tiny, firmware: {code}, machine: virt, transport: pci}}]\n"
    )
    results = tmp_path / "r"
    proc = harness("matrix", "--matrix", str(matrix), "--profile", "p", "--results", str(results))
    assert proc.returncode == 2 and not results.exists(), proc.stdout + proc.stderr
    assert proc.stderr == (
        f"harness matrix: {matrix}:4: profiles.p.include[0].firmware: "
        f"firmware {code}: no VARS template beside it (MY_VARS.fd)\n"
    )
    (tmp_path / "MY_VARS.fd").write_bytes(bytes(1 << 16))
    check_cell(Cell("debian-12-tiny", str(code), "virt", "pci"), ["debian-12-tiny"], HOST)
