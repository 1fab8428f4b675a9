"""The few types everything passes around: a cell, the image and firmware it boots,
and the result it ends with. All frozen: a value made once flows one way, from
matrix.yaml to cells to QEMU argv to the console watcher to the reports.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import UsageError

TRANSPORTS = ("mmio", "pci")
# How far a boot got, in order; "none" means the console stayed silent.
STAGES = ("none", "firmware", "bootloader", "kernel", "initramfs", "userspace", "login")
# pass/fail are the guest's; error is the host's (never retried as a guest failure);
# skip is a cell that could not run here (machine type missing, offline...).
STATUSES = ("pass", "fail", "error", "skip")
NO_FIRMWARE = "none"
# The most of one console log that is kept (a flooding guest must not fill the disk).
DEFAULT_LOG_CAP = 64 << 20
HOST_FIRMWARE = "aavmf"


@dataclass(frozen=True, order=True)
class Cell:
    """One combination: image x firmware x machine type x transport."""

    image: str
    firmware: str
    machine: str
    transport: str

    @property
    def id(self) -> str:
        return f"{self.image}/{self.firmware}/{self.machine}/{self.transport}"

    def __str__(self) -> str:
        return self.id

    @classmethod
    def parse(cls, text: str) -> Cell:
        """Splits IMAGE/FIRMWARE/MACHINE/TRANSPORT; a firmware path may hold slashes."""
        parts = text.split("/")
        if len(parts) < 4 or not all([parts[0], "/".join(parts[1:-2]), *parts[-2:]]):
            raise UsageError(
                f"bad cell {text!r}: write IMAGE/FIRMWARE/MACHINE/TRANSPORT, "
                "e.g. debian-12-tiny/aavmf/virt/pci"
            )
        return cls(parts[0], "/".join(parts[1:-2]), parts[-2], parts[-1])


@dataclass(frozen=True)
class Login:
    """How to log in at the image's prompt; user None means the prompt itself passes."""

    user: str | None = "root"
    password: str = ""


@dataclass(frozen=True)
class Image:
    """A bootable image on this host: a disk, and/or a kernel for direct boot."""

    name: str
    disk: Path | None
    disk_format: str = "raw"
    kernel: Path | None = None
    initrd: Path | None = None
    append: str = ""
    digest: str = ""
    login: Login = field(default_factory=Login)
    memory_mib: int = 1024
    timeout_s: float = 180.0
    verified: bool = True  # False only when the user passed --no-verify
    cloud_init: bool = False  # boots with a NoCloud seed that sets root's password
    ready: str = ""  # a regex that counts as "up" instead of a login (an installer)


@dataclass(frozen=True)
class Firmware:
    """UEFI firmware for pflash (CODE read-only, VARS copied per cell), or none."""

    name: str
    code: Path | None = None
    vars_template: Path | None = None
    digest: str = ""
    version: str = ""  # of the package it came from, for named builds

    @property
    def is_uefi(self) -> bool:
        return self.code is not None


@dataclass(frozen=True)
class CellResult:
    """What one boot of a cell ended with; `to_json` is result.json."""

    cell: Cell
    status: str
    stage: str
    reason: str
    detail: str = ""
    accel: str = ""
    duration_s: float = 0.0
    stage_times: Mapping[str, float] = field(default_factory=dict)
    started_at: str = ""
    qemu: Mapping[str, Any] = field(default_factory=dict)
    image_digest: str = ""
    firmware_digest: str = ""
    host: Mapping[str, Any] = field(default_factory=dict)
    log_path: str = ""
    deciding_line: int | None = None
    image_verified: bool = True
    firmware_version: str = ""
    guest: Mapping[str, Any] | None = None  # the in-guest probe's findings
    # What a pass rests on: "shell" (a shell computed), "prompt" (a login prompt was
    # reached, login not proven), "ready" (the image's ready pattern); "" otherwise.
    proof: str = ""

    def summary(self) -> str:
        """The one line `harness run` ends with."""
        words = [self.status.upper(), self.cell.id, self.stage]
        if self.status != "pass":
            words.append(self.reason)
        return " ".join([*words, f"{self.duration_s:.1f}s"])

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": 1,
            "cell": self.cell.id,
            "image": self.cell.image,
            "firmware": self.cell.firmware,
            "machine": self.cell.machine,
            "transport": self.cell.transport,
            "accel": self.accel,
            "status": self.status,
            "stage": self.stage,
            "reason": self.reason,
            "detail": self.detail,
            "deciding_line": self.deciding_line,
            "stage_times": dict(self.stage_times),
            "duration_s": round(self.duration_s, 3),
            "started_at": self.started_at,
            "qemu": dict(self.qemu),
            "image_digest": self.image_digest,
            "image_verified": self.image_verified,
            "firmware_digest": self.firmware_digest,
            "firmware_version": self.firmware_version,
            "host": dict(self.host),
            "log_path": self.log_path,
            "guest": dict(self.guest) if self.guest is not None else None,
            "proof": self.proof,
        }
