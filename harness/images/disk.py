"""A raw GPT disk with an EFI system partition and an ext4 root, made without loop
devices or root privileges: each file system is built in its own file (mkfs.vfat +
mcopy, mkfs.ext4 -d), the partition table is written by sfdisk on the plain disk
file, and the file systems are copied in at their partitions' offsets.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness import cancel as cancelling
from harness.cancel import Cancel
from harness.errors import ImageBuildError
from harness.images.digest import file_digest

SECTOR = 512
MIB = 1 << 20
ESP_TYPE = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
LINUX_TYPE = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"


def _run(argv: Sequence[str], cancel: Cancel, **env: str) -> None:
    proc = cancelling.run(argv, cancel, text=True, env={**os.environ, **env})
    if proc.returncode != 0:
        why = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise ImageBuildError(f"{argv[0]} failed: {why}")


def tree_size(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())


def _size_for(root: Path, slack_mib: int) -> int:
    """Room for `root`'s files plus slack, in whole MiB."""
    return (tree_size(root) // MIB + slack_mib) * MIB


def vfat_image(source: Path, out: Path, cancel: Cancel, label: str = "ESP") -> None:
    size = max(_size_for(source, 16), 64 * MIB)
    _run(["mkfs.vfat", "-C", "-F", "32", "-n", label, str(out), str(size // 1024)], cancel)
    entries = [str(p) for p in sorted(source.iterdir())]
    _run(["mcopy", "-s", "-p", "-i", str(out), *entries, "::/"], cancel, MTOOLS_SKIP_CHECK="1")


def ext4_image(source: Path, out: Path, cancel: Cancel, label: str = "root") -> None:
    # Room to boot in: a quarter more than the files, at least 24 MiB.
    size = _size_for(source, max(24, tree_size(source) // MIB // 4))
    with out.open("wb") as f:
        f.truncate(size)
    _run(["mkfs.ext4", "-q", "-F", "-L", label, "-d", str(source), str(out)], cancel)


def gpt_disk(out: Path, esp: Path, root: Path, cancel: Cancel) -> None:
    """Writes a disk with partition 1 = `esp` (EFI system) and 2 = `root` (Linux)."""
    first = MIB // SECTOR
    esp_sectors = esp.stat().st_size // SECTOR
    root_start = first + esp_sectors
    root_sectors = root.stat().st_size // SECTOR
    # GPT keeps a backup table in the last 33 sectors; one spare MiB covers it.
    total = (root_start + root_sectors) * SECTOR + MIB
    with out.open("wb") as f:
        f.truncate(total)
    script = (
        "label: gpt\n"
        f"start={first}, size={esp_sectors}, type={ESP_TYPE}, name=ESP\n"
        f"start={root_start}, size={root_sectors}, type={LINUX_TYPE}, name=root\n"
    )
    argv = ["sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", str(out)]
    proc = cancelling.run(argv, cancel, text=True, input=script)
    if proc.returncode != 0:
        raise ImageBuildError(f"sfdisk failed: {proc.stderr.strip()}")
    with out.open("r+b") as disk:
        for image, start in ((esp, first), (root, root_start)):
            disk.seek(start * SECTOR)
            with image.open("rb") as part:
                shutil.copyfileobj(part, disk, 4 * MIB)


def assemble(esp: Path, rootfs: Path, work: Path, out: Path, cancel: Cancel) -> dict[str, Any]:
    """out/disk.raw from an ESP tree and a root tree; its digest and size, for the
    image record. Each tool stops once `cancel` is set (harness/cancel.py)."""
    vfat_image(esp, work / "esp.img", cancel)
    ext4_image(rootfs, work / "root.img", cancel)
    gpt_disk(out / "disk.raw", work / "esp.img", work / "root.img", cancel)
    return {"digest": file_digest(out / "disk.raw"), "size": (out / "disk.raw").stat().st_size}
