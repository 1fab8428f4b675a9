"""What the guest itself says about its devices: a fixed, read-only shell script typed
after login, its output framed by markers (computed by the shell, so the echo of the
command cannot be taken for them), and the check that every virtio device sits on the
transport the cell asked for.

The transport of a virtio device is the driver of its parent device in sysfs:
virtio-mmio (device tree or ACPI LNRO0005) or virtio-pci. That is what the guest
kernel bound, whatever QEMU was told.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.devices import DEVICES, Device, disk_device, kind_of, transport_of
from harness.devices import transport as transport_row

BEGIN, END = "harness-probe-3-begin", "harness-probe-3-end"
# POSIX sh and busybox ash alike; one line, so no shell prompt interleaves.
SCRIPT = (
    "echo harness-probe-$((1+2))-begin; "
    'echo "kernel $(uname -r)"; '
    "for d in /sys/bus/virtio/devices/*; do "
    '[ -e "$d" ] || continue; '
    'echo "virtio $(basename "$d") id=$(cat "$d/device") '
    'driver=$(basename "$(readlink "$d/driver")") '
    'transport=$(basename "$(readlink "$d/../driver")")"; '
    "done; "
    # arm64 unflattens the device tree only when ACPI is off (setup_arch), so at
    # most one of the two is there: what the kernel described the machine from.
    "echo tables $([ -d /sys/firmware/acpi/tables ] && echo acpi; "
    "[ -d /proc/device-tree ] || [ -d /sys/firmware/devicetree/base ] && echo dt); "
    'echo "root $(awk \'$2 == "/" {print $1, $3}\' /proc/mounts | tail -n 1)"; '
    "grep -E '^(ID|VERSION_ID|PRETTY_NAME)=' /etc/os-release 2>/dev/null | sed 's/^/os /'; "
    "echo harness-probe-$((1+2))-end"
)
_DEVICE = re.compile(r"^virtio (\S+) id=0x([0-9a-fA-F]+) driver=(\S*) transport=(\S*)$")
# Disks that are not virtio: a root found on one was not found through the transport.
_OTHER_DISK = re.compile(r"^/dev/(sd|hd|nvme|xvd|mmcblk|sr)")


@dataclass(frozen=True)
class Seen:
    """One virtio device as the guest reported it."""

    name: str
    kind: str  # net, block, rng, or the virtio id
    driver: str
    transport: str  # mmio, pci, or the parent's driver name


@dataclass(frozen=True)
class Findings:
    kernel: str = ""
    devices: tuple[Seen, ...] = ()
    root: str = ""
    root_fs: str = ""  # "rootfs": the initramfs itself, never switched away from
    os: dict[str, str] = field(default_factory=dict)
    # "acpi" or "dt": what the kernel found the machine in; "" from an older probe
    firmware_tables: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "kernel": self.kernel,
            "devices": [vars(d) for d in self.devices],
            "root": self.root,
            "root_fs": self.root_fs,
            "os": dict(self.os),
            "transports": sorted({d.transport for d in self.devices}),
            "firmware_tables": self.firmware_tables,
        }


def parse(lines: list[str], known: Sequence[Device] = DEVICES) -> Findings:
    """The probe's output (the lines between its markers) read back; `known` names the
    virtio IDs (harness/devices.py), any other is `virtio-id-XXXX`."""
    kernel, root, root_fs, tables = "", "", "", ""
    devices = []
    os_release: dict[str, str] = {}
    for line in (raw.strip() for raw in lines):
        if line.startswith("kernel "):
            kernel = line.removeprefix("kernel ").strip()
        elif line.startswith("tables"):
            tables = _tables(line.removeprefix("tables").split())
        elif line.startswith("root "):
            root, _, root_fs = line.removeprefix("root ").strip().partition(" ")
        elif line.startswith("os ") and "=" in line:
            key, _, value = line.removeprefix("os ").partition("=")
            os_release[key] = value.strip().strip('"')
        elif match := _DEVICE.match(line):
            name, device_id, driver, parent = match.groups()
            kind = kind_of(int(device_id, 16), known) or f"virtio-id-{device_id}"
            devices.append(Seen(name, kind, driver, transport_of(parent) if parent else "none"))
    return Findings(kernel, tuple(devices), root, root_fs.strip(), os_release, tables)


def _tables(present: list[str]) -> str:
    """ACPI wins: a kernel that has both was given ACPI and kept the tree for /chosen."""
    return "acpi" if "acpi" in present else "dt" if "dt" in present else ""


def mismatch(
    transport: str, findings: Findings, has_disk: bool, devices: Sequence[Device] = DEVICES
) -> str:
    """Why the devices the guest sees are not all on `transport`; "" when they are.
    With a disk, the guest must see the disk row's virtio device, and a root on a
    disk must be one of that row's names (vd* for virtio-blk)."""
    # the guest sees a bus (mmio or pci), not the topology (root bus or root ports)
    bus = transport_row(transport).bus
    off = [d for d in findings.devices if d.transport != bus]
    if off:
        listed = ", ".join(f"{d.kind} {d.name} on {d.transport}" for d in off)
        return f"expected every virtio device on {bus}, but the guest has {listed}"
    disk = disk_device(devices)
    if has_disk and not any(d.kind == disk.kind for d in findings.devices):
        return f"the guest sees no virtio {disk.kind} device on {bus}"
    if has_disk and _on_other_disk(findings.root, disk):
        return f"the root file system is on {findings.root}, not on a virtio disk"
    return ""


def _on_other_disk(root: str, disk: Device) -> bool:
    found = _OTHER_DISK.match(root)
    return found is not None and found.group(1) != disk.guest_names
