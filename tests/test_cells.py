from __future__ import annotations

import pytest

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
