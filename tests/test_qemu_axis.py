"""The `qemu` axis of the matrix: selectors `all`, `host` and names; machine
selectors resolved per QEMU build; the build in a cell's identity and as a column
group of the reports."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import Harness

from harness.catalog import Catalog, Workspace
from harness.matrix.expand import Plan, expand
from harness.model import Cell, Image
from harness.qemu_builds import cached_build
from harness.report.builds import build_differences
from harness.report.pages import render_html, render_markdown
from harness.yamlfile import FileErrors, load

HOST = ("virt", "virt-2.6", "virt-7.2")
BUILDS = {"qemu-new": ("virt", "virt-2.6", "virt-7.2", "virt-10.0"), "qemu-unmade": None}
IMAGES = ["debian-12-tiny"]


def plan(tmp_path: Path, matrix: str) -> Plan:
    path = tmp_path / "matrix.yaml"
    path.write_text(f"profiles:\n  p:\n    matrix:\n{matrix}")
    data, root = load(path)
    return expand(data, root, path, "p", IMAGES, HOST, qemu=BUILDS)


AXES = "      image: debian-12-tiny\n      firmware: none\n      transport: pci\n"


def test_machine_selectors_resolve_per_qemu_build(tmp_path: Path) -> None:
    found = plan(tmp_path, AXES + "      machine: {newest: 1}\n      qemu: all\n")
    assert [(p.cell.id, p.skip) for p in found.cells] == [
        ("debian-12-tiny/none/virt-7.2/pci", ""),
        ("debian-12-tiny/none/virt-10.0/pci@qemu-new", ""),
        (
            "debian-12-tiny/none/virt/pci@qemu-unmade",
            "QEMU build qemu-unmade is not made yet: harness qemu build qemu-unmade",
        ),
    ]


def test_a_machine_one_build_lacks_is_a_skip_there_and_host_is_the_default(
    tmp_path: Path,
) -> None:
    found = plan(tmp_path, AXES + "      machine: virt-10.0\n      qemu: [host, qemu-new]\n")
    assert [(p.cell.id, p.skip) for p in found.cells] == [
        ("debian-12-tiny/none/virt-10.0/pci", "machine type virt-10.0 is not in this QEMU"),
        ("debian-12-tiny/none/virt-10.0/pci@qemu-new", ""),
    ]
    default = plan(tmp_path, AXES + "      machine: all\n")
    assert [p.cell.id for p in default.cells] == [
        "debian-12-tiny/none/virt-2.6/pci",
        "debian-12-tiny/none/virt-7.2/pci",
        "debian-12-tiny/none/virt/pci",
    ]


def test_an_unknown_qemu_build_is_a_file_line_error(tmp_path: Path) -> None:
    with pytest.raises(FileErrors) as caught:
        plan(tmp_path, AXES + "      machine: virt\n      qemu: [host, qemu-nope]\n")
    assert caught.value.problems == [
        f"{tmp_path / 'matrix.yaml'}:8: profiles.p.matrix.qemu[1]: qemu 'qemu-nope' is not "
        "all or one of: host, qemu-new, qemu-unmade"
    ]


def test_the_qemu_build_is_part_of_a_cells_identity() -> None:
    host = Cell.parse("debian-12-tiny/aavmf/virt-7.2/pci")
    build = Cell.parse("debian-12-tiny/aavmf/virt-7.2/pci@qemu-trixie")
    assert host.qemu == "host" and host.id == "debian-12-tiny/aavmf/virt-7.2/pci"
    assert build.qemu == "qemu-trixie" and build != host
    assert Cell.parse(build.id) == build


def test_a_matrix_over_two_qemu_builds_reports_each_as_a_column_group(
    workspace: Workspace, tiny: Image, harness: Harness, tmp_path: Path
) -> None:
    if cached_build("qemu-trixie", workspace.cache) is None:
        made = harness("qemu", "build", "qemu-trixie", timeout=900)
        assert made.returncode == 0, made.stdout + made.stderr
    matrix = tmp_path / "matrix.yaml"
    matrix.write_text(
        "profiles:\n  two:\n    matrix:\n" + AXES +
        "      machine: [virt-7.2, virt-10.0]\n      qemu: all\n"
    )  # fmt: skip
    listed = harness("list", "--matrix", str(matrix), "--profile", "two")
    assert (
        "debian-12-tiny/none/virt-10.0/pci  (skip: machine type virt-10.0 is not in this QEMU)"
        in listed.stdout
    )
    proc = harness(
        "matrix", "--matrix", str(matrix), "--profile", "two", "-j", "2",
        "--results", str(tmp_path / "results"), timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run = (tmp_path / "results" / "latest").resolve()
    cells = {c["cell"]: c for c in json.loads((run / "results.json").read_text())["cells"]}
    assert {cell: (c["qemu_build"], c["outcome"]) for cell, c in cells.items()} == {
        "debian-12-tiny/none/virt-7.2/pci": ("host", "pass"),
        "debian-12-tiny/none/virt-10.0/pci": ("host", "skip"),
        "debian-12-tiny/none/virt-7.2/pci@qemu-trixie": ("qemu-trixie", "pass"),
        "debian-12-tiny/none/virt-10.0/pci@qemu-trixie": ("qemu-trixie", "pass"),
    }
    argv = cells["debian-12-tiny/none/virt-10.0/pci@qemu-trixie"]["cmdline"]
    assert argv[0].endswith("/bin/qemu-system-aarch64") and "qemu/built/qemu-trixie" in argv[0]
    report = (run / "report.md").read_text()
    header = next(line for line in report.splitlines() if line.startswith("| image"))
    assert header.split(" | ")[1:] == [
        "virt-7.2 pci",
        "virt-10.0 pci",
        "qemu-trixie:virt-7.2 pci",
        "qemu-trixie:virt-10.0 pci |",
    ]


def _record(machine: str, transport: str, build: str, version: str, outcome: str) -> dict[str, Any]:
    return {
        "cell": f"debian-12-tiny/none/{machine}/{transport}" + ("" if build == "host" else f"@{build}"),
        "image": "debian-12-tiny", "firmware": "none", "machine": machine,
        "transport": transport, "qemu_build": build, "qemu": {"version": version},
        "outcome": outcome, "status": outcome, "stage": "initramfs" if outcome == "fail" else "login",
        "reason": "root-not-found" if outcome == "fail" else "login", "detail": "",
    }  # fmt: skip


def test_the_report_lists_machine_types_whose_verdict_differs_between_builds() -> None:
    final = [
        _record("virt-7.2", "pci", "host", "7.2.22", "pass"),
        _record("virt-7.2", "pci", "qemu-trixie", "10.0.13", "fail"),
        _record("virt-7.2", "mmio", "qemu-trixie", "10.0.13", "pass"),
        _record("virt-7.2", "mmio", "host", "7.2.22", "fail"),
        _record("virt-2.6", "pci", "host", "7.2.22", "pass"),  # agrees: not listed
        _record("virt-2.6", "pci", "qemu-trixie", "10.0.13", "pass"),
        _record("virt", "pci", "host", "7.2.22", "pass"),  # plain virt differs by design
        _record("virt", "pci", "qemu-trixie", "10.0.13", "fail"),
    ]
    assert build_differences(final) == [
        "debian-12-tiny/none/virt-7.2/mmio: host (QEMU 7.2.22) fail root-not-found, "
        "qemu-trixie (QEMU 10.0.13) pass: fixed on the newer QEMU",
        "debian-12-tiny/none/virt-7.2/pci: host (QEMU 7.2.22) pass, "
        "qemu-trixie (QEMU 10.0.13) fail root-not-found: broken promise: fails on the newer QEMU",
    ]
    markdown = render_markdown("run", final)
    assert "### Verdicts that differ between QEMU builds" in markdown
    assert "- debian-12-tiny/none/virt-7.2/pci: host (QEMU 7.2.22) pass, " in markdown
    assert "Verdicts that differ between QEMU builds</h2>" in render_html("run", final)
    assert "differ between QEMU builds" not in render_markdown("run", final[4:6])


def test_a_planted_difference_between_builds_is_reported_and_bisected(
    workspace: Workspace, catalog: Catalog, harness: Harness, tmp_path: Path
) -> None:
    """fault-new-cpu-feature panics where -cpu max has FEAT_WFxT: on virt-7.2 it boots
    on the host's QEMU 7.2 and not on trixie's 10.0."""
    if cached_build("qemu-trixie", workspace.cache) is None:
        made = harness("qemu", "build", "qemu-trixie", timeout=900)
        assert made.returncode == 0, made.stdout + made.stderr
    catalog.image("fault-new-cpu-feature")
    root = Path(__file__).resolve().parent.parent
    proc = harness(
        "matrix", "--profile", "nightly", "-k", "fault-new-cpu-feature", "-j", "2",
        "--results", str(tmp_path / "results"), timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr  # host passes, trixie xfails
    run = (tmp_path / "results" / "latest").resolve()
    report = (run / "report.md").read_text()
    assert "- fault-new-cpu-feature/none/virt-7.2/pci: host (QEMU 7.2" in report, report
    assert "fail kernel-panic: broken promise: fails on the newer QEMU" in report
    (tmp_path / "checkout").mkdir()
    (tmp_path / "checkout" / "images").symlink_to(root / "images")
    bisected = harness(
        "bisect", "fault-new-cpu-feature/none/virt-7.2/pci", "--qemu-builds", "host,qemu-trixie",
        timeout=600, env={"HARNESS_ROOT": str(tmp_path / "checkout")},
    )  # fmt: skip
    assert bisected.returncode == 0, bisected.stdout + bisected.stderr
    assert (
        bisected.stdout.strip()
        .splitlines()[-1]
        .startswith(
            "first QEMU build that changes it: qemu-trixie (fail userspace kernel-panic); "
            "last as before: host (pass)"
        )
    )
    # The bisect booted the cell on each build: its run, beside its own `latest-bisect`
    # pointer, holds a boot on each QEMU. (No other bisect over QEMU builds is booted:
    # test_a_matrix_over_two_qemu_builds... boots the same tiny cell on both builds,
    # and "no change" is bisect's for every axis, shown on firmware builds and
    # machine types by test_libvirt_question.py and test_readme.py.)
    (run,) = [p for p in (tmp_path / "checkout" / "results").glob("*bisect*") if not p.is_symlink()]
    records = [json.loads(line) for line in (run / "results.jsonl").read_text().splitlines()]
    assert sorted(r["qemu"]["version"][:4] for r in records) == ["10.0", "7.2."]
    env = {"HARNESS_ROOT": str(tmp_path / "checkout")}
    bad = harness("bisect", "debian-12-tiny/none/pci", "--qemu-builds", "host,qemu-trixie", env=env)
    assert (
        bad.returncode == 2 and "IMAGE/FIRMWARE/MACHINE/TRANSPORT with --qemu-builds" in bad.stderr
    )
