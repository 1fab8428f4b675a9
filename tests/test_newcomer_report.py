"""What a person reads after a matrix run: report.html in a real browser (the
options that changed verdicts, expected failures' notes and bugs, every failing cell
linked to its log, repeats counted, flaky.html linked), and the per-OS facts that
keep a host's trouble apart from the OS's answer."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import FIXTURES, ROOT, Harness, MadeRun
from PIL import Image as Picture
from test_matrix_run import browser

from harness.catalog import Catalog
from harness.report.grid import last_guest_line, reason_line
from harness.report.pages import COLOURS

BUG = "https://bugs.example.org/show_bug.cgi?id=2016"
MATRIX = f"""\
images:
  debian-12-tiny: {{timeout: 240}}
  debian-12-tiny-mmio-only: {{timeout: 240}}
  fault-userspace-hang: {{timeout: 30}}
expect:
  - match: {{image: debian-12-tiny-mmio-only, transport: pci}}
    status: fail
    reason: root-not-found
    note: no virtio_pci in the initramfs (the 2016 failure)
    bug: "{BUG}"
  - match: {{image: fault-userspace-hang}}
    status: fail
    reason: timeout
profiles:
  day:
    matrix:
      image: [debian-12-tiny, fault-userspace-hang]
      firmware: none
      machine: virt
      transport: [mmio, pci]
    include:
      - {{image: debian-12-tiny-mmio-only, firmware: none, machine: virt, transport: pci}}
"""


def matrix(results: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    proc = subprocess.run(
        [sys.executable, "-m", "harness.cli", "matrix", "--matrix", str(results / "matrix.yaml"),
         "-j", "2", "--results", str(results), *args],
        capture_output=True, text=True, cwd=ROOT, timeout=600, check=False,
    )  # fmt: skip
    return proc, (results / "latest").resolve()


@pytest.fixture(scope="module")
def results(catalog: Catalog, tmp_path_factory: pytest.TempPathFactory) -> Path:
    for image in ("debian-12-tiny", "debian-12-tiny-mmio-only", "fault-userspace-hang"):
        catalog.image(image)
    return tmp_path_factory.mktemp("results")


@pytest.fixture(scope="module")
def day(results: Path) -> tuple[subprocess.CompletedProcess[str], Path]:
    """Five cells: the hangs time out on both transports, and an expected failure
    with its note and bug."""
    where = results / "day"
    where.mkdir()
    (where / "matrix.yaml").write_text(MATRIX)
    return matrix(where, "--profile", "day")


def test_report_shows_options_expectations_and_links_every_failing_cell_to_its_log(
    day: tuple[subprocess.CompletedProcess[str], Path], tmp_path: Path
) -> None:
    proc, run = day
    assert proc.returncode == 0, proc.stdout + proc.stderr
    document = json.loads((run / "results.json").read_text())
    dom = browser(tmp_path, "--dump-dom", (run / "report.html").as_uri()).stdout
    problems = re.findall(r"<li>.*?</li>", dom.split("Not passing", 1)[1], re.DOTALL)
    cells = {c["cell"]: c for c in document["cells"] if c["outcome"] not in ("pass", "skip")}
    assert len(problems) == len(cells) == 3
    for entry in problems:
        link = re.match(r'<li><a href="([^"]+)">(\w+) (\S+)</a>', entry)
        assert link, entry
        assert link.group(1) == cells[link.group(3)]["log"] and (run / link.group(1)).is_file()
    (xfail,) = [p for p in problems if "mmio-only" in p]
    assert "expected to fail: no virtio_pci in the initramfs (the 2016 failure)" in xfail
    assert f'<a href="{BUG.replace("&", "&amp;")}">' in xfail
    for hang in (p for p in problems if "fault-userspace-hang" in p):
        cell = re.search(r">\w+ (\S+)</a>", hang).group(1)  # type: ignore[union-attr]
        assert "harness-" not in hang
        assert html_text(hang).endswith(" timeout \N{EM DASH} " + cells[cell]["detail"][:160])
    assert "flaky.html" not in dom  # no repeats disagreed here


def html_text(fragment: str) -> str:
    import html

    return html.unescape(re.sub(r"<[^>]+>", "", fragment)).strip()


def test_report_screenshot_shows_the_grid_options_and_failing_list(
    day: tuple[subprocess.CompletedProcess[str], Path], tmp_path: Path
) -> None:
    _, run = day
    shot = tmp_path / "report.png"
    browser(
        tmp_path, f"--screenshot={shot}", "--window-size=1000,700", (run / "report.html").as_uri()
    )
    picture = Picture.open(shot).convert("RGB")
    colours = {colour for _, colour in picture.getcolors(maxcolors=1 << 20) or []}

    def rgb(hex_colour: str) -> tuple[int, ...]:
        return tuple(int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))

    for outcome in ("pass", "xfail"):
        assert rgb(COLOURS[outcome]) in colours, f"no {outcome} cell drawn"
    # The failing list, below the grid, is drawn as links (the browser's link blue).
    below = picture.crop((0, picture.height // 3, picture.width, picture.height))
    assert any(colour == (0, 0, 238) for _, colour in below.getcolors(maxcolors=1 << 20) or [])


def test_facts_keep_host_problems_apart_and_say_when_only_direct_boot_answered(
    day: tuple[subprocess.CompletedProcess[str], Path], harness: Harness
) -> None:
    _, run = day
    proc = harness("export", "facts", str(run))
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines() == [f"wrote {run / 'facts.json'} and {run / 'facts.md'}"]
    oses = {os["os"]["image"]: os for os in json.loads((run / "facts.json").read_text())["oses"]}
    hang = oses["fault-userspace-hang"]
    assert hang["virtio_pci_default_safe"]["virt"] == {"safe": None, "failures": []}
    cells = {c["cell"]: c for c in json.loads((run / "results.json").read_text())["cells"]}
    pci, mmio = (cells[f"fault-userspace-hang/none/virt/{t}"] for t in ("pci", "mmio"))
    assert hang["host_problems"] == [
        f"none/virt: xfail {pci['stage']} timeout on pci, xfail {mmio['stage']} timeout on mmio"
    ]
    tiny = oses["debian-12-tiny"]
    assert tiny["virtio_pci_default_safe"]["virt"]["safe"] is True
    assert tiny["pci_answer_from"]["virt"] == ["none"]
    assert "| yes (direct boot only) |" in proc.stdout
    assert "unknown: only host problems" in proc.stdout
    assert f"- fault-userspace-hang: {hang['host_problems'][0]}" in proc.stdout
    unsafe = oses["debian-12-tiny-mmio-only"]["virtio_pci_default_safe"]["virt"]
    assert unsafe == {"safe": False, "failures": ["none: initramfs root-not-found"]}


def test_repeats_are_counted_with_why_the_others_failed_and_flaky_html_is_linked(
    coin_flip_run: MadeRun, tmp_path: Path
) -> None:
    # One boot in two panics, booted ten times with --timeout 240 (the run
    # test_libvirt_question.py reads too).
    assert coin_flip_run.returncode == 1, coin_flip_run.stderr  # unstable: no met expectation
    run = coin_flip_run.run
    assert (
        f"reports: {run}/report.html, report.md, junit.xml, results.json, flaky.html"
        in coin_flip_run.stdout
    )
    (cell,) = json.loads((run / "results.json").read_text())["cells"]
    passed = cell["repeats"].count("pass")
    dom = browser(tmp_path, "--dump-dom", (run / "report.html").as_uri()).stdout
    assert f"{passed}/10 repeats passed" in dom
    # The cell links the console log of a repeat that failed: that is why it is unstable.
    linked = re.search(
        rf"\[unstable {passed}/10 repeats passed\]\(([^)]+)\)", (run / "report.md").read_text()
    )
    assert linked and "Kernel panic" in (run / linked[1]).read_text(errors="replace")
    others = 10 - passed
    pairs = zip(cell["repeats"], cell["repeat_reasons"], strict=True)
    (stage,) = {reason.split()[0] for outcome, reason in pairs if outcome == "fail"}
    failed = f"fail {stage} kernel-panic" + (f" x{others}" if others > 1 else "")
    assert f"the others: {failed}" in dom
    assert '<a href="flaky.html">flaky.html</a>' in dom
    assert json.loads((run / "results.json").read_text())["options"]["timeout"] == 240
    assert (
        "Options that changed verdicts: --timeout 240 (instead of matrix.yaml's timeouts), "
        "--repeat 10" in dom
    )


def test_a_timeout_during_the_proof_names_the_guests_last_line_not_the_harness_typing(
    tmp_path: Path,
) -> None:
    """A real boot's log cut right after the harness typed its proof, as a guest
    that went silent then leaves it."""
    log = (FIXTURES / "consoles" / "tiny-direct-mmio-pass.log").read_bytes()
    cut = log[: log.index(b"harness-shell-$((6*7))-ok") + 30]
    (tmp_path / "console.log").write_bytes(cut)
    last = last_guest_line(tmp_path / "console.log")
    assert last and "harness-" not in last
    assert last in cut.decode(errors="replace")
    record = {
        "reason": "timeout",
        "detail": "~ # echo harness-shell-$((6*7))-ok",
        "log": "console.log",
    }
    assert reason_line(record, tmp_path) == last
    assert reason_line({**record, "reason": "kernel-panic"}, tmp_path) == record["detail"]
