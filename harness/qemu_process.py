"""One QEMU process, owned from launch to reap.

QEMU runs on a pseudo-terminal (pexpect), in a session and process group of its own,
so a Ctrl-C at the user's terminal reaches the harness, not QEMU, and stopping the
group stops everything QEMU started. PR_SET_PDEATHSIG makes the kernel kill QEMU if
the harness itself is killed (kill -9 leaves no orphan). `__exit__` is the one place a
QEMU is stopped: SIGTERM, a grace period, SIGKILL, then reaped (`kill` stops it at
once, when nothing QEMU would still write on a clean exit is kept).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import signal
import termios
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import pexpect

from harness.errors import QemuLaunchError

_PR_SET_PDEATHSIG = 1
READ_SIZE = 1 << 16


class _Spawn(pexpect.spawn):  # type: ignore[misc]
    """pexpect.spawn that lets the child inherit given descriptors (ptyprocess closes
    every other one before the child runs; pexpect does not pass its pass_fds on)."""

    def __init__(self, *args: Any, pass_fds: tuple[int, ...] = (), **kwargs: Any):
        self._pass_fds = pass_fds
        super().__init__(*args, **kwargs)

    def _spawnpty(self, args: list[str], **kwargs: Any) -> Any:
        return super()._spawnpty(args, pass_fds=self._pass_fds, **kwargs)


class QemuProcess:
    def __init__(
        self,
        argv: list[str],
        stderr_path: Path,
        grace_s: float = 3.0,
        pass_fds: tuple[int, ...] = (),
    ):
        self.argv = argv
        self.stderr_path = stderr_path
        self.grace_s = grace_s
        self.pass_fds = pass_fds  # inherited by QEMU (its end of the QMP socketpair)
        self._child: Any = None

    def __enter__(self) -> QemuProcess:
        self.launch()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def launch(self) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        stderr_path = str(self.stderr_path)
        pass_fds = self.pass_fds

        def in_child() -> None:
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
            # Python opens descriptors close-on-exec; only the child's copies are opened up.
            for fd in pass_fds:
                os.set_inheritable(fd, True)
            # The terminal must not turn the guest's \n into \r\n: the log keeps the
            # guest's own bytes.
            attrs = termios.tcgetattr(1)
            attrs[1] &= ~termios.ONLCR
            termios.tcsetattr(1, termios.TCSANOW, attrs)
            fd = os.open(stderr_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(fd, 2)
            os.close(fd)

        try:
            self._child = _Spawn(
                self.argv[0], self.argv[1:], echo=False, preexec_fn=in_child,
                dimensions=(50, 160), pass_fds=self.pass_fds,
            )  # fmt: skip
        except (pexpect.ExceptionPexpect, OSError) as e:  # not found, not executable
            raise QemuLaunchError("QEMU did not start", self.argv, "not started", str(e)) from e
        # pexpect sleeps delaybeforesend (0.05 s) before each send, for a program that
        # reads a password before turning its echo off. The watcher answers a prompt
        # only after it is printed and quiet (conversation.py), and the guest's login
        # and getpass turn echo off before printing it: 50 ms of each of the four
        # sends after the login prompt, for nothing (pexpect's docs: delaybeforesend).
        self._child.delaybeforesend = None

    @property
    def pid(self) -> int:
        return int(self._child.pid)

    def read(self, timeout: float) -> bytes | None:
        """Console bytes: b"" when none came within `timeout`, None once QEMU is gone."""
        try:
            data: bytes = self._child.read_nonblocking(READ_SIZE, timeout=timeout)
            return data
        except pexpect.TIMEOUT:
            return b""
        except pexpect.EOF:
            return None

    def send(self, text: str) -> None:
        self._child.send(text.encode())

    def interact(self) -> None:
        """Hands the console to the user until they press Ctrl-]. Raises OSError when
        the user's terminal goes away (closed: EIO)."""
        try:
            self._child.interact(input_filter=_end_at_eof)
        except termios.error as e:  # pexpect putting the terminal's mode back
            raise OSError(*e.args) from e
        except EOFError as e:
            raise OSError(errno.EIO, "the terminal went away") from e

    def exit_status(self, wait_s: float = 2.0) -> str:
        """How QEMU ended: "0", "1", "signal 9"..., or "running"."""
        deadline = time.monotonic() + wait_s
        while self._child.isalive() and time.monotonic() < deadline:
            time.sleep(0.02)
        if self._child.isalive():
            return "running"
        if self._child.signalstatus is not None:
            return f"signal {self._child.signalstatus}"
        return str(self._child.exitstatus)

    def stderr(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")
        except OSError:
            return ""

    def kill(self) -> None:
        """Stops QEMU with SIGKILL, no grace period, and reaps it: for a guest
        already judged whose disk overlay and VARS copy are thrown away (a clean
        exit only flushes those, and prints that it was signalled)."""
        self.stop(clean=False)

    def stop(self, clean: bool = True) -> None:
        """SIGTERM, `grace_s` for QEMU to exit cleanly (it flushes its disks), then
        SIGKILL (at once unless `clean`); reaped either way. A second call finds it
        reaped and does nothing."""
        child = self._child
        if child is None:
            return
        try:
            if child.isalive() and not clean:
                self._signal_group(signal.SIGKILL)
                child.wait()
            elif child.isalive():
                self._signal_group(signal.SIGTERM)
                deadline = time.monotonic() + self.grace_s
                while child.isalive() and time.monotonic() < deadline:
                    time.sleep(0.02)
                if child.isalive():
                    self._signal_group(signal.SIGKILL)
                    child.wait()
        finally:
            if not child.isalive():
                # Reaped already: ptyprocess's pause for the kernel to update the
                # status after closing the terminal (0.1 s) has nothing to wait for.
                child.ptyproc.delayafterclose = 0
            child.close(force=True)

    def _signal_group(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signum)


def _end_at_eof(data: bytes) -> bytes:
    """pexpect's interact reads the user's terminal again and again at its end (a hung-up
    terminal reads as b"" for ever, a busy loop where SIGHUP is ignored, as under nohup)."""
    if not data:
        raise EOFError
    return data
