"""A cell's own files, made before QEMU starts: the disk overlay over the cached
image (read only through it), the VARS copy, the NoCloud seed, all in the cell's
work/ (removed after the boot unless kept), and the login the watcher is to use.
Both launchers use them (harness/boot.py, harness/libvirt_boot.py)."""

from __future__ import annotations

import re
import secrets
import shutil
import subprocess
from pathlib import Path

from harness.errors import CellImpossible, HostDiskError, InfraError
from harness.model import Cell, Firmware, Image, Login, why_impossible
from harness.qemu_argv import BootFiles

# Room a cell needs on its --out file system besides a VARS copy: the disk overlay's
# first writes and the console log.
MIN_FREE_BYTES = 32 << 20


def work_dir(out: Path) -> Path:
    """The cell's work/ under `out`, named from the root: qemu-img and QEMU take
    "x:y/work/disk.qcow2" for protocol x, and libvirtd resolves a relative path in its
    own directory, not ours."""
    return out.absolute() / "work"


def prepare(cell: Cell, image: Image, firmware: Firmware, work: Path) -> tuple[BootFiles, Login]:
    """The cell's own files (disk overlay, VARS copy, NoCloud seed) in `work` (see
    work_dir) and the login the watcher is to use. Raises CellImpossible
    (model.why_impossible) before making any, HostDiskError where they would not fit;
    a `work` it made is gone when it raises."""
    impossible = why_impossible(image, firmware)
    if impossible:
        raise CellImpossible(f"cell {cell}: {impossible}")
    made = not work.exists()
    work.mkdir(parents=True, exist_ok=True)
    try:
        return _make_files(image, firmware, work, _hostname(cell.image))
    except BaseException:
        if made:  # half-made: a next run into the same --out must not take it for kept
            shutil.rmtree(work, ignore_errors=True)
        raise


def _make_files(
    image: Image, firmware: Firmware, work: Path, hostname: str
) -> tuple[BootFiles, Login]:
    _check_room(work, firmware)
    disk = None
    if image.disk is not None:
        disk = work / "disk.qcow2"
        make_overlay(image.disk, image.disk_format, disk)
    login, extra = image.login, tuple[Path, ...]()
    if image.cloud_init:
        # pycdlib, for the seed ISO, only where there is one: every other boot skips it
        from harness.images.seed import write_seed

        # The seed sits beside the log, not in work/, so cmdline.sh can use it again.
        password = secrets.token_hex(8)
        seed = work.parent / "seed.iso"
        write_seed(seed, f"harness-{secrets.token_hex(4)}", hostname, password)
        login, extra = Login("root", password), (seed,)
    if firmware.is_uefi:
        assert firmware.vars_template is not None
        shutil.copyfile(firmware.vars_template, work / "vars.fd")
        files = BootFiles(
            disk=disk,
            code=firmware.code,
            vars=work / "vars.fd",
            extra_disks=extra,
            acpi=firmware.acpi,
        )
        return files, login
    if firmware.bios is not None:
        return BootFiles(disk=disk, bios=firmware.bios, extra_disks=extra), login
    files = BootFiles(
        disk=disk, kernel=image.kernel, initrd=image.initrd, append=image.append, extra_disks=extra
    )
    return files, login


def _hostname(name: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")[:63] or "guest"


def make_overlay(base: Path, base_format: str, overlay: Path) -> None:
    """A qcow2 `overlay` whose backing file is `base` (read only through it); raises
    InfraError when qemu-img is missing or fails."""
    qemu_img = shutil.which("qemu-img")
    if qemu_img is None:
        raise InfraError("qemu-img not found: apt-get install qemu-utils")
    argv = [qemu_img, "create", "-q", "-f", "qcow2", "-F", base_format]
    argv += ["-b", str(base.resolve()), str(overlay)]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise InfraError(f"qemu-img create failed for {base}: {proc.stderr.strip()}")


def _check_room(work: Path, firmware: Firmware) -> None:
    """Refuses to boot where the cell's files cannot fit: a full --out must be the
    host's error, not a guest that stalls into a timeout."""
    need = MIN_FREE_BYTES
    if firmware.vars_template is not None:
        need += firmware.vars_template.stat().st_size
    free = shutil.disk_usage(work).free
    if free < need:
        raise HostDiskError(
            f"no room for the cell in {work.parent}: {free / 2**20:.1f} MiB free, "
            f"{need / 2**20:.0f} "
            "MiB needed (disk overlay, VARS copy, console log)"
        )
