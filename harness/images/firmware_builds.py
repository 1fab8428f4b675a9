"""Named firmware builds (images/firmware.yaml): Debian's qemu-efi-aarch64 (AAVMF) or
u-boot-qemu (U-Boot) package of a release, extracted into the cache without installing
it, like the images built here."""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from harness import cancel as cancelling
from harness.cancel import Cancel
from harness.errors import CellSkipped, ImageBuildError, UsageError
from harness.firmware import host_aavmf, read_descriptors, uboot
from harness.images.debian import Archive, extract
from harness.images.digest import file_digest
from harness.images.store import ImageStore
from harness.model import Firmware
from harness.yamlfile import safe_load

PACKAGE = "qemu-efi-aarch64"
UBOOT_PACKAGE = "u-boot-qemu"
PACKAGES = (PACKAGE, UBOOT_PACKAGE)
DESCRIPTORS = "usr/share/qemu/firmware"
UBOOT_BINARY = "usr/lib/u-boot/qemu_arm64/u-boot.bin"


@dataclass(frozen=True)
class FirmwareBuild:
    """One entry of images/firmware.yaml: which Debian suite, which package."""

    suite: str
    package: str = PACKAGE


def load_builds(path: Path) -> dict[str, FirmwareBuild]:
    """Firmware name -> build (`suite`, and `package`: qemu-efi-aarch64 by default, or
    u-boot-qemu). Raises UsageError naming the file and entry."""
    if not path.exists():
        return {}
    try:
        data = safe_load(path.read_text()) or {}
        builds = {
            str(name): FirmwareBuild(str(fields["suite"]), str(fields.get("package", PACKAGE)))
            for name, fields in data.items()
        }
    except (OSError, yaml.YAMLError, KeyError, TypeError, AttributeError) as e:
        raise UsageError(f"{path}: cannot read firmware builds: {e}") from e
    for name, build in builds.items():
        if build.package not in PACKAGES:
            raise UsageError(f"{path}: {name}.package: one of {', '.join(PACKAGES)}")
    return builds


def firmware_build(
    name: str,
    build: FirmwareBuild,
    cache: Path,
    mirror: str | None,
    offline: bool,
    notice: Callable[[str], None] = print,
    cancel: Cancel = None,
) -> Firmware:
    """The build, from the cache, or fetched now (unless offline: CellSkipped); a
    fetch is told to `notice` first, and stops (Cancelled, harness/cancel.py) once
    `cancel` is set."""
    store = ImageStore(cache / "firmware")
    record = store.record(name)
    if record is None:
        if offline or mirror is None:
            raise CellSkipped(f"firmware {name} is not cached (offline)")
        notice(
            f"firmware {name} is not fetched yet: fetching Debian {build.suite}'s "
            f"{build.package} now"
        )
        _fetch(name, build, store, cache, mirror, cancel)
        record = store.record(name)
        assert record is not None
    base = Path(record["path"])
    if build.package == UBOOT_PACKAGE:
        found = uboot(name, base / "u-boot.bin")
        return dataclasses.replace(found, version=record["version"])
    return Firmware(
        name, base / "AAVMF_CODE.fd", base / "AAVMF_VARS.fd", record["digest"], record["version"]
    )


def _plain_build(unpacked: Path, deb: Path) -> tuple[Path, Path]:
    """CODE and VARS of the package's plain (no secure boot) build, chosen by the
    package's own firmware descriptors, as for the host's firmware."""
    found = host_aavmf(read_descriptors([unpacked / DESCRIPTORS]), "virt-9.9")
    if found is not None:
        paths = (
            unpacked / str(found.code).lstrip("/"),
            unpacked / str(found.vars_template).lstrip("/"),
        )
    else:  # packages older than the descriptors
        paths = (
            unpacked / "usr/share/AAVMF/AAVMF_CODE.fd",
            unpacked / "usr/share/AAVMF/AAVMF_VARS.fd",
        )
    if not all(path.is_file() for path in paths):
        raise ImageBuildError(f"{deb.name}: no plain AAVMF CODE/VARS pair ({paths[0].name})")
    return paths


def _fetch(
    name: str, build: FirmwareBuild, store: ImageStore, cache: Path, mirror: str, cancel: Cancel
) -> None:
    archive = Archive(cache / "apt", build.suite, mirror, cancel=cancel)
    archive.update()
    package = archive.packages(build.package)[build.package]
    deb = archive.download(package)
    cancelling.check(cancel)
    with store.building(name) as staging:
        unpacked = staging / "x"
        if build.package == UBOOT_PACKAGE:
            extract(deb, unpacked, lambda path: path == UBOOT_BINARY, cancel)
            if not (unpacked / UBOOT_BINARY).is_file():
                raise ImageBuildError(f"{deb.name}: no {UBOOT_BINARY}")
            shutil.move(unpacked / UBOOT_BINARY, staging / "u-boot.bin")
            main = staging / "u-boot.bin"
        else:
            wanted = ("usr/share/AAVMF/", DESCRIPTORS)
            extract(deb, unpacked, lambda path: path.startswith(wanted), cancel)
            code, template = _plain_build(unpacked, deb)
            shutil.move(code, staging / "AAVMF_CODE.fd")
            shutil.move(template, staging / "AAVMF_VARS.fd")
            main = staging / "AAVMF_CODE.fd"
        shutil.rmtree(unpacked)
        cancelling.check(cancel)
        store.publish(
            name,
            package.version.replace(":", "_"),
            staging,
            {
                "name": name,
                "suite": build.suite,
                "package": f"{build.package} {package.version}",
                "version": package.version,
                "digest": file_digest(main),
            },
        )
