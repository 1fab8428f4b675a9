"""Runs one cell and turns whatever happened into a CellResult.

This is the one place where exceptions become outcomes: a verdict from the console
is `pass` or `fail`; an InfraError (QEMU failed, an image could not be built) is
`error`; a CellSkipped (the cell cannot run here) is `skip`; Ctrl-C is `error` with
reason `interrupted` (at the stage the console had reached) and is passed on. A
UsageError is the caller's input and is not caught here.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.atomic import write_atomic
from harness.boot import Boot, BootOptions, Show, boot
from harness.devices import launcher
from harness.errors import (
    BootInterrupted,
    CellImpossible,
    CellSkipped,
    InfraError,
    QemuLaunchError,
)
from harness.host import Host
from harness.model import Cell, CellResult, Firmware, Image, Outcome, why_impossible
from harness.virt_install import firmware_problem, picks_firmware

RESULT = "result.json"


@dataclass(frozen=True)
class CellSetup:
    """How to get a cell's image and firmware; called inside the cell's own error
    handling, so a failed build or a missing firmware is that cell's `error`."""

    image: Callable[[Cell], Image]
    firmware: Callable[[Cell], Firmware]
    # The QEMU build of a cell (None: every cell runs on the host's QEMU).
    host: Callable[[Cell], Host] | None = None


def run_cell(
    cell: Cell,
    setup: CellSetup,
    host: Host,
    out: Path,
    options: BootOptions,
    show: Show | None = None,
    say: Callable[[str], None] = print,
) -> CellResult:
    """Boots `cell` into `out` and returns its result, also written to out/result.json.

    Every fault of this one cell is in the result, never raised: `error` for an
    InfraError or the host's disk (out cannot be made or written: the result then
    says so and is only returned), `skip` for a CellSkipped (CellImpossible: the image
    cannot boot with this firmware, decided before QEMU starts). KeyboardInterrupt is
    passed on unchanged, after an `interrupted` result.json where one can be written;
    one that ended an --interactive session after the verdict, after the verdict's.
    """
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    clock = time.monotonic()
    digests = ["", ""]
    qemu = [host]  # the cell's QEMU build, once known: what an error result names
    stopped = False

    def error(reason: str, detail: str, stage: str = "none") -> CellResult:
        return CellResult(
            cell, Outcome.ERROR, stage, reason, detail=detail, started_at=started,
            host=qemu[0].facts(), duration_s=time.monotonic() - clock,
            image_digest=digests[0], firmware_digest=digests[1], log_path=_log_path(out),
        )  # fmt: skip

    try:
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise InfraError(f"cannot make the output directory {out}: {e.strerror or e}") from e
        if unbootable := firmware_problem(cell):  # before the firmware is fetched or built
            raise CellImpossible(unbootable)
        image = setup.image(cell)
        firmware = setup.firmware(cell)
        # a firmware libvirt picks when it starts the domain is not known before
        digests[:] = [image.digest, "" if picks_firmware(cell, firmware) else firmware.digest]
        impossible = why_impossible(image, firmware)
        if impossible:
            raise CellImpossible(f"cell {cell}: {impossible}")
        built = qemu[0] = setup.host(cell) if setup.host is not None else host
        if launcher(cell.transport) == "qemu":
            launch = boot
        else:  # imported only for libvirt cells: it costs every `harness run` otherwise
            from harness import libvirt_boot

            launch = libvirt_boot.boot
        if options.interactive:  # kept before the session, which a hangup may end
            options = dataclasses.replace(options, before_handover=_keep_then(
                options.before_handover, cell, built, out, image, firmware, started
            ))  # fmt: skip
        finished = launch(cell, image, firmware, built, out, options, show, say)
        result = _from_boot(cell, finished, built, out, image, firmware, started)
        stopped = finished.stopped
    except QemuLaunchError as e:
        launched = {"binary": qemu[0].qemu, "version": qemu[0].qemu_version, "argv": e.argv}
        result = dataclasses.replace(
            error(e.reason, str(e), e.stage),
            qemu={**launched, "exit": e.exit_status},
            accel=qemu[0].accel(options.accel),  # what QEMU was started with (-accel)
        )
    except InfraError as e:
        result = error(e.reason, str(e), e.stage)
    except CellSkipped as e:
        result = dataclasses.replace(error(e.reason, str(e)), status=Outcome.SKIP)
    except OSError as e:  # the host's disk: full, read-only...
        reason = "host-disk-full" if e.errno == errno.ENOSPC else "host-error"
        result = error(reason, f"{e.strerror or e}: {e.filename or out}")
    except KeyboardInterrupt as e:
        # the interrupt is what the caller must see, whatever writing the result does;
        # the result keeps how far the console watcher had seen the guest get
        interrupted = error("interrupted", "stopped before a verdict (Ctrl-C, SIGTERM or SIGHUP)")
        if isinstance(e, BootInterrupted):
            interrupted = dataclasses.replace(interrupted, stage=e.stage, stage_times=e.stage_times)
        with contextlib.suppress(InfraError):
            write_result(out, interrupted)
        raise
    try:
        write_result(out, result)
    except InfraError as e:
        # a host fault already in the result says why (a read-only results directory)
        result = result if result.status.is_host else error("host-error", str(e))
    if stopped:  # a signal ended the --interactive session: the verdict kept, then passed on
        raise KeyboardInterrupt
    return result


def _keep_then(
    tell: Callable[[Boot], None] | None,
    cell: Cell,
    host: Host,
    out: Path,
    image: Image,
    firmware: Firmware,
    started: str,
) -> Callable[[Boot], None]:
    """An --interactive boot's before_handover: the verdict written to result.json,
    then `tell` (the command prints it)."""

    def keep(finished: Boot) -> None:
        with contextlib.suppress(InfraError):  # written again, or its error, at the end
            write_result(out, _from_boot(cell, finished, host, out, image, firmware, started))
        if tell is not None:
            tell(finished)

    return keep


def _from_boot(
    cell: Cell,
    finished: Boot,
    host: Host,
    out: Path,
    image: Image,
    firmware: Firmware,
    started: str,
) -> CellResult:
    verdict = finished.verdict
    firmware = finished.firmware or firmware  # what booted, where the launcher picked it
    return CellResult(
        cell=cell,
        status=Outcome(verdict.status),
        stage=verdict.stage,
        reason=verdict.reason,
        detail=verdict.text,
        deciding_line=verdict.line,
        accel=finished.accel,
        duration_s=finished.duration_s,
        stage_times=verdict.stage_times,
        started_at=started,
        qemu={
            "binary": host.qemu,
            "version": host.qemu_version,
            "argv": finished.argv,
            "exit": finished.qemu_exit,
            **finished.launch,
        },
        image_digest=image.digest,
        image_verified=image.verified,
        firmware_digest=firmware.digest,
        firmware_version=firmware.version,
        host=host.facts(),
        log_path=_log_path(out),
        guest=verdict.findings.to_json() if verdict.findings else None,
        proof=verdict.proof,
        resets=finished.resets,
        timeout_s=finished.timeout_s,
    )


def _log_path(out: Path) -> str:
    log = out / "console.log"
    return str(log) if log.exists() else ""


def write_result(out: Path, result: CellResult) -> None:
    """result.json, replaced atomically so a reader never sees half of it."""
    try:
        write_atomic(out / RESULT, json.dumps(result.to_json(), indent=2) + "\n")
    except OSError as e:
        raise InfraError(f"cannot write {out / RESULT}: {e.strerror or e}") from e
