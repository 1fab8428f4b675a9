"""Kernel modules of a Debian kernel package: what each depends on, in load order.

Debian's packages ship no modules.dep (depmod runs at install time), so the
dependencies are read from each module's ELF `.modinfo` section, which is what depmod
reads too. Modules may be xz- or zstd-compressed (trixie and later); the tiny
initramfs holds them uncompressed so that busybox insmod loads any of them.
"""

from __future__ import annotations

import lzma
import struct
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path

from harness import cancel as cancelling
from harness.cancel import Cancel
from harness.errors import ImageBuildError

_SUFFIXES = (".ko", ".ko.xz", ".ko.zst")


def module_name(path: str) -> str:
    base = path.rsplit("/", 1)[-1]
    for suffix in _SUFFIXES:
        if base.endswith(suffix):
            return base[: -len(suffix)].replace("-", "_")
    raise ValueError(f"not a kernel module: {path}")


def is_module(path: str) -> bool:
    return path.endswith(_SUFFIXES) and "/modules/" in path


def read_module(path: Path, cancel: Cancel) -> bytes:
    """The module's ELF bytes, decompressed (zstd stops once `cancel` is set)."""
    data = path.read_bytes()
    if path.name.endswith(".xz"):
        return lzma.decompress(data)
    if path.name.endswith(".zst"):
        proc = cancelling.run(["zstd", "-dc"], cancel, input=data)
        if proc.returncode != 0:
            raise ImageBuildError(f"cannot decompress {path} (is zstd installed?)")
        return proc.stdout
    return data


def modinfo(elf: bytes) -> dict[str, str]:
    """The key=value strings of a 64-bit little-endian module's .modinfo section."""
    if elf[:6] != b"\x7fELF\x02\x01":
        raise ImageBuildError("kernel module is not a 64-bit little-endian ELF file")
    shoff = struct.unpack_from("<Q", elf, 0x28)[0]
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", elf, 0x3A)
    headers = [struct.unpack_from("<IIQQQQ", elf, shoff + i * shentsize) for i in range(shnum)]
    names_offset = headers[shstrndx][4]
    info: dict[str, str] = {}
    for name_at, _type, _flags, _addr, offset, size in headers:
        start = names_offset + name_at
        if elf[start : elf.index(b"\0", start)] != b".modinfo":
            continue
        for entry in elf[offset : offset + size].split(b"\0"):
            key, sep, value = entry.decode(errors="replace").partition("=")
            if sep:
                info.setdefault(key, value)
    return info


def load_order(
    wanted: Iterable[str],
    files: Mapping[str, Path],
    builtin: Collection[str] = (),
    cancel: Cancel = None,
) -> list[str]:
    """`wanted` and everything they depend on, each after its dependencies.

    `files` maps every module name of the kernel to its file; only the modules on
    the way are read. Names in `builtin` (modules.builtin: built into this kernel,
    as rng-core is in bullseye's 5.10) need no loading, wanted or depended on.
    Raises ImageBuildError for a module the package lacks or a dependency loop.
    """
    order: list[str] = []
    visiting: set[str] = set()

    def visit(name: str) -> None:
        name = name.replace("-", "_")  # as module_name spells it; modinfo may not
        if name in order or name in builtin:
            return
        if name not in files:
            raise ImageBuildError(f"kernel module {name} is not in the kernel package")
        if name in visiting:
            raise ImageBuildError(f"kernel module dependency loop through {name}")
        visiting.add(name)
        for dep in modinfo(read_module(files[name], cancel)).get("depends", "").split(","):
            if dep:
                visit(dep)
        order.append(name)

    for name in wanted:
        visit(name)
    return order
