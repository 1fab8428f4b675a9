"""Shared fixtures. Real things only: images are built from Debian's arm64 packages
(once, then cached in images/cache), QEMU is the host's, boots are real."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from harness.catalog import Catalog, Workspace
from harness.host import Host, discover
from harness.model import Image

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def _results_state(results: Path) -> tuple[list[str], str]:
    """What a test could change in the checkout's results/: its entries (two deep)
    and where results/latest points."""
    if not results.is_dir():
        return [], ""
    entries = sorted(str(p.relative_to(results)) for p in results.glob("*/*"))
    entries += sorted(p.name for p in results.iterdir())
    latest = results / "latest"
    return entries, os.readlink(latest) if latest.is_symlink() else ""


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
