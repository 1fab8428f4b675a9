"""Replacing a file so that a reader sees the old text or the new, never half.

The text goes to a temporary file in the same directory (so the rename stays on one
file system), is flushed and fsync'd, then renamed over the target: POSIX rename(2)
replaces atomically, and the fsync before it means a crash cannot leave an empty file
under the real name (the pattern ext4's data=ordered notes in
Documentation/admin-guide/ext4.rst, "auto_da_alloc").
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def write_atomic(path: Path, text: str) -> None:
    """Writes `text` (UTF-8) to `path` atomically; raises OSError (the directory is
    missing or not writable, the disk is full...) and leaves no temporary file."""
    fd, partial = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(partial, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(partial)
        raise
