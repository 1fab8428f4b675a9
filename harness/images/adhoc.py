"""An image made of the user's own files (`harness run --kernel/--disk`)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from harness.errors import InfraError, UsageError
from harness.images.digest import file_digest
from harness.model import Image, Login


def adhoc_image(
    name: str,
    kernel: Path | None,
    initrd: Path | None,
    append: str,
    disk: Path | None,
    login: str | None,
) -> Image:
    for option, path in (("--kernel", kernel), ("--initrd", initrd), ("--disk", disk)):
        if path is not None and not path.is_file():
            raise UsageError(f"{option} {path}: no such file")
    if initrd is not None and kernel is None:
        raise UsageError("--initrd needs --kernel")
    user, _, password = (login or "").partition(":")
    content = disk or kernel
    return Image(
        name=name,
        disk=disk.resolve() if disk else None,
        disk_format=disk_format(disk) if disk else "raw",
        kernel=kernel.resolve() if kernel else None,
        initrd=initrd.resolve() if initrd else None,
        append=append,
        digest=file_digest(content) if content else "",
        login=Login(user or None, password),
    )


def disk_format(path: Path) -> str:
    """The format qemu-img sees (raw, qcow2, ...), so the overlay names it right."""
    proc = subprocess.run(
        ["qemu-img", "info", "--output=json", str(path)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        raise InfraError(f"qemu-img info {path} failed: {proc.stderr.strip()}")
    return str(json.loads(proc.stdout)["format"])
