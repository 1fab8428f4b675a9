"""The argv builder is pure: these need no QEMU."""

from __future__ import annotations

from pathlib import Path

from harness.devices import DEVICES, QEMU_TRANSPORTS
from harness.model import Cell
from harness.qemu_argv import BootFiles, qemu_argv

DIRECT = BootFiles(
    disk=Path("/w/disk.qcow2"),
    kernel=Path("/i/vmlinuz"),
    initrd=Path("/i/initrd"),
    append="console=ttyAMA0",
)
UEFI = BootFiles(disk=Path("/w/disk.qcow2"), code=Path("/fw/CODE.fd"), vars=Path("/w/vars.fd"))


def argv(cell: str, files: BootFiles, accel: str = "tcg") -> list[str]:
    return qemu_argv(
        Cell.parse(cell), "qemu-system-aarch64", accel, files, tcg_cpu_options=("pauth-impdef=on",)
    )


def values(args: list[str], option: str) -> list[str]:
    return [args[i + 1] for i, a in enumerate(args) if a == option]


def test_mmio_puts_every_virtio_device_on_virtio_mmio() -> None:
    devices = values(argv("img/none/virt/mmio", DIRECT), "-device")
    assert devices == [
        "virtio-blk-device,drive=disk0",
        "virtio-net-device,netdev=net0",
        "virtio-rng-device,rng=rng0",
    ]


def test_pci_puts_every_virtio_device_on_pci() -> None:
    devices = values(argv("img/none/virt-2.6/pci", DIRECT), "-device")
    assert [d.split(",")[0] for d in devices] == [
        "virtio-blk-pci",
        "virtio-net-pci",
        "virtio-rng-pci",
    ]


def test_direct_boot_uses_kernel_initrd_append_and_no_pflash() -> None:
    args = argv("img/none/virt/pci", DIRECT)
    assert values(args, "-kernel") == ["/i/vmlinuz"]
    assert values(args, "-initrd") == ["/i/initrd"]
    assert values(args, "-append") == ["console=ttyAMA0"]
    assert not any("pflash" in a for a in args)


def test_uefi_code_is_read_only_and_vars_is_the_cells_copy() -> None:
    args = argv("img/aavmf/virt-7.2/pci", UEFI)
    assert values(args, "-drive")[:2] == [
        "if=pflash,format=raw,unit=0,readonly=on,file=/fw/CODE.fd",
        "if=pflash,format=raw,unit=1,file=/w/vars.fd",
    ]
    assert "-kernel" not in args


def test_uefi_firmware_boots_without_waiting_at_its_boot_menu() -> None:
    # edk2 waits 5 s for a key unless QEMU passes menu=on with a wait (firmware.py)
    assert values(argv("img/aavmf/virt/pci", UEFI), "-boot") == ["menu=on,splash-time=0"]
    assert values(argv("img/none/virt/pci", DIRECT), "-boot") == []


def test_machine_type_accel_and_cpu() -> None:
    tcg = argv("img/none/virt-2.12/pci", DIRECT)
    assert values(tcg, "-machine") == ["virt-2.12"]
    assert values(tcg, "-accel") == ["tcg"]
    assert values(tcg, "-cpu") == ["max,pauth-impdef=on"]
    kvm = argv("img/none/virt/pci", DIRECT, accel="kvm")
    assert values(kvm, "-cpu") == ["host"]
    assert values(kvm, "-machine") == ["virt,gic-version=host"]


def test_no_monitor_display_or_listening_socket() -> None:
    args = argv("img/aavmf/virt/mmio", UEFI)
    assert "-nodefaults" in args and values(args, "-display") == ["none"]
    assert "-monitor" not in args and "-qmp" not in args and "-vnc" not in args
    assert values(args, "-netdev") == ["user,id=net0"]  # no hostfwd: nothing listens
    assert values(args, "-serial") == ["chardev:console"]
    assert values(args, "-chardev")[0].startswith("stdio,")


def test_the_overlay_is_the_only_disk_and_extra_disks_are_read_only() -> None:
    files = BootFiles(
        disk=Path("/w/disk.qcow2"),
        code=Path("/c"),
        vars=Path("/v"),
        extra_disks=(Path("/w/seed.iso"),),
    )
    drives = [
        d for d in values(argv("img/aavmf/virt/pci", files), "-drive") if d.startswith("if=none")
    ]
    assert drives == [
        # A host disk error stops the guest (QEMU reports it) instead of stalling it.
        "if=none,id=disk0,format=qcow2,file=/w/disk.qcow2,werror=stop,rerror=stop",
        "if=none,id=disk1,format=raw,file=/w/seed.iso,readonly=on",
    ]


def test_commas_in_paths_are_escaped_for_qemu() -> None:
    files = BootFiles(disk=Path("/a,b/disk.qcow2"), code=Path("/c"), vars=Path("/v"))
    drives = values(argv("img/aavmf/virt/pci", files), "-drive")
    assert "if=none,id=disk0,format=qcow2,file=/a,,b/disk.qcow2,werror=stop,rerror=stop" in drives


def test_a_comma_in_a_firmware_path_is_escaped_in_the_name_too() -> None:
    args = argv("img//fw,1/CODE.fd/virt/pci", UEFI)
    assert values(args, "-name") == ["harness:img//fw,,1/CODE.fd/virt/pci"]


def test_a_guest_may_reset() -> None:
    """Resets are counted from QEMU's events, so QEMU must not exit on the first one."""
    assert "-no-reboot" not in argv("img/none/virt/pci", DIRECT)


def test_every_row_of_the_device_table_is_on_the_command_line_once_per_instance() -> None:
    files = BootFiles(disk=Path("/d"), kernel=Path("/k"), extra_disks=(Path("/s"),))
    for transport in QEMU_TRANSPORTS:  # libvirt cells: libvirt writes the command line
        devices = [
            d.split(",")[0] for d in values(argv(f"img/none/virt/{transport}", files), "-device")
        ]
        expected = [
            value.split(",")[0]
            for row in DEVICES
            for _ in range(2 if row.role == "disk" else 1)  # the disk row once per disk
            for value in row.qemu[transport]
        ]
        assert devices == expected
