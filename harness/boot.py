"""Boots one cell: prepares its files, runs QEMU, feeds the console to the watcher,
types the watcher's replies, and returns the verdict with what it took.

Everything a cell writes lives in its output directory (console.log, qemu.stderr,
cmdline.sh, and work/ with the disk overlay and the VARS copy, removed unless kept),
so nothing is left in /tmp and the cached base image is only ever read.
"""

from __future__ import annotations

import re
import secrets
import shlex
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.console.watcher import Reply, Verdict, Watcher
from harness.errors import CellImpossible, InfraError, QemuLaunchError
from harness.host import Host
from harness.images.seed import write_seed
from harness.judge import judged, watcher_for
from harness.model import DEFAULT_LOG_CAP, Cell, Firmware, Image, Login, why_impossible
from harness.qemu_argv import BootFiles, qemu_argv
from harness.qemu_process import QemuProcess

POLL_S = 0.1

Show = Callable[[bytes], None]


@dataclass(frozen=True)
class BootOptions:
    timeout_s: float | None = None  # None: the image's own
    accel: str = "auto"
    smp: int = 1
    keep: bool = False
    interactive: bool = False
    log_cap: int = DEFAULT_LOG_CAP
    # Set by the matrix runner on Ctrl-C: a boot in a worker thread stops as if the
    # interrupt had reached it.
    cancel: threading.Event | None = None
    qemu_args: tuple[str, ...] = ()  # appended to the cell's command line, as given
    # With `interactive`: told the verdict and the boot's seconds just before the
    # console is handed over, so the user reads the verdict first.
    before_handover: Callable[[Verdict, float], None] | None = None


@dataclass(frozen=True)
class Boot:
    """A finished boot: the verdict, and what produced it."""

    verdict: Verdict
    accel: str
    argv: list[str]
    duration_s: float
    qemu_exit: str


class ConsoleLog:
    """The console, byte for byte, up to a cap; a marker says where it was cut."""

    def __init__(self, path: Path, cap: int):
        self._file = path.open("wb")
        self._room = cap
        self._cap = cap

    def write(self, data: bytes) -> None:
        if self._room <= 0:
            return
        self._file.write(data[: self._room])
        self._room -= len(data)
        if self._room <= 0:
            self._file.write(b"\n[harness: console log capped at %d bytes]\n" % self._cap)
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def prepare(cell: Cell, image: Image, firmware: Firmware, work: Path) -> tuple[BootFiles, Login]:
    """The cell's own files (disk overlay, VARS copy, NoCloud seed) and the login the
    watcher is to use. Raises CellImpossible (model.why_impossible) before making any."""
    impossible = why_impossible(image, firmware)
    if impossible:
        raise CellImpossible(f"cell {cell}: {impossible}")
    work.mkdir(parents=True, exist_ok=True)
    disk = None
    if image.disk is not None:
        disk = work / "disk.qcow2"
        _overlay(image.disk, image.disk_format, disk)
    login, extra = image.login, tuple[Path, ...]()
    if image.cloud_init:
        # The seed sits beside the log, not in work/, so cmdline.sh can use it again.
        password = secrets.token_hex(8)
        seed = work.parent / "seed.iso"
        write_seed(seed, f"harness-{secrets.token_hex(4)}", _hostname(cell.image), password)
        login, extra = Login("root", password), (seed,)
    if firmware.is_uefi:
        assert firmware.vars_template is not None
        shutil.copyfile(firmware.vars_template, work / "vars.fd")
        files = BootFiles(disk=disk, code=firmware.code, vars=work / "vars.fd", extra_disks=extra)
        return files, login
    files = BootFiles(
        disk=disk, kernel=image.kernel, initrd=image.initrd, append=image.append, extra_disks=extra
    )
    return files, login


def _hostname(name: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")[:63] or "guest"


def _overlay(base: Path, base_format: str, overlay: Path) -> None:
    qemu_img = shutil.which("qemu-img")
    if qemu_img is None:
        raise InfraError("qemu-img not found: apt-get install qemu-utils")
    argv = [qemu_img, "create", "-q", "-f", "qcow2", "-F", base_format]
    argv += ["-b", str(base.resolve()), str(overlay)]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise InfraError(f"qemu-img create failed for {base}: {proc.stderr.strip()}")


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
    accel = host.accel(options.accel)
    work = out / "work"
    files, login = prepare(cell, image, firmware, work)
    argv = qemu_argv(
        cell, host.qemu, accel, files,
        memory_mib=image.memory_mib, smp=options.smp,
        tcg_cpu_options=host.tcg_cpu_options if accel == "tcg" else (),
    ) + list(options.qemu_args)  # fmt: skip
    write_cmdline(out / "cmdline.sh", cell, argv, image, firmware, work)
    say(shlex.join(argv))
    log = ConsoleLog(out / "console.log", options.log_cap)
    timeout = options.timeout_s or image.timeout_s
    try:
        with QemuProcess(argv, out / "qemu.stderr") as qemu:
            start = time.monotonic()
            watcher = watcher_for(image, login, start)
            verdict = _watch(qemu, watcher, start + timeout, log, show, options.cancel)
            verdict = judged(cell, image, verdict)
            duration = time.monotonic() - start
            if verdict.status == "fail":
                _drain(qemu, log, show)
            exit_status = qemu.exit_status(wait_s=0)
            if options.interactive and exit_status == "running":
                if options.before_handover is not None:
                    options.before_handover(verdict, duration)
                say("[harness: the console is yours; Ctrl-] returns, Ctrl-A X quits QEMU]")
                qemu.interact()
    finally:
        log.close()
        if not options.keep:
            shutil.rmtree(work, ignore_errors=True)
    return Boot(verdict, accel, argv, duration, exit_status)


def _watch(
    qemu: QemuProcess,
    watcher: Watcher,
    deadline: float,
    log: ConsoleLog,
    show: Show | None,
    cancel: threading.Event | None,
) -> Verdict:
    seen_output = False
    while True:
        if cancel is not None and cancel.is_set():
            raise KeyboardInterrupt
        now = time.monotonic()
        if now >= deadline:
            return watcher.stopped("timeout")
        data = qemu.read(timeout=min(POLL_S, deadline - now))
        if data is None:
            return _qemu_ended(qemu, watcher, seen_output)
        if data:
            seen_output = True
            log.write(data)
            if show is not None:
                show(data)
            verdict = watcher.feed(data, time.monotonic())
            if verdict is not None:
                return verdict
        step = watcher.tick(time.monotonic())
        if isinstance(step, Reply):
            qemu.send(step.text)
        elif step is not None:
            return step


def _drain(qemu: QemuProcess, log: ConsoleLog, show: Show | None, most_s: float = 1.0) -> None:
    """After a failure, keeps what the guest still prints (the rest of a panic, the
    shell prompt) for the log: the verdict is already made, this only helps a person
    reading the log."""
    end = time.monotonic() + most_s
    while time.monotonic() < end:
        data = qemu.read(timeout=0.3)
        if not data:
            return
        log.write(data)
        if show is not None:
            show(data)


def _qemu_ended(qemu: QemuProcess, watcher: Watcher, seen_output: bool) -> Verdict:
    """QEMU closed the console. Exit 0 is the guest's doing (power off, or a reset
    under -no-reboot); anything else is QEMU failing, which is not the guest's fault."""
    status = qemu.exit_status()
    if status == "0":
        return watcher.stopped("qemu-exited")
    message = "QEMU died mid-boot" if seen_output else "QEMU exited at start"
    raise QemuLaunchError(message, qemu.argv, status, qemu.stderr(), watcher.stage)


def write_cmdline(
    path: Path, cell: Cell, argv: list[str], image: Image, firmware: Firmware, work: Path
) -> None:
    """A script that boots the cell by hand, with fresh copies of the per-cell files."""
    lines = [
        "#!/bin/sh",
        f"# Boots {cell} as the harness did. Ctrl-A X quits QEMU.",
        "set -eu",
        'work="$(cd "$(dirname "$0")" && pwd)/work"',
        'mkdir -p "$work"',
    ]
    if image.disk is not None:
        lines.append(
            f"qemu-img create -q -f qcow2 -F {image.disk_format} "
            f'-b {shlex.quote(str(image.disk.resolve()))} "$work/disk.qcow2"'
        )
    if firmware.vars_template is not None:
        lines.append(f'cp {shlex.quote(str(firmware.vars_template))} "$work/vars.fd"')
    lines.append("exec " + " ".join(_shell_word(arg, str(work)) for arg in argv))
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o755)


def _shell_word(arg: str, work: str) -> str:
    """`arg` quoted for sh, with the work directory replaced by "$work"."""
    return '"$work"'.join(shlex.quote(part) if part else "" for part in arg.split(work))
