"""`virt` beside the versioned type QEMU says it is an alias of: one boot, two results.
Pure: which cells pair, that a shard keeps a pair, that --resume and --repeat neither
lose nor duplicate either name, that each name's expectation judges the verdict; and
that the history takes both."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from conftest import Harness

from harness.boot import BootOptions
from harness.matrix.expand import Expectation, Plan, Planned
from harness.matrix.run import MatrixRunner, Task, record_of, twin_record
from harness.matrix.rundir import RunDir
from harness.matrix.sameboot import same_boots
from harness.matrix.shard import FIRMWARE_EXTRA_S, TINY_S, costs, cut, load_of
from harness.model import HOST_QEMU, Cell, CellResult, Login, Outcome
from harness.runner import CellSetup

ALIASES = {HOST_QEMU: "virt-7.2", "qemu-trixie": "virt-10.0"}


def planned(text: str, **settings: object) -> Planned:
    return Planned(Cell.parse(text), **settings)  # type: ignore[arg-type]


PLAIN, VERSIONED, OLD = (
    planned("debian-12-tiny/none/virt/mmio"),
    planned("debian-12-tiny/none/virt-7.2/mmio"),
    planned("debian-12-tiny/none/virt-2.6/mmio"),
)


def test_virt_pairs_with_its_alias_on_the_same_build_image_firmware_and_transport() -> None:
    cells = [
        PLAIN, VERSIONED, OLD,
        planned("debian-12-tiny/none/virt/pci"),  # its twin is not planned
        planned("debian-12-tiny/aavmf/virt/mmio"), planned("debian-12-tiny/aavmf/virt-7.2/mmio"),
        planned("debian-12-tiny/none/virt/mmio@qemu-trixie"),
        planned("debian-12-tiny/none/virt-7.2/mmio@qemu-trixie"),  # not trixie's alias
        planned("debian-12-tiny/none/virt-10.0/mmio@qemu-trixie"),
        planned("debian-11-tiny/none/virt/mmio", skip="not here"),
        planned("debian-11-tiny/none/virt-7.2/mmio"),
        planned("debian-13-tiny/none/virt/mmio", timeout_s=10.0),  # other settings
        planned("debian-13-tiny/none/virt-7.2/mmio"),
        planned("debian-12-tiny/uboot/virt/pci", login=Login("root", "x")),
        planned("debian-12-tiny/uboot/virt-7.2/pci", login=Login("root", "x")),
    ]  # fmt: skip
    assert same_boots(cells, ALIASES) == {
        "debian-12-tiny/none/virt/mmio": "debian-12-tiny/none/virt-7.2/mmio",
        "debian-12-tiny/aavmf/virt/mmio": "debian-12-tiny/aavmf/virt-7.2/mmio",
        "debian-12-tiny/none/virt/mmio@qemu-trixie": "debian-12-tiny/none/virt-10.0/mmio@qemu-trixie",
        "debian-12-tiny/uboot/virt/pci": "debian-12-tiny/uboot/virt-7.2/pci",
    }  # fmt: skip
    assert same_boots(cells, {}) == {}  # QEMU said nothing: every cell boots


def test_a_pair_is_cut_into_one_shard_and_costs_one_boot() -> None:
    cells = [
        planned(f"debian-12-tiny/{fw}/{m}/{t}")
        for fw in ("none", "aavmf")
        for m in ("virt-2.6", "virt-7.2", "virt")
        for t in ("mmio", "pci")
    ]
    pairs = same_boots(cells, ALIASES)
    assert len(pairs) == 4
    cost = costs({})
    for n in (2, 3, 5):
        shards = cut(cells, n, cost, pairs)
        assert sorted(p.cell.id for s in shards for p in s) == sorted(p.cell.id for p in cells)
        for shard in shards:
            ids = {p.cell.id for p in shard}
            assert all(pairs[t] in ids for t in ids if t in pairs)
    # 4 direct boots and 4 through AAVMF; the 4 virt cells ride on their twins
    assert load_of(cells, cost, pairs) == 4 * TINY_S + 4 * (TINY_S + FIRMWARE_EXTRA_S)


def runner(tmp_path: Path, cells: list[Planned], records: list[dict[str, object]]) -> MatrixRunner:
    run = RunDir.create(tmp_path, "t", {"cells": [p.cell.id for p in cells]})
    for record in records:
        run.append(record)
    setup = CellSetup(lambda c: None, lambda c: None)  # type: ignore[arg-type,return-value]
    return MatrixRunner(run, setup, None, BootOptions(), lambda r: None)  # type: ignore[arg-type]


def result(p: Planned, status: Outcome = Outcome.PASS) -> CellResult:
    return CellResult(p.cell, status, "login", "login", duration_s=9.5)


def test_resume_and_repeat_neither_lose_nor_duplicate_either_name(tmp_path: Path) -> None:
    plan = Plan("t", (PLAIN, VERSIONED, OLD), ALIASES)

    def tasks(
        records: list[dict[str, object]], repeat: int = 1
    ) -> list[tuple[str, int, list[str]]]:
        made = runner(tmp_path / str(len(list(tmp_path.iterdir()))), list(plan.cells), records)
        return [
            (t.planned.cell.id, t.repeat, [x.cell.id for x in t.twins])
            for t in made.tasks(plan, repeat)
        ]

    v, p, o = VERSIONED.cell.id, PLAIN.cell.id, OLD.cell.id
    assert tasks([]) == [(v, 0, [p]), (o, 0, [])]
    assert tasks([], repeat=2) == [(v, 0, [p]), (v, 1, [p]), (o, 0, []), (o, 1, [])]
    booted = record_of(result(VERSIONED), Task(VERSIONED, 0), 1)
    twin = twin_record(result(VERSIONED), Task(VERSIONED, 0, (PLAIN,)), PLAIN, 1)
    assert tasks([booted, twin]) == [(o, 0, [])]
    # killed between the two lines: the virt cell boots on its own, once
    assert tasks([booted]) == [(p, 0, []), (o, 0, [])]
    # an error is no verdict: both again, from one boot
    error = record_of(result(VERSIONED, Outcome.ERROR), Task(VERSIONED, 0), 2)
    error_twin = twin_record(result(VERSIONED, Outcome.ERROR), Task(VERSIONED, 0), PLAIN, 2)
    assert tasks([error, error_twin]) == [(v, 0, [p]), (o, 0, [])]
    # one repeat done: the other repeat still one boot for both
    assert tasks([booted, twin], repeat=2) == [(v, 1, [p]), (o, 0, []), (o, 1, [])]


def test_each_name_is_judged_by_its_own_expectation() -> None:
    expected = Expectation("initramfs", "root-not-found")
    plain = planned("debian-12-tiny-mmio-only/none/virt/pci", expect=expected)
    versioned = planned("debian-12-tiny-mmio-only/none/virt-7.2/pci")
    failed = CellResult(versioned.cell, Outcome.FAIL, "initramfs", "root-not-found")
    task = Task(versioned, 0, (plain,))
    own, other = record_of(failed, task, 1), twin_record(failed, task, plain, 1)
    assert (own["outcome"], other["outcome"]) == ("fail", "xfail")
    assert other["cell"] == plain.cell.id and other["machine"] == "virt"
    assert other["same_boot_as"] == versioned.cell.id and "same_boot_as" not in own
    assert {k: v for k, v in other.items() if k not in ("cell", "machine", "outcome",
            "expect", "same_boot_as")} == {k: v for k, v in own.items()
                                           if k not in ("cell", "machine", "outcome", "expect")}  # fmt: skip


def test_the_history_imports_both_names_of_one_boot(harness: Harness, tmp_path: Path) -> None:
    task = Task(VERSIONED, 0, (PLAIN,))
    records = [
        record_of(result(VERSIONED), task, 1),
        twin_record(result(VERSIONED), task, PLAIN, 1),
    ]
    made = runner(tmp_path, [PLAIN, VERSIONED], records)
    meta = {**made.run.meta(), "profile": "t", "host": {"qemu_version": "7.2.0"}}
    made.run.write_meta(meta)
    db = tmp_path / "h.sqlite"
    for _ in range(2):  # idempotent: recording twice changes nothing
        proc = harness("history", "import", str(made.run.path), "--db", str(db))
        assert proc.returncode == 0, proc.stdout + proc.stderr
    with sqlite3.connect(db) as history:
        rows = sorted(history.execute("SELECT cell, outcome, duration_s FROM results"))
    assert rows == sorted([(PLAIN.cell.id, "pass", 9.5), (VERSIONED.cell.id, "pass", 9.5)])
