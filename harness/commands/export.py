"""harness export: what a cell or a run means for the tools that pick defaults."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from harness.cli import EXIT_OK

if TYPE_CHECKING:
    from harness.catalog import Catalog
    from harness.host import Host
    from harness.model import Image


# Why a virt-install cell has no domain XML to export: the harness does not write it,
# and libvirt picks its firmware only as it starts the domain (harness/virt_install.py).
VIRT_INSTALL = (
    "its domain is what virt-install --print-xml writes, whose firmware libvirt picks "
    "only when it starts it; its directory after `harness run` or a matrix has both "
    "(domain.xml as printed; through UEFI, domain.pinned.xml with the firmware that booted)"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="export_command", metavar="WHAT", required=True)
    libvirt = sub.add_parser(
        "libvirt", help="libvirt domain XML reproducing a cell (or a run's passing cells)"
    )
    libvirt.add_argument("cell", nargs="?", help="IMAGE/FIRMWARE/MACHINE/TRANSPORT")
    libvirt.add_argument("--run", type=Path, help="every passing cell of this run instead")
    libvirt.add_argument(
        "-o",
        "--out",
        type=Path,
        help="file (one cell) or directory (a run); default: stdout / RUN/libvirt",
    )
    facts = sub.add_parser(
        "facts", help="per OS: what reached login, and is virtio-pci a safe default"
    )
    facts.add_argument("run", type=Path)
    facts.add_argument("--json", type=Path, help="default: RUN/facts.json")
    facts.add_argument("--markdown", type=Path, help="default: RUN/facts.md")


def main(args: argparse.Namespace) -> int:
    from harness.commands.common import discover_host, open_catalog

    catalog = open_catalog()
    if args.export_command == "facts":
        return _facts(args, catalog)
    host = discover_host(args.qemu, catalog)
    return _libvirt(args, catalog, host)


def _libvirt(args: argparse.Namespace, catalog: Catalog, host: Host) -> int:
    from harness.cells import check_cell
    from harness.commands.common import cell_setup
    from harness.devices import launcher
    from harness.errors import UsageError
    from harness.export.libvirt import domain_name, domain_xml, write_domain
    from harness.matrix.rundir import RunDir
    from harness.model import Cell, Outcome
    from harness.report.results import load_final

    setup = cell_setup(catalog, host)
    accel = host.accel("auto")
    if args.run is not None and args.cell:
        raise UsageError(
            f"give a CELL or --run RUN, not both ({args.cell} and --run {args.run}): "
            "--run exports every passing cell of the run"
        )
    if args.run is None:
        if not args.cell:
            raise UsageError("name a CELL, or --run RUN for every passing cell of a run")
        cell = Cell.parse(args.cell)
        check_cell(cell, catalog.image_names(), host, catalog.firmware_names())
        if launcher(cell.transport) == "virt-install":
            raise UsageError(f"{cell} is a virt-install cell: {VIRT_INSTALL}")
        _never_build(catalog, cell.image)
        image = setup.image(cell)
        seeds: tuple[Path, ...] = ()
        if image.cloud_init and args.out:
            seeds = (_seed_beside(args.out, cell.image),)
        overlay = _overlay_beside(args.out, image) if args.out else None
        firmware = setup.firmware(cell)
        xml = domain_xml(cell, image, firmware, host.qemu, accel, seeds, overlay=overlay)
        if args.out:
            write_domain(args.out, xml)
        else:
            print(xml, end="")
        return EXIT_OK
    run = RunDir.open(args.run)
    out = args.out or run.path / "libvirt"
    passing = [r for r in load_final(run) if Outcome(r["outcome"]).reached_login]
    held = [r for r in passing if launcher(r["transport"]) == "virt-install"]
    passing = [r for r in passing if r not in held]
    for record in passing:
        cell = Cell.parse(record["cell"])
        _never_build(catalog, cell.image)
        # the NoCloud seed the cell booted with sits beside its console log
        seed = run.cell_dir(cell, record.get("repeat", 0)) / "seed.iso"
        seeds = (seed,) if seed.is_file() else ()
        image = setup.image(cell)
        path = out / f"{domain_name(cell)}.xml"
        xml = domain_xml(
            cell, image, setup.firmware(cell), host.qemu,
            record.get("accel") or accel, seeds, overlay=_overlay_beside(path, image),
        )  # fmt: skip
        write_domain(path, xml)
    if held:
        print(f"{len(held)} passing virt-install cells not exported: {VIRT_INSTALL}")
    if not passing and not held:
        print(f"no passing cell in {run.path}: no domain XML written")
    elif passing:
        print(f"{len(passing)} domain XML files in {out}")
    return EXIT_OK


def _overlay_beside(out: Path, image: Image) -> Path | None:
    """A qcow2 overlay over the image's disk next to the domain's XML (the cached
    image itself is never a domain's writable disk); None for an image without one."""
    from harness.cellfiles import make_overlay

    if image.disk is None:
        return None
    overlay = out.with_name(f"{out.stem}.qcow2").resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    make_overlay(image.disk, image.disk_format, overlay)
    return overlay


def _seed_beside(out: Path, image: str) -> Path:
    """A NoCloud seed for a cloud image's domain, next to its XML; says root's password."""
    import secrets

    from harness.images.seed import write_seed

    seed = out.with_name(f"{out.stem}-seed.iso")
    password = secrets.token_hex(8)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_seed(seed, f"harness-{secrets.token_hex(4)}", image, password)
    print(f"NoCloud seed {seed}: root's password is {password}")
    return seed


def _never_build(catalog: Catalog, image: str) -> None:
    """Domain XML describes an image; it is no reason to build or download one (a
    full image takes 20 minutes): an image that is not ready is a usage error that
    says which command makes it."""
    from harness.errors import UsageError

    why = catalog.not_ready(image)
    if why:
        raise UsageError(why)


def _facts(args: argparse.Namespace, catalog: Catalog) -> int:
    from harness.export.facts import facts, markdown
    from harness.matrix.rundir import RunDir
    from harness.report.results import load_final

    run = RunDir.open(args.run)
    meta = run.meta()
    labels = {name: recipe.os for name, recipe in catalog.recipes.items()}
    labels.update({name: f"{e.distro} {e.release}" for name, e in catalog.remote.items()})
    document = facts(
        {
            "run": meta.get("run", ""),
            "qemu": {"version": meta.get("host", {}).get("qemu_version", "")},
        },
        load_final(run),
        labels,
    )
    table = markdown(document)
    json_path = args.json or run.path / "facts.json"
    markdown_path = args.markdown or run.path / "facts.md"
    json_path.write_text(json.dumps(document, indent=2) + "\n")
    markdown_path.write_text(table)
    print(table, end="")
    # On stderr: stdout stays the Markdown table alone, for `> summary.md`.
    print(f"wrote {json_path} and {markdown_path}", file=sys.stderr)
    return EXIT_OK
