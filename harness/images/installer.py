"""The Debian installer as an image: its netboot kernel and initrd, taken from the
debian-installer-N-netboot-arm64 package, booted directly. It has no login: the
recipe's `ready` pattern (the installer's first screen) is what counts as up."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from harness.cancel import Cancel
from harness.errors import ImageBuildError
from harness.images.debian import extract
from harness.images.digest import file_digest
from harness.images.recipes import Recipe, base_record

_TEXT = "/text/debian-installer/arm64/"


def installer_image(recipe: Recipe, deb: Path, out: Path, cancel: Cancel) -> dict[str, Any]:
    unpacked = out / "work"

    def wanted(path: str) -> bool:
        return _TEXT in path and path.endswith(("/linux", "/initrd.gz"))

    got = extract(deb, unpacked, wanted, cancel)
    if len(got) != 2:
        raise ImageBuildError(f"{deb.name}: no text-mode netboot kernel and initrd")
    for name in got:
        target = "vmlinuz" if name.endswith("/linux") else "initrd.img"
        shutil.move(unpacked / name, out / target)
    return {
        **base_record(recipe, "installer"),
        "files": {"disk": None, "kernel": "vmlinuz", "initrd": "initrd.img"},
        "append": recipe.append,
        "login": {"user": None, "password": ""},
        "ready": recipe.ready,
        "digest": file_digest(out / "initrd.img"),
        "size": (out / "initrd.img").stat().st_size + (out / "vmlinuz").stat().st_size,
    }
