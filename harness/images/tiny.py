"""The tiny guests built here: a Debian arm64 kernel, a busybox initramfs that loads
the modules its recipe lists, and a busybox root file system with a getty on ttyAMA0.

The guest-side files (the initramfs /init, inittab, rcS...) live in images/tiny/ as
plain files; this module only gathers packages and assembles them.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from harness.errors import ImageBuildError, UsageError
from harness.images import cpio, disk, kmod
from harness.images.debian import Archive, Package, extract, kernel_package
from harness.images.store import ImageStore

# Bump when the build steps change what an image contains.
FORMAT = 1
APPEND = "root=/dev/vda2 console=ttyAMA0 rootdelay=5"
# Applets linked at build time; everything else busybox has is one `busybox X` away.
APPLETS = {
    "bin": "sh ash cat echo ls mkdir mount umount hostname uname sleep dmesg grep sed head "
    "tail readlink ln cp mv rm chmod ps df free id env stty sync true false printf "
    "basename dirname find sort wc cut tr awk vi less login",
    "sbin": "init getty poweroff reboot halt insmod lsmod modprobe switch_root",
}

Log = Callable[[str], None]


@dataclass(frozen=True)
class Recipe:
    name: str
    suite: str
    os: str
    modules: tuple[str, ...]
    description: str = ""
    append: str = APPEND


def load_recipes(path: Path) -> dict[str, Recipe]:
    try:
        data = yaml.safe_load(path.read_text()) or {}
        return {
            name: Recipe(
                name=name,
                suite=str(fields["suite"]),
                os=str(fields["os"]),
                modules=tuple(fields["modules"]),
                description=str(fields.get("description", "")),
                append=str(fields.get("append", APPEND)),
            )
            for name, fields in data.items()
        }
    except (OSError, yaml.YAMLError, KeyError, TypeError, AttributeError) as e:
        raise UsageError(f"{path}: cannot read image recipes: {e}") from e


class TinyBuilder:
    def __init__(self, store: ImageStore, guest_files: Path, mirror: str, log: Log):
        self.store = store
        self.guest_files = guest_files
        self.mirror = mirror
        self.log = log

    def build(self, recipe: Recipe, force: bool = False) -> tuple[Path, bool]:
        """Builds `recipe` unless its entry exists; returns (entry, built now)."""
        archive = Archive(self.store.cache / "apt", recipe.suite, self.mirror)
        archive.update()
        packages = {
            "kernel": kernel_package(archive, "linux-image-arm64"),
            "busybox": archive.package("busybox-static"),
            "grub": archive.package("grub-efi-arm64-bin"),
        }
        key = self._key(recipe, packages)
        with self.store.building(recipe.name) as staging:
            entry = self.store.entry(recipe.name, key)
            if entry.exists() and not force:
                return entry, False
            started = time.monotonic()
            debs = {role: archive.download(pkg) for role, pkg in packages.items()}
            self.log(f"{recipe.name}: assembling from {', '.join(map(_label, packages.values()))}")
            record = self._assemble(recipe, debs, staging / "work", staging)
            record.update(
                key=key,
                packages={pkg.name: pkg.version for pkg in packages.values()},
                build_seconds=round(time.monotonic() - started, 1),
            )
            shutil.rmtree(staging / "work")
            return self.store.publish(recipe.name, key, staging, record), True

    def _key(self, recipe: Recipe, packages: dict[str, Package]) -> str:
        digest = hashlib.sha256()
        digest.update(json.dumps([FORMAT, asdict(recipe)], sort_keys=True).encode())
        for pkg in packages.values():
            digest.update(f"{pkg.name}={pkg.version}\n".encode())
        for path in sorted(self.guest_files.rglob("*")):
            if path.is_file():
                digest.update(str(path.relative_to(self.guest_files)).encode())
                digest.update(path.read_bytes())
        return digest.hexdigest()[:16]

    def _assemble(
        self, recipe: Recipe, debs: dict[str, Path], work: Path, out: Path
    ) -> dict[str, Any]:
        unpacked = work / "unpacked"
        unpacked.mkdir(parents=True)
        for deb in debs.values():
            extract(deb, unpacked, _wanted)
        kernel = _one(unpacked.glob("boot/vmlinuz-*"), "kernel image")
        modules = {kmod.module_name(str(p)): p for p in unpacked.rglob("*.ko*")}
        builtin = {
            kmod.module_name(line)
            for path in unpacked.rglob("modules.builtin")
            for line in path.read_text().split()
        }
        wanted = [m for m in recipe.modules if m not in builtin]
        order = kmod.load_order(wanted, modules)
        busybox = _one(
            [p for p in (unpacked / "bin/busybox", unpacked / "usr/bin/busybox") if p.exists()],
            "busybox",
        )

        shutil.copy(kernel, out / "vmlinuz")
        (out / "initrd.img").write_bytes(self._initramfs(busybox, order, modules))
        rootfs = self._rootfs(recipe, busybox, work / "rootfs")
        esp = self._esp(recipe, unpacked, out, work / "esp")
        disk.vfat_image(esp, work / "esp.img")
        disk.ext4_image(rootfs, work / "root.img")
        disk.gpt_disk(out / "disk.raw", work / "esp.img", work / "root.img")
        return {
            "name": recipe.name,
            "kind": "built",
            "suite": recipe.suite,
            "os": recipe.os,
            "description": recipe.description,
            "initramfs_modules": order,
            "files": {"disk": "disk.raw", "kernel": "vmlinuz", "initrd": "initrd.img"},
            "disk_format": "raw",
            "append": recipe.append,
            "login": {"user": "root", "password": ""},
            "digest": "sha256:" + _sha256(out / "disk.raw"),
            "size": (out / "disk.raw").stat().st_size,
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }

    def _initramfs(self, busybox: Path, order: list[str], modules: dict[str, Path]) -> bytes:
        archive = cpio.Archive()
        for directory in ("bin", "dev", "etc", "lib", "lib/modules", "proc", "root", "sys"):
            archive.directory(directory)
        archive.char_device("dev/console", 5, 1)
        archive.file("bin/busybox", busybox.read_bytes(), 0o755)
        archive.symlink("bin/sh", "busybox")
        archive.file("init", (self.guest_files / "init").read_bytes(), 0o755)
        archive.file("etc/initramfs-modules", "".join(f"{m}\n" for m in order).encode())
        for name in order:
            archive.file(f"lib/modules/{name}.ko", kmod.read_module(modules[name]))
        return archive.gzipped()

    def _rootfs(self, recipe: Recipe, busybox: Path, root: Path) -> Path:
        shutil.copytree(self.guest_files / "rootfs", root)
        for directory in ("bin", "sbin", "dev", "proc", "sys", "tmp", "root", "run"):
            (root / directory).mkdir(exist_ok=True)
        shutil.copy(busybox, root / "bin/busybox")
        for directory, applets in APPLETS.items():
            for applet in applets.split():
                target = "busybox" if directory == "bin" else "../bin/busybox"
                (root / directory / applet).symlink_to(target)
        (root / "etc/init.d/rcS").chmod(0o755)
        (root / "etc/hostname").write_text(recipe.name + "\n")
        version = recipe.os.split()[-2] if recipe.os[-1:] == ")" else ""
        (root / "etc/os-release").write_text(
            f'PRETTY_NAME="{recipe.os}"\nNAME="Debian GNU/Linux"\nVERSION_ID="{version}"\n'
            f"ID=debian\nVARIANT_ID=harness-tiny\n"
        )
        (root / "etc/issue").write_text(f"{recipe.os} (harness tiny guest) \\l\n\n")
        return root

    def _esp(self, recipe: Recipe, unpacked: Path, out: Path, esp: Path) -> Path:
        (esp / "EFI/BOOT").mkdir(parents=True)
        shutil.copy(out / "vmlinuz", esp / "vmlinuz")
        shutil.copy(out / "initrd.img", esp / "initrd.img")
        grub_cfg = esp.parent / "grub.cfg"
        grub_cfg.write_text(
            "set timeout=0\n"
            "search --no-floppy --set=root --file /vmlinuz\n"
            "echo 'Loading Linux ...'\n"
            f"linux /vmlinuz {recipe.append}\n"
            "echo 'Loading initial ramdisk ...'\n"
            "initrd /initrd.img\n"
            "boot\n"
        )
        grub_modules = _one(unpacked.glob("usr/lib/grub/arm64-efi"), "GRUB arm64-efi modules")
        argv = [
            "grub-mkstandalone", "-O", "arm64-efi", "-d", str(grub_modules),
            "-o", str(esp / "EFI/BOOT/BOOTAA64.EFI"),
            "--modules=part_gpt fat search search_fs_file linux echo normal",
            "--locales=", "--themes=", "--fonts=",
            f"boot/grub/grub.cfg={grub_cfg}",
        ]  # fmt: skip
        proc = subprocess.run(argv, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise ImageBuildError(f"grub-mkstandalone failed: {proc.stderr.strip()}")
        return esp


def _wanted(path: str) -> bool:
    return (
        path in ("bin/busybox", "usr/bin/busybox")
        or path.startswith(("boot/vmlinuz-", "usr/lib/grub/arm64-efi/"))
        or kmod.is_module(path)
        or path.endswith("/modules.builtin")
    )


def _one(paths: Any, what: str) -> Path:
    found = sorted(paths)
    if len(found) != 1:
        raise ImageBuildError(f"expected one {what} in the packages, found {len(found)}")
    return Path(found[0])


def _label(pkg: Package) -> str:
    return f"{pkg.name} {pkg.version}"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
