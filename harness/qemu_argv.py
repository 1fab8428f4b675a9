"""The QEMU command line of a cell: a pure function of the cell, the host's choices
and the files prepared for it. Table-driven: the transport picks device models from
harness/devices.py, the firmware picks pflash or -kernel; nothing else varies.

No display, no listening socket: the serial console on stdio is the guest's channel,
and user-mode networking has no host forwards. QEMU's monitor (QMP, for its events)
is added by the launcher on an inherited socket (harness/qmp.py), not here.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.devices import DEVICES, Device
from harness.firmware import UEFI_MENU_WAIT_MS
from harness.model import Cell


@dataclass(frozen=True)
class BootFiles:
    """Per-cell files: the disk overlay and VARS copy are the cell's own."""

    disk: Path | None
    disk_format: str = "qcow2"
    kernel: Path | None = None
    initrd: Path | None = None
    append: str = ""
    code: Path | None = None
    vars: Path | None = None
    bios: Path | None = None  # a ROM image for -bios (U-Boot)
    acpi: bool = True  # False: -machine ...,acpi=off (the guest gets a device tree)
    extra_disks: tuple[Path, ...] = ()  # attached read-only, raw (e.g. a NoCloud seed)


def qemu_argv(
    cell: Cell,
    qemu: str,
    accel: str,
    files: BootFiles,
    *,
    memory_mib: int = 1024,
    smp: int = 1,
    tcg_cpu_options: Sequence[str] = (),
    devices: Sequence[Device] = DEVICES,
) -> list[str]:
    """`devices` are the rows of harness/devices.py the cell gets, in order: the disk
    row once per disk (the image's, then the extra ones), every other row once."""
    machine = cell.machine + (",gic-version=host" if accel == "kvm" else "")
    machine += "" if files.acpi else ",acpi=off"
    cpu = "host" if accel == "kvm" else ",".join(["max", *tcg_cpu_options])
    argv = [
        qemu,
        "-name", f"harness:{_opt(cell.id)}",
        "-machine", machine,
        "-accel", accel,
        "-cpu", cpu,
        "-smp", str(smp),
        "-m", str(memory_mib),
        "-nodefaults",
        "-no-user-config",
        "-display", "none",
        # No -no-reboot: a guest that resets boots again (real images reboot once on
        # their way); QEMU reports each reset over QMP and the watcher counts them.
        # mux=on only adds QEMU's Ctrl-A escapes (Ctrl-A X quits) for a person at
        # the console; signal=off keeps Ctrl-C for the guest.
        "-chardev", "stdio,id=console,mux=on,signal=off",
        "-serial", "chardev:console",
    ]  # fmt: skip
    if files.code is not None:
        argv += [
            "-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={_opt(files.code)}",
            "-drive", f"if=pflash,format=raw,unit=1,file={_opt(files.vars)}",
            "-boot", f"menu=on,splash-time={UEFI_MENU_WAIT_MS}",
        ]  # fmt: skip
    elif files.bios is not None:
        argv += ["-bios", str(files.bios)]
    else:
        if files.kernel is not None:
            argv += ["-kernel", str(files.kernel)]
        if files.initrd is not None:
            argv += ["-initrd", str(files.initrd)]
        if files.append:
            argv += ["-append", files.append]
    # werror/rerror=stop: a host disk error (a full --out) stops the guest and QEMU
    # says so (BLOCK_IO_ERROR), instead of the guest stalling into a timeout.
    writable = ",werror=stop,rerror=stop"
    disks = [(files.disk, files.disk_format, writable)] if files.disk is not None else []
    disks += [(extra, "raw", ",readonly=on") for extra in files.extra_disks]
    ports = itertools.count(1)
    for device in devices:
        if device.role == "disk":
            for index, (path, fmt, flags) in enumerate(disks):
                backend = f"disk{index}"
                argv += ["-drive", f"if=none,id={backend},format={fmt},file={_opt(path)}{flags}"]
                for value in device.qemu_devices(cell.transport, index, backend, next(ports)):
                    argv += ["-device", value]
            continue
        backend = f"{device.role}0"
        argv += [part.format(backend=backend) for part in device.backend]
        for value in device.qemu_devices(cell.transport, 0, backend, next(ports)):
            argv += ["-device", value]
    return argv


def _opt(path: Path | str | None) -> str:
    """A value inside a QEMU option string, where a comma must be doubled (QEMU's
    QemuOpts syntax, docs/system/invocation: "a comma ... is escaped by doubling it")."""
    return str(path).replace(",", ",,")
