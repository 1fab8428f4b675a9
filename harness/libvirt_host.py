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
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

URI_ENV = "HARNESS_LIBVIRT_URI"
DEFAULT_URI = "qemu:///system"
LOG_DIR = Path("/var/log/libvirt")
INSTALL = "apt-get install libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients"
BINDING = "pip install libvirt-python (builds against libvirt-dev with pkg-config)"
START = "python -m harness.libvirt_host (as root; `make setup` runs it)"
# The daemons' own pid files (libvirt's src/remote/libvirtd.conf, src/logging/).
PID_FILES = {"virtlogd": Path("/run/virtlogd.pid"), "libvirtd": Path("/run/libvirtd.pid")}


@dataclass(frozen=True)
class Daemon:
    """What a libvirt cell would get here: `version` ("9.0.0") when usable, else why
    not (`why`, one line) and how to get it (`fix`)."""

    uri: str
    version: str = ""
    why: str = ""
    fix: str = ""

    @property
    def usable(self) -> bool:
        return not self.why


def uri(environ: Mapping[str, str]) -> str:
    return environ.get(URI_ENV) or DEFAULT_URI


def binding() -> Any:
    """The libvirt module, with libvirt's default error handler (which prints every
    error to stderr) silenced: errors reach the harness as exceptions. None when
    libvirt-python is not installed."""
    try:
        import libvirt  # type: ignore[import-untyped]
    except ImportError:
        return None
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
    return libvirt


def version_text(number: int) -> str:
    """libvirt's packed version (major * 1,000,000 + minor * 1,000 + release) as text."""
    return f"{number // 1_000_000}.{number // 1000 % 1000}.{number % 1000}"


def probe(target: str) -> Daemon:
    """Connects to `target` once and says whether libvirt cells can run there."""
    libvirt = binding()
    if libvirt is None:
        return Daemon(target, why="the libvirt Python binding is not installed", fix=BINDING)
    try:
        conn = libvirt.open(target)
    except libvirt.libvirtError as e:
        fix = START if shutil.which("libvirtd") else INSTALL
        return Daemon(target, why=f"no libvirt at {target}: {e.get_error_message()}", fix=fix)
    try:
        return Daemon(target, version=version_text(conn.getLibVersion()))
    finally:
        conn.close()


def _running(name: str) -> bool:
    try:
        os.kill(int(PID_FILES[name].read_text().strip()), 0)
    except (OSError, ValueError):
        return False
    return True


def start(target: str, wait_s: float = 15.0) -> Daemon:
    """Starts virtlogd and libvirtd (daemonized: they outlive the harness, as a
    system service would) unless they are running, then waits up to `wait_s` seconds
    for `target` to answer. Returns what probe() then says; never raises."""
    found = probe(target)
    if found.usable or binding() is None:
        return found
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
    libvirt is usable, 1 with the reason and the fix on one line each when not."""
    found = start(uri(os.environ))
    if found.usable:
        print(f"libvirt {found.version} at {found.uri}")
        return 0
    print(f"libvirt not usable: {found.why}\n  fix: {found.fix}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
