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
from dataclasses import dataclass, field
from typing import Any

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
    'echo "root $(awk \'$2 == "/" {print $1, $3}\' /proc/mounts | tail -n 1)"; '
    "grep -E '^(ID|VERSION_ID|PRETTY_NAME)=' /etc/os-release 2>/dev/null | sed 's/^/os /'; "
    "echo harness-probe-$((1+2))-end"
)
# virtio device IDs (virtio spec 5.x) of the devices the harness attaches
DEVICE_TYPES = {"1": "net", "2": "block", "4": "rng"}
TRANSPORTS = {"virtio-mmio": "mmio", "virtio-pci": "pci"}
_DEVICE = re.compile(r"^virtio (\S+) id=0x([0-9a-fA-F]+) driver=(\S*) transport=(\S*)$")
# Disks that are not virtio: a root found on one was not found through the transport.
_OTHER_DISK = re.compile(r"^/dev/(sd|hd|nvme|xvd|mmcblk|sr)")


@dataclass(frozen=True)
class Device:
    name: str
    kind: str  # net, block, rng, or the virtio id
    driver: str
    transport: str  # mmio, pci, or the parent's driver name


@dataclass(frozen=True)
class Findings:
    kernel: str = ""
    devices: tuple[Device, ...] = ()
    root: str = ""
    root_fs: str = ""  # "rootfs": the initramfs itself, never switched away from
    os: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "kernel": self.kernel,
            "devices": [vars(d) for d in self.devices],
            "root": self.root,
            "root_fs": self.root_fs,
            "os": dict(self.os),
            "transports": sorted({d.transport for d in self.devices}),
        }


def parse(lines: list[str]) -> Findings:
    kernel, root, root_fs = "", "", ""
    devices = []
    os_release: dict[str, str] = {}
    for line in (raw.strip() for raw in lines):
        if line.startswith("kernel "):
            kernel = line.removeprefix("kernel ").strip()
        elif line.startswith("root "):
            root, _, root_fs = line.removeprefix("root ").strip().partition(" ")
        elif line.startswith("os ") and "=" in line:
            key, _, value = line.removeprefix("os ").partition("=")
            os_release[key] = value.strip().strip('"')
        elif match := _DEVICE.match(line):
            name, device_id, driver, parent = match.groups()
            kind = DEVICE_TYPES.get(device_id.lstrip("0") or "0", f"virtio-id-{device_id}")
            devices.append(Device(name, kind, driver, TRANSPORTS.get(parent, parent or "none")))
    return Findings(kernel, tuple(devices), root, root_fs.strip(), os_release)


def mismatch(transport: str, findings: Findings, has_disk: bool) -> str:
    """Why the devices the guest sees are not all on `transport`; "" when they are."""
    off = [d for d in findings.devices if d.transport != transport]
    if off:
        listed = ", ".join(f"{d.kind} {d.name} on {d.transport}" for d in off)
        return f"expected every virtio device on {transport}, but the guest has {listed}"
    if has_disk and not any(d.kind == "block" for d in findings.devices):
        return f"the guest sees no virtio block device on {transport}"
    if has_disk and _OTHER_DISK.match(findings.root):
        return f"the root file system is on {findings.root}, not on a virtio disk"
    return ""
