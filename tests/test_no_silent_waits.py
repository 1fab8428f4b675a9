"""No silent waits: a build that a command starts says so first, with its expected
duration and progress; `doctor` tries the Debian mirror (a HEAD of each suite's
InRelease, short timeout) before it says `ok mirror`."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ROOT, Harness
from debian_mirror import serve_suite
from http_server import Served, Server

from harness.images.full import _mmdebstrap

SUITES = ("bookworm", "bullseye", "trixie")


@pytest.fixture
def server() -> Iterator[Server]:
    with Server() as running:
        yield running


def mirror_line(harness: Harness, mirror: str, tmp_path: Path) -> str:
    env = {"HARNESS_DEBIAN_MIRROR": mirror, "HARNESS_CACHE": str(tmp_path / "cache")}
    out = harness("doctor", env=env, timeout=120).stdout
    return next(line for line in out.splitlines() if line[5:].startswith("mirror "))


def test_doctor_says_ok_mirror_only_after_trying_it(
    server: Server, harness: Harness, tmp_path: Path
) -> None:
    for suite in SUITES:
        server.files[f"/debian/dists/{suite}/InRelease"] = Served(b"signed index")
    ok = mirror_line(harness, server.url("/debian"), tmp_path)
    assert ok.startswith("ok   mirror ") and "answers for bookworm, bullseye, trixie" in ok
    asked = sorted((r.method, r.path) for r in server.requests)
    assert asked == [("HEAD", f"/debian/dists/{suite}/InRelease") for suite in sorted(SUITES)]
    empty = mirror_line(harness, server.url("/elsewhere"), tmp_path)
    assert empty.startswith("MISS mirror ")
    assert "has no dists/bookworm/InRelease nor Release (HTTP 404)" in empty


def test_doctor_says_when_the_mirror_does_not_resolve_or_answer(
    harness: Harness, tmp_path: Path
) -> None:
    nameless = mirror_line(harness, "http://harness-test.invalid/debian", tmp_path)
    assert (
        nameless.startswith("MISS mirror ") and "harness-test.invalid does not resolve" in nameless
    )
    with socket.socket() as silent:  # accepts connections (the backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        mute = mirror_line(harness, f"http://127.0.0.1:{port}/debian", tmp_path)
    assert mute.startswith("MISS mirror ") and "does not answer within 3 s" in mute
    refused = mirror_line(harness, f"http://127.0.0.1:{port}/debian", tmp_path)
    assert refused.startswith("MISS mirror ") and "does not answer: " in refused


def test_a_build_that_run_starts_says_so_first_with_duration_and_progress(
    server: Server, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "HARNESS_CACHE": str(tmp_path / "cache"),
        "HARNESS_DEBIAN_MIRROR": serve_suite(server, ROOT / "images" / "cache"),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "harness.cli", "run", "debian-12-tiny/none/virt/mmio", "--quiet",
         "--out", str(tmp_path / "out")],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        timeout=600, check=False,
    )  # fmt: skip
    lines = proc.stdout.splitlines()
    assert proc.returncode == 0, proc.stdout
    assert lines[0] == (
        "debian-12-tiny is not built: building it now, about 10 s "
        "(`harness images build debian-12-tiny` builds it ahead of a run)"
    )
    assert lines[1] == "debian-12-tiny: reading Debian bookworm's package index"
    assert lines[2].startswith("debian-12-tiny: fetching linux-image-")
    assert lines[3].startswith("debian-12-tiny: assembling (")
    assert lines[4].startswith("debian-12-tiny: built in ")
    assert lines[-1].startswith("PASS debian-12-tiny/none/virt/mmio login ")


def test_mmdebstrap_tells_its_progress_while_it_runs(tmp_path: Path) -> None:
    told: list[str] = []
    script = (
        "echo 'I: downloading packages'; sleep 1.6; echo 'I: running maintainer scripts'; sleep 1.6"
    )
    status, last = _mmdebstrap(
        ["sh", "-c", script], tmp_path / "out.log", "debian-12-full", 1320, told.append, None, 1
    )
    assert (status, last) == (0, "I: running maintainer scripts")
    assert told[0] == "debian-12-full: mmdebstrap 1 s of ~22 min: I: downloading packages"
    assert told[-1].endswith(": I: running maintainer scripts") and len(told) >= 2


def test_an_interrupted_mmdebstrap_is_stopped_with_everything_it_started(tmp_path: Path) -> None:
    marker = f"sleep 7{os.getpid() % 1000}.5"  # names this test's processes
    program = (
        "import sys\nfrom pathlib import Path\nfrom harness.images.full import _mmdebstrap\n"
        f"_mmdebstrap(['sh', '-c', '{marker} & {marker}; echo'], Path(sys.argv[1]), 'x', 60, print, None)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", program, str(tmp_path / "out.log")], cwd=ROOT,
        start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip

    def running() -> list[int]:
        found = []
        for entry in Path("/proc").glob("[0-9]*"):
            try:
                if marker.encode() in (entry / "cmdline").read_bytes().replace(b"\0", b" "):
                    found.append(int(entry.name))
            except OSError:
                continue
        return found

    try:
        deadline = time.monotonic() + 30
        while len(running()) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(running()) >= 2  # the shell's two sleeps
        os.kill(proc.pid, signal.SIGINT)  # the harness only: mmdebstrap has its own group
        proc.communicate(timeout=30)
        assert proc.returncode != 0
        time.sleep(0.5)
        assert running() == []
    finally:
        for pid in running():  # what a failure left, by pid
            os.kill(pid, signal.SIGKILL)
