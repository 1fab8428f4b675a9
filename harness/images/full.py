"""A real Debian system as an image (recipe kind "full"): mmdebstrap installs an arm64
Debian with systemd, udev, initramfs-tools and the distribution kernel, its maintainer
scripts running under qemu-user emulation (measured on two cores: 22 minutes, most of
it making an initramfs of every module; 4 with a module list), so the boot path is
Debian's own: its initramfs, its systemd, its serial getty.

Host needs: mmdebstrap, qemu-user-static with its binfmt handler registered. The
disk is made like the tiny ones (no loop devices): an EFI system partition with a
standalone GRUB that loads the kernel and initramfs from the ext4 root.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from harness import cancel as cancelling
from harness.cancel import Cancel
from harness.errors import ImageBuildError
from harness.images import disk, grub
from harness.images.recipes import Recipe, base_record, duration, expected_build_s

BINFMT = Path("/proc/sys/fs/binfmt_misc/qemu-aarch64")
PACKAGES = "systemd-sysv,udev,initramfs-tools,linux-image-arm64,kmod,procps,iproute2,login,passwd"
HOW_TO_GET_READY = (
    "sudo apt-get install mmdebstrap qemu-user-static binfmt-support && "
    "sudo mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc; "
    "sudo update-binfmts --enable qemu-aarch64"
)


def host_lacks() -> str:
    """What this host lacks to build a full image ("" when it has all: mmdebstrap,
    qemu-aarch64-static and the binfmt handler); HOW_TO_GET_READY says how to get it.
    Reads PATH and /proc only: `harness list` asks it for every full image it shows."""
    missing = [tool for tool in ("mmdebstrap", "qemu-aarch64-static") if shutil.which(tool) is None]
    if missing or not BINFMT.exists():
        what = ", ".join(missing) or f"the binfmt handler {BINFMT}"
        return f"building a full Debian image needs {what}"
    return ""


def check_host() -> None:
    """Raises ImageBuildError saying host_lacks() and how to get it, where it lacks any."""
    if why := host_lacks():
        raise ImageBuildError(f"{why}: {HOW_TO_GET_READY}")


def _hooks(recipe: Recipe, work: Path) -> list[str]:
    """mmdebstrap hook options: host name, root without a password, fstab; and for a
    recipe with a module list, an initramfs of only those modules, set up before the
    kernel package makes its initramfs (so it is made once, and fast)."""
    hooks = [
        f'--customize-hook=echo {recipe.host_name} > "$1/etc/hostname"',
        '--customize-hook=chroot "$1" passwd -d root',
        '--customize-hook=printf "LABEL=root / ext4 rw,errors=remount-ro 0 1\\n" > "$1/etc/fstab"',
    ]
    if recipe.modules:
        # MODULES=list, as a distro built on an mmio-only host had: MODULES=dep would add
        # virtio_pci whenever the build host has it. A hook adds the listed modules
        # (/etc/initramfs-tools/modules is a conffile, not to be written before).
        conf, hook = work / "conf.d" / "harness-modules", work / "hooks" / "harness-modules"
        for path in (conf, hook):
            path.parent.mkdir(parents=True)
        conf.write_text("MODULES=list\n")
        hook.write_text(
            '#!/bin/sh\n[ "$1" = prereqs ] && exit 0\n. /usr/share/initramfs-tools/hook-functions\n'
            f"manual_add_modules {' '.join(recipe.modules)}\n"
        )
        hook.chmod(0o755)
        hooks += [
            '--setup-hook=mkdir -p "$1/etc/initramfs-tools"',
            f"--setup-hook=copy-in {conf.parent} {hook.parent} /etc/initramfs-tools/",
        ]
    return hooks


def full_image(
    recipe: Recipe, mirror: str, grub_modules: Path, work: Path, out: Path, log: Any, cancel: Cancel
) -> dict[str, Any]:
    """Builds a full Debian image with mmdebstrap; the caller has made sure the host
    can (check_host)."""
    rootfs = work / "rootfs"
    argv = [
        "mmdebstrap", "--mode=root" if os.geteuid() == 0 else "--mode=unshare",
        "--architectures=arm64", "--variant=minbase", f"--include={PACKAGES}",
        *_hooks(recipe, work),
        recipe.suite, str(rootfs), mirror,
    ]  # fmt: skip
    expected = expected_build_s(recipe, None)
    how = f"its maintainer scripts under emulation (~{duration(expected)})"
    log(f"{recipe.name}: mmdebstrap, {how}")
    started = time.monotonic()
    returncode, last = _mmdebstrap(
        argv, work / "mmdebstrap.log", recipe.name, expected, log, cancel
    )
    if returncode != 0:
        raise ImageBuildError(f"mmdebstrap failed for {recipe.name}: {last or '(no output)'}")
    log(f"{recipe.name}: root file system in {time.monotonic() - started:.0f}s")
    kernel = _newest(rootfs / "boot", "vmlinuz-*")
    initrd = _newest(rootfs / "boot", "initrd.img-*")
    shutil.copy(kernel, out / "vmlinuz")
    shutil.copy(initrd, out / "initrd.img")
    esp = work / "esp"
    (esp / "EFI/BOOT").mkdir(parents=True)
    grub_cfg = work / "grub.cfg"
    grub_cfg.write_text(
        "set timeout=0\n"
        "search --no-floppy --set=root --label root\n"
        f"echo 'Loading Linux {kernel.name.removeprefix('vmlinuz-')} ...'\n"
        f"linux /boot/{kernel.name} {recipe.append} rw\n"
        "echo 'Loading initial ramdisk ...'\n"
        f"initrd /boot/{initrd.name}\n"
        "boot\n"
    )
    grub.efi_binary(
        recipe, grub_modules, grub_cfg, esp / grub.BOOT_FILE, cancel, extra_modules="ext2"
    )
    return {
        **base_record(recipe, "full"),
        **disk.assemble(esp, rootfs, work, out, cancel),
        "initramfs_modules": list(recipe.modules) or "initramfs-tools default (MODULES=most)",
        "files": {"disk": "disk.raw", "kernel": "vmlinuz", "initrd": "initrd.img"},
        "disk_format": "raw",
        "append": f"{recipe.append} rw",
        "login": {"user": "root", "password": ""},
    }


def _mmdebstrap(
    argv: list[str],
    output: Path,
    name: str,
    expected_s: float,
    log: Any,
    cancel: Cancel,
    every_s: float = 30,
) -> tuple[int, str]:
    """Runs mmdebstrap, telling `log` every `every_s` seconds how long it has run (of
    `expected_s`) and its last line; returns (exit status, last line). It runs in its
    own process group, stopped as a whole (TERM, then KILL: harness/cancel.py) if the
    harness is interrupted or `cancel` is set: its chroot helpers and qemu-user
    processes go with it."""
    started = time.monotonic()
    proc = None
    try:
        with output.open("w") as sink:
            proc = subprocess.Popen(
                argv, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
            )
        # the wait stops the group when interrupted or cancelled
        while (returncode := cancelling.wait(proc, cancel, every_s)) is None:
            ran = duration(time.monotonic() - started)
            log(f"{name}: mmdebstrap {ran} of ~{duration(expected_s)}: {_last_line(output)}")
    except BaseException:
        # also an interrupt before the wait began (seen once under load: the group ran on)
        if proc is not None:
            cancelling.stop_group(proc)
        raise
    return returncode, _last_line(output)


def _last_line(path: Path) -> str:
    try:
        with path.open("rb") as f:
            f.seek(max(0, path.stat().st_size - 4096))
            lines = f.read().decode(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return lines[-1][:200] if lines else ""


def _newest(directory: Path, pattern: str) -> Path:
    found = sorted(p for p in directory.glob(pattern) if p.is_file())
    if not found:
        raise ImageBuildError(f"no {pattern} in {directory}")
    return found[-1]
