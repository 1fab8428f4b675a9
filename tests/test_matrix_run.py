"""A real matrix run and what is made of it: reports checked by a schema, a JUnit
parser and a real browser; compare, shards, merge, resume after kill -9, Ctrl-C."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest
from conftest import ROOT, Harness, qemu_processes
from PIL import Image as Picture

from harness.model import Image
from harness.report.grid import build_grid, render_text
from harness.report.pages import COLOURS
from harness.report.results import schema

MATRIX = """\
images:
  debian-12-tiny: {timeout: 60}
expect:
  - match: {image: debian-12-tiny-mmio-only, transport: pci}
    status: fail
    reason: root-not-found
profiles:
  small:
    matrix:
      image: [debian-12-tiny, debian-12-tiny-mmio-only]
      firmware: none
      machine: [virt, virt-1.0]
      transport: [mmio, pci]
    exclude:
      - {image: debian-12-tiny-mmio-only, transport: mmio}
      - {image: debian-12-tiny-mmio-only, machine: virt-1.0}
      - {image: debian-12-tiny, machine: virt-1.0, transport: pci}
"""
CELLS = [
    "debian-12-tiny/none/virt/mmio",
    "debian-12-tiny/none/virt/pci",
    "debian-12-tiny/none/virt-1.0/mmio",
    "debian-12-tiny-mmio-only/none/virt/pci",
]


def run_dirs(results: Path) -> list[Path]:
    return sorted(p for p in results.iterdir() if p.name != "latest" and p.is_dir())


@pytest.fixture(scope="module")
def matrix_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("matrix") / "matrix.yaml"
    path.write_text(MATRIX)
    return path


@pytest.fixture(scope="module")
def small_run(
    tiny: Image, mmio_only: Image, matrix_file: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    results = tmp_path_factory.mktemp("results")
    proc = subprocess.run(
        [sys.executable, "-m", "harness.cli", "matrix", "--matrix", str(matrix_file), "--profile", "small",
         "-j", "2", "--results", str(results)],
        capture_output=True, text=True, cwd=ROOT, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (run,) = run_dirs(results)
    return run


def test_results_json_follows_its_schema(small_run: Path) -> None:
    document = json.loads((small_run / "results.json").read_text())
    jsonschema.validate(document, schema())
    assert document["complete"] is True
    assert [c["cell"] for c in document["cells"]] == CELLS
    assert document["summary"] == {"pass": 2, "skip": 1, "xfail": 1}
    assert document["images"]["debian-12-tiny"].startswith("sha256:")
    by_cell = {c["cell"]: c for c in document["cells"]}
    assert (small_run / by_cell[CELLS[0]]["log"]).is_file()
    assert by_cell[CELLS[0]]["cmdline"][0].endswith("qemu-system-aarch64")
    assert by_cell[CELLS[2]]["outcome"] == "skip" and "virt-1.0" in by_cell[CELLS[2]]["detail"]


def test_junit_has_one_testcase_per_cell(small_run: Path) -> None:
    suite = ET.parse(small_run / "junit.xml").getroot()
    cases = suite.findall("testcase")
    assert [(c.get("classname"), c.get("name")) for c in cases] == [
        ("debian-12-tiny", "none/virt/mmio"),
        ("debian-12-tiny", "none/virt/pci"),
        ("debian-12-tiny", "none/virt-1.0/mmio"),
        ("debian-12-tiny-mmio-only", "none/virt/pci"),
    ]
    assert (
        suite.get("tests"),
        suite.get("failures"),
        suite.get("errors"),
        suite.get("skipped"),
    ) == ("4", "0", "0", "2")
    xfail = cases[3].find("skipped")
    assert xfail is not None and "initramfs root-not-found" in xfail.get("message", "")
    out = cases[3].find("system-out")
    assert out is not None and "Gave up waiting for root file system device" in (out.text or "")


def test_markdown_grid(small_run: Path) -> None:
    text = (small_run / "report.md").read_text()
    assert "| image / firmware | virt-1.0 mmio | virt mmio | virt pci |" in text
    assert "xfail initramfs/root-not-found" in text


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    assert found, (
        "Debian's chromium is needed to check report.html in a real browser (tools/setup-host installs it)"
    )
    return found


def browser(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    flags = [
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]  # fmt: skip
    return subprocess.run(
        [chromium(), *flags, *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_html_grid_in_a_real_browser(small_run: Path, tmp_path: Path) -> None:
    url = (small_run / "report.html").as_uri()
    dom = browser(tmp_path, "--dump-dom", url).stdout
    assert dom.count('<td class="pass"') == 2 and dom.count('<td class="xfail"') == 1
    assert 'href="cells/debian-12-tiny_none_virt_mmio/console.log"' in dom
    shot = tmp_path / "report.png"
    browser(tmp_path, f"--screenshot={shot}", "--window-size=1000,600", url)
    picture = Picture.open(shot).convert("RGB")
    colours = {colour for _, colour in picture.getcolors(maxcolors=1 << 20) or []}
    for outcome in ("pass", "xfail"):
        rgb = tuple(int(COLOURS[outcome][i : i + 2], 16) for i in (1, 3, 5))
        assert rgb in colours, f"no {outcome} cell drawn"


def test_compare_finds_a_planted_regression(
    small_run: Path, matrix_file: Path, harness: Harness, tmp_path: Path
) -> None:
    broken = tmp_path / "matrix.yaml"
    # A wrong user makes the real guest answer "Login incorrect": a real failure.
    broken.write_text(
        MATRIX.replace(
            "debian-12-tiny: {timeout: 60}", "debian-12-tiny: {timeout: 60, login: {user: nobody}}"
        )
    )
    proc = harness("matrix", "--matrix", str(broken), "--profile", "small", "-k", "tiny/none/virt/mmio",
                   "--results", str(tmp_path / "r"), "--baseline", str(small_run))  # fmt: skip
    assert proc.returncode == 1
    assert (
        "regression     debian-12-tiny/none/virt/mmio  pass -> fail login login-failed"
        in proc.stdout
    )
    (new,) = run_dirs(tmp_path / "r")
    compared = harness("compare", str(small_run), str(new))
    assert compared.returncode == 1
    assert (
        compared.stdout.splitlines()[0]
        == "regression     debian-12-tiny/none/virt/mmio  pass -> fail login login-failed"
    )
    assert "missing        debian-12-tiny/none/virt/pci" in compared.stdout
    again = harness("compare", str(small_run), str(small_run / "results.json"))
    assert again.returncode == 0 and "regression" not in again.stdout
    labels = {
        c["cell"]: c["comparison"] for c in json.loads((new / "results.json").read_text())["cells"]
    }
    assert labels == {"debian-12-tiny/none/virt/mmio": "regression"}
    assert "regression" in (new / "report.html").read_text()


def test_shards_cover_the_plan_and_merge_into_one_run(
    small_run: Path, matrix_file: Path, harness: Harness, tmp_path: Path
) -> None:
    results = tmp_path / "r"
    for shard in ("1/2", "2/2"):
        proc = harness(
            "matrix",
            "--matrix",
            str(matrix_file),
            "--profile",
            "small",
            "--shard",
            shard,
            "--results",
            str(results),
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
    shards = run_dirs(results)
    slices = [json.loads((s / "run.json").read_text())["cells"] for s in shards]
    assert sorted(slices[0] + slices[1]) == sorted(CELLS) and not set(slices[0]) & set(slices[1])
    merged = harness("merge", *map(str, shards), "--results", str(tmp_path / "m"))
    assert merged.returncode == 0, merged.stdout + merged.stderr
    (run,) = run_dirs(tmp_path / "m")
    document = json.loads((run / "results.json").read_text())
    assert sorted(c["cell"] for c in document["cells"]) == sorted(CELLS) and document["complete"]
    assert all((run / c["log"]).is_file() for c in document["cells"] if c["outcome"] != "skip")
    assert harness("matrix", "--shard", "3/2").returncode == 2


def wait_for(predicate, seconds: float) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline
        time.sleep(0.1)


def start_matrix(matrix_file: Path, results: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "matrix", "--matrix", str(matrix_file), "--profile", "small",
         "-j", "1", "--results", str(results)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT, start_new_session=True,
    )  # fmt: skip


def ours(results: Path) -> list[str]:
    return [
        p
        for p in qemu_processes()
        if Path(f"/proc/{p}").exists() and str(results) in Path(f"/proc/{p}/cmdline").read_text()
    ]


def test_kill_9_loses_no_result_leaves_no_qemu_and_resumes(
    tiny: Image, mmio_only: Image, matrix_file: Path, harness: Harness, tmp_path: Path
) -> None:
    results = tmp_path / "r"
    child = start_matrix(matrix_file, results)
    wait_for(
        lambda: (
            (results / "latest" / "results.jsonl").exists()
            and len((results / "latest" / "results.jsonl").read_text().splitlines()) >= 2
        ),
        60,
    )
    wait_for(lambda: bool(ours(results)), 30)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    wait_for(lambda: not ours(results), 5)
    run = (results / "latest").resolve()
    before = (run / "results.jsonl").read_text().splitlines()
    proc = harness("matrix", "--resume", str(run), "-j", "2")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    after = (run / "results.jsonl").read_text().splitlines()
    assert after[: len(before)] == before
    assert sorted(json.loads(line)["cell"] for line in after) == sorted(CELLS)


def test_ctrl_c_stops_every_qemu_and_writes_incomplete_reports(
    tiny: Image, matrix_file: Path, tmp_path: Path
) -> None:
    results = tmp_path / "r"
    child = start_matrix(matrix_file, results)
    wait_for(lambda: bool(ours(results)), 60)
    os.kill(child.pid, signal.SIGINT)
    assert child.wait(timeout=10) == 130
    assert not ours(results)
    # the run itself, not `latest`: stopped before its guests printed, it booted nothing
    (run,) = results.glob("2*")
    document = json.loads((run / "results.json").read_text())
    assert document["complete"] is False


def test_the_terminal_grid_has_a_line_only_where_a_row_has_cells() -> None:
    records = [
        {"image": image, "firmware": "none", "machine": machine, "transport": transport,
         "outcome": outcome}
        for image, machine, transport, outcome in [
            ("debian-12-tiny", "virt-2.6", "mmio", "pass"),
            ("debian-12-tiny", "virt", "pci", "xfail"),
            ("debian-11-tiny", "virt", "pci", "fail"),
        ]
    ]  # fmt: skip
    lines = render_text(build_grid(records)).splitlines()
    assert lines[0].split() == ["2.6", "virt"]
    assert [line.split() for line in lines[1:-1]] == [
        ["debian-12-tiny", "/", "none", "/", "mmio", "ok"],
        ["debian-12-tiny", "/", "none", "/", "pci", "xf"],
        ["debian-11-tiny", "/", "none", "/", "pci", "FAIL"],
    ]
