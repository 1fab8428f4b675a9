"""The libvirt daemon that libvirt cells (harness/libvirt_boot.py) run on: whether it
is usable here, and starting it where the harness set the host up itself.

The connection is `qemu:///system` (`$HARNESS_LIBVIRT_URI` overrides it): for root,
as in CI, that is the system daemon. `python -m harness.libvirt_host` (run by `make
setup`) starts `virtlogd -d` and `libvirtd -d` when they are not running, as root on
a host with Debian's libvirt-daemon and libvirt-daemon-driver-qemu. What that needs,
measured on Debian 12 (libvirt 9.0) without systemd: /var/log/libvirt to exist (both
daemons log there and exit without it), virtlogd running (QEMU's output goes through
it), a `libvirt-qemu` user (the QEMU driver resolves its built-in default user before
it reads qemu.conf, and stops without it) and qemu.conf with `user`/`group` root (as
libvirt-qemu, libvirt's DAC driver would chown the disks and their backing chain:
the shared cached base images). No security driver or cgroup setting was needed.
tools/setup-host makes the user and qemu.conf only where no qemu.conf existed (or one
it wrote itself): a host whose libvirt someone configured is never changed.
"""

from __future__ import annotations

import os
import queue
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

URI_ENV = "HARNESS_LIBVIRT_URI"
DEFAULT_URI = "qemu:///system"
LOG_DIR = Path("/var/log/libvirt")
INSTALL = "apt-get install libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients"
BINDING = "pip install libvirt-python (builds against libvirt-dev with pkg-config)"
START = "python -m harness.libvirt_host (as root; `make setup` runs it)"
# The daemons' own pid files (libvirt's src/remote/libvirtd.conf, src/logging/).
PID_FILES = {"virtlogd": Path("/run/virtlogd.pid"), "libvirtd": Path("/run/libvirtd.pid")}
# libvirtd answers a connection in milliseconds; a stopped (SIGSTOP) or hung one never
# does, and libvirt's client waits for it without a timeout of its own.
ANSWER_S = 10.0


@dataclass(frozen=True)
class Daemon:
    """What a libvirt cell would get here: `version` ("9.0.0") when usable, else why
    not (`why`, one line) and how to get it (`fix`)."""

    uri: str
    version: str = ""
    why: str = ""
    fix: str = ""
    hung: bool = False  # running, but it did not answer within ANSWER_S

    @property
    def usable(self) -> bool:
        return not self.why


def uri(environ: Mapping[str, str]) -> str:
    return environ.get(URI_ENV) or DEFAULT_URI


# The part of libvirt-python (which ships no type information) the harness calls, as
# its libvirt.py declares it, so mypy checks each call; `binding` is the one import.

if TYPE_CHECKING:

    class LibvirtError(Exception):
        """libvirt.libvirtError: every failed call raises it."""

        def get_error_message(self) -> str | None: ...


class Stream(Protocol):
    """libvirt.virStream: a domain's console, blocking."""

    def recv(self, nbytes: int) -> bytes: ...
    def send(self, data: bytes) -> int: ...
    def abort(self) -> int: ...


class Domain(Protocol):
    """libvirt.virDomain."""

    def openConsole(self, dev_name: str | None, st: Stream, flags: int) -> int: ...
    def UUID(self) -> bytes: ...  # libvirt.py says str; the C binding returns the 16 bytes
    def XMLDesc(self, flags: int) -> str: ...
    def resume(self) -> int: ...
    def isActive(self) -> int: ...
    def destroy(self) -> int: ...
    def name(self) -> str: ...


class Connection(Protocol):
    """libvirt.virConnect."""

    def createXML(self, xmlDesc: str, flags: int) -> Domain: ...
    def newStream(self, flags: int) -> Stream: ...
    def lookupByUUID(self, uuid: bytes) -> Domain: ...
    def lookupByName(self, name: str) -> Domain: ...
    def listAllDomains(self, flags: int) -> list[Domain]: ...
    def getLibVersion(self) -> int: ...
    def close(self) -> int: ...


class Binding(Protocol):
    """The libvirt module."""

    VIR_DOMAIN_START_PAUSED: int
    VIR_DOMAIN_START_AUTODESTROY: int
    VIR_DOMAIN_CONSOLE_FORCE: int

    @property
    def libvirtError(self) -> type[LibvirtError]: ...
    def open(self, name: str) -> Connection: ...


def binding() -> Binding | None:
    """The libvirt module, with libvirt's default error handler (which prints every
    error to stderr) silenced: errors reach the harness as exceptions. None when
    libvirt-python is not installed."""
    try:
        import libvirt
    except ImportError:
        return None
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
    module: Binding = libvirt
    return module


def loaded() -> Binding:
    """The libvirt module, for code that runs once `probe` found libvirt usable.
    Raises CellSkipped when libvirt-python is not installed."""
    from harness.errors import CellSkipped

    libvirt = binding()
    if libvirt is None:
        raise CellSkipped("the libvirt Python binding is not installed")
    return libvirt


def version_text(number: int) -> str:
    """libvirt's packed version (major * 1,000,000 + minor * 1,000 + release) as text."""
    return f"{number // 1_000_000}.{number // 1000 % 1000}.{number % 1000}"


def probe(target: str, answer_s: float = ANSWER_S) -> Daemon:
    """Connects to `target` once and says whether libvirt cells can run there. A
    daemon that does not answer within `answer_s` seconds is `hung` (its connection
    is left to a daemon thread, closed if it ever answers): never waits longer."""
    libvirt = binding()
    if libvirt is None:
        return Daemon(target, why="the libvirt Python binding is not installed", fix=BINDING)
    answers: queue.Queue[tuple[str, str]] = queue.Queue()

    def connect() -> None:
        try:
            conn = libvirt.open(target)
            try:
                answers.put(("version", version_text(conn.getLibVersion())))
            finally:
                conn.close()
        except libvirt.libvirtError as e:
            answers.put(("error", e.get_error_message() or str(e)))

    threading.Thread(target=connect, name="libvirt-probe", daemon=True).start()
    try:
        kind, text = answers.get(timeout=answer_s)
    except queue.Empty:
        return _hung(target, answer_s)
    if kind == "version":
        return Daemon(target, version=text)
    fix = START if shutil.which("libvirtd") else INSTALL
    if target != DEFAULT_URI:  # starting the system daemon would not help this URI
        fix = f"check ${URI_ENV} ({target}), or unset it for {DEFAULT_URI}"
    return Daemon(target, why=f"no libvirt at {target}: {text}", fix=fix)


def _hung(target: str, answer_s: float) -> Daemon:
    """A daemon that accepted the connection but never answered: stopped or hung."""
    why = f"the libvirt daemon at {target} does not answer within {answer_s:g} s (stopped or hung)"
    if target != DEFAULT_URI:
        return Daemon(target, why=why, fix=f"check the daemon behind ${URI_ENV}", hung=True)
    pid = _pid("libvirtd")
    if pid is None:
        return Daemon(target, why=why, fix="restart libvirtd", hung=True)
    why = f"libvirtd (pid {pid}) at {target} does not answer within {answer_s:g} s"
    fix = f"kill -CONT {pid} if it was stopped, else restart it: kill {pid}; {START}"
    return Daemon(target, why=why, fix=fix, hung=True)


def _pid(name: str) -> int | None:
    """The pid of daemon `name` from its pid file, if that process exists."""
    try:
        pid = int(PID_FILES[name].read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def _running(name: str) -> bool:
    return _pid(name) is not None


def start(target: str, wait_s: float = 15.0) -> Daemon:
    """Starts virtlogd and libvirtd (daemonized: they outlive the harness, as a
    system service would) unless they are running, then waits up to `wait_s` seconds
    for `target` to answer. Returns what probe() then says; never raises."""
    found = probe(target)
    if found.usable or found.hung or binding() is None:
        return found  # a hung daemon is running: starting another would not help
    if os.geteuid() != 0:
        return Daemon(target, why=f"{found.why}; only root starts the system daemon", fix=START)
    missing = [d for d in PID_FILES if shutil.which(d) is None]
    if missing:
        return Daemon(target, why=f"{' and '.join(missing)} not installed", fix=INSTALL)
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    for daemon in PID_FILES:
        if not _running(daemon):
            proc = subprocess.run([daemon, "-d"], capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                first = (proc.stderr.strip().splitlines() or [""])[0]
                return Daemon(target, why=f"{daemon} -d failed: {first}", fix=INSTALL)
    deadline = time.monotonic() + wait_s
    while True:
        found = probe(target)
        if found.usable or time.monotonic() >= deadline:
            return found
        time.sleep(0.2)


def main() -> int:
    """`python -m harness.libvirt_host`: start the daemon if it can be; exit 0 when
    libvirt is usable, 1 with the reason and the fix on one line when not."""
    found = start(uri(os.environ))
    if found.usable:
        print(f"libvirt {found.version} at {found.uri}")
        return 0
    print(f"libvirt not usable: {found.why} (fix: {found.fix})", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
