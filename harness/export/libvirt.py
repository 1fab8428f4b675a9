"""A libvirt domain XML that reproduces a cell: the machine type, AAVMF as loader and
nvram (U-Boot as a ROM loader, or the kernel for direct boot), and each virtio device
with the address of the cell's transport: `<address type='virtio-mmio'/>`, or a PCI slot on the root
bus as the harness's own QEMU command line has it.
"""

from __future__ import annotations

import re
import shlex
import string
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Sequence
from pathlib import Path

from harness.devices import DEVICES, Device
from harness.devices import transport as transport_row
from harness.firmware import UEFI_MENU_WAIT_MS
from harness.model import Cell, Firmware, Image

# QEMU's virt machine has its PCI host bridge in slot 0; devices follow in the order
# the harness gives them to QEMU (harness/devices.py).
_FIRST_SLOT = 1
# libvirt's QEMU namespace for options the domain XML has no element for
# (https://libvirt.org/drvqemu.html#pass-through-of-arbitrary-qemu-commands)
QEMU_NS = "http://libvirt.org/schemas/domain/qemu/1.0"


def domain_name(cell: Cell) -> str:
    return "harness-" + re.sub(r"[^A-Za-z0-9_.-]+", "_", cell.id).strip("_")


def domain_xml(
    cell: Cell,
    image: Image,
    firmware: Firmware,
    qemu: str,
    accel: str,
    extra_disks: Sequence[Path] = (),
    table: Sequence[Device] = DEVICES,
    *,
    overlay: Path | None = None,
    nvram: Path | None = None,
    name: str = "",
    tcg_cpu_options: Sequence[str] = (),
    smp: int = 1,
) -> str:
    """The domain XML (a str) of `cell`: its disk, then `extra_disks` (read-only, raw,
    e.g. a NoCloud seed) on the disk row of `table`, then its other rows, in the order
    of the harness's QEMU command line so PCI slots match.

    The disk is `overlay`, a qcow2 file over the image's disk (never the image's own
    file: that one is the cache's, read-only); without one, the XML names
    overlay_path(name) and a comment says how to make it. `nvram` is the cell's own
    VARS copy (libvirt's nvram directory without one), `name` the domain's
    (domain_name(cell) without one); `tcg_cpu_options` are QEMU `-cpu max` options
    (e.g. pauth-impdef=on), which libvirt's <cpu> cannot express, passed as
    `-global max-arm-cpu.OPTION` through libvirt's QEMU namespace; `smp` is the
    guest's CPU count (`<vcpu>`, QEMU's -smp). Raises ValueError
    for a row whose libvirt element has no builder here."""
    name = name or domain_name(cell)
    domain = ET.Element("domain", type="kvm" if accel == "kvm" else "qemu")
    if image.disk is not None and overlay is None:
        overlay = overlay_path(name)
        domain.append(ET.Comment(f" make the disk first: {overlay_command(image, overlay)} "))
    ET.SubElement(domain, "name").text = name
    ET.SubElement(domain, "memory", unit="MiB").text = str(image.memory_mib)
    ET.SubElement(domain, "vcpu").text = str(smp)
    _os(ET.SubElement(domain, "os"), cell.machine, image, firmware, nvram or _nvram_path(name))
    features = ET.SubElement(domain, "features")
    if firmware.is_uefi and firmware.acpi:
        ET.SubElement(features, "acpi")  # on aarch64, libvirt ties ACPI to UEFI
    if accel == "kvm":
        ET.SubElement(domain, "cpu", mode="host-passthrough")
    else:
        cpu = ET.SubElement(domain, "cpu", mode="custom", match="exact")
        ET.SubElement(cpu, "model", fallback="forbid").text = "max"
    ET.SubElement(domain, "on_reboot").text = "restart"  # as the harness: a guest may reboot
    devices = ET.SubElement(domain, "devices")
    ET.SubElement(devices, "emulator").text = qemu
    slots = iter(range(_FIRST_SLOT, 32))
    disks = ([(overlay, "qcow2", False)] if overlay is not None else []) + [
        (extra, "raw", True) for extra in extra_disks
    ]
    for row in table:
        if row.libvirt == "disk":
            _disks(devices, row, disks, cell.transport, slots)
        elif row.libvirt == "interface":
            interface = ET.SubElement(devices, "interface", type="user")
            ET.SubElement(interface, "model", type="virtio")
            _address(interface, cell.transport, slots)
        elif row.libvirt == "rng":
            rng = ET.SubElement(devices, "rng", model="virtio")
            ET.SubElement(rng, "backend", model="random").text = "/dev/urandom"
            _address(rng, cell.transport, slots)
        else:
            raise ValueError(f"no libvirt element for device {row.name} ({row.libvirt!r})")
    serial = ET.SubElement(devices, "serial", type="pty")
    ET.SubElement(serial, "target", port="0")
    console = ET.SubElement(devices, "console", type="pty")
    ET.SubElement(console, "target", type="serial", port="0")
    if accel != "kvm" and tcg_cpu_options:
        ET.register_namespace("qemu", QEMU_NS)  # the prefix libvirt's own docs use
        commandline = ET.SubElement(domain, f"{{{QEMU_NS}}}commandline")
        for option in tcg_cpu_options:
            ET.SubElement(commandline, f"{{{QEMU_NS}}}arg", value="-global")
            ET.SubElement(commandline, f"{{{QEMU_NS}}}arg", value=f"max-arm-cpu.{option}")
    ET.indent(domain)
    return ET.tostring(domain, encoding="unicode") + "\n"


def overlay_path(name: str) -> Path:
    """Where a domain exported without a disk of its own expects its overlay: beside
    the XML, in the current directory."""
    return Path.cwd() / f"{name}.qcow2"


def overlay_command(image: Image, overlay: Path) -> str:
    """The qemu-img command that makes `overlay` over the image's disk (one line)."""
    assert image.disk is not None
    return (
        f"qemu-img create -f qcow2 -F {image.disk_format} "
        f"-b {shlex.quote(str(image.disk.resolve()))} {shlex.quote(str(overlay))}"
    )


def _nvram_path(name: str) -> Path:
    return Path(f"/var/lib/libvirt/qemu/nvram/{name}_VARS.fd")


def _os(node: ET.Element, machine: str, image: Image, firmware: Firmware, nvram_file: Path) -> None:
    ET.SubElement(node, "type", arch="aarch64", machine=machine).text = "hvm"
    if firmware.is_uefi:
        loader = ET.SubElement(node, "loader", readonly="yes", type="pflash")
        loader.text = str(firmware.code)
        nvram = ET.SubElement(node, "nvram", template=str(firmware.vars_template))
        nvram.text = str(nvram_file)
        # libvirt's form of QEMU's -boot menu=on,splash-time (formatdomain: "bootmenu")
        ET.SubElement(node, "bootmenu", enable="yes", timeout=str(UEFI_MENU_WAIT_MS))
        return
    if firmware.bios is not None:  # libvirt's ROM loader is QEMU's -bios
        ET.SubElement(node, "loader", readonly="yes", type="rom").text = str(firmware.bios)
        return
    if image.kernel is not None:
        ET.SubElement(node, "kernel").text = str(image.kernel)
    if image.initrd is not None:
        ET.SubElement(node, "initrd").text = str(image.initrd)
    if image.append:
        ET.SubElement(node, "cmdline").text = image.append


def _disks(
    devices: ET.Element,
    row: Device,
    disks: list[tuple[Path, str, bool]],
    transport: str,
    slots: Iterator[int],
) -> None:
    """Every disk on the row's bus, behind its controller when it has one (virtio-scsi),
    which then takes the transport's address instead of each disk."""
    if row.libvirt_controller and disks:
        controller = ET.SubElement(
            devices, "controller", type=row.libvirt_bus, index="0", model=row.libvirt_controller
        )
        _address(controller, transport, slots)
    for index, (path, disk_format, readonly) in enumerate(disks):
        disk = ET.SubElement(devices, "disk", type="file", device="disk")
        ET.SubElement(disk, "driver", name="qemu", type=disk_format)
        ET.SubElement(disk, "source", file=str(path))
        name = f"{row.guest_names}{string.ascii_lowercase[index]}"
        ET.SubElement(disk, "target", dev=name, bus=row.libvirt_bus)
        if readonly:
            ET.SubElement(disk, "readonly")
        if not row.libvirt_controller:
            _address(disk, transport, slots)


def _address(device: ET.Element, transport: str, slots: Iterator[int]) -> None:
    kind = transport_row(transport).libvirt_address
    if not kind:  # libvirt picks: for PCI on aarch64 virt, a pcie-root-port each
        return
    if kind != "pci":
        ET.SubElement(device, "address", type=kind)
        return
    slot = next(slots)
    ET.SubElement(
        device,
        "address",
        type="pci",
        domain="0x0000",
        bus="0x00",
        slot=f"0x{slot:02x}",
        function="0x0",
    )


def write_domain(path: Path, xml: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(xml)


def placement(live_xml: str) -> str:
    """Where libvirt put the domain's virtio devices (disk, interface, rng, and the
    controllers that are virtio), from the domain XML as libvirt completed it
    (virDomainGetXMLDesc): the model of the controller each sits behind, joined with
    "+" when they differ, e.g. "pcie-root-port", "pcie-root" (the root bus itself),
    "virtio-mmio"; "" when the XML names no such device. Raises ET.ParseError for
    text that is not XML. Element names follow https://libvirt.org/formatdomain.html."""
    devices = ET.fromstring(live_xml).find("devices")
    if devices is None:
        return ""
    buses = {
        c.get("index", ""): c.get("model", "") for c in devices.findall("controller[@type='pci']")
    }
    found: set[str] = set()
    for device in devices:
        virtio = device.find("model[@type='virtio']") is not None or device.get("model") == "virtio"
        if device.tag == "disk":
            target = device.find("target")
            virtio = target is not None and target.get("bus") == "virtio"
        address = device.find("address")
        if not virtio or address is None:
            continue
        if address.get("type") == "pci":
            found.add(buses.get(str(int(address.get("bus", "0"), 16)), "pci"))
        else:
            found.add(address.get("type", ""))
    return "+".join(sorted(filter(None, found)))
