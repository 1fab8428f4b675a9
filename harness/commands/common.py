"""What several commands share: reading the matrix into a plan, and a CellSetup that
finds (or builds) each image and firmware once, however many cells use it."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from harness.catalog import Catalog
    from harness.host import Host
    from harness.matrix.expand import Plan
    from harness.model import Cell, Firmware, Image
    from harness.runner import CellSetup


def add_matrix_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--matrix", type=Path, help="matrix file (default: matrix.yaml of the checkout)"
    )
    parser.add_argument("--profile", default="smoke", help="profile of the matrix (default: smoke)")
    parser.add_argument(
        "-k",
        dest="keyword",
        metavar="EXPR",
        help="only cells matching EXPR, e.g. 'pci and not aavmf'",
    )


def add_log_cap_argument(parser: argparse.ArgumentParser) -> None:
    from harness.model import DEFAULT_LOG_CAP

    parser.add_argument(
        "--log-cap",
        type=int,
        default=DEFAULT_LOG_CAP,
        metavar="BYTES",
        help=f"keep at most this much of a console log (default: {DEFAULT_LOG_CAP >> 20} MiB)",
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


def open_catalog(args: argparse.Namespace, log: Callable[[str], None] = print) -> Catalog:
    """The catalog, with the download options of the command line."""
    from harness.catalog import Catalog, Workspace
    from harness.images.progress import DownloadProgress

    offline = getattr(args, "offline", False)
    verify = not getattr(args, "no_verify", False)
    progress = DownloadProgress(sys.stderr)
    return Catalog(Workspace.locate(os.environ), os.environ, log, offline, verify, progress)


def discover_host(args: argparse.Namespace, catalog: Catalog) -> Host:
    """The host, with what QEMU said about itself remembered in the image cache."""
    from harness.host import discover

    return discover(args.qemu, catalog.env, catalog.workspace.cache / "qemu-facts.json")


def load_plan(args: argparse.Namespace, catalog: Catalog, host: Host) -> Plan:
    from harness.matrix.expand import expand
    from harness.matrix.select import keyword_filter
    from harness.yamlfile import load

    path = args.matrix or catalog.workspace.root / "matrix.yaml"
    data, root = load(path)
    plan = expand(
        data, root, path, args.profile, catalog.names(), host.machines, catalog.firmware_names()
    )
    if args.keyword:
        wanted = keyword_filter(args.keyword)
        plan = dataclasses.replace(plan, cells=tuple(c for c in plan.cells if wanted(c.cell.id)))
    return plan


def cell_setup(catalog: Catalog, host: Host) -> CellSetup:
    """Images and firmware resolved once each; a failure is remembered and becomes
    the `error` of every cell that needs it."""
    from harness.errors import HarnessError
    from harness.firmware import read_descriptors, resolve
    from harness.runner import CellSetup

    def host_firmware(name: str) -> Firmware:
        return resolve(name, descriptors, host.virt_alias)

    lock = threading.Lock()
    images: dict[str, Image | Exception] = {}
    firmware: dict[str, Firmware | Exception] = {}
    descriptors = read_descriptors()

    def image(cell: Cell) -> Image:
        with lock:
            if cell.image not in images:
                try:
                    images[cell.image] = catalog.image(cell.image)
                except HarnessError as e:  # kept, and raised again for each cell
                    images[cell.image] = e
        found = images[cell.image]
        if isinstance(found, Exception):
            raise found
        return found

    def firmware_of(cell: Cell) -> Firmware:
        with lock:
            if cell.firmware not in firmware:
                try:
                    firmware[cell.firmware] = catalog.firmware(cell.firmware, host_firmware)
                except HarnessError as e:
                    firmware[cell.firmware] = e
        found = firmware[cell.firmware]
        if isinstance(found, Exception):
            raise found
        return found

    return CellSetup(image, firmware_of)
