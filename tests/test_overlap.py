"""A real matrix at -j 1: the next cell's QEMU starts once the running cell shows its
login prompt (not when it ends), never while another cell is still booting; and
`virt` beside the versioned type it is an alias of is booted once, both recorded."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import pytest
from conftest import ROOT, qemu_processes

from harness.host import Host
from harness.model import Image
from harness.report.results import schema

MATRIX = """\
images:
  debian-12-tiny: {timeout: 90}
expect:
  # planted on the plain name only: its own expectation judges the shared verdict
  - match: {image: debian-12-tiny, machine: virt}
    status: fail
    stage: login
    reason: never-happens
profiles:
  overlap:
    matrix:
      image: debian-12-tiny
      firmware: none
      machine: [{oldest: 1}, {newest: 1}, virt]
      transport: mmio
"""


@dataclass(frozen=True)
class Seen:
    """A QEMU process of the run: its cell directory and when it lived (seconds on
    CLOCK_BOOTTIME, /proc's clock)."""

    cell_dir: str
    started: float
    last_seen: float


def _start_of(pid: str) -> float:
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[19]) / os.sysconf("SC_CLK_TCK")  # starttime, field 22 of proc(5)


def _cell_dir(pid: str) -> str:
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    return argv.split("/cells/", 1)[1].split("/", 1)[0]


@pytest.fixture(scope="module")
def overlap_run(tmp_path_factory: pytest.TempPathFactory, tiny: Image) -> tuple[Path, list[Seen]]:
    tmp = tmp_path_factory.mktemp("overlap")
    (tmp / "matrix.yaml").write_text(MATRIX)
    child = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "matrix", "--matrix", str(tmp / "matrix.yaml"),
         "--profile", "overlap", "-j", "1", "--results", str(tmp / "r")],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT,
    )  # fmt: skip
    seen: dict[str, Seen] = {}
    deadline = time.monotonic() + 400
    while child.poll() is None and time.monotonic() < deadline:
        now = time.clock_gettime(time.CLOCK_BOOTTIME)
        for pid in qemu_processes(str(tmp)):
            try:
                first = seen.get(pid) or Seen(_cell_dir(pid), _start_of(pid), now)
            except (OSError, ValueError, IndexError):  # it ended meanwhile
                continue
            seen[pid] = Seen(first.cell_dir, first.started, now)
        time.sleep(0.02)
    out, _ = child.communicate(timeout=30)
    assert child.returncode == 1, out  # 1: the planted expectation's unexpected pass
    assert "XPASS   debian-12-tiny/none/virt/mmio" in out
    return (tmp / "r" / "latest").resolve(), sorted(seen.values(), key=lambda s: s.started)


def test_the_next_cell_boots_at_the_prompt_never_two_booting(
    overlap_run: tuple[Path, list[Seen]],
) -> None:
    run, seen = overlap_run
    assert len(seen) == 2, seen  # three cells, two boots
    first, second = seen
    login_s = json.loads((run / "cells" / first.cell_dir / "result.json").read_text())[
        "stage_times"
    ]["login"]
    # the second QEMU started while the first still ran...
    assert second.started < first.last_seen, (first, second)
    # ...but only after the first had shown its login prompt (one booting at -j 1)
    assert second.started > first.started + login_s, (first, second, login_s)


def test_virt_and_its_alias_are_one_boot_and_two_results(
    overlap_run: tuple[Path, list[Seen]], host: Host
) -> None:
    run, seen = overlap_run
    alias = host.virt_alias
    plain, versioned = "debian-12-tiny/none/virt/mmio", f"debian-12-tiny/none/{alias}/mmio"
    lines = [json.loads(x) for x in (run / "results.jsonl").read_text().splitlines()]
    records = {r["cell"]: r for r in lines}
    assert len(lines) == len(records) == 3
    assert records[plain]["same_boot_as"] == versioned
    assert "same_boot_as" not in records[versioned]
    oldest = next(m for m in host.machines if m != "virt")
    assert {s.cell_dir for s in seen} == {
        f"debian-12-tiny_none_{oldest}_mmio",
        versioned.replace("/", "_"),
    }
    assert not (run / "cells" / plain.replace("/", "_")).exists()  # no boot of its own
    # one verdict, each name judged against its own expectation
    assert records[versioned]["status"] == records[plain]["status"] == "pass"
    assert records[versioned]["outcome"] == "pass"
    assert records[plain]["outcome"] == "xpass" and records[plain]["expect"]
    assert records[plain]["duration_s"] == records[versioned]["duration_s"]
    document = json.loads((run / "results.json").read_text())
    jsonschema.validate(document, schema())
    cells = {c["cell"]: c for c in document["cells"]}
    assert cells[plain]["same_boot_as"] == versioned
    assert cells[plain]["log"] == cells[versioned]["log"] != ""
    report = (run / "report.md").read_text()
    assert f"same boot as {alias}" in report
    assert f"same boot as {alias}" in (run / "report.html").read_text()
