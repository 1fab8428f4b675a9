"""Versioned machine types whose verdict differs between QEMU builds.

`virt-7.2` is promised to be the same machine on every QEMU from 7.2 on, so an image,
firmware and transport that passes on one build's `virt-7.2` and fails on another's
is a broken promise (the newer build fails) or a fixed bug (the newer build passes).
Plain `virt` is a different machine on each build and is left out.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import TYPE_CHECKING

from harness.host import machine_sort_key
from harness.model import HOST_QEMU, Outcome
from harness.records import object_of

if TYPE_CHECKING:
    from harness.records import CellRecord


def qemu_version(record: CellRecord) -> str:
    """The cell's QEMU version: results.json's `qemu_version`, or a raw record's
    qemu.version."""
    return str(record.get("qemu_version") or object_of(record.get("qemu")).get("version") or "?")


def _version(record: CellRecord) -> tuple[int, ...]:
    return machine_sort_key(qemu_version(record))


def build_differences(final: Iterable[CellRecord]) -> list[str]:
    """One line per image/firmware/machine/transport booted on two or more QEMU
    builds with verdicts that disagree (pass on one, not on another), saying which
    way it went by the builds' QEMU versions."""
    groups: dict[tuple[str, str, str, str], list[CellRecord]] = defaultdict(list)
    for record in final:
        if record["machine"] != "virt" and Outcome(record["outcome"]).booted:
            key = (record["image"], record["firmware"], record["machine"], record["transport"])
            groups[key].append(record)
    lines = []
    for key in sorted(groups, key=lambda k: (k[0], k[1], machine_sort_key(k[2]), k[3])):
        records = sorted(groups[key], key=_version)
        good = [Outcome(r["outcome"]).reached_login for r in records]
        if len(records) < 2 or all(good) or not any(good):
            continue
        newest_good = good[-1]
        way = (
            "fixed on the newer QEMU" if newest_good else "broken promise: fails on the newer QEMU"
        )
        verdicts = ", ".join(
            f"{r.get('qemu_build') or HOST_QEMU} (QEMU {qemu_version(r)})"
            f" {r['outcome']}" + ("" if Outcome(r["outcome"]).reached_login else f" {r['reason']}")
            for r in records
        )
        lines.append(f"{'/'.join(key)}: {verdicts}: {way}")
    return lines
