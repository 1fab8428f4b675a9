"""Checking a cell against what exists here, with one-line errors that name the bad
part and list the valid choices."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from pathlib import Path

from harness.devices import TRANSPORT_NAMES as TRANSPORTS
from harness.errors import UsageError
from harness.host import Host
from harness.model import HOST_FIRMWARE, NO_FIRMWARE, Cell

DEFAULT_FIRMWARE = (NO_FIRMWARE, HOST_FIRMWARE)


def check_cell(
    cell: Cell, images: Collection[str], host: Host, firmware: Iterable[str] = DEFAULT_FIRMWARE
) -> None:
    firmware = list(firmware)
    problems = []
    if cell.image not in images:
        problems.append(f"image {cell.image!r} is not one of: {', '.join(images)}")
    if cell.firmware not in firmware and not Path(cell.firmware).is_file():
        problems.append(
            f"firmware {cell.firmware!r} is not one of: {', '.join(firmware)}, "
            "or a firmware CODE file"
        )
    if cell.machine not in host.machines:
        problems.append(
            f"machine {cell.machine!r} is not one of {host.qemu} {host.qemu_version}'s: "
            f"{', '.join(host.machines)}"
        )
    if cell.transport not in TRANSPORTS:
        problems.append(f"transport {cell.transport!r} is not one of: {', '.join(TRANSPORTS)}")
    if problems:
        raise UsageError(f"bad cell {cell.id}: " + "; ".join(problems))
