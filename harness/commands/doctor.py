"""harness doctor: what this host has for running cells, and how to get what is missing."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

from harness.cli import EXIT_ERROR, EXIT_OK

if TYPE_CHECKING:
    from harness.catalog import Catalog

# tool -> Debian/Ubuntu package that provides it
IMAGE_TOOLS = {
    "apt-get": "apt",
    "dpkg-deb": "dpkg",
    "sfdisk": "fdisk",
    "mkfs.vfat": "dosfstools",
    "mcopy": "mtools",
    "mkfs.ext4": "e2fsprogs",
    "grub-mkstandalone": "grub-common",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def _line(ok: bool, what: str, text: str, fix: str = "") -> bool:
    mark = "ok  " if ok else "MISS"
    print(f"{mark} {what:<12} {text}")
    if not ok and fix:
        print(f"     {'':<12} fix: {fix}")
    return ok


def main(args: argparse.Namespace) -> int:
    from harness.catalog import Catalog, Workspace
    from harness.errors import HarnessError
    from harness.firmware import UBOOT_PATHS, host_aavmf, read_descriptors, uboot_version
    from harness.host import WrongTarget, discover
    from harness.images.debian import KEYRING
    from harness.images.full import HOW_TO_GET_READY, host_lacks
    from harness.images.store import ImageStore

    install = "sudo apt-get install"
    try:
        host = discover(args.qemu, os.environ)
    except WrongTarget as e:
        _line(False, "qemu", str(e), "point --qemu or $HARNESS_QEMU at qemu-system-aarch64")
        return EXIT_ERROR
    except HarnessError as e:
        _line(False, "qemu", str(e), f"{install} qemu-system-arm")
        return EXIT_ERROR
    _line(True, "qemu", f"{host.qemu} ({host.qemu_version})")
    versioned = [m for m in host.machines if m != "virt"]
    span = f"{versioned[0]} .. {versioned[-1]}" if versioned else "none"
    _line(
        bool(versioned), "machines", f"virt = {host.virt_alias}; {len(versioned)} versioned: {span}"
    )
    accel = "kvm" if host.kvm else "tcg"
    why = "" if host.kvm else f" (no KVM for aarch64 guests on this {host.arch} host)"
    _line(True, "accel", f"{accel}{why}; cpu options: {', '.join(host.tcg_cpu_options) or '-'}")
    qemu_img = shutil.which("qemu-img")
    runnable = _line(
        qemu_img is not None, "qemu-img", qemu_img or "not found", f"{install} qemu-utils"
    )
    aavmf = host_aavmf(read_descriptors(), host.virt_alias)
    _line(aavmf is not None, "firmware",
          f"aavmf: {aavmf.code} ({aavmf.path.name})" if aavmf else "no aarch64 UEFI descriptor",
          f"{install} qemu-efi-aarch64")  # fmt: skip
    found = next((path for path in UBOOT_PATHS if path.is_file()), None)
    uboot = f"{found} (U-Boot {uboot_version(found)})" if found else "no u-boot.bin for qemu_arm64"
    _line(found is not None, "firmware", f"uboot: {uboot}", f"{install} u-boot-qemu")
    rom = _find_rom(host.qemu, "efi-virtio.rom")
    _line(rom is not None, "option ROM", f"efi-virtio.rom for virtio-net-pci: {rom or 'not found'}",
          f"{install} ipxe-qemu")  # fmt: skip
    _libvirt()
    missing = sorted({pkg for tool, pkg in IMAGE_TOOLS.items() if shutil.which(tool) is None})
    tools = f"missing: {', '.join(missing)}" if missing else ", ".join(IMAGE_TOOLS)
    can_build = _line(not missing, "image tools", tools, f"{install} {' '.join(missing)}")
    can_build &= _line(
        KEYRING.exists(), "keyring", str(KEYRING), f"{install} debian-archive-keyring"
    )
    catalog = Catalog(Workspace.locate(os.environ), os.environ, print)
    can_build &= _mirror(catalog)
    rows = catalog.listing()
    built = [row["name"] for row in rows if row["state"] == "built"]
    unbuilt = [row["name"] for row in rows if row["state"] == "not built"]
    offline = " (offline: their cells are skips)" if catalog.offline and unbuilt else ""
    _line(bool(built) or can_build, "images",
          f"built: {', '.join(built) or 'none yet'}; not built: {', '.join(unbuilt) or '-'}"
          f"{offline}", "harness images build")  # fmt: skip
    cached = [row["name"] for row in rows if row["state"] in ("verified", "unverified")]
    _line(
        True,
        "downloads",
        f"{len(cached)} of {len(catalog.remote)} cached: {', '.join(cached) or '-'}",
    )
    _qemu_builds(catalog.workspace.images / "qemu.yaml", catalog.workspace.cache)
    firmware = {
        name: ImageStore(catalog.workspace.cache / "firmware").record(name)
        for name in catalog.firmware_builds
    }
    versions = [f"{n} ({r['version'] if r else 'not fetched yet'})" for n, r in firmware.items()]
    _line(True, "firmware", "builds: " + ", ".join(versions))
    if lacks := host_lacks():
        _line(False, "full images", f"optional: {lacks}", HOW_TO_GET_READY)
    else:
        _line(True, "full images", "mmdebstrap and qemu-aarch64 binfmt ready (--with-full)")
    return EXIT_OK if runnable and (built or can_build) else EXIT_ERROR


def _mirror(catalog: Catalog) -> bool:
    """The Debian mirror, tried (not only named): a HEAD of each suite's InRelease."""
    from harness.errors import HarnessError
    from harness.images.debian import MIRROR_ENV, find_mirror, probe_mirror

    try:
        mirror = find_mirror(catalog.env)
    except HarnessError as e:
        return _line(False, "mirror", str(e))
    if catalog.offline:
        return _line(True, "mirror", f"{mirror} (not tried: offline)")
    used = {r.suite for r in catalog.recipes.values()}
    suites = sorted(used | {build.suite for build in catalog.firmware_builds.values()})
    started = time.monotonic()
    why = probe_mirror(mirror, suites)
    took = time.monotonic() - started
    fix = f"set {MIRROR_ENV}=<a Debian mirror URI>, or check the host's network and apt sources"
    answered = f"{mirror} answers for {', '.join(suites)} ({took:.1f} s)"
    return _line(not why, "mirror", why or answered, fix)


def _qemu_builds(listing: Path, cache: Path) -> None:
    """Each QEMU build of images/qemu.yaml: its version and machine types, asked of
    the build itself. Optional: a missing one only limits the `qemu` axis."""
    from harness.errors import HarnessError
    from harness.host import discover
    from harness.qemu_builds import cached_build, describe, load_qemu_builds

    for name, suite in load_qemu_builds(listing).items():
        found = cached_build(name, cache)
        if found is None:
            _line(False, "qemu build", f"{name} (Debian {suite}): not built yet",
                  f"harness qemu build {name}")  # fmt: skip
            continue
        try:
            build_host = discover(str(found.qemu), {})
        except HarnessError as e:
            _line(False, "qemu build", f"{name}: {e}", f"harness qemu build {name}")
            continue
        versioned = [m for m in build_host.machines if m != "virt"]
        _line(True, "qemu build", describe(found))
        _line(True, "machines", f"virt = {build_host.virt_alias}; {len(versioned)} versioned: "
              f"{' '.join(versioned)}")  # fmt: skip


def _libvirt() -> None:
    """Whether libvirt cells can run (optional: they are skips where not)."""
    from harness.libvirt_host import probe, uri

    daemon = probe(uri(os.environ))
    text = f"{daemon.version} at {daemon.uri}" if daemon.usable else f"optional: {daemon.why}"
    _line(daemon.usable, "libvirt", text, daemon.fix)


def _find_rom(qemu: str, name: str) -> Path | None:
    proc = subprocess.run([qemu, "-L", "help"], capture_output=True, text=True, check=False)
    for directory in proc.stdout.split():
        if (Path(directory) / name).exists():
            return (Path(directory) / name).resolve()
    return None
