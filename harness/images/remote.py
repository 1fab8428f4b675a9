"""Downloadable images (images/catalog.yaml): declared as data, fetched, verified and
unpacked by harness/images/download.py, then booted like any image.

Nothing unverified is booted unless the user asks for it (--no-verify): an entry's
digest comes from the catalog (only where its source gives it verbatim) or from the
distro's checksum file; with neither, the fetch refuses.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import InfraError
from harness.images.blobs import unpack
from harness.images.digest import Digest, from_checksums
from harness.images.download import Downloader, Fetched
from harness.model import Image, Login
from harness.yamlfile import load


class Unverifiable(InfraError):
    reason = "no-digest"


@dataclass(frozen=True)
class RemoteFile:
    url: str
    digest: str = ""
    checksums: str = ""
    size: int | None = None  # bytes, where the catalog gives it


@dataclass(frozen=True)
class RemoteImage:
    name: str
    distro: str
    release: str
    boot: str
    disk: RemoteFile | None = None
    format: str = "qcow2"
    compression: str = "none"
    kernel: RemoteFile | None = None
    initrd: RemoteFile | None = None
    append: str = ""
    login: Login = field(default_factory=lambda: Login(None, ""))
    cloud_init: bool = False
    timeout_s: float = 600.0
    memory_mib: int = 2048
    source: str = ""
    notes: str = ""

    def files(self) -> list[tuple[str, RemoteFile]]:
        roles = (("disk", self.disk), ("kernel", self.kernel), ("initrd", self.initrd))
        return [(role, f) for role, f in roles if f is not None]


def load_catalog(path: Path, debian_mirror: Callable[[], str]) -> dict[str, RemoteImage]:
    """The entries of `path`; `{debian_mirror}` in a URL becomes the host's Debian
    mirror (asked for only when an entry uses it)."""
    if not path.exists():
        return {}
    data, _ = load(path, "catalog")
    return {name: _entry(name, fields, debian_mirror) for name, fields in data.items()}


def _file(fields: dict[str, Any] | None, debian_mirror: Callable[[], str]) -> RemoteFile | None:
    if not fields:
        return None

    def url(text: str) -> str:
        return (
            text.replace("{debian_mirror}", debian_mirror()) if "{debian_mirror}" in text else text
        )

    return RemoteFile(
        url(fields["url"]),
        fields.get("digest", ""),
        url(fields.get("checksums", "")),
        fields.get("size"),
    )


def _entry(name: str, fields: dict[str, Any], debian_mirror: Callable[[], str]) -> RemoteImage:
    login = fields.get("login", {})
    return RemoteImage(
        name=name,
        distro=fields["distro"],
        release=str(fields["release"]),
        boot=fields["boot"],
        disk=_file(fields.get("disk"), debian_mirror),
        format=fields.get("format", "qcow2"),
        compression=fields.get("compression", "none"),
        kernel=_file(fields.get("kernel"), debian_mirror),
        initrd=_file(fields.get("initrd"), debian_mirror),
        append=fields.get("append", ""),
        login=Login(login.get("user"), login.get("password", "")),
        cloud_init=bool(login.get("cloud_init", False)),
        timeout_s=float(fields.get("timeout", 600)),
        memory_mib=int(fields.get("memory_mib", 2048)),
        source=fields.get("source", ""),
        notes=fields.get("notes", ""),
    )


def expected_digest(file: RemoteFile, downloader: Downloader, verify: bool) -> Digest | None:
    """The digest the file must have; None only when the user waived verification."""
    if file.digest:
        return Digest.parse(file.digest)
    known = downloader.known(file.url)
    if downloader.offline and known is not None and known["verified"]:
        # Verified against the checksum file when it was fetched; offline, that
        # file cannot be read again.
        return Digest.parse(known["digest"])
    if file.checksums:
        # Checksum files list names relative to their own directory.
        base = posixpath.dirname(file.checksums) + "/"
        name = (
            file.url.removeprefix(base)
            if file.url.startswith(base)
            else posixpath.basename(file.url)
        )
        listed = from_checksums(downloader.text(file.checksums), name)
        if listed is not None:
            return listed
        if verify:
            raise Unverifiable(f"{file.checksums} does not list {posixpath.basename(file.url)}")
    if verify:
        raise Unverifiable(f"no digest is known for {file.url}: --no-verify boots it unverified")
    return None


def fetch(entry: RemoteImage, downloader: Downloader, verify: bool = True) -> Image:
    """The entry's files fetched (or found in the cache), verified and unpacked."""
    got: dict[str, Fetched] = {}
    for role, file in entry.files():
        digest = expected_digest(file, downloader, verify)
        got[role] = downloader.fetch(file.url, digest, size=file.size)
    disk = got.get("disk")
    return Image(
        name=entry.name,
        disk=unpack(disk.path, entry.compression, downloader.cancel) if disk else None,
        disk_format=entry.format,
        kernel=got["kernel"].path if "kernel" in got else None,
        initrd=got["initrd"].path if "initrd" in got else None,
        append=entry.append,
        digest=str((disk or got.get("kernel") or next(iter(got.values()))).digest),
        verified=all(f.verified for f in got.values()),
        login=entry.login,
        cloud_init=entry.cloud_init,
        memory_mib=entry.memory_mib,
        timeout_s=entry.timeout_s,
    )


def cached(entry: RemoteImage, downloader: Downloader) -> bool:
    """Whether every file of the entry is in the cache, without the network."""
    offline = Downloader(downloader.cache, offline=True, limits=downloader.limits)
    try:
        for _, file in entry.files():
            if not file.digest and offline.known(file.url) is None:
                return False
            if file.digest and not offline.blob(Digest.parse(file.digest)).exists():
                return False
    except InfraError:
        return False
    return True
