"""GRUB for the tiny guests' EFI system partition, made by the host's grub-common tools
from the guest release's own arm64-efi modules (grub-efi-arm64-bin)."""

from __future__ import annotations

from pathlib import Path

from harness import cancel as cancelling
from harness.cancel import Cancel
from harness.errors import ImageBuildError
from harness.images.recipes import Recipe

# The removable-media path: AAVMF boots it with no boot entry in the VARS.
BOOT_FILE = "EFI/BOOT/BOOTAA64.EFI"


def config(recipe: Recipe, custom: Path | None) -> str:
    """grub.cfg: the fault's own (with {append} filled in), or the plain boot of the
    kernel and initramfs on the ESP, echoing what Debian's grub.cfg echoes."""
    if custom is not None:
        return custom.read_text().replace("{append}", recipe.append)
    lines = [
        "set timeout=0",
        "search --no-floppy --set=root --file /vmlinuz",
        "echo 'Loading Linux ...'",
        f"linux /vmlinuz {recipe.append}",
    ]
    if recipe.initrd:
        lines += ["echo 'Loading initial ramdisk ...'", "initrd /initrd.img"]
    return "\n".join([*lines, "boot", ""])


def efi_binary(
    recipe: Recipe,
    modules: Path,
    grub_cfg: Path,
    out: Path,
    cancel: Cancel,
    extra_modules: str = "",
) -> None:
    """GRUB's EFI binary for `recipe` at `out`; raises ImageBuildError when the grub
    tool fails, Cancelled once `cancel` is set (harness/cancel.py)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    if recipe.grub == "rescue":
        # A core image whose prefix names a directory that does not exist: GRUB cannot
        # load normal.mod and drops to its rescue shell, as after a broken update.
        argv = ["grub-mkimage", "-O", "arm64-efi", "-d", str(modules), "-p", "/boot/grub-gone",
                "-o", str(out), "part_gpt", "fat"]  # fmt: skip
    else:
        argv = [
            "grub-mkstandalone", "-O", "arm64-efi", "-d", str(modules), "-o", str(out),
            f"--modules=part_gpt fat search search_fs_file linux echo normal memrw {extra_modules}",
            "--locales=", "--themes=", "--fonts=",
            f"boot/grub/grub.cfg={grub_cfg}",
        ]  # fmt: skip
    proc = cancelling.run(argv, cancel, text=True)
    if proc.returncode != 0:
        raise ImageBuildError(f"{argv[0]} failed: {proc.stderr.strip()}")
