"""The tiny guests built here: a Debian arm64 kernel, a busybox initramfs that loads
the modules its recipe lists, and a busybox root file system with a getty on ttyAMA0.

The guest-side files (the initramfs /init, inittab, rcS...) live in images/tiny/ as
plain files, and a fault guest's changes in images/tiny/faults/<fault>/; this module
only gathers packages and assembles them.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from harness import cancel as cancelling
from harness.cancel import Cancel
from harness.errors import ImageBuildError
from harness.images import cpio, disk, grub, kmod
from harness.images.debian import Archive, Package, extract, versioned_kernel
from harness.images.full import check_host, full_image
from harness.images.installer import installer_image
from harness.images.recipes import Recipe, base_record
from harness.images.store import ImageStore

# Bump when the build steps change what an image contains.
FORMAT = 2
# Applets linked at build time; everything else busybox has is one `busybox X` away.
APPLETS = {
    "bin": "sh ash cat echo ls mkdir mount umount hostname uname sleep dmesg grep sed head "
    "tail readlink ln cp mv rm chmod ps df free id env stty sync true false printf "
    "basename dirname find sort wc cut tr awk vi less login setsid cttyhack "
    # the device probe's (console/probe.py WORKS), and dd for the disk-writer fault
    "dd od timeout ip udhcpc",
    "sbin": "init getty poweroff reboot halt insmod lsmod modprobe switch_root",
}

Log = Callable[[str], None]


class TinyBuilder:
    """Builds recipes; one builder asks apt about each suite once, however many
    images of that suite it builds. A build stops (Cancelled, harness/cancel.py)
    between its steps and in its waits once `cancel` is set."""

    def __init__(
        self, store: ImageStore, guest_files: Path, mirror: str, log: Log, cancel: Cancel = None
    ):
        self.store = store
        self.guest_files = guest_files
        self.mirror = mirror
        self.log = log
        self.cancel = cancel
        self._packages: dict[str, tuple[Archive, dict[str, Package]]] = {}
        self._unpacked: dict[tuple[Path, ...], Path] = {}
        self._scratch: Path | None = None
        # Images are prepared on several threads at once (commands/common.prepare): the
        # per-suite package lists and the shared unpacking are made by one at a time.
        self._lock = threading.Lock()

    def _unpack(self, debs: dict[str, Path]) -> Path:
        """The packages' files that builds use, unpacked once per builder (a kernel
        package is 300 MB of modules): every fault guest shares one unpacking."""
        with self._lock:
            return self._unpack_locked(debs)

    def _unpack_locked(self, debs: dict[str, Path]) -> Path:
        key = tuple(sorted(debs.values()))
        if key not in self._unpacked:
            if self._scratch is None:
                _remove_stale_scratch(self.store.cache)
                self._scratch = Path(
                    tempfile.mkdtemp(prefix=f".unpacked-{os.getpid()}-", dir=self.store.cache)
                )
                weakref.finalize(self, shutil.rmtree, self._scratch, True)
            target = self._scratch / str(len(self._unpacked))
            target.mkdir()
            for deb in key:
                extract(deb, target, _wanted, self.cancel)
            self._unpacked[key] = target
        return self._unpacked[key]

    def _suite(self, suite: str) -> tuple[Archive, dict[str, Package]]:
        with self._lock:
            return self._suite_locked(suite)

    def _suite_locked(self, suite: str) -> tuple[Archive, dict[str, Package]]:
        if suite not in self._packages:
            archive = Archive(self.store.cache / "apt", suite, self.mirror, cancel=self.cancel)
            archive.update()
            found = archive.packages("linux-image-arm64", "busybox-static", "grub-efi-arm64-bin")
            meta = found["linux-image-arm64"]
            kernel = versioned_kernel(meta)
            packages = {
                "kernel": archive.packages(kernel)[kernel]
                if kernel
                else found["linux-image-arm64"],
                "busybox": found["busybox-static"],
                "grub": found["grub-efi-arm64-bin"],
            }
            self._packages[suite] = (archive, packages)
        return self._packages[suite]

    def build(
        self, recipe: Recipe, force: bool = False, log: Log | None = None
    ) -> tuple[Path, bool]:
        """Builds `recipe` unless its entry exists; returns (entry, built now). Its
        steps go to `log` (default: the builder's)."""
        log = log or self.log
        if recipe.suite not in self._packages:
            log(f"{recipe.name}: reading Debian {recipe.suite}'s package index")
        archive, packages = self._suite(recipe.suite)
        if recipe.kind == "installer":
            packages = {"installer": archive.packages(recipe.package)[recipe.package]}
        key = self._key(recipe, packages)
        with self.store.building(recipe.name) as staging:
            entry = self.store.entry(recipe.name, key)
            if entry.exists() and not force:
                return entry, False
            if recipe.kind == "full":
                check_host()  # before fetching anything for a build that cannot run
            started = time.monotonic()
            log(f"{recipe.name}: fetching {', '.join(map(_label, packages.values()))}")
            debs = {role: archive.download(pkg) for role, pkg in packages.items()}
            cancelling.check(self.cancel)
            log(f"{recipe.name}: assembling ({time.monotonic() - started:.0f} s so far)")
            if recipe.kind == "installer":
                record = installer_image(recipe, debs["installer"], staging, self.cancel)
            elif recipe.kind == "full":
                modules = self._unpack(debs) / "usr/lib/grub/arm64-efi"
                work = staging / "work"
                work.mkdir()
                record = full_image(recipe, self.mirror, modules, work, staging, log, self.cancel)
            else:
                record = self._assemble(recipe, debs, staging / "work", staging)
            cancelling.check(self.cancel)
            record.update(
                key=key,
                recipe_digest=recipe_digest(recipe, self.guest_files),
                packages={pkg.name: pkg.version for pkg in packages.values()},
                build_seconds=round(time.monotonic() - started, 1),
            )
            shutil.rmtree(staging / "work", ignore_errors=True)
            return self.store.publish(recipe.name, key, staging, record), True

    def _fault_dir(self, recipe: Recipe) -> Path | None:
        return fault_dir(recipe, self.guest_files)

    def _key(self, recipe: Recipe, packages: dict[str, Package]) -> str:
        digest = hashlib.sha256(recipe_digest(recipe, self.guest_files).encode())
        for pkg in packages.values():
            digest.update(f"{pkg.name}={pkg.version}\n".encode())
        return digest.hexdigest()[:16]

    def _assemble(
        self, recipe: Recipe, debs: dict[str, Path], work: Path, out: Path
    ) -> dict[str, Any]:
        unpacked = self._unpack(debs)
        work.mkdir(parents=True)
        kernel = _one(unpacked.glob("boot/vmlinuz-*"), "kernel image")
        modules = {kmod.module_name(str(p)): p for p in unpacked.rglob("*.ko*")}
        builtin = {
            kmod.module_name(line)
            for path in unpacked.rglob("modules.builtin")
            for line in path.read_text().split()
        }
        order = kmod.load_order(recipe.modules, modules, builtin, self.cancel)
        cancelling.check(self.cancel)
        busybox = _one(
            [p for p in (unpacked / "bin/busybox", unpacked / "usr/bin/busybox") if p.exists()],
            "busybox",
        )
        fault = self._fault_dir(recipe)
        shutil.copy(kernel, out / "vmlinuz")
        if recipe.initrd:
            (out / "initrd.img").write_bytes(self._initramfs(busybox, order, modules, fault))
        rootfs = self._rootfs(recipe, busybox, work / "rootfs", fault)
        esp = self._esp(recipe, unpacked, out, work / "esp", fault)
        return {
            **base_record(recipe, "built"),
            **disk.assemble(esp, rootfs, work, out, self.cancel),
            "initramfs_modules": order,
            "files": {
                "disk": "disk.raw",
                "kernel": "vmlinuz",
                "initrd": "initrd.img" if recipe.initrd else None,
            },
            "disk_format": "raw",
            "append": recipe.append,
            "login": {"user": "root", "password": "", "cloud_init": recipe.cloud_init},
        }

    def _initramfs(
        self, busybox: Path, order: list[str], modules: dict[str, Path], fault: Path | None
    ) -> bytes:
        archive = cpio.Archive()
        for directory in ("bin", "dev", "etc", "lib", "lib/modules", "proc", "root", "sys"):
            archive.directory(directory)
        archive.char_device("dev/console", 5, 1)
        archive.file("bin/busybox", busybox.read_bytes(), 0o755)
        archive.symlink("bin/sh", "busybox")
        archive.file("init", (self.guest_files / "init").read_bytes(), 0o755)
        if fault is not None and (fault / "initramfs-hook").is_file():
            archive.file("hook", (fault / "initramfs-hook").read_bytes(), 0o644)
        archive.file("etc/initramfs-modules", "".join(f"{m}\n" for m in order).encode())
        for name in order:
            cancelling.check(self.cancel)
            archive.file(f"lib/modules/{name}.ko", kmod.read_module(modules[name], self.cancel))
        return archive.gzipped()

    def _rootfs(self, recipe: Recipe, busybox: Path, root: Path, fault: Path | None) -> Path:
        shutil.copytree(self.guest_files / "rootfs", root)
        if fault is not None and (fault / "rootfs").is_dir():
            shutil.copytree(fault / "rootfs", root, dirs_exist_ok=True)
        for directory in ("bin", "sbin", "dev", "proc", "sys", "tmp", "root", "run"):
            (root / directory).mkdir(exist_ok=True)
        shutil.copy(busybox, root / "bin/busybox")
        for directory, applets in APPLETS.items():
            for applet in applets.split():
                target = "busybox" if directory == "bin" else "../bin/busybox"
                (root / directory / applet).symlink_to(target)
        for script in ("etc/init.d/rcS", "etc/udhcpc.script"):
            (root / script).chmod(0o755)
        if recipe.host_name:
            (root / "etc/hostname").write_text(recipe.host_name + "\n")
        version = recipe.os.split()[-2] if recipe.os.endswith(")") else ""
        (root / "etc/os-release").write_text(
            f'PRETTY_NAME="{recipe.os}"\nNAME="Debian GNU/Linux"\nVERSION_ID="{version}"\n'
            "ID=debian\nVARIANT_ID=harness-tiny\n"
        )
        if not (root / "etc/issue").exists():
            (root / "etc/issue").write_text(f"{recipe.os} (harness tiny guest) \\l\n\n")
        return root

    def _esp(
        self, recipe: Recipe, unpacked: Path, out: Path, esp: Path, fault: Path | None
    ) -> Path:
        esp.mkdir(parents=True)
        if not recipe.esp:
            return esp
        shutil.copy(out / "vmlinuz", esp / "vmlinuz")
        if recipe.initrd:
            shutil.copy(out / "initrd.img", esp / "initrd.img")
        custom = (
            fault / "grub.cfg" if fault is not None and (fault / "grub.cfg").is_file() else None
        )
        grub_cfg = esp.parent / "grub.cfg"
        grub_cfg.write_text(grub.config(recipe, custom))
        modules = _one(unpacked.glob("usr/lib/grub/arm64-efi"), "GRUB arm64-efi modules")
        grub.efi_binary(recipe, modules, grub_cfg, esp / grub.BOOT_FILE, self.cancel)
        return esp


def fault_dir(recipe: Recipe, guest_files: Path) -> Path | None:
    if not recipe.fault:
        return None
    path = guest_files / "faults" / recipe.fault
    if not path.is_dir():
        raise ImageBuildError(f"{recipe.name}: no fault directory {path}")
    return path


def recipe_digest(recipe: Recipe, guest_files: Path) -> str:
    """What a recipe is made of besides packages: its fields and its guest-side files
    (its own fault directory only). A change here means the cached image is stale."""
    digest = hashlib.sha256(json.dumps([FORMAT, asdict(recipe)], sort_keys=True).encode())
    fault = fault_dir(recipe, guest_files)
    for root in [guest_files / "init", guest_files / "rootfs", *([fault] if fault else [])]:
        for path in sorted(p for p in [root, *root.rglob("*")] if p.is_file()):
            digest.update(str(path.relative_to(guest_files)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _remove_stale_scratch(cache: Path) -> None:
    """Unpacked packages left by a builder that was killed before it could clean up."""
    for path in cache.glob(".unpacked-*"):
        pid = path.name.split("-")[1]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            shutil.rmtree(path, ignore_errors=True)


def _wanted(path: str) -> bool:
    return (
        path in ("bin/busybox", "usr/bin/busybox")
        or path.startswith(("boot/vmlinuz-", "usr/lib/grub/arm64-efi/"))
        or kmod.is_module(path)
        or path.endswith("/modules.builtin")
    )


def _one(paths: Iterable[Path], what: str) -> Path:
    found = sorted(paths)
    if len(found) != 1:
        raise ImageBuildError(f"expected one {what} in the packages, found {len(found)}")
    return Path(found[0])


def _label(pkg: Package) -> str:
    return f"{pkg.name} {pkg.version}"
