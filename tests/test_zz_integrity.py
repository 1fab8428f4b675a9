"""Run last (file order): after everything the suite booted, every cached base image
is still byte for byte what was built or downloaded, and still read-only."""

from __future__ import annotations

import hashlib
from pathlib import Path

from harness.catalog import Catalog


def digest(path: Path) -> str:
    hasher = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            hasher.update(block)
    return "sha256:" + hasher.hexdigest()


def test_cached_base_images_are_untouched(catalog: Catalog) -> None:
    checked = 0
    for name in catalog.store.names():
        record = catalog.store.record(name)
        assert record is not None
        if not record["files"].get("disk"):
            continue  # the installer: a kernel and an initrd only
        disk = Path(record["path"]) / record["files"]["disk"]
        assert disk.stat().st_mode & 0o222 == 0, f"{disk} is writable"
        assert digest(disk) == record["digest"], f"{name}: the base image changed"
        checked += 1
    assert checked >= 3
    for blob in (catalog.workspace.cache / "blobs" / "sha256").glob("*"):
        if not blob.name.endswith(".unpacked"):
            assert digest(blob) == f"sha256:{blob.name}"
