"""The harness's exceptions.

Two families, because they end a command differently: a `UsageError` is the user's
input (a bad cell, option or matrix key) and ends the command with exit status 2
before anything boots; an `InfraError` is the machine's fault (QEMU missing or failing
to start, an image that cannot be built or fetched) and makes a cell `error`, never
`fail`. Guest failures are not exceptions at all: the console watcher returns them as
verdicts.
"""

from __future__ import annotations

from collections.abc import Sequence


class HarnessError(Exception):
    """Base of every error the harness raises on purpose; its text is one line."""


class UsageError(HarnessError):
    """Bad input from the user: names the file, key, option or cell that is wrong."""


class InfraError(HarnessError):
    """The host could not do its part (tools, network, disk, QEMU)."""

    reason = "infrastructure"
    stage = "none"  # how far the guest had got, when it had started


class CellSkipped(HarnessError):
    """The cell cannot run here and that is nobody's failure (offline, say)."""

    reason = "skipped"


class ImageBuildError(InfraError):
    """An image recipe could not be built (apt, mkfs, grub...)."""

    reason = "image-build-failed"


class QemuLaunchError(InfraError):
    """QEMU failed (exited non-zero or was killed); carries argv and QEMU's stderr."""

    reason = "qemu-failed"

    def __init__(
        self, message: str, argv: Sequence[str], exit_status: str, stderr: str, stage: str = "none"
    ):
        super().__init__(message)
        self.stage = stage
        self.argv = list(argv)
        self.exit_status = exit_status
        self.stderr = stderr

    def __str__(self) -> str:
        first = next((ln for ln in self.stderr.splitlines() if ln.strip()), "")
        detail = f": {first.strip()}" if first else ""
        return f"{self.args[0]} (exit status {self.exit_status}){detail}"
