"""U-Boot as firmware (`uboot`: the host's u-boot-qemu; `uboot-trixie`: Debian trixie's,
images/firmware.yaml): real boots of the tiny guest through U-Boot's EFI and our GRUB
on both transports, and a disk U-Boot cannot boot."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import Harness

from harness.errors import InfraError, UsageError
from harness.firmware import UBOOT_PATHS, host_uboot, uboot_version
from harness.images.digest import file_digest
from harness.images.firmware_builds import load_builds
from harness.model import Cell
from harness.qemu_argv import BootFiles, qemu_argv

HOST_UBOOT = next((path for path in UBOOT_PATHS if path.is_file()), None)
needs_uboot = pytest.mark.skipif(HOST_UBOOT is None, reason="apt-get install u-boot-qemu")


def _run(harness: Harness, cell: str, out: Path) -> tuple[int, dict[str, object], str]:
    proc = harness("run", cell, "--quiet", "--out", str(out), timeout=400)
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    result = json.loads((out / "result.json").read_text())
    return proc.returncode, result, (out / "console.log").read_text(errors="replace")


@needs_uboot
@pytest.mark.parametrize("transport", ["mmio", "pci"])
def test_uboot_boots_the_tiny_guest_through_grub(
    harness: Harness, tmp_path: Path, transport: str
) -> None:
    code, result, console = _run(harness, f"debian-12-tiny/uboot/virt/{transport}", tmp_path)
    assert code == 0, (result["stage"], result["reason"], result["detail"])
    assert HOST_UBOOT is not None
    argv = result["qemu"]["argv"]  # type: ignore[index]
    assert argv[argv.index("-bios") + 1] == str(HOST_UBOOT)
    assert not any("pflash" in arg for arg in argv)
    assert result["firmware_digest"] == file_digest(HOST_UBOOT)
    assert re.fullmatch(r"\d{4}\.\d{2}\S*", str(result["firmware_version"]))
    # U-Boot found the virtio disk, ran the ESP's GRUB, and GRUB the kernel.
    assert f"U-Boot {result['firmware_version']}" in console
    assert "Das U-Boot" in console and "Welcome to GRUB!" in console
    times = result["stage_times"]
    assert times["firmware"] < times["bootloader"] < times["kernel"]  # type: ignore[index]
    # The guest's own devices sit on the cell's transport (the probe).
    assert result["guest"]["transports"] == [transport]  # type: ignore[index]


@needs_uboot
def test_a_disk_without_anything_on_its_esp_is_firmware_no_boot(
    harness: Harness, tmp_path: Path
) -> None:
    code, result, _ = _run(harness, "fault-no-esp/uboot/virt/pci", tmp_path)
    assert code == 1
    assert (result["status"], result["stage"], result["reason"]) == (
        "fail",
        "firmware",
        "firmware-no-boot",
    )
    # Decided when U-Boot turns to the network, not at the timeout.
    assert result["detail"] == "BOOTP broadcast 1"
    assert float(result["duration_s"]) < 60  # type: ignore[arg-type]


def test_trixie_uboot_is_a_named_build_with_its_package_version(
    harness: Harness, tmp_path: Path
) -> None:
    code, result, console = _run(harness, "debian-12-tiny/uboot-trixie/virt/mmio", tmp_path)
    assert code == 0, (result["stage"], result["reason"], result["detail"])
    version = str(result["firmware_version"])
    assert version.startswith("2025."), version
    assert f"U-Boot {version} (" in console  # Debian's banner carries the package version
    argv: list[str] = result["qemu"]["argv"]  # type: ignore[index]
    bios = Path(argv[argv.index("-bios") + 1])
    assert bios.name == "u-boot.bin" and "firmware/built/uboot-trixie" in str(bios), bios
    assert result["firmware_digest"] == file_digest(bios)


def test_the_command_line_starts_uboot_with_bios_and_no_pflash(tmp_path: Path) -> None:
    bios = tmp_path / "u-boot.bin"
    files = BootFiles(disk=tmp_path / "disk.qcow2", bios=bios)
    argv = qemu_argv(Cell("img", "uboot", "virt", "mmio"), "qemu", "tcg", files)
    assert argv[argv.index("-bios") + 1] == str(bios)
    assert "-kernel" not in argv and not any("pflash" in arg for arg in argv)
    assert "virtio-blk-device,drive=disk0" in argv


def test_uboot_version_comes_from_its_banner_and_a_missing_uboot_names_the_package(
    tmp_path: Path,
) -> None:
    binary = tmp_path / "u-boot.bin"
    binary.write_bytes(b"\0\x01junk U-Boot 2025.01-3+deb13u1 (Jun 24 2026 - 09:07:15 +0000)\0")
    assert uboot_version(binary) == "2025.01-3+deb13u1"
    binary.write_bytes(b"no banner here")
    assert uboot_version(binary) == ""
    with pytest.raises(InfraError, match="apt-get install u-boot-qemu"):
        host_uboot([tmp_path / "missing" / "u-boot.bin"])


def test_a_firmware_build_of_an_unknown_package_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "firmware.yaml"
    path.write_text("uboot-x: {suite: trixie, package: u-boot-sunxi}\n")
    with pytest.raises(UsageError, match=r"firmware.yaml: uboot-x.package: one of"):
        load_builds(path)
    path.write_text("uboot-x: {suite: trixie, package: u-boot-qemu}\naavmf-x: {suite: sid}\n")
    builds = load_builds(path)
    assert (builds["uboot-x"].package, builds["aavmf-x"].package) == (
        "u-boot-qemu",
        "qemu-efi-aarch64",
    )


@needs_uboot
def test_doctor_and_libvirt_export_know_uboot(harness: Harness, tmp_path: Path) -> None:
    doctor = harness("doctor")
    assert f"uboot: {HOST_UBOOT} (U-Boot 20" in doctor.stdout, doctor.stdout
    out = tmp_path / "domain.xml"
    proc = harness("export", "libvirt", "debian-12-tiny/uboot/virt/pci", "--out", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    xml = out.read_text()
    assert f'<loader readonly="yes" type="rom">{HOST_UBOOT}</loader>' in xml
    assert "<kernel>" not in xml and "<nvram" not in xml
