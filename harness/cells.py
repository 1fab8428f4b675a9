"""Checking a cell against what exists here, with one-line errors that name the bad
part and list the valid choices."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from pathlib import Path

from harness.devices import TRANSPORT_NAMES as TRANSPORTS
from harness.errors import UsageError
from harness.firmware import code_file_problem
from harness.host import Host
from harness.model import BUILTIN_FIRMWARE, Cell


def axis_problem(axis: str, value: str, choices: Collection[str]) -> str:
    """Why `value` is not a valid image, firmware or transport ("" when it is): one
    line naming it and listing `choices` (a firmware may also be a CODE file, with
    its VARS template beside it: firmware.code_file_problem)."""
    if axis == "transport":
        choices = TRANSPORTS
    if value in choices:
        return ""
    if axis == "firmware" and ("/" in value or Path(value).is_file()):
        return code_file_problem(value)  # a path: the file is named, not the choices
    listed = ", ".join(choices) + (", or a firmware CODE file" if axis == "firmware" else "")
    return f"{axis} {value!r} is not one of: {listed}"


def check_cell(
    cell: Cell,
    images: Collection[str],
    host: Host,
    firmware: Iterable[str] = BUILTIN_FIRMWARE,
    from_options: bool = False,
) -> None:
    """Raises UsageError naming every part of `cell` that does not exist here: as
    `bad cell ID: ...`, or, for a cell the user gave as options (`harness run --kernel
    ... --firmware F`, `from_options`), naming each bad option (`--firmware F: ...`)."""
    problems = [
        axis_problem("image", cell.image, images),
        axis_problem("firmware", cell.firmware, list(firmware)),
    ]
    if cell.machine not in host.machines:
        problems.append(
            f"machine {cell.machine!r} is not one of {host.qemu} {host.qemu_version}'s: "
            f"{', '.join(host.machines)}"
        )
    problems.append(axis_problem("transport", cell.transport, TRANSPORTS))
    found = [problem for problem in problems if problem]
    if found and from_options:
        raise UsageError("; ".join(f"--{problem}" for problem in found))
    if found:
        raise UsageError(f"bad cell {cell.id}: " + "; ".join(found))
