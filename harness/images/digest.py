"""Digests as the catalog writes them (`sha256:<hex>`), and the checksum files distros
publish beside their images: sha256sum style (`<hex>  <file>` or `<hex> *<file>`) and
BSD style (`SHA256 (<file>) = <hex>`, which Fedora's PGP-signed CHECKSUM files use).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from harness.errors import UsageError

ALGORITHMS = {"sha256": 64, "sha512": 128}
_GNU = re.compile(r"^([0-9a-fA-F]{64}|[0-9a-fA-F]{128}) [ *]?(.+)$")
_BSD = re.compile(r"^(SHA256|SHA512) \((.+)\) = ([0-9a-fA-F]+)$")


@dataclass(frozen=True)
class Digest:
    algorithm: str
    hex: str

    @classmethod
    def parse(cls, text: str) -> Digest:
        algorithm, _, value = text.partition(":")
        value = value.lower()
        if ALGORITHMS.get(algorithm) != len(value) or not re.fullmatch(r"[0-9a-f]+", value):
            raise UsageError(f"bad digest {text!r}: write sha256:<64 hex> or sha512:<128 hex>")
        return cls(algorithm, value)

    def hasher(self) -> hashlib._Hash:
        return hashlib.new(self.algorithm)

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"


def from_checksums(text: str, filename: str) -> Digest | None:
    """The strongest digest of `filename` a checksum file lists, in either style."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if gnu := _GNU.match(line):
            value, name = gnu.group(1).lower(), gnu.group(2).strip()
            algorithm = "sha256" if len(value) == 64 else "sha512"
        elif bsd := _BSD.match(line):
            algorithm, name, value = bsd.group(1).lower(), bsd.group(2), bsd.group(3).lower()
        else:
            continue
        if name.lstrip("./") == filename and ALGORITHMS.get(algorithm) == len(value):
            found[algorithm] = value
    for algorithm in ("sha512", "sha256"):
        if algorithm in found:
            return Digest(algorithm, found[algorithm])
    return None


def file_digest(path: Path) -> str:
    """`sha256:<hex>` of a file, read in blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return f"sha256:{digest.hexdigest()}"
