"""A libvirt domain XML that reproduces a cell: the machine type, AAVMF as loader and
nvram (or the kernel for direct boot), and each virtio device with the address of
the cell's transport: `<address type='virtio-mmio'/>`, or a PCI slot on the root
bus as the harness's own QEMU command line has it.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

from harness.model import Cell, Firmware, Image

# The order the harness adds devices to QEMU: disk(s), then network, then rng.
_FIRST_SLOT = 1


def domain_name(cell: Cell) -> str:
    return "harness-" + re.sub(r"[^A-Za-z0-9_.-]+", "_", cell.id).strip("_")


def domain_xml(cell: Cell, image: Image, firmware: Firmware, qemu: str, accel: str) -> str:
    domain = ET.Element("domain", type="kvm" if accel == "kvm" else "qemu")
    ET.SubElement(domain, "name").text = domain_name(cell)
    ET.SubElement(domain, "memory", unit="MiB").text = str(image.memory_mib)
    ET.SubElement(domain, "vcpu").text = "1"
    _os(ET.SubElement(domain, "os"), cell, image, firmware)
    features = ET.SubElement(domain, "features")
    if firmware.is_uefi:
        ET.SubElement(features, "acpi")  # on aarch64, libvirt ties ACPI to UEFI
    if accel == "kvm":
        ET.SubElement(domain, "cpu", mode="host-passthrough")
    else:
        cpu = ET.SubElement(domain, "cpu", mode="custom", match="exact")
        ET.SubElement(cpu, "model", fallback="forbid").text = "max"
    ET.SubElement(domain, "on_reboot").text = "destroy"  # as -no-reboot
    devices = ET.SubElement(domain, "devices")
    ET.SubElement(devices, "emulator").text = qemu
    slots = iter(range(_FIRST_SLOT, 32))
    if image.disk is not None:
        disk = ET.SubElement(devices, "disk", type="file", device="disk")
        ET.SubElement(disk, "driver", name="qemu", type=image.disk_format)
        ET.SubElement(disk, "source", file=str(image.disk))
        ET.SubElement(disk, "target", dev="vda", bus="virtio")
        _address(disk, cell.transport, slots)
    interface = ET.SubElement(devices, "interface", type="user")
    ET.SubElement(interface, "model", type="virtio")
    _address(interface, cell.transport, slots)
    serial = ET.SubElement(devices, "serial", type="pty")
    ET.SubElement(serial, "target", port="0")
    console = ET.SubElement(devices, "console", type="pty")
    ET.SubElement(console, "target", type="serial", port="0")
    rng = ET.SubElement(devices, "rng", model="virtio")
    ET.SubElement(rng, "backend", model="random").text = "/dev/urandom"
    _address(rng, cell.transport, slots)
    ET.indent(domain)
    return ET.tostring(domain, encoding="unicode") + "\n"


def _os(node: ET.Element, cell: Cell, image: Image, firmware: Firmware) -> None:
    ET.SubElement(node, "type", arch="aarch64", machine=cell.machine).text = "hvm"
    if firmware.is_uefi:
        loader = ET.SubElement(node, "loader", readonly="yes", type="pflash")
        loader.text = str(firmware.code)
        nvram = ET.SubElement(node, "nvram", template=str(firmware.vars_template))
        nvram.text = f"/var/lib/libvirt/qemu/nvram/{domain_name(cell)}_VARS.fd"
        return
    if image.kernel is not None:
        ET.SubElement(node, "kernel").text = str(image.kernel)
    if image.initrd is not None:
        ET.SubElement(node, "initrd").text = str(image.initrd)
    if image.append:
        ET.SubElement(node, "cmdline").text = image.append


def _address(device: ET.Element, transport: str, slots: object) -> None:
    if transport == "mmio":
        ET.SubElement(device, "address", type="virtio-mmio")
        return
    slot = next(slots)  # type: ignore[call-overload]
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
