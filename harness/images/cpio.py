"""A writer for the kernel's initramfs format (cpio "newc"), in memory.

Written here rather than calling cpio(1) because the archive needs /dev/console, a
device node that an unprivileged builder cannot create on disk, and because fixed
owners and timestamps make the initramfs reproducible (same inputs, same digest).
"""

from __future__ import annotations

import gzip
import stat
from dataclasses import dataclass, field


@dataclass
class Archive:
    _chunks: list[bytes] = field(default_factory=list)
    _inode: int = 0

    def _entry(
        self, name: str, mode: int, data: bytes = b"", rdev: tuple[int, int] = (0, 0)
    ) -> None:
        self._inode += 1
        encoded = name.lstrip("/").encode() + b"\0"
        fields = (self._inode, mode, 0, 0, 1, 0, len(data), 0, 0, *rdev, len(encoded), 0)
        header = b"070701" + b"".join(b"%08X" % value for value in fields)
        self._chunks += [header, encoded, _pad(len(header) + len(encoded)), data, _pad(len(data))]

    def directory(self, name: str) -> None:
        self._entry(name, stat.S_IFDIR | 0o755)

    def file(self, name: str, data: bytes, mode: int = 0o644) -> None:
        self._entry(name, stat.S_IFREG | mode, data)

    def symlink(self, name: str, target: str) -> None:
        self._entry(name, stat.S_IFLNK | 0o777, target.encode())

    def char_device(self, name: str, major: int, minor: int) -> None:
        self._entry(name, stat.S_IFCHR | 0o600, rdev=(major, minor))

    def gzipped(self) -> bytes:
        self._entry("TRAILER!!!", 0)
        return gzip.compress(b"".join(self._chunks), compresslevel=6, mtime=0)


def _pad(length: int) -> bytes:
    return b"\0" * (-length % 4)
