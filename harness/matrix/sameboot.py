"""Cells that are one boot. Plain `virt` is an alias of one versioned machine type
(QEMU's `-machine help` says `virt  QEMU 7.2 ARM Virtual Machine (alias of
virt-7.2)`: both names select the same machine class), so IMAGE/FW/virt/T and
IMAGE/FW/virt-7.2/T on the same QEMU build start the same guest on the same
hardware. When a plan has both, the versioned cell boots and the `virt` cell is
recorded from that boot (its record's `same_boot_as` names the booted cell), judged
against its own expectation.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from harness.matrix.expand import Planned

VIRT = "virt"


def same_boots(cells: Sequence[Planned], aliases: Mapping[str, str]) -> dict[str, str]:
    """`virt` cell id -> the id of the cell booted for it.

    `aliases` maps a QEMU build (model.HOST_QEMU for the host's) to what its `virt`
    is an alias of ("" or absent: unknown, nothing shared). Cells pair only when
    both are planned to run with the same settings (timeout, accel, retries, login):
    a skip, or a different setting, boots on its own."""
    by_id = {planned.cell.id: planned for planned in cells}
    pairs: dict[str, str] = {}
    for planned in cells:
        alias = aliases.get(planned.cell.qemu, "")
        if planned.cell.machine != VIRT or planned.skip or not alias or alias == VIRT:
            continue
        booted = by_id.get(dataclasses.replace(planned.cell, machine=alias).id)
        if booted is not None and not booted.skip and _same_settings(planned, booted):
            pairs[planned.cell.id] = booted.cell.id
    return pairs


def _same_settings(a: Planned, b: Planned) -> bool:
    return (a.timeout_s, a.accel, a.retries, a.login) == (b.timeout_s, b.accel, b.retries, b.login)


def twins_of(pairs: Mapping[str, str]) -> dict[str, list[str]]:
    """Booted cell id -> the ids recorded from its boot, in `pairs`' order."""
    twins: dict[str, list[str]] = {}
    for twin, booted in pairs.items():
        twins.setdefault(booted, []).append(twin)
    return twins
