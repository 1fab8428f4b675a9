"""Signals to `harness run` through the real CLI and a real boot: whatever arrives and
however often, the cell's result is written once, the stage reached kept, QEMU and the
work files gone; and a signal that ends an --interactive session keeps the verdict
already told (found by a new-user trial: each of these lost the result)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pexpect
import pytest
from conftest import ROOT, qemu_processes

from harness.model import Image

CELL = "debian-12-tiny/none/virt/pci"


def as_from_a_terminal() -> None:
    """In the harness's process before it starts: SIGHUP and SIGINT as a shell at a
    terminal leaves them, where the suite itself runs under nohup or in a background job
    (ignored signals stay ignored in the harness, rightly)."""
    for signum in (signal.SIGHUP, signal.SIGINT):
        signal.signal(signum, signal.SIG_DFL)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return b""


@pytest.mark.parametrize(
    ("signals", "status", "closing"),
    [
        ([signal.SIGINT], 130, "interrupted"),
        ([signal.SIGINT] * 3, 130, "interrupted"),  # a key's auto-repeat, 10 ms apart
        ([signal.SIGHUP], 129, "hung up"),  # the terminal closed
        ([signal.SIGTERM, signal.SIGINT], 143, "terminated"),  # the first one counts
    ],
    ids=["ctrl-c", "ctrl-c x3", "sighup", "sigterm then ctrl-c"],
)
def test_signals_in_the_kernel_write_the_result_once(
    signals: list[signal.Signals], status: int, closing: str, tiny: Image, tmp_path: Path
) -> None:
    child = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "run", CELL, "--out", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT, start_new_session=True,
        preexec_fn=as_from_a_terminal,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while not re.search(rb"\[\s*\d+\.\d+\] ", _read(tmp_path / "console.log")):
        assert time.monotonic() < deadline, "the guest's kernel never started"
        time.sleep(0.05)
    ours = [p for p in qemu_processes() if str(tmp_path) in Path(f"/proc/{p}/cmdline").read_text()]
    time.sleep(0.2)  # the line is logged just before the watcher reads it
    for signum in signals:
        os.kill(child.pid, signum)
        time.sleep(0.01)
    _, stderr = child.communicate(timeout=20)
    assert child.returncode == status, stderr
    lines = stderr.splitlines()
    assert lines[-1] == f"harness run: {closing}".encode(), stderr
    assert b"" not in lines  # no blank line before it (stderr is not a terminal)
    assert not [p for p in ours if Path(f"/proc/{p}").exists()]
    assert not (tmp_path / "work").exists()
    result = json.loads((tmp_path / "result.json").read_text())
    assert (result["status"], result["reason"]) == ("error", "interrupted")
    assert "kernel" in result["stage_times"] and result["stage"] != "none", result


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_a_signal_in_the_interactive_session_keeps_the_verdict(
    signum: signal.Signals, status: int, tiny: Image, tmp_path: Path
) -> None:
    child = pexpect.spawn(
        sys.executable, ["-m", "harness.cli", "run", CELL, "--interactive", "--out", str(tmp_path)],
        cwd=str(ROOT), timeout=90, encoding="utf-8", codec_errors="replace",
        preexec_fn=as_from_a_terminal,
    )  # fmt: skip
    try:
        child.expect(rf"PASS {re.escape(CELL)} login \d+\.\ds")
        child.expect_exact("[harness: the console is yours; Ctrl-] returns, Ctrl-A X quits QEMU]")
        child.kill(signum)
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == status, child.before
    result = json.loads((tmp_path / "result.json").read_text())
    assert (result["status"], result["stage"], result["reason"]) == ("pass", "login", "login")
    assert not (tmp_path / "work").exists()


@pytest.mark.parametrize(("nohup", "status"), [(False, 129), (True, 130)], ids=["", "nohup"])
def test_a_terminal_closed_in_the_interactive_session_keeps_the_verdict(
    nohup: bool, status: int, tiny: Image, tmp_path: Path
) -> None:
    # The terminal window closed: the pty's master goes, the harness reads EIO (and
    # gets SIGHUP, unless ignored). The verdict was kept only when the session ended:
    # never, here; and with SIGHUP ignored, pexpect read the dead terminal for ever.
    def start() -> None:
        as_from_a_terminal()
        if nohup:
            signal.signal(signal.SIGHUP, signal.SIG_IGN)

    child = pexpect.spawn(
        sys.executable, ["-m", "harness.cli", "run", CELL, "--interactive", "--out", str(tmp_path)],
        cwd=str(ROOT), timeout=90, encoding="utf-8", codec_errors="replace", preexec_fn=start,
    )  # fmt: skip
    child.expect_exact("[harness: the console is yours; Ctrl-] returns, Ctrl-A X quits QEMU]")
    result = json.loads((tmp_path / "result.json").read_text())  # written before the session
    assert (result["status"], result["stage"], result["reason"]) == ("pass", "login", "login")
    os.close(child.child_fd)
    deadline = time.monotonic() + 20
    while (ended := os.waitpid(child.pid, os.WNOHANG))[0] == 0:
        if time.monotonic() > deadline:
            os.kill(child.pid, signal.SIGKILL)
            pytest.fail("the harness did not end after its terminal closed")
        time.sleep(0.05)
    assert os.waitstatus_to_exitcode(ended[1]) == status
    result = json.loads((tmp_path / "result.json").read_text())
    assert (result["status"], result["stage"], result["reason"]) == ("pass", "login", "login")
    assert not (tmp_path / "work").exists()
    assert not [
        p for p in qemu_processes() if str(tmp_path) in Path(f"/proc/{p}/cmdline").read_text()
    ]


def test_a_matrix_whose_terminal_closes_writes_its_reports(tiny: Image, tmp_path: Path) -> None:
    # Its output to the hung-up terminal raised EIO: no reports were written, exit 1
    child = pexpect.spawn(
        sys.executable,
        ["-m", "harness.cli", "matrix", "-k", "debian-12-tiny/none/virt-2.6", "-j", "1",
         "--results", str(tmp_path)],
        cwd=str(ROOT), timeout=90, encoding="utf-8", codec_errors="replace",
        preexec_fn=as_from_a_terminal,
    )  # fmt: skip
    child.expect(rf"run {re.escape(str(tmp_path))}/\S+")
    (run,) = tmp_path.iterdir()
    deadline = time.monotonic() + 30
    while not list((run / "cells").rglob("console.log")):  # the first cell boots
        assert time.monotonic() < deadline, "no cell started"
        time.sleep(0.1)
    os.close(child.child_fd)
    _, status = os.waitpid(child.pid, 0)
    assert os.waitstatus_to_exitcode(status) == 129
    assert {"report.html", "report.md", "results.json", "junit.xml"} <= {
        p.name for p in run.iterdir()
    }
    assert not [
        p for p in qemu_processes() if str(tmp_path) in Path(f"/proc/{p}/cmdline").read_text()
    ]


def test_a_run_whose_reader_goes_away_boots_on_to_its_verdict(tiny: Image, tmp_path: Path) -> None:
    # `harness run CELL | head -2`, or a terminal closed under nohup: the console's
    # view raised EPIPE/EIO, recorded as the cell's host-error at stage none
    child = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "run", CELL, "--out", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT, preexec_fn=as_from_a_terminal,
    )  # fmt: skip
    assert child.stdout is not None and child.stderr is not None
    child.stdout.readline()  # the QEMU command line, then the reader is gone
    child.stdout.close()
    assert child.wait(timeout=90) == 0
    assert b"harness run: stdout was closed; the boot goes on" in child.stderr.read()
    result = json.loads((tmp_path / "result.json").read_text())
    assert (result["status"], result["stage"], result["reason"]) == ("pass", "login", "login")
    assert not (tmp_path / "work").exists()
