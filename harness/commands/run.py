"""harness run: boot one cell, show its console live, end with one verdict line."""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from harness.cli import EXIT_ERROR, EXIT_FAIL, EXIT_OK
from harness.commands.common import (
    add_download_arguments,
    add_log_cap_argument,
    count,
    directory,
    seconds,
)
from harness.devices import TRANSPORT_NAMES

if TYPE_CHECKING:
    from harness.boot import Boot
    from harness.console.terminal import TerminalFilter
    from harness.model import Cell, Image

ADHOC = "custom"
# Said once when stdout's reader goes away (`| head`, a terminal closed under nohup)
STDOUT_GONE = "harness run: stdout was closed; the boot goes on"


# The options of a run whose image is not in the catalog, and their defaults there.
ADHOC_OPTIONS = ("kernel", "initrd", "append", "disk", "machine", "transport", "firmware", "login")
ADHOC_DEFAULTS = {
    "append": "console=ttyAMA0",
    "machine": "virt",
    "transport": "pci",
    "firmware": "none",
}


def _default(name: str) -> str:
    return f" (default: {ADHOC_DEFAULTS[name]})"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "cell",
        nargs="?",
        help="IMAGE/FIRMWARE/MACHINE/TRANSPORT, e.g. debian-12-tiny/aavmf/virt/pci",
    )
    adhoc = parser.add_argument_group("an image that is not in the catalog (instead of CELL)")
    adhoc.add_argument("--kernel", type=Path, help="kernel for direct boot")
    adhoc.add_argument("--initrd", type=Path, help="initramfs for direct boot")
    adhoc.add_argument("--append", help=f"kernel command line{_default('append')}")
    adhoc.add_argument("--disk", type=Path, help="disk image (raw or qcow2; never written)")
    adhoc.add_argument("--machine", help=f"machine type{_default('machine')}")
    adhoc.add_argument("--transport", choices=TRANSPORT_NAMES, help=_default("transport").strip())
    adhoc.add_argument("--firmware", help=f"none, aavmf or a CODE file{_default('firmware')}")
    adhoc.add_argument(
        "--login", metavar="USER[:PASSWORD]", help="credentials (default: none; the prompt passes)"
    )
    parser.add_argument("--timeout", type=seconds, help="seconds before the cell times out")
    parser.add_argument("--accel", default="auto", choices=("auto", "kvm", "tcg"))
    parser.add_argument("--smp", type=count, default=1, help="guest CPUs (default: 1)")
    parser.add_argument(
        "--out", type=directory, help="directory for result.json, console.log, cmdline.sh"
    )
    parser.add_argument(
        "--interactive", action="store_true", help="keep the console after the verdict"
    )
    parser.add_argument("--keep", action="store_true", help="keep the disk overlay and VARS copy")
    parser.add_argument("--quiet", action="store_true", help="print only the verdict line")
    parser.add_argument(
        "--qemu-arg", action="append", default=[], metavar="ARG",
        help="one more argument for QEMU, appended as given (repeat for several; values "
        "may start with -: --qemu-arg -device --qemu-arg virtio-rng-pci)",
    )  # fmt: skip
    add_download_arguments(parser)
    add_log_cap_argument(parser)


def main(args: argparse.Namespace) -> int:
    from harness.boot import BootOptions
    from harness.cells import check_cell
    from harness.commands.common import cell_setup, discover_host, open_catalog
    from harness.errors import UsageError
    from harness.model import Cell, Outcome
    from harness.runner import CellSetup

    if args.interactive and not sys.stdin.isatty():
        raise UsageError("--interactive needs a terminal")
    say = _printer(args.quiet)
    catalog = open_catalog(args.offline, not args.no_verify, say)
    host = discover_host(args.qemu, catalog)
    setup = cell_setup(catalog, host)
    given = [f"--{name}" for name in ADHOC_OPTIONS if getattr(args, name) is not None]
    if args.cell and given:
        # a CELL names its own image, firmware, machine type and transport: these would
        # be silently left out of a result that looked as if they had been applied
        raise UsageError(f"give either a CELL or {', '.join(given)}, not both")
    if args.cell:
        cell = Cell.parse(args.cell)
        qemu = setup.host(cell) if setup.host is not None else host  # the cell's QEMU build
        check_cell(cell, catalog.image_names(), qemu, catalog.firmware_names())
    elif args.kernel or args.disk:
        option = {
            name: default if getattr(args, name) is None else getattr(args, name)
            for name, default in ADHOC_DEFAULTS.items()
        }
        cell = Cell(ADHOC, option["firmware"], option["machine"], option["transport"])
        check_cell(cell, [ADHOC], host, catalog.firmware_names(), from_options=True)
        from harness.images.adhoc import adhoc_image

        image = adhoc_image(
            ADHOC, args.kernel, args.initrd, option["append"], args.disk, args.login
        )

        def image_of(c: Cell) -> Image:
            return image

        setup = CellSetup(image_of, setup.firmware)
    else:
        raise UsageError("name a CELL (IMAGE/FIRMWARE/MACHINE/TRANSPORT) or give --kernel/--disk")
    from harness.devices import launcher

    if args.qemu_arg and launcher(cell.transport) != "qemu":
        # libvirt writes that command line, not the harness: refused rather than
        # silently left out of a result that would look as if it had been applied.
        raise UsageError(
            f"--qemu-arg: {cell} is booted by libvirt, whose QEMU command "
            "line the harness does not write; use a direct transport"
        )
    out = claim_out(args.out or _default_out(catalog.workspace.results, cell))
    from harness.console.terminal import TerminalFilter

    shown = None if args.quiet else TerminalFilter()
    handed_over: list[str] = []  # the verdict line, if printed before the handover
    options = BootOptions(
        timeout_s=args.timeout, accel=args.accel, smp=args.smp, keep=args.keep,
        interactive=args.interactive, qemu_args=tuple(args.qemu_arg), log_cap=args.log_cap,
        before_handover=_verdict_first(cell, handed_over, shown),
    )  # fmt: skip
    show = None if shown is None else _live_console(shown)
    from harness.runner import run_cell

    try:
        result = run_cell(cell, setup, host, out, options, show, say)
    finally:
        gave_back = _give_back_terminal(shown, handed_over)
    if (shown is not None and not shown.at_line_start) or gave_back or handed_over:
        sys.stdout.write("\n")  # the verdict on a line of its own, after the console's last
    if result.status in (Outcome.ERROR, Outcome.SKIP):
        print(f"harness run: {result.detail}", file=sys.stderr)
    # Printed again after an --interactive session: the last line is the verdict.
    print(result.summary(), flush=True)
    say(f"results in {out}")
    return {Outcome.PASS: EXIT_OK, Outcome.FAIL: EXIT_FAIL}.get(result.status, EXIT_ERROR)


# Marks an --out directory as made by `harness run`: only such a directory (or an
# empty one) is written into, so a user's own files are never replaced or deleted.
OUT_MARK = ".harness-run"


def claim_out(out: Path) -> Path:
    """`out`, made or checked fit for a cell's files; UsageError when it holds files
    the harness did not make (a non-empty directory without OUT_MARK), a work/
    that --keep kept from an earlier run (a boot removes work/ when it ends), or
    anything but regular files (a symlink would be written through)."""
    from harness.errors import UsageError

    try:
        out.mkdir(parents=True, exist_ok=True)
        present = {entry.name for entry in out.iterdir()}
    except FileExistsError as e:
        raise UsageError(f"--out {out}: not a directory") from e
    except OSError as e:
        raise UsageError(f"--out {out}: {e.strerror or e}") from e
    if present and OUT_MARK not in present:
        raise UsageError(
            f"--out {out}: not empty and not made by harness run; "
            "give an empty or new directory (nothing in it was changed)"
        )
    if "work" in present:
        raise UsageError(
            f"--out {out}: {out / 'work'} holds what --keep kept from an earlier run; "
            "give another --out, or remove it first"
        )
    for name in sorted(present):
        # a boot rewrites its files by name: through a symlink planted there (or a
        # FIFO, a device) it would write, or hang, outside --out
        if not (out / name).is_file() or (out / name).is_symlink():
            raise UsageError(
                f"--out {out}: {out / name} is not a regular file harness run wrote; "
                "give another --out (nothing in it was changed)"
            )
    (out / OUT_MARK).touch()
    return out


def _default_out(results: Path, cell: Cell) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    return results / "single" / f"{stamp}-{str(cell).replace('/', '_')}"


def _live_console(safe: TerminalFilter) -> Callable[[bytes], None]:
    """Shows the console as it arrives, without the guest's cursor moves, screen
    clears and terminal queries (harness/console/terminal.py): the terminal stays the
    user's until `--interactive` hands it over."""
    from harness.commands.output import view_of

    def show(data: bytes) -> None:
        with view_of(sys.stdout, STDOUT_GONE):  # its reader gone, the boot goes on
            sys.stdout.buffer.write(safe.feed(data))
            sys.stdout.buffer.flush()

    return show


def _give_back_terminal(shown: TerminalFilter | None, handed_over: list[str]) -> bool:
    """After the boot, on every path (Ctrl-C included): a colour the guest left is
    reset, and after an `--interactive` handover what the raw guest may have changed
    (colours, a hidden cursor, line-drawing characters, mouse reporting) is undone,
    so the user's shell prompt is as it was. Says whether it wrote anything (the
    verdict then goes on a line of its own, not after the reset)."""
    from harness.console.terminal import RESTORE_AFTER_HANDOVER

    undo = shown.end() if shown is not None else b""
    if handed_over:
        undo += RESTORE_AFTER_HANDOVER
    if undo:
        with contextlib.suppress(OSError):  # the terminal hung up: nothing to give back
            sys.stdout.flush()
            sys.stdout.buffer.write(undo)
            sys.stdout.buffer.flush()
    return bool(undo)


def _verdict_first(
    cell: Cell, printed: list[str], shown: TerminalFilter | None
) -> Callable[[Boot], None]:
    """Prints the verdict line, on its own line and in the terminal's own colours,
    before `--interactive` hands the console over (the README's order); `printed`
    remembers that it was."""
    from harness.model import CellResult, Outcome

    def before_handover(finished: Boot) -> None:
        verdict = finished.verdict
        seen = CellResult(
            cell, Outcome(verdict.status), verdict.stage, verdict.reason,
            duration_s=finished.duration_s,
        )  # fmt: skip
        printed.append(seen.summary())
        if shown is not None:
            sys.stdout.flush()
            sys.stdout.buffer.write(shown.end())
        sys.stdout.write("\n")
        print(printed[-1], flush=True)

    return before_handover


def _printer(quiet: bool) -> Callable[[str], None]:
    from harness.commands.output import view_of

    def say(text: str) -> None:
        if not quiet:
            with view_of(sys.stdout, STDOUT_GONE):  # as the console, a view
                print(text, flush=True)

    return say
