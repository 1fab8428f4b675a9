"""Cells whose domain virt-install writes (harness/virt_install.py), booted through a
real libvirtd: "virt-install can force virtio-mmio" as a cell that passes or fails."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pexpect
import pytest
from conftest import ROOT, Harness

from harness.images.digest import file_digest
from harness.matrix.rundir import RunDir
from harness.model import Cell, Image


@pytest.fixture(scope="module")
def libvirtd() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "harness.libvirt_host"], capture_output=True, text=True, cwd=ROOT
    )
    assert proc.returncode == 0, proc.stderr


def test_virt_install_domains_with_their_defaults_boot_through_libvirt(
    libvirtd: None, tiny: Image, harness: Harness, tmp_path: Path
) -> None:
    # both transports in one matrix, so the boots overlap (-j 2)
    matrix = tmp_path / "m.yaml"
    matrix.write_text(
        "profiles:\n  p:\n    matrix: {image: debian-12-tiny, firmware: none, machine: virt, "
        "transport: [virt-install, virt-install-mmio]}\n"
    )
    proc = harness("matrix", "--matrix", str(matrix), "--profile", "p", "-j", "2",
                   "--results", str(tmp_path / "r"))  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run = (tmp_path / "r" / "latest").resolve()
    for cell in (
        "debian-12-tiny/none/virt/virt-install",
        "debian-12-tiny/none/virt/virt-install-mmio",
    ):
        out = RunDir.open(run).cell_dir(Cell.parse(cell))
        result = json.loads((out / "result.json").read_text())
        assert (result["status"], result["stage"]) == ("pass", "login"), cell
        assert result["qemu"]["launcher"] == "libvirt"
        written = ET.parse(out / "domain.xml").getroot()  # as virt-install printed it
        live = ET.parse(out / "domain.live.xml").getroot()
        # virt-install's own choices under TCG: the CPU model, fourteen root ports, the
        # guest agent's channel (a virtio console device the guest sees too)
        assert live.findtext("cpu/model") == "cortex-a57"
        ports = [c for c in written.iter("controller") if c.get("model") == "pcie-root-port"]
        assert len(ports) == 14  # also where every device is forced onto mmio
        assert written.find("devices/channel/target").get("name") == "org.qemu.guest_agent.0"  # type: ignore[union-attr]
        kinds = sorted(d["kind"] for d in result["guest"]["devices"])
        assert kinds == ["block", "net", "rng", "virtio-id-0003"]
        bus = "mmio" if cell.endswith("-mmio") else "pci"
        assert result["guest"]["transports"] == [bus]
        assert not (out / "work").exists()
        names = subprocess.run(["virsh", "-c", "qemu:///system", "list", "--all", "--name"],
                               capture_output=True, text=True, check=True).stdout.split()  # fmt: skip
        assert result["qemu"]["domain"] not in names
    # export writes the harness's own XML for a cell; a virt-install cell's is not
    # that (nor is its firmware known before libvirt starts it): said, not written
    exported = harness("export", "libvirt", "--run", str(run), "--out", str(tmp_path / "x"))
    assert exported.returncode == 0, exported.stderr
    assert exported.stdout.startswith("2 passing virt-install cells not exported: its domain is")
    assert not (tmp_path / "x").exists()


def test_virt_install_s_uefi_default_is_secure_boot_which_refuses_an_unsigned_grub(
    libvirtd: None, tiny: Image, harness: Harness, tmp_path: Path
) -> None:
    # `--boot uefi` is <os firmware='efi'>: libvirt picks Debian's AAVMF with
    # Microsoft's keys enrolled (AAVMF_VARS.ms.fd), and the tiny guests' standalone
    # GRUB is not signed
    cell = "debian-12-tiny/aavmf/virt/virt-install"
    proc = harness("run", cell, "--quiet", "--out", str(tmp_path))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stdout.startswith(f"FAIL {cell} firmware firmware-no-boot ")
    assert ET.parse(tmp_path / "domain.xml").getroot().find("os").get("firmware") == "efi"  # type: ignore[union-attr]
    live = ET.parse(tmp_path / "domain.live.xml").getroot()
    assert live.find("os/nvram").get("template", "").endswith(".ms.fd")  # type: ignore[union-attr]
    assert live.findtext("os/nvram") == str(tmp_path / "work" / "vars.fd")
    assert "Access Denied" in (tmp_path / "console.log").read_text(errors="replace")
    assert not (tmp_path / "work").exists()
    # result.json names the firmware libvirt booted, not the host descriptor's plain
    # AAVMF_CODE.fd: the live domain's loader and nvram template, the loader's digest
    result = json.loads((tmp_path / "result.json").read_text())
    loader = live.findtext("os/loader") or ""
    template = live.find("os/nvram").get("template")  # type: ignore[union-attr]
    assert loader.endswith("AAVMF_CODE.ms.fd")
    assert (result["qemu"]["loader"], result["qemu"]["nvram_template"]) == (loader, template)
    assert result["firmware_digest"] == file_digest(Path(loader))
    # cmdline.sh boots that firmware again: its VARS from libvirt's template (Microsoft's
    # keys), so Secure Boot refuses GRUB by hand too (it once copied AAVMF_VARS.fd,
    # keyless, and the guest booted)
    assert f"cp {template} " in (tmp_path / "cmdline.sh").read_text()
    pinned = ET.parse(tmp_path / "domain.pinned.xml").getroot()
    assert (pinned.find("os").get("firmware"), pinned.findtext("os/loader")) == (None, loader)  # type: ignore[union-attr]
    by_hand = pexpect.spawn(str(tmp_path / "cmdline.sh"), timeout=60)
    try:
        by_hand.expect("Access Denied")
    finally:
        by_hand.close(force=True)


@pytest.mark.parametrize(
    "firmware", ["aavmf-trixie", "/usr/share/AAVMF/AAVMF_CODE.fd", "aavmf-noacpi", "uboot"]
)
def test_a_firmware_libvirt_s_own_pick_cannot_honour_is_refused_before_anything_boots(
    firmware: str, harness: Harness, tmp_path: Path
) -> None:
    # virt-install's `--boot uefi` lets libvirt pick the firmware: a named build or a
    # CODE file would be recorded while the host's AAVMF booted (nothing is fetched,
    # built or booted for it, so this needs no libvirtd)
    cell = f"debian-12-tiny/{firmware}/virt/virt-install"
    proc = harness("run", cell, "--quiet", "--out", str(tmp_path / "one"))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    (line,) = proc.stderr.splitlines()
    assert line.startswith(f"harness run: cell {cell}: virt-install lets libvirt pick the firmware")
    assert not (tmp_path / "one" / "domain.xml").exists()
    result = json.loads((tmp_path / "one" / "result.json").read_text())
    assert (result["status"], result["reason"], result["firmware_digest"]) == (
        "skip",
        "impossible",
        "",
    )
    # in a matrix: the same `skip` other impossible combinations get
    matrix = tmp_path / "m.yaml"
    matrix.write_text(
        f"profiles:\n  p:\n    matrix: {{image: debian-12-tiny, firmware: '{firmware}', "
        "machine: virt, transport: [virt-install, virt-install-mmio]}\n"
    )
    runs = tmp_path / "r"
    proc = harness("matrix", "--matrix", str(matrix), "--profile", "p", "--results", str(runs))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "nothing booted: all 2 cells were skipped" in proc.stderr
    (run,) = runs.glob("2*-p")
    cells = json.loads((run / "results.json").read_text())["cells"]
    assert {(c["outcome"], c["reason"]) for c in cells} == {("skip", "impossible")}
    assert all("virt-install lets libvirt pick the firmware" in c["detail"] for c in cells)


def test_export_refuses_a_virt_install_cell_with_the_reason(harness: Harness) -> None:
    # it once wrote the harness's own domain with the plain AAVMF_CODE.fd, while the
    # cell boots virt-install's, with the Secure Boot build libvirt picks
    cell = "debian-12-tiny/aavmf/virt/virt-install"
    proc = harness("export", "libvirt", cell)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stdout == ""
    (line,) = proc.stderr.splitlines()
    assert line.startswith(f"harness export: {cell} is a virt-install cell: its domain is what")
