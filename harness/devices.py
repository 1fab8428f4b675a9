"""The one table of what a transport and a device mean: the QEMU device models per
transport, the libvirt element, and what the in-guest probe reads back from sysfs.
The QEMU command line (qemu_argv.py), the probe's check (console/probe.py), the
libvirt export (export/libvirt.py), the matrix and `harness run --transport` read it,
and tests/test_devices.py checks that the schemas' transport enums list its rows;
adding a device is one row here (plus, for a libvirt element the export does not
know yet, its builder there).

Sources: QEMU's device names (`qemu-system-aarch64 -device help`); virtio device IDs
from the virtio 1.2 specification, section 5 ("Device Types"); the sysfs driver
names from Linux drivers/virtio/virtio_mmio.c and virtio_pci_common.c; libvirt's
domain XML (https://libvirt.org/formatdomain.html).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Transport:
    """How virtio devices reach the guest: a cell's TRANSPORT."""

    name: str  # the cell's word: mmio, pci, pcie-port, libvirt-mmio, libvirt-pci
    sysfs_driver: str  # the driver of a virtio device's parent in the guest's sysfs
    # <address type=...> in libvirt's domain XML; "" writes no address, so libvirt
    # picks one (for PCI on aarch64 virt: a pcie-root-port per device)
    libvirt_address: str
    # who starts the guest: "qemu" (the harness runs QEMU itself), "libvirt" (a
    # transient domain of a libvirtd, harness/libvirt_boot.py) or "virt-install"
    # (the same, from the XML virt-install writes)
    launcher: str = "qemu"

    @property
    def bus(self) -> str:
        """What the guest sees (mmio or pci): the first transport with this sysfs
        driver; a probe's findings are in these words."""
        return transport_of(self.sysfs_driver)


TRANSPORTS: tuple[Transport, ...] = (
    Transport("mmio", "virtio-mmio", "virtio-mmio"),
    # every device on the PCIe root bus: integrated endpoints, transitional devices
    Transport("pci", "virtio-pci", "pci"),
    # libvirt's own PCIe topology: each device alone behind a pcie-root-port, where
    # QEMU makes virtio devices modern-only
    Transport("pcie-port", "virtio-pci", ""),
    # booted through libvirt: every device forced to <address type='virtio-mmio'/>
    Transport("libvirt-mmio", "virtio-mmio", "virtio-mmio", launcher="libvirt"),
    # booted through libvirt with no addresses in the XML: what libvirt picks itself
    Transport("libvirt-pci", "virtio-pci", "", launcher="libvirt"),
    # through libvirt, the domain as `virt-install --print-xml` makes it (its own
    # defaults: firmware, CPU model, root ports, guest-agent channel), and with
    # mmio forced on the devices (harness/virt_install.py)
    Transport("virt-install", "virtio-pci", "", launcher="virt-install"),
    Transport("virt-install-mmio", "virtio-mmio", "virtio-mmio", launcher="virt-install"),
)
TRANSPORT_NAMES: tuple[str, ...] = tuple(t.name for t in TRANSPORTS)
# the transports whose cells the harness's own QEMU command line boots (every row
# of the device table has QEMU devices for each)
QEMU_TRANSPORTS: tuple[str, ...] = tuple(t.name for t in TRANSPORTS if t.launcher == "qemu")


@dataclass(frozen=True)
class Device:
    """One device a cell gets.

    `qemu` maps a transport to the `-device` values that attach it, in order, with
    `{id}` (this instance's own id, e.g. virtio-scsi0) and `{backend}` (the id of its host
    side: a drive, netdev or rng object) filled in. `backend` is the host side as
    QEMU options, for roles whose host side is the same for every cell (a disk's
    comes from its file instead). `virtio_id` is what the probe reads from the guest's
    /sys/bus/virtio/devices/*/device, `kind` what result.json calls it.
    """

    role: str  # disk, net, rng, ...
    name: str
    virtio_id: int
    kind: str
    qemu: Mapping[str, tuple[str, ...]]
    backend: tuple[str, ...] = ()
    libvirt: str = ""  # the element: disk, interface, rng
    libvirt_bus: str = ""  # a disk's <target bus=...>
    libvirt_controller: str = ""  # the model of the controller it sits behind, if any
    guest_names: str = ""  # a disk's name prefix in the guest's /dev (vd, sd)

    def qemu_devices(self, transport: str, index: int, backend: str, port: int = 1) -> list[str]:
        """The `-device` values for one instance on `transport`; `port` numbers the
        instance among all of the cell's devices (1, 2, ...: a pcie-root-port's chassis,
        which must differ between ports)."""
        return [
            value.format(id=f"{self.name}{index}", backend=backend, port=port)
            for value in self.qemu[transport]
        ]


# As libvirt 9.0 writes a port per device (chassis N) on the root bus; the device
# then sits alone at address 0 behind it. QEMU's pcie-root-port(docs/pcie.txt).
ROOT_PORT = "pcie-root-port,id={id}-port,chassis={port},bus=pcie.0"


VIRTIO_BLK = Device(
    "disk", "virtio-blk", 2, "block",
    {"mmio": ("virtio-blk-device,drive={backend}",), "pci": ("virtio-blk-pci,drive={backend}",),
     "pcie-port": (ROOT_PORT, "virtio-blk-pci,drive={backend},bus={id}-port,addr=0")},
    libvirt="disk", libvirt_bus="virtio", guest_names="vd",
)  # fmt: skip
VIRTIO_NET = Device(
    "net", "virtio-net", 1, "net",
    {"mmio": ("virtio-net-device,netdev={backend}",), "pci": ("virtio-net-pci,netdev={backend}",),
     "pcie-port": (ROOT_PORT, "virtio-net-pci,netdev={backend},bus={id}-port,addr=0")},
    backend=("-netdev", "user,id={backend}"), libvirt="interface",
)  # fmt: skip
VIRTIO_RNG = Device(
    "rng", "virtio-rng", 4, "rng",
    {"mmio": ("virtio-rng-device,rng={backend}",), "pci": ("virtio-rng-pci,rng={backend}",),
     "pcie-port": (ROOT_PORT, "virtio-rng-pci,rng={backend},bus={id}-port,addr=0")},
    backend=("-object", "rng-random,id={backend},filename=/dev/urandom"), libvirt="rng",
)  # fmt: skip

# What every cell gets, in the order QEMU is given them (PCI slots follow it).
DEVICES: tuple[Device, ...] = (VIRTIO_BLK, VIRTIO_NET, VIRTIO_RNG)


def disk_device(devices: Sequence[Device]) -> Device:
    """The row that attaches disks; raises ValueError when the table has none."""
    for device in devices:
        if device.role == "disk":
            return device
    raise ValueError("the device table has no disk row")


def kind_of(virtio_id: int, devices: Sequence[Device] = DEVICES) -> str:
    """What result.json calls the virtio device with this ID; "" for one not in `devices`."""
    return next((d.kind for d in devices if d.virtio_id == virtio_id), "")


def transport(name: str) -> Transport:
    """The row of a transport; raises KeyError for one not in the table."""
    for row in TRANSPORTS:
        if row.name == name:
            return row
    raise KeyError(name)


def mmio_twin(name: str) -> str:
    """The mmio transport of the same launcher as transport `name` (pci, pcie-port:
    mmio; libvirt-pci: libvirt-mmio): the cell a PCI cell is compared with."""
    row = transport(name)
    return next(t.name for t in TRANSPORTS if t.launcher == row.launcher and t.bus == "mmio")


def launcher(name: str) -> str:
    """Who starts a cell on transport `name`: "qemu" (the harness itself), "libvirt"
    or "virt-install" (both through libvirt, harness/libvirt_boot.py)."""
    return next((t.launcher for t in TRANSPORTS if t.name == name), "qemu")


def transport_of(sysfs_driver: str) -> str:
    """The transport whose sysfs parent driver this is; the driver name if none."""
    return next((t.name for t in TRANSPORTS if t.sysfs_driver == sysfs_driver), sysfs_driver)
