"""The cache of images built here: images/cache/built/<name>/<key>/.

An entry is either complete or absent: it is built in a staging directory on the same
file system and renamed into place, and `current` (a symlink) is switched atomically;
the entry it replaced stays a day for the runs that still use it.
The key is a digest of the recipe and the package versions, so a rebuild with nothing
changed finds its entry and does nothing. Disks are made read-only: cells boot qcow2
overlays on them and never write the base.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from harness.model import Image, Login

RECORD = "image.json"
PRUNE_AFTER_S = 24 * 3600


class ImageStore:
    def __init__(self, cache: Path):
        self.cache = cache
        self.built = cache / "built"

    def entry(self, name: str, key: str) -> Path:
        return self.built / name / key

    def record(self, name: str) -> dict[str, Any] | None:
        """The current entry's image.json, or None when `name` was never built."""
        try:
            with (self.built / name / "current" / RECORD).open() as f:
                data: dict[str, Any] = json.load(f)
        except FileNotFoundError:
            return None
        data["path"] = str((self.built / name / "current").resolve())
        return data

    def image(self, name: str) -> Image | None:
        data = self.record(name)
        return None if data is None else image_from_record(data)

    def names(self) -> list[str]:
        return sorted(p.parent.name for p in self.built.glob("*/current"))

    @contextmanager
    def building(self, name: str) -> Iterator[Path]:
        """Holds the build lock of `name` and yields a staging directory."""
        self.built.mkdir(parents=True, exist_ok=True)
        with open(self.built / f".{name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=self.built))
            try:
                yield staging
            finally:
                shutil.rmtree(staging, ignore_errors=True)

    def publish(
        self, name: str, key: str, staging: Path, record: dict[str, Any], read_only: bool = True
    ) -> Path:
        """Moves a finished build into place; call inside `building(name)`. With
        `read_only` False the caller has set the modes (a tree with programs in it)."""
        (staging / RECORD).write_text(json.dumps(record, indent=2) + "\n")
        for path in staging.iterdir():
            if read_only or path.name == RECORD:
                path.chmod(0o444)
        staging.chmod(0o755)  # mkdtemp made it private
        target = self.entry(name, key)
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():  # rebuilt with nothing changed (--force): replace it
            stale = target.with_name(f".{key}-replaced-{os.getpid()}")
            os.rename(target, stale)
            shutil.rmtree(stale, ignore_errors=True)
        os.rename(staging, target)
        link = target.parent / ".current.tmp"
        link.unlink(missing_ok=True)
        link.symlink_to(key)
        os.replace(link, target.parent / "current")
        self._prune(target.parent, keep=key)
        return target

    @staticmethod
    def _prune(directory: Path, keep: str) -> None:
        """Older builds of an image go a day after they were replaced: a run that
        started before the rebuild may still be creating overlays on them."""
        for old in directory.iterdir():
            stale = time.time() - old.stat().st_mtime > PRUNE_AFTER_S
            if old.is_dir() and not old.is_symlink() and old.name != keep and stale:
                shutil.rmtree(old, ignore_errors=True)


def image_from_record(data: dict[str, Any]) -> Image:
    base = Path(data["path"])
    files = data["files"]
    login = data.get("login", {})

    def file(role: str) -> Path | None:
        return base / files[role] if files.get(role) else None

    return Image(
        name=data["name"],
        disk=file("disk"),
        disk_format=data.get("disk_format", "raw"),
        kernel=file("kernel"),
        initrd=file("initrd"),
        append=data.get("append", ""),
        digest=data.get("digest", ""),
        login=Login(login.get("user", "root"), login.get("password", "")),
        memory_mib=data.get("memory_mib", 1024),
        timeout_s=data.get("timeout_s", 180.0),
        cloud_init=bool(login.get("cloud_init", False)),
        ready=data.get("ready", ""),
    )
