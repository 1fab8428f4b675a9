"""harness images: build the images made here, and list what the cache holds."""

from __future__ import annotations

import argparse
import os
import time

from harness.cli import EXIT_OK


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="images_command", metavar="ACTION", required=True)
    build = sub.add_parser("build", help="build images (all by default); unchanged ones are kept")
    build.add_argument("names", nargs="*", metavar="NAME")
    build.add_argument("--force", action="store_true", help="rebuild even when nothing changed")
    sub.add_parser("list", help="name, state, size, digest and build time of every image")


def main(args: argparse.Namespace) -> int:
    from harness.catalog import Catalog, Workspace

    catalog = Catalog(Workspace.locate(os.environ), os.environ, print)
    if args.images_command == "build":
        for name in args.names or catalog.names():
            started = time.monotonic()
            entry, built = catalog.build(catalog.recipe(name), force=args.force)
            took = time.monotonic() - started
            state = f"built in {took:.1f}s" if built else f"unchanged ({took:.1f}s to check)"
            print(f"{name}: {state}: {entry}")
        return EXIT_OK
    rows = catalog.listing()
    width = max(len(row["name"]) for row in rows)
    print(f"{'NAME':<{width}}  {'STATE':<9}  {'SIZE':>7}  {'DIGEST':<23}  {'BUILT AT':<20}  SOURCE")
    for row in rows:
        size = f"{row['size'] / (1 << 20):.0f}MiB" if row["size"] else "-"
        digest = row["digest"][:23] if row["digest"] else "-"
        print(
            f"{row['name']:<{width}}  {row['state']:<9}  {size:>7}  {digest:<23}  "
            f"{row['built_at'] or '-':<20}  {row['source']}"
        )
    return EXIT_OK
