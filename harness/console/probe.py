"""What the guest itself says about its devices: a fixed, read-only shell script typed
after login, its output framed by markers (computed by the shell, so the echo of the
command cannot be taken for them), and the check that every virtio device sits on the
transport the cell asked for.

The transport of a virtio device is the driver of its parent device in sysfs:
virtio-mmio (device tree or ACPI LNRO0005) or virtio-pci. That is what the guest
kernel bound, whatever QEMU was told.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.devices import DEVICES, Device, disk_device, kind_of, transport_of
from harness.devices import transport as transport_row

BEGIN, END = "harness-probe-3-begin", "harness-probe-3-end"
# The device checks are a second line, typed once the first has ended: busybox ash
# edits at most 1024 characters a line, and two lines typed at once would interleave
# the second's echo with the first's output.
WORKS_BEGIN, WORKS_END = "harness-works-4-begin", "harness-works-4-end"
# Whether the devices work, read-only on the guest's disk, each bounded in time:
# - disk: block 1 of the root device through its driver (od -j1024 -N1024: 1024
#   bytes, counted as od's words), and the ext superblock's magic at byte 1080 in it
#   (53ef, ext2/3/4's s_magic; -v: od must not fold the superblock's runs of zeros);
# - net: each virtio NIC's IPv4 address, or else a lease from QEMU's user network
#   (slirp's DHCP gives 10.0.2.15) through busybox udhcpc, its script /bin/true so
#   nothing is configured; "unchecked" where the guest has no udhcpc;
# - rng: the hw_random core's current source and 16 bytes read from /dev/hwrng (od
#   -N16, its words counted; `timeout` bounds a source that gives nothing).
# Last, the terminal's echo is turned on again (conversation.py's QUIET_PROOF turned
# it off), before the end marker, so a person given the console finds it as it was.
# A guest without od or timeout (a fault guest's older build) leaves it unchecked.
# Each NIC's check runs in the background while the disk and the rng are read (its
# DHCP exchange is mostly waiting); each check prints its line with one echo, so
# lines never mix, and the parse does not depend on their order. Every process is a
# fork and exec that costs the guest's one emulated CPU dearly: shell builtins (read,
# ${x##*/}) do what cut, awk and basename did.
WORKS = " ".join([
    r"""(exec 2>/dev/null; echo harness-works-$((2+2))-begin;""",
    r"""read -r u _ </proc/uptime; echo "works-from $u";""",
    r"""for n in /sys/bus/virtio/devices/*/net/*; do [ -e "$n" ]||continue; i=${n##*/};""",
    r"""(set -- $(ip -o -f inet addr show "$i"); a=${4%%/*};""",
    r"""if [ -z "$a" ]&&command -v udhcpc >/dev/null; then ip link set "$i" up;""",
    r"""a=$(udhcpc -i "$i" -fnq -t3 -T1 -s /bin/true 2>&1|""",
    r"""sed -n 's/.*lease of \([0-9.]*\) obtained.*/\1/p');""",
    r"""a=${a:-none}; fi; echo "net $i ${a:-unchecked}")& done;""",
    r"""r=; while read -r d m _; do [ "$m" = / ]&&r=$d; done </proc/mounts;""",
    r"""command -v od >/dev/null&&[ -b "$r" ]&&{ set -- $(od -An -tx1 -v -j1024 -N1024 "$r");""",
    r"""echo "disk-read $# ${57}${58}"; };""",
    r"""c=none; read -r c </sys/class/misc/hw_random/rng_current;""",
    r"""if command -v timeout >/dev/null&&command -v od >/dev/null; then""",
    r"""set -- $([ -c /dev/hwrng ]&&timeout 2 od -An -tx1 -N16 /dev/hwrng); s=$#;""",
    r"""else s=unchecked; fi; echo "rng $c $s";""",
    r"""wait; read -r u _ </proc/uptime; echo "works-to $u";""",
    r"""stty echo; echo harness-works-$((2+2))-end)""",
])  # fmt: skip
# POSIX sh and busybox ash alike; one line, so no shell prompt interleaves. Builtins
# where they do (read, ${d##*/}, and `cd -P` for readlink: the kernel resolves the
# driver link, $PWD names it): each process is costly under TCG (see WORKS). The shell
# is left in the directory it was in.
SCRIPT = (
    "echo harness-probe-$((1+2))-begin; o=$PWD; "
    'read -r k </proc/sys/kernel/osrelease; echo "kernel $k"; '
    "for d in /sys/bus/virtio/devices/*; do "
    '[ -e "$d" ] || continue; read -r i <"$d/device"; '
    'v=; p=; cd -P "$d/driver" 2>/dev/null && v=$PWD; '
    'cd -P "$d/../driver" 2>/dev/null && p=$PWD; '
    'echo "virtio ${d##*/} id=$i driver=${v##*/} transport=${p##*/}"; '
    'done; cd "$o"; '
    # arm64 unflattens the device tree only when ACPI is off (setup_arch), so at
    # most one of the two is there: what the kernel described the machine from.
    "t=; [ -d /sys/firmware/acpi/tables ] && t=acpi; "
    '[ -d /proc/device-tree ] || [ -d /sys/firmware/devicetree/base ] && t="$t dt"; '
    "echo tables $t; "
    'r=; while read -r d m f _; do [ "$m" = / ] && r="$d $f"; done </proc/mounts; '
    'echo "root $r"; '
    '[ -r /etc/os-release ] && while IFS= read -r l || [ -n "$l" ]; do case $l in '
    'ID=*|VERSION_ID=*|PRETTY_NAME=*) echo "os $l";; esac; done </etc/os-release; '
    "echo harness-probe-$((1+2))-end"
)
_WORK_WORDS = (["disk-read"], ["net"], ["rng"], ["works-from"], ["works-to"])
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
    # What the WORKS part printed: "disk-read", "net" and "rng" lines, as typed
    works: tuple[str, ...] = ()

    def checks(self) -> dict[str, str]:
        """Whether each device works: {"disk"|"net"|"rng": "ok", "unchecked" or the
        failure's reason (disk-unreadable, net-no-address, rng-no-bytes)}. A device
        is unchecked where no driver is bound to it, or the guest lacks the tool
        (udhcpc) or the probe predates these checks."""
        return {
            "disk": self._disk(),
            "net": self._net(),
            "rng": self._rng(),
        }

    def _bound(self, kind: str) -> bool:
        return any(d.kind == kind and d.driver for d in self.devices)

    def _lines(self, word: str) -> list[list[str]]:
        return [line.split()[1:] for line in self.works if line.split()[:1] == [word]]

    def _disk(self) -> str:
        read = self._lines("disk-read")
        if not read:
            return "unchecked"  # root not on a block device (or an older probe)
        size, magic = [*read[0], "", ""][:2]
        ext_ok = magic == "53ef" or not self.root_fs.startswith("ext")
        return "ok" if size == "1024" and ext_ok else "disk-unreadable"

    def _net(self) -> str:
        addresses = [[*line, ""][1] for line in self._lines("net")]
        if not self._bound("net") or not addresses:
            return "unchecked"
        if "none" in addresses:
            return "net-no-address"
        return "unchecked" if "unchecked" in addresses else "ok"

    def _rng(self) -> str:
        rng = self._lines("rng")
        if not self._bound("rng") or not rng:
            return "unchecked"
        current, size = [*rng[0], "", ""][:2]
        if size == "unchecked":  # no timeout or dd in the guest
            return "unchecked"
        return "ok" if current.startswith("virtio_rng") and size == "16" else "rng-no-bytes"

    @property
    def works_s(self) -> float | None:
        """Seconds the device checks took in the guest (its /proc/uptime), None
        when the probe did not time them."""
        times = [self._lines(word) for word in ("works-from", "works-to")]
        try:
            return round(float(times[1][0][0]) - float(times[0][0][0]), 2)
        except (IndexError, ValueError):
            return None

    def to_json(self) -> dict[str, Any]:
        return {
            "kernel": self.kernel,
            "devices": [vars(d) for d in self.devices],
            "root": self.root,
            "root_fs": self.root_fs,
            "os": dict(self.os),
            "transports": sorted({d.transport for d in self.devices}),
            "firmware_tables": self.firmware_tables,
            "works": list(self.works),
            "checks": self.checks(),
            "works_s": self.works_s,
        }


def with_works(findings: Findings, lines: list[str]) -> Findings:
    """`findings` with the device checks' output (the lines between WORKS' markers)."""
    works = [line.strip() for line in lines if line.split()[:1] in _WORK_WORDS]
    return dataclasses.replace(findings, works=tuple(works))


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


def dead_device(findings: Findings) -> tuple[str, str]:
    """(reason, text) for the first device that is bound but does not work (disk,
    then net, then rng: Findings.checks); ("", "") when none is."""
    for device, check in findings.checks().items():
        if check not in ("ok", "unchecked"):
            shown = [line for line in findings.works if line.startswith(device)]
            return check, f"{device} bound but not working: {'; '.join(shown) or check}"
    return "", ""


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
