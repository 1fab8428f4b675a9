"""Trust in the cache's downloaded files: a blob stays `verified` only while it is the
file that was verified.

At publish, each blob (and each unpacked image) gets a record of its size, mode,
inode, device, mtime and ctime (images/cache/checked/<algorithm>/<name>.json). A use
compares them with a stat (5 us); when any differs (an edit, a chmod, a copy: the
ctime cannot be set back without the clock) the blob is hashed again in full; one
that still matches its digest is made read-only and recorded anew, one that does not
is deleted with what was unpacked from it, so that it is downloaded again (or,
offline, is not cached). An unpacked file whose record differs is unpacked again
from its verified blob.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness import cancel as cancelling
from harness.atomic import write_atomic
from harness.cancel import Cancel
from harness.errors import InfraError
from harness.images.digest import Digest

CHUNK = 1 << 20
_STAT_FIELDS = ("st_size", "st_mode", "st_ino", "st_dev", "st_mtime_ns", "st_ctime_ns")


def _record(path: Path) -> Path:
    """cache/checked/<algorithm>/<name>.json for cache/blobs/<algorithm>/<name>: kept
    out of the content-addressed directory, where every name is a digest."""
    cache = path.parent.parent.parent
    return cache / "checked" / path.parent.name / f"{path.name}.json"


def _stamp(path: Path) -> dict[str, int]:
    st = path.stat()
    return {field: int(getattr(st, field)) for field in _STAT_FIELDS}


def mark_checked(path: Path) -> None:
    """Records `path` (already verified and read-only) as it is now."""
    record = _record(path)
    record.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(record, json.dumps(_stamp(path)))


def unchanged(path: Path) -> bool:
    """Whether `path` is still the file recorded by mark_checked (no hashing)."""
    try:
        recorded = json.loads(_record(path).read_text())
        return bool(recorded == _stamp(path))
    except (OSError, ValueError):
        return False


def hash_file(path: Path, algorithm: str) -> Any:
    """A hashlib object fed with the whole of `path`."""
    hasher = hashlib.new(algorithm)
    with path.open("rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            hasher.update(block)
    return hasher


def trusted(blob: Path, digest: Digest) -> bool:
    """Whether `blob` exists and is the file of `digest`: a stat when its record
    matches, else a full hash. A blob that no longer matches is deleted (with its
    unpacked file and records) and False returned."""
    if not blob.exists():
        return False
    if unchanged(blob):
        return True
    if hash_file(blob, digest.algorithm).hexdigest() == digest.hex:
        if blob.stat().st_mode & 0o222:
            blob.chmod(0o444)
        mark_checked(blob)
        return True
    forget(blob)
    return False


def forget(blob: Path) -> None:
    """Deletes a blob, what was unpacked from it and their records."""
    unpacked = blob.with_name(blob.name + ".unpacked")
    for path in (blob, _record(blob), unpacked, _record(unpacked)):
        path.unlink(missing_ok=True)


def unpack(blob: Path, compression: str, cancel: Cancel = None) -> Path:
    """The decompressed file beside a verified blob (`<blob>.unpacked`), made once
    (atomically) and made again if it changed since. Raises InfraError when the
    compression is unknown or the data is corrupt, Cancelled once `cancel` is set
    (looked at every CHUNK; no part of the file is left)."""
    if compression in ("", "none"):
        return blob
    import bz2
    import gzip
    import lzma

    openers: dict[str, Callable[..., Any]] = {"xz": lzma.open, "gz": gzip.open, "bz2": bz2.open}
    if compression not in openers:
        raise InfraError(f"cannot decompress {compression!r}: xz, gz or bz2")
    target = blob.with_name(blob.name + ".unpacked")
    if target.exists() and unchanged(target):
        return target
    partial = blob.with_name(f".{blob.name}.{os.getpid()}.unpacking")
    try:
        with openers[compression](blob, "rb") as source, partial.open("wb") as out:
            while block := source.read(CHUNK):
                cancelling.check(cancel)
                out.write(block)
        partial.chmod(0o444)
        os.replace(partial, target)
        mark_checked(target)
    except (OSError, EOFError, lzma.LZMAError) as e:
        partial.unlink(missing_ok=True)
        raise InfraError(f"cannot decompress {blob}: {e}") from e
    except BaseException:  # interrupted: no half-unpacked file stays
        partial.unlink(missing_ok=True)
        raise
    return target
