"""harness images: build the images made here, and list what the cache holds."""

from __future__ import annotations

import argparse
import time
from typing import TYPE_CHECKING

from harness.cli import EXIT_ERROR, EXIT_OK
from harness.commands.common import add_download_arguments

if TYPE_CHECKING:
    from harness.catalog import Catalog


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="images_command", metavar="ACTION", required=True)
    build = sub.add_parser("build", help="build images (all by default); unchanged ones are kept")
    build.add_argument("names", nargs="*", metavar="NAME", help="default: all but the full systems")
    build.add_argument(
        "--with-full", action="store_true", help="also the full Debian systems (slow)"
    )
    build.add_argument("--force", action="store_true", help="rebuild even when nothing changed")
    sub.add_parser("list", help="every image: state (built, verified, cached...), size, digest")
    fetch = sub.add_parser("fetch", help="download, verify and unpack catalog images")
    fetch.add_argument("names", nargs="*", metavar="NAME")
    fetch.add_argument("--all", action="store_true", help="every downloadable image")
    add_download_arguments(fetch)


def main(args: argparse.Namespace) -> int:
    from harness.commands.common import open_catalog

    catalog = open_catalog(getattr(args, "offline", False), not getattr(args, "no_verify", False))
    if args.images_command == "fetch":
        return _fetch(catalog, args)
    if args.images_command == "build":
        everything = [
            name for name in catalog.recipes
            if args.with_full or catalog.recipes[name].kind != "full"
        ]  # fmt: skip
        for name in args.names or everything:
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


def _fetch(catalog: Catalog, args: argparse.Namespace) -> int:
    from harness.errors import HarnessError, UsageError

    names = sorted(catalog.remote) if args.all else args.names
    if not names:
        raise UsageError("name the images to fetch, or --all")
    unknown = [name for name in names if name not in catalog.remote]
    if unknown:
        raise UsageError(f"not downloadable images: {', '.join(unknown)}; see harness images list")
    failed = 0
    for name in names:
        try:
            image = catalog.image(name)
        except HarnessError as e:
            failed += 1
            print(f"{name}: {e}")
            continue
        state = "verified" if image.verified else "UNVERIFIED (--no-verify)"
        print(f"{name}: {state} {image.digest}: {image.disk or image.kernel}")
    return EXIT_ERROR if failed else EXIT_OK
