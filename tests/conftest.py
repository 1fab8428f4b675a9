"""Shared fixtures. Real things only: images are built from Debian's arm64 packages
(once, then cached in images/cache), QEMU is the host's, boots are real."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.catalog import Catalog, Workspace
from harness.host import Host, discover
from harness.model import Image
from harness.qemu_builds import cached_build, load_qemu_builds

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"

# Seconds each test file took (the sum of its tests, `make test` of 2026-11-30 on the
# shared 2-core host, load about 10; less the boots since made once for several files:
# the file that asks first makes them). pytest-xdist's loadfile hands files to workers
# in collection order (with --no-loadscope-reorder, as `make test` runs it; by
# default it orders them by how many tests they hold, which put the few long boots
# last): the longest start first, so no long file is left running alone at the end.
# A file not listed is taken as FILE_SECONDS_UNKNOWN (a few boots, as a new file
# may hold); files that boot nothing take well under a second wherever they run.
FILE_SECONDS = {
    "test_libvirt_question.py": 535, "test_qemu_axis.py": 365, "test_faults.py": 345,
    "test_readme.py": 342, "test_run_data.py": 300, "test_rejudge.py": 292,
    "test_run.py": 287, "test_matrix_run.py": 236, "test_uboot.py": 148,
    "test_libvirt_launch.py": 148, "test_no_lost_result.py": 118, "test_qemu_builds.py": 114,
    "test_acpi.py": 105, "test_virt_install.py": 97, "test_download.py": 97,
    "test_fault_suite.py": 94, "test_history.py": 92, "test_newcomer_report.py": 80,
    "test_shard.py": 78, "test_no_silent_waits.py": 62, "test_matrix_cli.py": 62,
    "test_build_interrupt.py": 57, "test_terminal.py": 43, "test_newcomer.py": 41,
    "test_setup.py": 36, "test_hostile_input.py": 29, "test_cache_trust.py": 21,
    "test_devices_work.py": 20, "test_download_limits.py": 19, "test_images.py": 14,
    "test_offline_build.py": 11, "test_console_kinds.py": 10, "test_devices.py": 6,
    "test_cancel_input.py": 1, "test_reset_marks.py": 1, "test_watch_loop.py": 1,
    "test_once.py": 1, "test_run_options.py": 15, "test_latest.py": 4,
    "test_hostile_options.py": 8, "test_signals.py": 45, "test_classify_run.py": 1,
}  # fmt: skip
FILE_SECONDS_UNKNOWN = 30


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Test files longest first (FILE_SECONDS); within a file, and among files of
    equal cost, the collection's order. The integrity check stays last."""

    def cost(item: pytest.Item) -> int:
        name = item.path.name
        if name == "test_zz_integrity.py":
            return -1
        return FILE_SECONDS.get(name, FILE_SECONDS_UNKNOWN)

    items.sort(key=cost, reverse=True)


def _results_state(results: Path) -> tuple[list[str], str]:
    """What a test could change in the checkout's results/: its entries (two deep)
    and where results/latest points."""
    if not results.is_dir():
        return [], ""
    entries = sorted(str(p.relative_to(results)) for p in results.glob("*/*"))
    entries += sorted(p.name for p in results.iterdir())
    latest = results / "latest"
    return entries, os.readlink(latest) if latest.is_symlink() else ""


def pytest_configure(config: pytest.Config) -> None:
    """The suite started from a shell script's background job (`make test &`) inherits
    SIGINT ignored (POSIX: so the terminal's Ctrl-C spares background jobs), and so
    would every harness a test interrupts with SIGINT: the tests of Ctrl-C would see
    it ignored. Each pytest process (xdist's workers too) takes SIGINT back; its
    children then start with the default, as from a terminal."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_sessionstart(session: pytest.Session) -> None:
    """Under pytest-xdist (`make test`), before the workers start: every image the
    suite boots and every QEMU build not yet in the cache is built, one process per
    Debian suite and one per QEMU build, side by side. On a new machine this is the
    whole cold start, done once on every core, instead of inside whichever test needs
    an image first (one at a time, each worker unpacking the same kernel packages
    again). A build that fails here is only said: the tests that need it fail."""
    config = session.config
    if hasattr(config, "workerinput") or config.getoption("dist", "no") == "no":
        return
    started = time.monotonic()
    catalog = Catalog(Workspace.locate(os.environ), os.environ, print)
    suites: dict[str, list[str]] = {}
    for name, recipe in catalog.recipes.items():
        if recipe.kind != "full" and catalog.not_ready(name):
            suites.setdefault(recipe.suite, []).append(name)
    builds = load_qemu_builds(catalog.workspace.images / "qemu.yaml")
    commands = [["images", "build", *names] for names in suites.values()]
    commands += [
        ["qemu", "build", name]
        for name in builds
        if cached_build(name, catalog.workspace.cache) is None
    ]
    if not commands:
        return
    # Output to files, not pipes: read one child at a time, a pipe could fill and stall another.
    with ExitStack() as stack:
        logs = [stack.enter_context(tempfile.TemporaryFile("w+")) for _ in commands]
        children = [
            subprocess.Popen(
                [sys.executable, "-m", "harness.cli", *argv], cwd=ROOT, text=True,
                stdout=log, stderr=subprocess.STDOUT,
            )
            for argv, log in zip(commands, logs, strict=True)
        ]  # fmt: skip
        for argv, child, log in zip(commands, children, logs, strict=True):
            if child.wait() != 0:
                log.seek(0)
                print(f"conftest: harness {' '.join(argv)} failed:\n{log.read()}")
    print(
        f"conftest: built {sum(map(len, suites.values()))} images and "
        f"{len(commands) - len(suites)} QEMU builds in {time.monotonic() - started:.0f} s"
    )


@pytest.fixture(scope="session", autouse=True)
def checkout_results_untouched() -> Iterator[None]:
    """Tests write into tmp_path (--results/--out), never into the checkout's
    results/ nor move results/latest: a user's runs live there."""
    results = ROOT / "results"
    before = _results_state(results)
    yield
    assert _results_state(results) == before, f"a test wrote into {results}"


@pytest.fixture(scope="session")
def workspace() -> Workspace:
    return Workspace.locate(os.environ)


@pytest.fixture(scope="session")
def catalog(workspace: Workspace) -> Catalog:
    return Catalog(workspace, os.environ, print)


@pytest.fixture(scope="session")
def host() -> Host:
    return discover(None, os.environ)


@pytest.fixture(scope="session")
def tiny(catalog: Catalog) -> Image:
    return catalog.image("debian-12-tiny")


@pytest.fixture(scope="session")
def mmio_only(catalog: Catalog) -> Image:
    return catalog.image("debian-12-tiny-mmio-only")


Harness = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def harness() -> Harness:
    """The real CLI, as a user runs it."""

    def run(
        *args: str, timeout: float = 300, cwd: Path = ROOT, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "harness.cli", *args],
            capture_output=True, text=True, timeout=timeout, cwd=cwd, check=False,
            env={**os.environ, **(env or {})},
        )  # fmt: skip

    return run


def qemu_processes(mentioning: str = "") -> list[str]:
    """PIDs of every qemu-system-aarch64 on the machine; with `mentioning`, only those
    whose command line holds it (a test's own tmp dir: other tests boot in parallel)."""
    proc = subprocess.run(["pgrep", "-f", "qemu-system-aarch64"], capture_output=True, text=True)
    pids = proc.stdout.split()
    if not mentioning:
        return pids
    ours = []
    for pid in pids:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:  # it ended meanwhile
            continue
        if mentioning in cmdline:
            ours.append(pid)
    return ours


Expected = dict[str, tuple[str, str, str, str, str]]


def misjudged(harness: Harness, folder: Path, expected: Expected) -> list[dict[str, object]]:
    """Judges every log in `folder` with the real `harness classify --json` and returns
    the verdicts that differ from `expected` (file name -> status, stage, reason, a text
    the deciding line holds, proof). Every log must have its expectation."""
    logs = sorted(folder.glob("*.log"))
    assert {log.name for log in logs} == set(expected)
    proc = harness("classify", "--json", *map(str, logs))
    assert proc.returncode == 1, proc.stderr  # some of them fail
    judged = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(judged) == len(logs)
    wrong: list[dict[str, object]] = []
    for got in judged:
        status, stage, reason, text, proof = expected[Path(got["file"]).name]
        same = (got["status"], got["stage"], got["reason"], got["proof"]) == (
            status, stage, reason, proof,
        )  # fmt: skip
        if not same or text not in got["text"]:
            wrong.append(got)
    return wrong


def once(factory: pytest.TempPathFactory, name: str, make: Callable[[Path], None]) -> Path:
    """The directory `make(dir)` filled, made once per test session: the first test to
    ask makes it, under a lock, in whichever pytest-xdist worker it runs; the others
    (in any worker) wait for it and read it. For a real run several test files read
    without changing it, so that its boots happen once. A `make` that failed fails
    every later asker with the same message instead of booting again."""
    base = factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # the workers' basetemps share their parent
    where, failed = base / f"once-{name}", base / f"once-{name}.failed"
    with open(base / f"once-{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if failed.exists():
            pytest.fail(f"made once by another test, and failed:\n{failed.read_text()}")
        if not (where / ".made").exists():
            shutil.rmtree(where, ignore_errors=True)
            where.mkdir()
            try:
                make(where)
            except BaseException as e:
                failed.write_text(f"{type(e).__name__}: {e}")
                raise
            (where / ".made").touch()
    return where


COIN_MATRIX = """\
profiles:
  coin:
    matrix: {image: fault-coin-flip, firmware: none, machine: virt, transport: pci}
"""


@dataclass(frozen=True)
class MadeRun:
    """A harness command run once (see once()): the directory it wrote (a `matrix`
    run's, a `run`'s --out), its stdout and stderr, and its exit status."""

    run: Path
    stdout: str
    stderr: str
    returncode: int


def _made(where: Path, argv: list[str], timeout: float) -> None:
    """Runs the real CLI with `argv` and keeps what a test reads of it in `where`."""
    proc = subprocess.run(
        [sys.executable, "-m", "harness.cli", *argv],
        capture_output=True, text=True, cwd=ROOT, timeout=timeout, check=False,
    )  # fmt: skip
    (where / "stdout").write_text(proc.stdout)
    (where / "stderr").write_text(proc.stderr)
    (where / "returncode").write_text(str(proc.returncode))


def _read_made(where: Path, run: Path) -> MadeRun:
    texts = [(where / name).read_text() for name in ("stdout", "stderr", "returncode")]
    return MadeRun(run, texts[0], texts[1], int(texts[2]))


@pytest.fixture(scope="session")
def coin_flip_run(catalog: Catalog, tmp_path_factory: pytest.TempPathFactory) -> MadeRun:
    """fault-coin-flip (it panics on one boot in two) booted ten times, `-j 2
    --timeout 240`: ten boots all alike happen 1 in 512. Its reports, flaky.html and
    results.json are read by more than one test file; nothing may write into it."""

    def make(where: Path) -> None:
        catalog.image("fault-coin-flip")
        (where / "matrix.yaml").write_text(COIN_MATRIX)
        _made(where, ["matrix", "--matrix", str(where / "matrix.yaml"), "--profile", "coin",
                      "--repeat", "10", "-j", "2", "--timeout", "240",
                      "--results", str(where / "results")], timeout=600)  # fmt: skip

    where = once(tmp_path_factory, "coin-flip", make)
    return _read_made(where, (where / "results" / "latest").resolve())


@pytest.fixture(scope="session")
def tiny_run(tiny: Image, tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], MadeRun]:
    """`harness run CELL --out DIR` (not --quiet) of a tiny-guest cell, booted once per
    session however many tests, in whichever files, read that cell's verdict line,
    console, result.json: their --out directory is MadeRun.run; nothing may write into it."""

    def run(cell: str) -> MadeRun:
        def make(where: Path) -> None:
            _made(where, ["run", cell, "--out", str(where / "out")], timeout=300)

        where = once(tmp_path_factory, "run-" + cell.replace("/", "_"), make)
        return _read_made(where, where / "out")

    return run


def one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    """The one line on stderr of a command refused with exit 2 (and no traceback)."""
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    return line


def write_matrix(path: Path, machine: str, profile: str = "p") -> Path:
    """A matrix file of one profile: the tiny image, direct boot, `machine` on pci."""
    path.write_text(
        f"profiles:\n  {profile!r}:\n    matrix: {{image: debian-12-tiny, firmware: none, "
        f"machine: {machine!r}, transport: pci}}\n"
    )
    return path


def previous_latest(results: Path) -> Path:
    """A run directory `results/latest` points to before a command that must keep it."""
    earlier = results / "20200101T000000Z-smoke"
    earlier.mkdir(parents=True)
    (results / "latest").symlink_to(earlier.name)
    return earlier


def hand_record(
    cell: str, status: str, stage: str = "login", reason: str = "login"
) -> dict[str, object]:
    """A line of results.jsonl (the schema's `record`) of `cell`, its outcome its status."""
    image, firmware, machine, transport = cell.split("/")
    return {
        "cell": cell, "image": image, "firmware": firmware, "machine": machine,
        "transport": transport, "status": status, "outcome": status, "stage": stage,
        "reason": reason, "detail": "", "duration_s": 5.0, "stage_times": {}, "repeat": 0,
        "attempts": 1,
    }  # fmt: skip


def hand_run(
    where: Path, records: list[dict[str, object]], planned: list[str] | None = None
) -> Path:
    """A run directory as `harness matrix` leaves it (run.json planning `planned`, or
    the records' cells; results.jsonl of `records`), written by hand: nothing boots."""
    where.mkdir(parents=True)
    cells = planned if planned is not None else [str(r["cell"]) for r in records]
    meta = {"run": where.name, "profile": "p", "repeat": 1, "cells": cells, "host": {}}
    (where / "run.json").write_text(json.dumps(meta))
    (where / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return where
