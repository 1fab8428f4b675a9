"""The few types everything passes around: a cell, the image and firmware it boots,
and the result it ends with. All frozen: a value made once flows one way, from
matrix.yaml to cells to QEMU argv to the console watcher to the reports.
"""

from __future__ import annotations

import enum
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import UsageError

if TYPE_CHECKING:
    from harness.records import ResultJson

# C0 controls, DEL and C1 controls: a newline in a name would forge a line of
# results.jsonl, the PASS line, report.md or a shell comment; an escape would drive
# the reader's terminal.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# Beyond ASCII, Unicode's categories (UAX #44) of what is no visible character: Cc,
# Cf (bidi overrides and isolates reorder what a reader of the grid, the PASS line or
# cmdline.sh sees; zero-width marks hide text), Zl and Zp (U+2028/U+2029 end a line
# for str.splitlines and many editors) and Cs: a lone surrogate is how Python holds a
# path's bytes that are not UTF-8, which no UTF-8 report or cmdline.sh can be written with.
_INVISIBLE = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})
# A name that becomes one path component (a profile, a run): no separator, no dot-dot.
_PATH_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")

# How far a boot got, in order; "none" means the console stayed silent.
STAGES = ("none", "firmware", "bootloader", "kernel", "initramfs", "userspace", "login")
NO_FIRMWARE = "none"
# The most of one console log that is kept (a flooding guest must not fill the disk).
DEFAULT_LOG_CAP = 64 << 20
HOST_FIRMWARE = "aavmf"
HOST_UBOOT = "uboot"
HOST_QEMU = "host"  # the QEMU build that is the host's own
# The same AAVMF with QEMU's ACPI tables off (-machine ...,acpi=off): the guest gets the
# device tree, so a grid tells "UEFI" from "ACPI" apart.
HOST_FIRMWARE_NO_ACPI = "aavmf-noacpi"
# Every firmware word a cell may use without images/firmware.yaml or a file.
BUILTIN_FIRMWARE = (NO_FIRMWARE, HOST_FIRMWARE, HOST_FIRMWARE_NO_ACPI, HOST_UBOOT)


class Outcome(str, enum.Enum):
    """How a cell ended, and what that means. A str, so records, JSON and comparisons
    with the plain words keep working (`Outcome.PASS == "pass"`).

    Whose word it is: pass, fail and incomplete are the guest's (the console watcher's
    verdict; incomplete only for a saved log that ends undecided); error is the host's
    (never retried as a guest failure); skip is a cell that could not run here; xfail
    and xpass are a guest's verdict judged against an expected failure; unstable is
    the repeats of a cell disagreeing. The properties below are the only place that
    groups them: reports, comparisons, exports and exit statuses read them.
    """

    PASS = "pass"
    FAIL = "fail"
    ERROR = "error"
    SKIP = "skip"
    XFAIL = "xfail"
    XPASS = "xpass"
    UNSTABLE = "unstable"
    INCOMPLETE = "incomplete"

    def __str__(self) -> str:
        return self.value

    def __hash__(self) -> int:  # as the plain word's, so either finds the other in a dict
        return hash(self.value)

    @property
    def is_guest(self) -> bool:
        """The guest's own verdict, with no expectation applied."""
        return self in (Outcome.PASS, Outcome.FAIL, Outcome.INCOMPLETE)

    @property
    def is_host(self) -> bool:
        """The host failed: no verdict about the guest."""
        return self is Outcome.ERROR

    @property
    def is_expectation(self) -> bool:
        """A guest verdict judged against a failure matrix.yaml expects."""
        return self in (Outcome.XFAIL, Outcome.XPASS)

    @property
    def reached_login(self) -> bool:
        """The guest booted to a login, expected or not (what an OS can do)."""
        return self in (Outcome.PASS, Outcome.XPASS)

    @property
    def is_good(self) -> bool:
        """A boot that met its expectation: a pass, or an expected failure failing the
        expected way (not a regression when it keeps doing so)."""
        return self in (Outcome.PASS, Outcome.XFAIL)

    @property
    def is_bad(self) -> bool:
        """A boot that did not meet its expectation."""
        return self in (Outcome.FAIL, Outcome.XPASS)

    @property
    def booted(self) -> bool:
        """The guest ran and was judged: neither the host's failure nor a skip."""
        return not self.is_host and self is not Outcome.SKIP

    @property
    def met(self) -> bool:
        """Nothing to act on: good, or skipped (`harness matrix` exits 0 on these)."""
        return self.is_good or self is Outcome.SKIP

    @property
    def needs_why(self) -> bool:
        """Reports show its stage and reason (everything but a plain pass or skip)."""
        return self not in (Outcome.PASS, Outcome.SKIP)


def control_character(text: str) -> str:
    """The first control character in `text`, or "": C0, DEL, C1, and beyond ASCII any
    character of Unicode category Cc, Cf, Zl, Zp or Cs (bidi overrides, zero-width
    marks, U+2028, lone surrogates from a path that is not UTF-8)."""
    if text.isascii():  # the usual name: one regex, not a loop per character
        bad = _CONTROL.search(text)
        return bad.group() if bad else ""
    return next((c for c in text if unicodedata.category(c) in _INVISIBLE), "")


def check_name(kind: str, text: str) -> str:
    """`text` unchanged, or UsageError naming `kind` when it holds a control character
    (`control_character`)."""
    bad = control_character(text)
    if bad:
        # ascii(): the name's other invisible characters must not reach the terminal either
        raise UsageError(f"{kind} {text!a}: control character {bad!a} is not allowed")
    return text


def check_path_name(kind: str, text: str) -> str:
    """`text` unchanged, or UsageError: a name that becomes one directory (a profile,
    a run) is letters, digits and `._+-`, starts with a letter or digit, so it can
    hold no `/` and no `..` and never leaves the directory it is made in."""
    if not _PATH_NAME.fullmatch(text) or ".." in text:
        raise UsageError(f"{kind} {text!r}: write letters, digits and . _ + - (no '/', no '..')")
    return text


@dataclass(frozen=True, order=True)
class Cell:
    """One combination: image x firmware x machine type x transport, on a QEMU build
    (`host`: the host's own QEMU; else a build of images/qemu.yaml). Every part is
    checked for control characters when the cell is made (UsageError), whichever
    file or option it came from."""

    image: str
    firmware: str
    machine: str
    transport: str
    qemu: str = HOST_QEMU

    def __post_init__(self) -> None:
        check_name("cell", self.id)

    @property
    def id(self) -> str:
        """IMAGE/FIRMWARE/MACHINE/TRANSPORT, with @QEMU-BUILD unless it is the host's
        (so the ids of every earlier run stay what they were)."""
        build = "" if self.qemu == HOST_QEMU else f"@{self.qemu}"
        return f"{self.image}/{self.firmware}/{self.machine}/{self.transport}{build}"

    def __str__(self) -> str:
        return self.id

    @classmethod
    def parse(cls, text: str) -> Cell:
        """Splits IMAGE/FIRMWARE/MACHINE/TRANSPORT[@QEMU]; a firmware path may hold
        slashes. Raises UsageError with the expected form."""
        cells, _, qemu = text.partition("@") if "@" in text.rsplit("/", 1)[-1] else (text, "", "")
        parts = cells.split("/")
        if (
            len(parts) < 4
            or not all([parts[0], "/".join(parts[1:-2]), *parts[-2:]])
            or (qemu == "" and text.endswith("@"))
        ):
            raise UsageError(
                f"bad cell {text!r}: write IMAGE/FIRMWARE/MACHINE/TRANSPORT[@QEMU], "
                "e.g. debian-12-tiny/aavmf/virt/pci"
            )
        return cls(parts[0], "/".join(parts[1:-2]), parts[-2], parts[-1], qemu or HOST_QEMU)


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
    """UEFI firmware for pflash (CODE read-only, VARS copied per cell), a ROM image
    started with -bios (U-Boot), or none."""

    name: str
    code: Path | None = None
    vars_template: Path | None = None
    digest: str = ""
    version: str = ""  # of the package it came from, for named builds
    bios: Path | None = None  # U-Boot's u-boot.bin: -bios, no pflash, no VARS
    acpi: bool = True  # UEFI only: QEMU builds ACPI tables (False: acpi=off, a device tree)

    @property
    def is_uefi(self) -> bool:
        return self.code is not None

    @property
    def boots_disk(self) -> bool:
        """Firmware that boots the image's disk (pflash UEFI or a -bios ROM)."""
        return self.code is not None or self.bios is not None


def why_impossible(image: Image, firmware: Firmware) -> str:
    """Why this image cannot boot with this firmware at all ("" when it can): UEFI
    and U-Boot need a disk to boot from, direct boot a kernel."""
    if firmware.boots_disk and image.disk is None:
        return (
            f"image {image.name} has no disk for {'UEFI' if firmware.is_uefi else 'U-Boot'} to boot"
        )
    if not firmware.boots_disk and image.kernel is None:
        return f"image {image.name} has no kernel for direct boot; use firmware aavmf"
    return ""


@dataclass(frozen=True)
class CellResult:
    """What one boot of a cell ended with; `to_json` is result.json."""

    cell: Cell
    status: Outcome  # pass, fail, error or skip
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
    resets: int = 0  # guest resets QEMU reported during the boot
    timeout_s: float | None = None  # the boot timeout in force, an override included

    def summary(self) -> str:
        """The one line `harness run` ends with."""
        words = [self.status.upper(), self.cell.id, self.stage]
        if self.status is not Outcome.PASS:
            words.append(self.reason)
        return " ".join([*words, f"{self.duration_s:.1f}s"])

    def to_json(self) -> ResultJson:
        return {
            "schema_version": 1,
            "cell": self.cell.id,
            "image": self.cell.image,
            "firmware": self.cell.firmware,
            "machine": self.cell.machine,
            "transport": self.cell.transport,
            "qemu_build": self.cell.qemu,
            "qemu_version": str(self.qemu.get("version", "")),
            "accel": self.accel,
            "status": self.status.value,
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
            "resets": self.resets,
            "timeout_s": self.timeout_s,
        }
