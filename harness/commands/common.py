"""What several commands share: reading the matrix into a plan, and a CellSetup that
finds (or builds) each image and firmware once, however many cells use it, with
`prepare` doing all of that for a run before its first boot."""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import re
import sys
import threading
from collections.abc import Callable, Hashable, Iterable
from concurrent.futures import Future
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Generic, TypeVar

from harness.errors import again
from harness.wording import counted

if TYPE_CHECKING:
    from harness.catalog import Catalog
    from harness.host import Host
    from harness.matrix.expand import Plan
    from harness.model import Cell, Firmware, Image
    from harness.runner import CellSetup

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


def add_matrix_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--matrix", type=Path, help="matrix file (default: matrix.yaml of the checkout)"
    )
    parser.add_argument("--profile", default="smoke", help="profile of the matrix (default: smoke)")
    parser.add_argument(
        "-k",
        dest="keyword",
        metavar="EXPR",
        type=expression,
        help="only cells matching EXPR, e.g. 'pci and not aavmf'; a word matches where it "
        "occurs in the cell id, and virt-X.Y also matches virt when QEMU says virt is virt-X.Y",
    )


def expression(text: str) -> str:
    """argparse type: a -k expression with a word in it (an empty one matched every
    cell, and ran a whole profile where the user meant some)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("expected an expression such as 'pci and not aavmf'")
    return text


def count(text: str) -> int:
    """argparse type: a whole number >= 1 (-j, --repeat, --smp)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def seconds(text: str) -> float:
    """argparse type: a finite number of seconds > 0 (--timeout); 0, negative, nan and
    inf would each never or always time out."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"expected seconds > 0, e.g. 120, got {text!r}")
    return value


def directory(text: str) -> Path:
    """argparse type: a directory's path, not empty (Path("") would be the current
    directory) and without control characters (it is printed, and written into
    cmdline.sh)."""
    from harness.model import control_character

    if not text:
        raise argparse.ArgumentTypeError("expected a directory, got ''")
    if bad := control_character(text):
        raise argparse.ArgumentTypeError(f"control character {bad!a} in {text!a}")
    return Path(text)


_SIZE = re.compile(r"(\d+)\s*(?:([KMG])(i?B)?|B)?", re.IGNORECASE)


def byte_size(text: str) -> int:
    """argparse type: a size > 0 in bytes, or with a unit K, M, G (KiB, MiB, GiB, KB...
    all powers of 1024, as the help's "64 MiB" is)."""
    match = _SIZE.fullmatch(text.strip())
    value = 0
    if match:
        unit = (match.group(2) or "").upper()
        value = int(match.group(1)) << {"": 0, "K": 10, "M": 20, "G": 30}[unit]
    if value < 1:
        raise argparse.ArgumentTypeError(
            f"expected a size > 0 such as 65536, 512K or 64MiB, got {text!r}"
        )
    return value


def add_log_cap_argument(parser: argparse.ArgumentParser) -> None:
    from harness.model import DEFAULT_LOG_CAP

    parser.add_argument(
        "--log-cap",
        type=byte_size,
        default=DEFAULT_LOG_CAP,
        metavar="SIZE",
        help="keep at most this much of a console log: bytes, or with K/M/G "
        f"(default: {DEFAULT_LOG_CAP >> 20}MiB)",
    )


def add_download_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--offline", action="store_true", help="never use the network ($HARNESS_OFFLINE=1)"
    )
    parser.add_argument(
        "--no-verify",
        action="store_true",
        help="boot downloads whose digest is unknown (the result says unverified)",
    )


def open_catalog(
    offline: bool = False, verify: bool = True, log: Callable[[str], None] = print
) -> Catalog:
    """The catalog of the checkout ($HARNESS_ROOT...), never using the network when
    `offline`, refusing downloads of unknown digest unless not `verify`."""
    from harness.catalog import Catalog, Workspace
    from harness.images.progress import DownloadProgress

    progress = DownloadProgress(sys.stderr)
    return Catalog(Workspace.locate(os.environ), os.environ, log, offline, verify, progress)


def discover_host(qemu: str | None, catalog: Catalog) -> Host:
    """The host, with `qemu` (--qemu; None: $HARNESS_QEMU or PATH), and what QEMU said
    about itself remembered in the image cache."""
    from harness.host import discover

    return discover(qemu, catalog.env, catalog.workspace.cache / "qemu-facts.json")


def load_plan(
    catalog: Catalog, host: Host, profile: str, matrix: Path | None, keyword: str | None
) -> Plan:
    """The cells of `profile` in `matrix` (None: the checkout's matrix.yaml), only
    those matching `keyword` (-k) when given; raises UsageError for a bad file, and
    when no cell is left (a machine range or a -k that matches nothing): a run of no
    cell is a mistake, not a success."""
    from harness.matrix.expand import expand
    from harness.matrix.select import keyword_filter
    from harness.model import HOST_QEMU
    from harness.qemu_builds import build_aliases, build_machines, load_qemu_builds
    from harness.yamlfile import load

    path = matrix or catalog.workspace.root / "matrix.yaml"
    data, root = load(path)
    builds = load_qemu_builds(catalog.workspace.images / "qemu.yaml")
    qemu = build_machines(builds, catalog.env, catalog.workspace.cache)
    plan = expand(
        data, root, path, profile, catalog.names(), host.machines,
        catalog.firmware_names(), qemu,
    )  # fmt: skip
    aliases = build_aliases(builds, catalog.env, catalog.workspace.cache)
    plan = dataclasses.replace(plan, virt_aliases={**aliases, HOST_QEMU: host.virt_alias})
    from harness.errors import UsageError

    if not plan.cells:
        raise UsageError(
            f"{path}: profile {plan.profile} has no cell on this host (machine types of "
            f"{host.qemu}: {', '.join(host.machines)}; or its exclude rules drop every cell)"
        )
    if keyword:
        wanted = keyword_filter(keyword, {"virt": host.virt_alias})
        chosen = tuple(c for c in plan.cells if wanted(c.cell.id))
        if not chosen:
            raise UsageError(
                f"-k {keyword!r} matches none of the {counted(len(plan.cells), 'cell')} "
                f"of profile {plan.profile}"
            )
        plan = dataclasses.replace(plan, cells=chosen)
    return plan


class Memo(Generic[K, V]):
    """One future per key: the first caller of a key computes it, in its own thread,
    while callers of the same key wait on its future and callers of other keys go on;
    no lock is held while computing. A failure is kept, and each later caller raises
    its own copy of it (errors.again), never one object on several threads."""

    def __init__(self, make: Callable[[K], V]):
        self._make = make
        self._lock = threading.Lock()
        self._futures: dict[K, Future[V]] = {}

    def get(self, key: K) -> V:
        """The value of `key`; raises (a copy of) what computing it raised."""
        with self._lock:
            future = self._futures.get(key)
            mine = future is None
            if future is None:
                future = self._futures[key] = Future()
        if mine:
            try:
                future.set_result(self._make(key))
            except Exception as e:
                future.set_exception(e)
            except BaseException as e:  # Ctrl-C: the waiting callers stop too
                future.set_exception(e)
                raise
        error = future.exception()
        if error is not None:
            raise again(error) from error
        return future.result()


def cell_setup(catalog: Catalog, host: Host) -> CellSetup:
    """Images, firmware and QEMU builds resolved once each (harness.runner.CellSetup);
    a failure is remembered and becomes the `error` (a CellSkipped: the `skip`, e.g.
    an image not built while offline) of every cell that needs it."""
    from harness.firmware import read_descriptors, resolve
    from harness.model import HOST_QEMU
    from harness.runner import CellSetup

    descriptors = read_descriptors()

    def host_firmware(name: str) -> Firmware:
        return resolve(name, descriptors, host.virt_alias)

    images: Memo[str, Image] = Memo(catalog.image)
    firmware: Memo[str, Firmware] = Memo(lambda name: catalog.firmware(name, host_firmware))
    # The cell's QEMU build, made (if it never was) and asked about once.
    hosts: Memo[str, Host] = Memo(
        lambda name: host if name == HOST_QEMU else _build_host(catalog, name)
    )
    return CellSetup(
        lambda cell: images.get(cell.image),
        lambda cell: firmware.get(cell.firmware),
        lambda cell: hosts.get(cell.qemu),
    )


def prepare(
    setup: CellSetup, cells: Iterable[Cell], jobs: int, cancel: threading.Event
) -> list[str]:
    """Builds or fetches every image and firmware build `cells` need, `jobs` at a time,
    before anything boots: independent builds and downloads overlap, and the boots'
    durations are about booting. Returns one line per image or firmware that failed
    (its cells will each end in their own `error`, or `skip`); raises nothing a
    setup raises. `cancel` is the event the setup's builders watch (Catalog.cancel):
    set when this thread is interrupted, so that they stop (harness/cancel.py) before
    the interruption is raised again."""
    from concurrent.futures import ThreadPoolExecutor

    from harness.errors import CellSkipped, HarnessError
    from harness.virt_install import firmware_problem

    wanted: dict[tuple[str, str], Callable[[], object]] = {}
    for cell in cells:
        if firmware_problem(cell):
            continue  # impossible: run_cell skips it before it needs either
        wanted.setdefault(("image", cell.image), partial(setup.image, cell))
        wanted.setdefault(("firmware", cell.firmware), partial(setup.firmware, cell))

    def attempt(what: tuple[str, str]) -> str:
        try:
            wanted[what]()
        except (HarnessError, OSError) as e:  # OSError: the host's disk, as run_cell says
            outcome = "skipped" if isinstance(e, CellSkipped) else "errors"
            return f"{what[0]} {what[1]}: {e} (its cells will be {outcome})"
        return ""

    pool = ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="prepare")
    try:
        lines = [line for line in pool.map(attempt, wanted) if line]
    except BaseException:
        # Ctrl-C or SIGTERM reach the main thread only: the builds under way see the
        # event and stop what they started (apt's, mmdebstrap's process groups...)
        # before the command ends; the ones not started never start.
        cancel.set()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown()
    return lines


def _build_host(catalog: Catalog, name: str) -> Host:
    """The QEMU build `name` (made now if it never was, unless offline) as a Host."""
    from harness.errors import UsageError
    from harness.images.debian import find_mirror
    from harness.qemu_builds import build_host, load_qemu_builds, qemu_build

    builds = load_qemu_builds(catalog.workspace.images / "qemu.yaml")
    if name not in builds:
        raise UsageError(f"QEMU build {name!r} is not host or one of: {', '.join(builds)}")
    mirror = None if catalog.offline else find_mirror(catalog.env)
    cache = catalog.workspace.cache
    made = qemu_build(name, builds[name], cache, mirror, catalog.offline, catalog.cancel)
    return build_host(made, catalog.env, cache)
