"""Boots one cell: prepares its files (harness/cellfiles.py), runs QEMU, feeds the
console to the watcher, types the watcher's replies, and returns the verdict with what
it took.

Everything a cell writes lives in its output directory (console.log, qemu.stderr,
cmdline.sh, and work/ with the disk overlay and the VARS copy, removed unless kept),
so nothing is left in /tmp and the cached base image is only ever read.
"""

from __future__ import annotations

import shlex
import shutil
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from harness.cellfiles import prepare, work_dir
from harness.console import marks
from harness.console.marks import ConsoleLog, Log
from harness.console.watcher import Reply, Verdict, Watcher
from harness.errors import (
    BootInterrupted,
    HostDiskError,
    QemuCrashError,
    QemuLaunchError,
    UsageError,
)
from harness.host import Host
from harness.judge import judged, watcher_for
from harness.model import DEFAULT_LOG_CAP, Cell, Firmware, Image
from harness.qemu_argv import qemu_argv
from harness.qemu_process import QemuProcess
from harness.qmp import Event, Qmp, qmp_argv

POLL_S = 0.1
# The timeout bounds a boot up to its login prompt (or ready pattern); the login, the
# shell proof and the device probe after it get this much of their own.
PROOF_S = 60.0

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
    # With `interactive`: told the finished boot (its verdict, its seconds) just before
    # the console is handed over: the runner writes result.json then, the command
    # prints the verdict, so neither waits for a session that may end by a hangup.
    before_handover: Callable[[Boot], None] | None = None
    # Called once, from the booting thread, when the watcher first sees the login
    # prompt (or ready pattern): the scheduler's boot slot is free from then on.
    at_prompt: Callable[[], None] | None = None
    # Called once, from the booting thread, when the guest's console first prints
    # (QEMU started by the harness or by libvirtd): from then on the run has booted
    # something; a QEMU that fails at start has not.
    at_output: Callable[[], None] | None = None


@dataclass(frozen=True)
class Boot:
    """A finished boot: the verdict, and what produced it."""

    verdict: Verdict
    accel: str
    argv: list[str]
    duration_s: float
    qemu_exit: str
    resets: int = 0  # guest resets QEMU reported
    timeout_s: float = 0.0  # the boot timeout in force (an override included)
    launch: Mapping[str, Any] = field(default_factory=dict)  # added to result.json's qemu
    # A signal (Ctrl-C, SIGTERM, SIGHUP) came after the verdict (the --interactive
    # session's end, say): the caller records the verdict, then stops as interrupted.
    stopped: bool = False
    # The firmware that booted, where the launcher picked it rather than the cell
    # (a virt-install cell: libvirt's pick); None: the cell's own
    firmware: Firmware | None = None


class Console(Protocol):
    """The guest's serial console as the watch loop uses it: a QemuProcess, or a
    libvirt domain's console (harness/libvirt_boot.py)."""

    argv: list[str]

    def read(self, timeout: float) -> bytes | None: ...
    def send(self, text: str) -> None: ...
    def exit_status(self, wait_s: float = 2.0) -> str: ...
    def stderr(self) -> str: ...


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
    work = work_dir(out)
    files, login = prepare(cell, image, firmware, work)
    base = qemu_argv(
        cell, host.qemu, accel, files,
        memory_mib=image.memory_mib, smp=options.smp,
        tcg_cpu_options=host.tcg_cpu_options if accel == "tcg" else (),
    )  # fmt: skip
    argv = base + list(options.qemu_args)
    write_cmdline(out / "cmdline.sh", cell, argv, image, firmware, work)
    say(shlex.join(argv))
    log = ConsoleLog(out / "console.log", options.log_cap)
    timeout = options.timeout_s or image.timeout_s
    qmp = Qmp()
    # QMP is not in cmdline.sh: a person booting by hand has no use for the descriptor.
    # The user's own arguments stay last, as --qemu-arg promises.
    launched = base + qmp_argv(qmp.theirs) + list(options.qemu_args)
    stopped = False
    try:
        with QemuProcess(launched, out / "qemu.stderr", pass_fds=(qmp.theirs,)) as qemu:
            qmp.launched()
            start = time.monotonic()
            watcher = watcher_for(image, login, start, resets_from_qemu=True)
            verdict = _watch(
                qemu, qmp, watcher, start + timeout, log, show, options.cancel,
                at_prompt=options.at_prompt, at_output=options.at_output,
            )  # fmt: skip
            verdict = judged(cell, image, verdict)
            duration = time.monotonic() - start
            exit_status = "running"
            try:  # a signal from here on (Ctrl-C, a hangup) keeps the verdict
                if verdict.status == "fail":
                    _drain(qemu, log, show)
                exit_status = qemu.exit_status(wait_s=0)
                if options.interactive and exit_status == "running":
                    if options.before_handover is not None:
                        options.before_handover(Boot(
                            verdict, accel, launched, duration, exit_status, watcher.resets,
                            timeout,
                        ))  # fmt: skip
                    say("[harness: the console is yours; Ctrl-] returns, Ctrl-A X quits QEMU]")
                    try:
                        qemu.interact()
                    except OSError:  # the user's terminal went away mid-session (EIO)
                        stopped = True
                elif not options.keep:
                    # Judged, and its overlay and VARS copy go: a clean exit would only
                    # flush those (and log the signal), so no grace period is waited for.
                    qemu.kill()
            except KeyboardInterrupt:
                stopped = True  # the caller records the verdict, then stops
    finally:
        qmp.close()
        log.close()
        if not options.keep:
            shutil.rmtree(work, ignore_errors=True)
    return Boot(
        verdict, accel, launched, duration, exit_status, watcher.resets, timeout, stopped=stopped
    )


def _watch(
    qemu: Console,
    qmp: Qmp | None,  # None: no QMP of our own (libvirt owns QEMU's monitor)
    watcher: Watcher,
    boot_deadline: float,
    log: Log,
    show: Show | None,
    cancel: threading.Event | None,
    clock: Callable[[], float] = time.monotonic,
    at_prompt: Callable[[], None] | None = None,
    at_output: Callable[[], None] | None = None,
) -> Verdict:
    """Feeds the console and QEMU's events to the watcher until it decides. The boot
    deadline (in `clock`'s seconds) bounds the time to the prompt; from the prompt on,
    PROOF_S does. `clock` is the one time source of the loop, so a test can drive it
    with a fake console and a fake clock (tests/fake_guest.py). `at_prompt` is called
    once, the first time the watcher has seen the prompt, `at_output` once, at the
    console's first bytes. Raises BootInterrupted (a
    KeyboardInterrupt with the watcher's stage) on Ctrl-C, SIGTERM or once `cancel` is
    set, and what _qemu_ended and _on_event raise."""
    seen_output = False
    try:
        while True:
            if cancel is not None and cancel.is_set():
                raise KeyboardInterrupt
            now = clock()
            prompt_at = watcher.prompt_at
            if prompt_at is not None and at_prompt is not None:
                at_prompt()
                at_prompt = None
            deadline = boot_deadline if prompt_at is None else prompt_at + PROOF_S
            if now >= deadline:
                return watcher.stopped("timeout")
            data = qemu.read(timeout=min(POLL_S, deadline - now))
            if data is None:
                return _qemu_ended(qemu, watcher, seen_output)
            if data:
                if not seen_output and at_output is not None:
                    at_output()
                seen_output = True
                log.write(data)
                if show is not None:
                    show(data)
                verdict = watcher.feed(data, clock())
                if verdict is not None:
                    return verdict
            for event in qmp.events() if qmp is not None else ():
                verdict = _on_event(event, watcher, clock(), log, show)
                if verdict is not None:
                    return verdict
            step = watcher.tick(clock())
            if isinstance(step, Reply):
                qemu.send(step.text)
            elif step is not None:
                return step
    except KeyboardInterrupt as e:  # the result must say how far the guest had got
        raise BootInterrupted(*watcher.interrupted()) from e


def _on_event(
    event: Event, watcher: Watcher, now: float, log: Log, show: Show | None
) -> Verdict | None:
    """What a QMP event means for the boot (qapi/run-state.json, qapi/block-core.json):
    a RESET starts the guest again, its mark goes into the log (and the live view) where
    it happened, for re-judging to count; a BLOCK_IO_ERROR (the drives are werror=stop)
    is the host's disk failing, an error, never the guest's timeout."""
    if event.name == "RESET":
        mark = marks.reset_mark(watcher.resets + 1)
        log.mark(mark)
        if show is not None:
            show(mark)
        return watcher.reset(now, marks.RESET_LINES)
    if event.name == "BLOCK_IO_ERROR":
        data = event.data
        full = bool(data.get("nospace"))
        why = str(data.get("reason") or ("No space left on device" if full else "I/O error"))
        device = data.get("device") or data.get("node-name") or "a disk"
        raise HostDiskError(
            f"QEMU stopped the guest: {data.get('operation', 'an')} error on {device}: {why}",
            "host-disk-full" if full else "host-disk-error",
            watcher.stage,
        )
    return None


def _drain(qemu: Console, log: ConsoleLog, show: Show | None, most_s: float = 1.0) -> None:
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


def _qemu_ended(qemu: Console, watcher: Watcher, seen_output: bool) -> Verdict:
    """QEMU closed the console. Exit 0 is the guest's doing (it powered off); a signal
    (an assertion's abort, a segfault) is QEMU crashing and any other status QEMU
    failing: neither is the guest's fault."""
    status = qemu.exit_status()
    if status == "0":
        return watcher.stopped("qemu-exited")
    args = (qemu.argv, status, qemu.stderr(), watcher.stage)
    if status.startswith("signal"):
        raise QemuCrashError("QEMU crashed " + ("mid-boot" if seen_output else "at start"), *args)
    raise QemuLaunchError("QEMU died mid-boot" if seen_output else "QEMU exited at start", *args)


def write_cmdline(
    path: Path, cell: Cell, argv: list[str], image: Image, firmware: Firmware, work: Path
) -> None:
    """A script that boots the cell by hand, with fresh copies of the per-cell files."""
    # Every word that came from a name or a path is quoted, the comment's too: a cell
    # id is checked for control characters, but this file must not rely on that.
    lines = [
        "#!/bin/sh",
        f"# Boots {shlex.quote(cell.id)} as the harness did. Ctrl-A X quits QEMU.",
        "set -eu",
        'work="$(cd "$(dirname "$0")" && pwd)/work"',
        'mkdir -p "$work"',
    ]
    if image.disk is not None:
        lines.append(
            f"qemu-img create -q -f qcow2 -F {shlex.quote(image.disk_format)} "
            f'-b {shlex.quote(str(image.disk.resolve()))} "$work/disk.qcow2"'
        )
    if firmware.vars_template is not None:
        lines.append(f'cp {shlex.quote(str(firmware.vars_template))} "$work/vars.fd"')
    lines.append("exec " + " ".join(_shell_word(arg, str(work)) for arg in argv))
    text = "\n".join(lines) + "\n"
    # shlex.quote keeps a newline inside its quotes, where sh reads it as part of the
    # word; a comment has no quotes to keep it in, so no line may hold one.
    if any(bad in cell.id for bad in "\r\n"):
        raise UsageError(f"cell {cell.id!r}: a line break cannot go into {path.name}")
    path.write_text(text)
    path.chmod(0o755)


def _shell_word(arg: str, work: str) -> str:
    """`arg` quoted for sh, with the work directory replaced by "$work"; an empty
    argument stays one (empty) word."""
    if not arg:
        return "''"
    return '"$work"'.join(shlex.quote(part) if part else "" for part in arg.split(work))
