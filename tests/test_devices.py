"""One table of devices (harness/devices.py): the QEMU command line, the in-guest
probe's check, the libvirt export and the schemas all read it, so adding a device is
one row. virtio-scsi as the disk bus is that row, here, checked by QEMU and libvirt."""

from __future__ import annotations

import json
import shutil
import subprocess
import xml.etree.ElementTree as ET
from importlib import resources
from pathlib import Path

from harness.console import probe
from harness.devices import (
    DEVICES,
    QEMU_TRANSPORTS,
    ROOT_PORT,
    TRANSPORT_NAMES,
    VIRTIO_NET,
    VIRTIO_RNG,
    Device,
)
from harness.export.libvirt import domain_xml
from harness.model import Cell, Firmware, Image, Outcome
from harness.qemu_argv import BootFiles, qemu_argv

# The one row that makes virtio-scsi the disk bus (virtio device ID 8).
VIRTIO_SCSI = Device(
    "disk", "virtio-scsi", 8, "scsi",
    {
        "mmio": ("virtio-scsi-device,id={id}", "scsi-hd,bus={id}.0,drive={backend}"),
        "pci": ("virtio-scsi-pci,id={id}", "scsi-hd,bus={id}.0,drive={backend}"),
        "pcie-port": (
            ROOT_PORT, "virtio-scsi-pci,id={id},bus={id}-port,addr=0",
            "scsi-hd,bus={id}.0,drive={backend}",
        ),
    },
    libvirt="disk", libvirt_bus="scsi", libvirt_controller="virtio-scsi", guest_names="sd",
)  # fmt: skip
SCSI = (VIRTIO_SCSI, VIRTIO_NET, VIRTIO_RNG)


def schema(name: str) -> dict[str, object]:
    text = resources.files("harness.schemas").joinpath(f"{name}.schema.json").read_text()
    loaded: dict[str, object] = json.loads(text)
    return loaded


def enums_at(node: object, key: str) -> list[list[str]]:
    """Every `enum` list under a property called `key`, anywhere in a schema."""
    found: list[list[str]] = []
    if isinstance(node, dict):
        for name, value in node.items():
            if name == key:
                found += [v for v in _enums(value)]
            found += enums_at(value, key)
    elif isinstance(node, list):
        for value in node:
            found += enums_at(value, key)
    return found


def _enums(node: object) -> list[list[str]]:
    if isinstance(node, dict):
        out = [list(node["enum"])] if "enum" in node else []
        return out + [e for value in node.values() for e in _enums(value)]
    if isinstance(node, list):
        return [e for value in node for e in _enums(value)]
    return []


def test_the_schemas_list_the_tables_transports_and_outcomes() -> None:
    for name in ("matrix", "results"):
        found = enums_at(schema(name), "transport")
        assert found and all(enum == list(TRANSPORT_NAMES) for enum in found), name
    outcomes = enums_at(schema("results"), "outcome")
    assert outcomes == [[o.value for o in Outcome if o is not Outcome.INCOMPLETE]]


def test_the_default_table_gives_the_command_line_it_always_had() -> None:
    cell = Cell.parse("img/none/virt/pci")
    args = qemu_argv(cell, "qemu", "tcg", BootFiles(disk=Path("/d.qcow2")), devices=DEVICES)
    assert args[args.index("-drive") :] == [
        # werror/rerror=stop: a full host disk pauses the guest and QMP says why
        "-drive", "if=none,id=disk0,format=qcow2,file=/d.qcow2,werror=stop,rerror=stop",
        "-device", "virtio-blk-pci,drive=disk0",
        "-netdev", "user,id=net0", "-device", "virtio-net-pci,netdev=net0",
        "-object", "rng-random,id=rng0,filename=/dev/urandom", "-device", "virtio-rng-pci,rng=rng0",
    ]  # fmt: skip


def test_virtio_scsi_is_one_row_and_qemu_accepts_it(tmp_path: Path) -> None:
    disk, seed = tmp_path / "disk.qcow2", tmp_path / "seed.iso"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "64M"], check=True)
    seed.write_bytes(bytes(1 << 20))
    qemu = shutil.which("qemu-system-aarch64")
    assert qemu is not None
    assert tuple(VIRTIO_SCSI.qemu) == QEMU_TRANSPORTS  # every cell the harness boots itself
    for transport in QEMU_TRANSPORTS:
        files = BootFiles(disk=disk, kernel=Path("/dev/null"), extra_disks=(seed,))
        args = qemu_argv(Cell("img", "none", "virt", transport), qemu, "tcg", files, devices=SCSI)
        devices = [args[i + 1] for i, a in enumerate(args) if a == "-device"]
        hd = "scsi-hd,bus=virtio-scsi{n}.0,drive=disk{n}"
        expected = {
            "mmio": ["virtio-scsi-device,id=virtio-scsi{n}", hd],
            "pci": ["virtio-scsi-pci,id=virtio-scsi{n}", hd],
            "pcie-port": [
                "pcie-root-port,id=virtio-scsi{n}-port,chassis={port},bus=pcie.0",
                "virtio-scsi-pci,id=virtio-scsi{n},bus=virtio-scsi{n}-port,addr=0", hd,
            ],
        }[transport]  # fmt: skip
        each = len(expected)
        assert devices[: 2 * each] == [
            value.format(n=n, port=n + 1) for n in (0, 1) for value in expected
        ]
        # QEMU refuses a bad -device at once; paused (-S), a good command line stays up.
        qemu_run = subprocess.Popen(
            [*args, "-S"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, start_new_session=True,
        )  # fmt: skip
        try:
            assert qemu_run.wait(timeout=3) is None, qemu_run.stderr.read()  # type: ignore[union-attr]
        except subprocess.TimeoutExpired:
            pass
        finally:
            qemu_run.kill()
            qemu_run.wait()


def test_the_probe_reads_the_row_for_what_the_guest_must_show() -> None:
    lines = [
        "virtio virtio0 id=0x0008 driver=virtio_scsi transport=virtio-pci",
        "virtio virtio1 id=0x0001 driver=virtio_net transport=virtio-pci",
        "root /dev/sda1 ext4",
    ]
    with_scsi = probe.parse(lines, SCSI)
    assert [d.kind for d in with_scsi.devices] == ["scsi", "net"]
    assert probe.mismatch("pci", with_scsi, has_disk=True, devices=SCSI) == ""
    # the same guest under the default table: its root is not on a virtio-blk disk
    as_blk = probe.parse(lines)
    assert as_blk.devices[0].kind == "virtio-id-0008"
    assert probe.mismatch("pci", as_blk, True) == "the guest sees no virtio block device on pci"
    no_disk = probe.parse(lines[1:], SCSI)
    assert (
        probe.mismatch("pci", no_disk, True, SCSI) == "the guest sees no virtio scsi device on pci"
    )


def validate(tmp_path: Path, xml: str) -> ET.Element:
    path = tmp_path / "domain.xml"
    path.write_text(xml)
    checked = subprocess.run(
        ["virt-xml-validate", str(path), "domain"], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    defined = subprocess.run(
        ["virsh", "-c", "test:///default", "define", "--validate", str(path)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert defined.returncode == 0, defined.stderr
    return ET.fromstring(xml)


def test_the_libvirt_export_keeps_every_disk_on_the_rows_bus(tmp_path: Path) -> None:
    image = Image("img", disk=tmp_path / "disk.qcow2", disk_format="qcow2", kernel=tmp_path / "k")
    seed, overlay = tmp_path / "seed.iso", tmp_path / "overlay.qcow2"
    cell = Cell("img", "none", "virt", "pci")
    qemu = "/usr/bin/qemu-system-aarch64"
    domain = validate(
        tmp_path, domain_xml(cell, image, Firmware("none"), qemu, "tcg", (seed,), overlay=overlay)
    )
    disks = domain.findall("devices/disk")
    assert [(d.find("source").get("file"), d.find("target").get("dev"), d.find("readonly") is not None) for d in disks] == [  # type: ignore[union-attr]
        (str(overlay), "vda", False), (str(seed), "vdb", True),
    ]  # fmt: skip
    slots = [a.get("slot") for a in domain.iter("address")]
    assert slots == ["0x01", "0x02", "0x03", "0x04"]  # as QEMU numbers -device order
    scsi = validate(
        tmp_path,
        domain_xml(
            cell, image, Firmware("none"), "/usr/bin/qemu-system-aarch64", "tcg", (seed,), SCSI
        ),
    )
    controller = scsi.find("devices/controller[@model='virtio-scsi']")
    assert controller is not None and controller.find("address").get("type") == "pci"  # type: ignore[union-attr]
    assert [d.find("target").get("bus") for d in scsi.findall("devices/disk")] == ["scsi", "scsi"]  # type: ignore[union-attr]
    assert [d.find("target").get("dev") for d in scsi.findall("devices/disk")] == ["sda", "sdb"]  # type: ignore[union-attr]
