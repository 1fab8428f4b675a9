"""harness qemu: the QEMU builds of images/qemu.yaml beside the host's own.

harness qemu build [NAME...]   make them (all by default); nothing if unchanged
harness qemu list              each build: version, machine types, the binary to use
"""

from __future__ import annotations

import argparse

from harness.cli import EXIT_ERROR, EXIT_OK


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="qemu_command", metavar="WHAT", required=True)
    build = sub.add_parser("build", help="unpack Debian's QEMU of a release into the cache")
    build.add_argument("names", nargs="*", metavar="NAME", help="default: every build")
    sub.add_parser("list", help="each build: state, QEMU version, machine types, binary")


def main(args: argparse.Namespace) -> int:
    from harness.commands.common import open_catalog
    from harness.errors import HarnessError, UsageError
    from harness.host import discover
    from harness.images.debian import find_mirror
    from harness.qemu_builds import build, cached_build, describe, load_qemu_builds

    catalog = open_catalog()
    cache = catalog.workspace.cache
    builds = load_qemu_builds(catalog.workspace.images / "qemu.yaml")
    if args.qemu_command == "build":
        unknown = [name for name in args.names if name not in builds]
        if unknown:
            raise UsageError(
                f"unknown QEMU build {', '.join(unknown)}; builds: {', '.join(builds) or 'none'}"
            )
        mirror = find_mirror(catalog.env)
        for name in args.names or list(builds):
            print(f"building {name} (Debian {builds[name]})", flush=True)
            print(describe(build(name, builds[name], cache, mirror)))
        return EXIT_OK
    failed = False
    for name, suite in builds.items():
        found = cached_build(name, cache)
        if found is None:
            print(f"{name}: not built (Debian {suite}): harness qemu build {name}")
            continue
        try:
            host = discover(str(found.qemu), {})
        except HarnessError as e:
            print(f"{name}: broken: {e}")
            failed = True
            continue
        versioned = [m for m in host.machines if m != "virt"]
        print(describe(found))
        print(f"  machines: virt = {host.virt_alias}; {' '.join(versioned)}")
    return EXIT_ERROR if failed else EXIT_OK
