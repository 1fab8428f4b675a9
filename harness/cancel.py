"""Stopping the work of builds (images, downloads, firmware and QEMU builds) that run
on worker threads when a command is interrupted.

Python delivers Ctrl-C and SIGTERM (cli.py turns it into KeyboardInterrupt) to the
main thread only. The main thread sets a cancel event (a threading.Event); the
builders check it between their steps, in their download and extraction loops, and
while they wait for a child, and stop as the main thread stops: by raising
KeyboardInterrupt (Cancelled), after stopping the child's process group. A build on
the main thread itself (`harness images build`) gets the KeyboardInterrupt directly,
in the same waits, and stops its child the same way.

Each child runs in a process group of its own (start_new_session), so a terminal's
Ctrl-C reaches the harness only and the harness stops the child's whole group (apt's
download methods, mmdebstrap's chroot helpers) itself: SIGTERM, a grace, SIGKILL.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any, Literal, overload

POLL_S = 0.1  # how often a wait looks at the event: the bound on the time to stop
GRACE_S = 10.0  # a child's time to clean up after SIGTERM (mmdebstrap unmounts)

Cancel = threading.Event | None  # None: nothing but the thread's own Ctrl-C stops it


class Cancelled(KeyboardInterrupt):
    """A build stopped because its command was interrupted on another thread: handled
    wherever an interruption is, as the KeyboardInterrupt it is."""


def check(cancel: Cancel) -> None:
    """Raises Cancelled when `cancel` is set."""
    if cancel is not None and cancel.is_set():
        raise Cancelled("the command was interrupted")


def sleep(cancel: Cancel, seconds: float) -> None:
    """time.sleep that ends early, raising Cancelled, once `cancel` is set."""
    if cancel is None:
        time.sleep(seconds)
    elif cancel.wait(seconds):
        raise Cancelled("the command was interrupted")


@overload
def run(
    argv: Sequence[str],
    cancel: Cancel,
    *,
    text: Literal[True],
    input: str | None = None,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
) -> subprocess.CompletedProcess[str]: ...
@overload
def run(
    argv: Sequence[str],
    cancel: Cancel,
    *,
    text: Literal[False] = False,
    input: bytes | None = None,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
) -> subprocess.CompletedProcess[bytes]: ...
def run(
    argv: Sequence[str],
    cancel: Cancel,
    *,
    text: bool = False,
    input: str | bytes | None = None,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
) -> subprocess.CompletedProcess[Any]:
    """subprocess.run(argv, capture_output=True, check=False) in a process group of its
    own, stopped as a whole (stop_group) when `cancel` is set (raising Cancelled), when
    the waiting thread is interrupted, or after `timeout` seconds (raising
    subprocess.TimeoutExpired, as subprocess.run does). Raises OSError when argv[0]
    cannot be started."""
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL if input is None else subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=cwd,
        env=env,
        text=text,
        start_new_session=True,
    )
    end = None if timeout is None else time.monotonic() + timeout
    try:
        while True:
            check(cancel)
            step = POLL_S if end is None else max(0.0, min(POLL_S, end - time.monotonic()))
            try:
                # Called again after a timeout, communicate loses no output and goes
                # on sending the input it was first given; given input again, it
                # raises ValueError (subprocess's documentation, CPython 3.11).
                out, err = proc.communicate(input, timeout=step)
                break
            except subprocess.TimeoutExpired:
                if end is not None and time.monotonic() >= end:
                    raise
                input = None
    except BaseException:
        stop_group(proc)
        raise
    finally:
        _close(proc.stdin, proc.stdout, proc.stderr)
    return subprocess.CompletedProcess(list(argv), proc.returncode, out, err)


def wait(proc: subprocess.Popen[Any], cancel: Cancel, timeout: float | None = None) -> int | None:
    """The exit status of `proc` (started with start_new_session=True), or None while
    it still runs after `timeout` seconds (None: no end). Its group is stopped when
    `cancel` is set (raising Cancelled) or the waiting thread is interrupted."""
    end = None if timeout is None else time.monotonic() + timeout
    try:
        while True:
            check(cancel)
            step = POLL_S if end is None else min(POLL_S, end - time.monotonic())
            if step <= 0:
                return proc.poll()
            try:
                return proc.wait(step)
            except subprocess.TimeoutExpired:
                continue
    except BaseException:
        stop_group(proc)
        raise


def stop_group(proc: subprocess.Popen[Any], grace_s: float = GRACE_S) -> None:
    """Stops the process group `proc` leads: SIGTERM, up to `grace_s` seconds to end,
    then SIGKILL; reaps `proc`."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(grace_s)
            return
        except subprocess.TimeoutExpired:
            continue
    proc.wait()


def _close(*streams: IO[Any] | None) -> None:
    for stream in streams:
        if stream is not None:
            stream.close()
