"""Firmware for the cells. UEFI (AAVMF) is found through QEMU's firmware descriptors
(docs/interop/firmware.json), the way libvirt finds it, never by hard-coded path.
U-Boot has no descriptors: its QEMU build is looked for where the distributions'
packages put it (Debian's u-boot-qemu, Fedora's uboot-images-armv8).
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import InfraError, UsageError
from harness.images.digest import file_digest
from harness.model import HOST_FIRMWARE, HOST_FIRMWARE_NO_ACPI, HOST_UBOOT, NO_FIRMWARE, Firmware

# Later directories override earlier ones file by file, as QEMU's spec says.
DESCRIPTOR_DIRS = (Path("/usr/share/qemu/firmware"), Path("/etc/qemu/firmware"))
# Plain AAVMF: these features need keys, an SMM or a TPM the cells do not set up.
_UNWANTED = {"secure-boot", "enrolled-keys", "requires-smm", "amd-sev", "intel-tdx"}
# U-Boot's qemu_arm64 build, as Debian (u-boot-qemu) and Fedora (uboot-images-armv8)
# install it; QEMU starts it with -bios.
UBOOT_PATHS = (
    Path("/usr/lib/u-boot/qemu_arm64/u-boot.bin"),
    Path("/usr/share/uboot/qemu_arm64/u-boot.bin"),
)
# The banner U-Boot prints first (common/version.h U_BOOT_VERSION_STRING: "U-Boot "
# PLAIN_VERSION " (" U_BOOT_DATE " - " U_BOOT_TIME ...), stored in the binary as text.
_UBOOT_VERSION = re.compile(rb"U-Boot (\d{4}\.\d{2}[^\s(]*) \(")
# How long a UEFI firmware waits for a key at its boot menu, in milliseconds. QEMU
# passes it as fw_cfg etc/boot-menu-wait (-boot menu=on,splash-time=MS; libvirt's
# <bootmenu enable='yes' timeout='MS'/>). edk2 reads it in QemuBootOrderLib's
# GetFrontPageTimeoutFromQemu; without menu=on it waits PcdPlatformBootTimeOut, 5 s in
# ArmVirtQemu: 5 s of every UEFI boot (measured: 6.2 s to GRUB, 1.2 s with 0) spent
# waiting for a key nobody presses. The firmware does the same work either way.
UEFI_MENU_WAIT_MS = 0


@dataclass(frozen=True)
class Descriptor:
    path: Path
    description: str
    code: Path
    vars_template: Path
    machines: tuple[str, ...]
    features: frozenset[str]


def read_descriptors(dirs: Iterable[Path] = DESCRIPTOR_DIRS) -> list[Descriptor]:
    by_name: dict[str, Path] = {}
    for directory in dirs:
        for path in sorted(directory.glob("*.json")):
            by_name[path.name] = path
    found = []
    for name in sorted(by_name):
        descriptor = _parse(by_name[name])
        if descriptor is not None:
            found.append(descriptor)
    return found


def _parse(path: Path) -> Descriptor | None:
    try:
        data: dict[str, Any] = json.loads(path.read_text())
        mapping = data["mapping"]
        if mapping.get("device") != "flash" or "uefi" not in data.get("interface-types", []):
            return None
        machines = tuple(
            machine
            for target in data.get("targets", [])
            if target.get("architecture") == "aarch64"
            for machine in target.get("machines", [])
        )
        return Descriptor(
            path=path,
            description=str(data.get("description", "")),
            code=Path(mapping["executable"]["filename"]),
            vars_template=Path(mapping["nvram-template"]["filename"]),
            machines=machines,
            features=frozenset(data.get("features", [])),
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def host_aavmf(descriptors: Iterable[Descriptor], machine: str) -> Descriptor | None:
    """The first plain UEFI build for aarch64 `machine` (a versioned virt-X.Y, as
    descriptors name them), in descriptor priority order."""
    for d in descriptors:
        plain = not d.features & _UNWANTED
        if plain and any(fnmatch.fnmatch(machine, pattern) for pattern in d.machines):
            return d
    return None


def uboot_version(binary: Path) -> str:
    """The version in U-Boot's own banner inside `binary` (e.g. "2023.01+dfsg-2+deb12u3"
    for Debian's build, whose banner carries the package version), or "" if none."""
    match = _UBOOT_VERSION.search(binary.read_bytes())
    return match.group(1).decode("ascii", "replace") if match else ""


def uboot(name: str, binary: Path) -> Firmware:
    """U-Boot's qemu_arm64 `binary` as the firmware `name`, with its version and digest."""
    return Firmware(name, digest=file_digest(binary), version=uboot_version(binary), bios=binary)


def host_uboot(paths: Iterable[Path] = UBOOT_PATHS) -> Firmware:
    """The host's U-Boot for QEMU's arm64 virt machine.

    Raises InfraError naming the package when none of `paths` exists."""
    for path in paths:
        if path.is_file():
            return uboot(HOST_UBOOT, path)
    raise InfraError(
        f"no U-Boot for qemu_arm64 ({', '.join(map(str, paths))}): apt-get install u-boot-qemu"
    )


def vars_template(code: Path) -> Path:
    """The VARS template that goes with CODE image `code`: the file beside it whose
    name has VARS for CODE (vars for code), as AAVMF_CODE.fd and AAVMF_VARS.fd."""
    return code.with_name(code.name.replace("CODE", "VARS").replace("code", "vars"))


def code_file_problem(name: str) -> str:
    """Why firmware `name`, a path to a CODE image, cannot boot a cell ("" when it
    can): a file with its VARS template beside it (vars_template). Read by the cell
    and matrix checks before anything boots, and by resolve()."""
    code = Path(name)
    template = vars_template(code)
    if not code.is_file():
        return f"firmware {name}: no such file"
    if template == code or not template.is_file():
        return f"firmware {name}: no VARS template beside it ({template.name})"
    return ""


def resolve(name: str, descriptors: Iterable[Descriptor], machine: str) -> Firmware:
    """`none`, `aavmf`, `aavmf-noacpi` (the same build, QEMU's ACPI tables off), `uboot`
    or a path to a CODE image (its VARS template beside it). Raises InfraError when the
    host has no AAVMF or a file of it is missing, UsageError for a bad path."""
    if name == NO_FIRMWARE:
        return Firmware(NO_FIRMWARE)
    if name == HOST_UBOOT:
        return host_uboot()
    if name in (HOST_FIRMWARE, HOST_FIRMWARE_NO_ACPI):
        found = host_aavmf(descriptors, machine)
        if found is None:
            raise InfraError(
                "no aarch64 UEFI firmware descriptor in "
                f"{', '.join(map(str, DESCRIPTOR_DIRS))}: apt-get install qemu-efi-aarch64"
            )
        code, template = found.code, found.vars_template
    else:
        code, template = Path(name), vars_template(Path(name))
        if not code.is_file():
            raise UsageError(
                f"firmware {name!r} is neither none, aavmf, aavmf-noacpi, uboot nor a file"
            )
        if problem := code_file_problem(name):
            raise UsageError(problem)
    for path in (code, template):
        if not path.is_file():
            raise InfraError(f"firmware file {path} is missing: apt-get install qemu-efi-aarch64")
    acpi = name != HOST_FIRMWARE_NO_ACPI
    return Firmware(name, code, template, file_digest(code), acpi=acpi)
