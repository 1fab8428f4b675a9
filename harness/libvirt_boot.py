"""Boots one cell through libvirt: a transient domain from the cell's domain XML
(harness/export/libvirt.py), its serial console read through libvirt's console API,
judged by the same watcher and the same watch loop as a direct boot (harness/boot.py),
which types the same login and probe.

The libvirt Python binding (libvirt-python) rather than virsh: one connection owns
the domain, created with VIR_DOMAIN_START_AUTODESTROY, so libvirtd itself destroys it
when that connection closes, also when the harness is killed with SIGKILL and no code
of ours runs (virsh would need a guard process for that); the domain is created
paused and resumed only once the console stream is open, so no early output is lost.

The domain is named `harness-<random>-<cell>`: the harness only ever destroys domains
it created itself. Its disk is the cell's qcow2 overlay and its nvram the cell's VARS
copy, both in the cell's work/ directory, removed with it. libvirt's domain log
(QEMU's stderr and the command line libvirt generated) is moved into the cell's
directory as qemu.stderr, and the domain as libvirt completed it (the addresses and
controllers it chose) is kept as domain.live.xml.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import secrets
import shlex
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from harness import virt_install
from harness.boot import Boot, BootOptions, Show, _drain, _watch
from harness.cellfiles import prepare, work_dir
from harness.console.marks import ConsoleLog
from harness.devices import launcher
from harness.errors import CellSkipped, QemuLaunchError
from harness.export.libvirt import domain_xml, overlay_command, placement
from harness.host import Host
from harness.judge import judged, watcher_for
from harness.libvirt_host import loaded, probe, uri
from harness.model import Cell, Firmware, Image

if TYPE_CHECKING:
    from harness.libvirt_host import Connection, Domain, Stream

READ_SIZE = 1 << 16
# A virt-install cell's domain.xml with the firmware libvirt picked written out, which
# cmdline.sh boots (virt_install.pinned_xml)
PINNED = "domain.pinned.xml"
DOMAIN_LOGS = Path("/var/log/libvirt/qemu")
# libvirt's line when the domain stops (src/qemu/qemu_process.c qemuProcessStop)
_SHUTDOWN = re.compile(r"shutting down, reason=(\w+)")


def domain_name(cell: Cell) -> str:
    """A name no one else's domain has: the harness prefix, a random part, the cell."""
    words = re.sub(r"[^A-Za-z0-9_.-]+", "_", cell.id).strip("_")
    return f"harness-{secrets.token_hex(4)}-{words}"[:200]


class DomainConsole:
    """A transient domain and its serial console, from creation to destruction.

    `read`, `send`, `exit_status`, `stderr` and `argv` are those of QemuProcess, so the
    watch loop drives either. The console stream is blocking, read by one thread into
    a queue. While it waits in that stream, libvirt's client answers no other call
    on the same connection (measured: virDomainIsActive then waits for ever), so
    `conn` creates the domain (and holds it: autodestroy) and carries the console,
    `control` does everything else. `__exit__` is the one place the domain is
    destroyed.
    """

    def __init__(self, conn: Connection, control: Connection, xml: str, name: str, log_path: Path):
        self._conn = conn
        self._control = control
        self._xml = xml
        self.name = name
        self.log_path = log_path
        self.argv: list[str] = []
        self.live_xml = ""  # the domain as libvirt completed it: the addresses it chose
        self._dom: Domain | None = None
        self._stream: Stream | None = None
        self._chunks: queue.Queue[bytes | None] = queue.Queue()
        self._ended = False
        self._destroyed = False
        self._pump_thread = threading.Thread(target=self._pump, name=name, daemon=True)

    def __enter__(self) -> DomainConsole:
        libvirt = loaded()
        flags = libvirt.VIR_DOMAIN_START_PAUSED | libvirt.VIR_DOMAIN_START_AUTODESTROY
        try:
            self._dom = created = self._conn.createXML(self._xml, flags)
            self._stream = stream = self._conn.newStream(0)
            created.openConsole(None, stream, libvirt.VIR_DOMAIN_CONSOLE_FORCE)
            self._dom = dom = self._control.lookupByUUID(created.UUID())
            self._pump_thread.start()
            self.argv = read_argv(self.log_path)
            self.live_xml = dom.XMLDesc(0)
            dom.resume()
        except libvirt.libvirtError as e:
            self.stop()
            message = "libvirt did not start the domain"
            # an error the binding raised itself carries no libvirt message (None)
            stderr = e.get_error_message() or str(e)
            raise QemuLaunchError(message, self.argv, "not started", stderr) from e
        except BaseException:
            # Ctrl-C or SIGTERM while the domain starts (measured: it lands as createXML
            # returns, before its result is kept): `with` calls no __exit__ when
            # __enter__ raises, and autodestroy at close would stop the domain only
            # after the harness moved its log, which libvirt's last line re-creates.
            self.stop()
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _pump(self) -> None:
        libvirt = loaded()
        stream = self._stream  # started once the stream is open
        while stream is not None:
            try:
                data = stream.recv(READ_SIZE)
            except libvirt.libvirtError:
                data = b""
            if not data:
                self._chunks.put(None)
                return
            self._chunks.put(bytes(data))
        self._chunks.put(None)

    def read(self, timeout: float) -> bytes | None:
        """Console bytes: b"" when none came within `timeout`, None once it closed."""
        if self._ended:
            return None
        try:
            first = self._chunks.get(timeout=max(timeout, 0.0))
        except queue.Empty:
            return b""
        data = [first]
        while data[-1] is not None and not self._chunks.empty():
            data.append(self._chunks.get_nowait())
        if data[-1] is None:
            self._ended = True
            data.pop()
            return b"".join(d for d in data if d) or None
        return b"".join(d for d in data if d)

    def send(self, text: str) -> None:
        libvirt = loaded()
        with contextlib.suppress(libvirt.libvirtError):  # a domain gone mid-reply ends in read
            if self._stream is not None:
                self._stream.send(text.encode())

    def exit_status(self, wait_s: float = 2.0) -> str:
        """ "running", "0" when the guest ended it (powered off, or reset: on_reboot is
        destroy), or libvirt's reason (crashed, failed...) from its domain log."""
        deadline = time.monotonic() + wait_s
        while self._active() and time.monotonic() < deadline:
            time.sleep(0.05)
        if self._active():
            return "running"
        reasons = _SHUTDOWN.findall(self.stderr())
        reason = reasons[-1] if reasons else "unknown"
        return "0" if reason in ("shutdown", "destroyed") and not self._destroyed else reason

    def _active(self) -> bool:
        libvirt = loaded()
        try:
            return self._dom is not None and bool(self._dom.isActive())
        except libvirt.libvirtError:  # a transient domain is gone once stopped
            return False

    def stderr(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        """Destroys the domain (if it still runs) and closes the stream and connection;
        never raises."""
        libvirt = loaded()
        if self._dom is None:  # created, but interrupted before createXML's answer was kept
            with contextlib.suppress(libvirt.libvirtError):
                self._dom = self._control.lookupByName(self.name)
        if self._dom is not None and self._active():
            self._destroyed = True
            with contextlib.suppress(libvirt.libvirtError):
                self._dom.destroy()
        if self._pump_thread.is_alive():  # the stream ends with the domain
            self._pump_thread.join(timeout=5.0)
        if self._stream is not None and not self._pump_thread.is_alive():
            with contextlib.suppress(libvirt.libvirtError):
                self._stream.abort()


def read_argv(log: Path, wait_s: float = 2.0) -> list[str]:
    """The QEMU command line libvirt wrote at the top of its domain log (environment
    assignments, then the binary and its options, one per line ending in a
    backslash); [] when the log cannot be read within `wait_s` (virtlogd writes it)."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            text = log.read_text(errors="replace")
        except OSError:
            text = ""
        lines = text.splitlines()[1:]
        command: list[str] = []
        for line in lines:
            command.append(line.removesuffix("\\").strip())
            if not line.endswith("\\"):
                break
        if command and not text.splitlines()[len(command)].endswith("\\"):
            try:
                words = shlex.split(" ".join(command))
            except ValueError:
                return []
            start = next((i for i, w in enumerate(words) if "=" not in w), len(words))
            return words[start:]
        if time.monotonic() >= deadline:
            return []
        time.sleep(0.05)


def boot(
    cell: Cell,
    image: Image,
    firmware: Firmware,
    host: Host,
    out: Path,
    options: BootOptions,
    show: Show | None = None,
    say: Callable[[str], None] = print,
) -> Boot:
    """Boots `cell` as a transient libvirt domain; the same contract as boot.boot.
    Raises CellSkipped when libvirt is not usable here (no binding, no daemon),
    QemuLaunchError when libvirt refuses the domain or QEMU dies."""
    target = uri(os.environ)
    daemon = probe(target)
    if not daemon.usable:
        raise CellSkipped(f"libvirt is not usable: {daemon.why} (fix: {daemon.fix})")
    libvirt = loaded()
    accel = host.accel(options.accel)
    work = work_dir(out)  # from the root: libvirtd opens the overlay, nvram and seed
    files, login = prepare(cell, image, firmware, work)
    name = domain_name(cell)
    if launcher(cell.transport) == "virt-install":
        if files.vars is not None:  # libvirt makes it from the template it picks
            files.vars.unlink()
        xml = virt_install.virt_install_xml(virt_install.virt_install_argv(
            cell, image, firmware, target, name, files.disk, files.vars, files.extra_disks,
            smp=options.smp,
        ))  # fmt: skip
    else:
        xml = domain_xml(
            cell, image, firmware, host.qemu, accel, files.extra_disks,
            overlay=files.disk, nvram=files.vars, name=name,
            tcg_cpu_options=host.tcg_cpu_options if accel == "tcg" else (), smp=options.smp,
        )  # fmt: skip
    (out / "domain.xml").write_text(xml)
    picks = virt_install.picks_firmware(cell, firmware)  # libvirt picks, not the cell
    template = None if picks else firmware.vars_template
    write_cmdline(out / "cmdline.sh", cell, target, image, files.disk, files.vars, template)
    if options.interactive:
        say("[harness: no --interactive for libvirt cells: cmdline.sh boots it on your console]")
    log = ConsoleLog(out / "console.log", options.log_cap)
    domain_log = DOMAIN_LOGS / f"{name}.log"
    timeout = options.timeout_s or image.timeout_s
    say(f"libvirt {daemon.version} at {target}: domain {name} from {out / 'domain.xml'}")
    conn: Connection | None = None
    control: Connection | None = None
    try:
        conn = libvirt.open(target)
        control = libvirt.open(target)
    except libvirt.libvirtError as e:
        if conn is not None:
            conn.close()
        raise CellSkipped(f"libvirt is not usable: {e.get_error_message() or e}") from e
    sweep_domain_logs(control)
    try:
        with DomainConsole(conn, control, xml, name, domain_log) as console:
            start = time.monotonic()
            (out / "domain.live.xml").write_text(console.live_xml)
            say(shlex.join(console.argv))
            watcher = watcher_for(image, login, start)
            verdict = _watch(
                console, None, watcher, start + timeout, log, show, options.cancel,
                at_prompt=options.at_prompt, at_output=options.at_output,
            )  # fmt: skip
            verdict = judged(cell, image, verdict)
            duration = time.monotonic() - start
            if verdict.status == "fail":
                _drain(console, log, show)
            exit_status = console.exit_status(wait_s=0)
            argv, live = console.argv, console.live_xml
            chose = placement(live) if live else ""
    finally:
        for connection in (conn, control):
            with contextlib.suppress(libvirt.libvirtError):
                connection.close()
        log.close()
        _keep_domain_log(domain_log, out / "qemu.stderr")
        if not options.keep:
            shutil.rmtree(work, ignore_errors=True)
    launch = {
        "launcher": "libvirt",
        "libvirt_version": daemon.version,
        "domain": name,
        "placement": chose,  # what the virtio devices sit behind, as libvirt chose
    }
    used = virt_install.firmware_used(live, firmware) if picks else firmware
    if picks:  # cmdline.sh boots what libvirt picked, also where it would pick anew
        (out / PINNED).write_text(virt_install.pinned_xml(xml, live))
        write_cmdline(out / "cmdline.sh", cell, target, image, files.disk, files.vars,
                      used.vars_template, PINNED)  # fmt: skip
    if used.code is not None:
        launch |= {"loader": str(used.code), "nvram_template": str(used.vars_template or "")}
    return Boot(verdict, accel, argv, duration, exit_status, watcher.resets, timeout, launch=launch,
                firmware=used)  # fmt: skip


def write_cmdline(
    path: Path,
    cell: Cell,
    target: str,
    image: Image,
    overlay: Path | None,
    nvram: Path | None,
    template: Path | None,
    domain_file: str = "domain.xml",
) -> None:
    """A script that boots the cell's `domain_file` (beside `path`) by hand on the
    console (virsh), with fresh copies of the per-cell files the XML names: `nvram`
    copied from `template`, or, without one, removed so that libvirt makes it from the
    template it picks (as for the harness's boot of a virt-install cell)."""
    lines = ["#!/bin/sh", f"# Boots {cell} through libvirt as the harness did.", "set -eu"]
    if overlay is not None and image.disk is not None:
        lines.append(f"mkdir -p {shlex.quote(str(overlay.parent))}")
        lines.append(overlay_command(image, overlay))
    if nvram is not None and template is not None:
        lines.append(f"cp {shlex.quote(str(template))} {shlex.quote(str(nvram))}")
    elif nvram is not None:
        lines.append(f"rm -f {shlex.quote(str(nvram))}")
    domain = shlex.quote(str(path.with_name(domain_file)))
    lines.append(f"exec virsh -c {shlex.quote(target)} create --console --autodestroy {domain}")
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o755)


def _keep_domain_log(source: Path, target: Path, wait_s: float = 5.0) -> None:
    """Moves libvirt's log of our own domain into the cell's directory, once libvirt
    wrote its last line (`shutting down`, written through virtlogd, which would
    re-create a log moved earlier), waiting for it at most `wait_s` seconds."""
    deadline = time.monotonic() + wait_s
    while source.exists() and time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            if _SHUTDOWN.search(source.read_text(errors="replace")):
                break
        time.sleep(0.05)
    with contextlib.suppress(OSError):
        shutil.copyfile(source, target)
        source.unlink()


def sweep_domain_logs(
    control: Connection, logs: Path = DOMAIN_LOGS, age_s: float = 60.0
) -> list[Path]:
    """Removes the libvirt logs of harness domains whose runner was killed (SIGKILL:
    libvirtd destroyed the domain, no code of ours moved its log): a `harness-*.log`
    whose domain libvirt no longer has, ending with libvirt's `shutting down` line,
    untouched for `age_s` seconds (a live runner moves its log seconds after that
    line). Returns the paths removed; never raises."""
    libvirt = loaded()
    try:
        alive = {d.name() for d in control.listAllDomains(0)}
    except libvirt.libvirtError:
        return []
    removed = []
    for path in sorted(logs.glob("harness-*.log")):
        try:
            stale = time.time() - path.stat().st_mtime > age_s
            last = (path.read_text(errors="replace").splitlines() or [""])[-1]
        except OSError:
            continue
        if path.stem not in alive and stale and _SHUTDOWN.search(last):
            with contextlib.suppress(OSError):
                path.unlink()
                removed.append(path)
    return removed
