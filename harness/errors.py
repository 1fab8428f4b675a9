"""The harness's exceptions.

Three families, because they end differently: a `UsageError` is the user's input (a
bad cell, option or matrix key) and ends the command with exit status 2 before
anything boots; an `InfraError` is the machine's fault (QEMU missing or failing to
start, an image that cannot be built or fetched) and makes a cell `error`, never
`fail`; a `CellSkipped` is a cell that cannot run here and makes it `skip`. The last
two become a cell's result in one place, harness/runner.py. Guest failures are not
exceptions at all: the console watcher returns them as verdicts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar


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


class CellImpossible(CellSkipped):
    """The combination cannot boot at all (a UEFI cell of an image without a disk, a
    direct-boot cell of one without a kernel): known before QEMU starts."""

    reason = "impossible"


class BootInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM (or a matrix's cancel) while a boot's console was watched:
    a KeyboardInterrupt still, carrying how far the console watcher had seen the guest
    get (`stage`, and `stage_times`: stage -> seconds from QEMU's start), so the
    `interrupted` result records it."""

    def __init__(self, stage: str, stage_times: dict[str, float]):
        super().__init__(stage)
        self.stage = stage
        self.stage_times = stage_times


class Resumable(KeyboardInterrupt):
    """Ctrl-C or SIGTERM that stopped a run `resume` (a command line) finishes: the
    command's one closing line says both (harness/cli.py)."""

    def __init__(self, resume: str):
        super().__init__(resume)
        self.resume = resume


class ImageBuildError(InfraError):
    """An image recipe could not be built (apt, mkfs, grub...)."""

    reason = "image-build-failed"


class QemuLaunchError(InfraError):
    """QEMU failed (could not start, exited non-zero or was killed); carries its argv,
    exit status ("1", "signal 9", "not started") and stderr, as QEMU's own
    python/qemu QEMUMachine's VMLaunchFailure does; its text is one line."""

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


E = TypeVar("E", bound=BaseException)


def again(error: E) -> E:
    """A copy of `error` to raise once more (same class, text and attributes, a
    traceback of its own): an error remembered by a cache is raised by each cell that
    needs the failed thing, each its own object, never one shared between threads."""
    # not copy.copy: that calls __init__ with .args, which QemuLaunchError's refuses
    twin = type(error).__new__(type(error), *error.args)
    twin.__dict__.update(error.__dict__)
    twin.args = error.args
    return twin


class QemuCrashError(QemuLaunchError):
    """QEMU died of a signal (an assertion's abort, a segfault, a kill): the emulator
    failed, not the guest."""

    reason = "qemu-crashed"


class HostDiskError(InfraError):
    """The host's disk failed the cell: no room to start it, or QEMU stopped the guest
    on a write or read error of its disk (reason host-disk-full or host-disk-error)."""

    def __init__(self, message: str, reason: str = "host-disk-full", stage: str = "none"):
        super().__init__(message)
        self.reason = reason
        self.stage = stage
