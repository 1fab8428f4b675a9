"""The pattern table: what console text means, as data.

The rows are data modules by stage, concatenated here in table order: rows_boot.py
(firmware, bootloader), rows_linux.py (kernel, initramfs), rows_userspace.py
(userspace, login, the emulator); their type, Pattern, is in rows.py.

Each row names a pattern, says what kind of evidence it is and which boot stage it
shows, and for failures the reason reported. The watcher (watcher.py) applies the
table; nothing here decides by itself.

Kinds:
- STAGE: progress; the boot has reached at least `stage`.
- FAIL: decides the cell at once (the line is enough; waiting cannot help).
- HINT: a soft error that many good boots also print (GRUB's `error:` lines, edk2
  trying the next boot option); kept as the likely reason if the boot later stalls.
- *_PROMPT: only counts at the end of the output, when the guest waits for input:
  FAIL_PROMPT fails the cell, the others drive the login conversation.

Matching is done on text cleaned of ANSI codes (text.py), anywhere in the line unless
anchored, because kernel messages interleave with userspace output. FAIL rows are
tried in table order, so the more specific reason comes first (a panic caused by a
missing root file system is `root-not-found`, not `kernel-panic`).

Sources for the texts (format strings read in each project's code):
edk2 OvmfPkg/Library/PlatformBmPrintScLib/StatusCodeHandler.c, MdeModulePkg BdsEntry.c,
ArmPkg DefaultExceptionHandlerLib; U-Boot include/config_distro_bootcmd.h,
boot/bootflow.c, cmd/bootefi.c, lib/efi_loader/efi_bootmgr.c, net/bootp.c; GRUB
grub-core/kern/err.c, normal/menu.c,
kern/rescue_reader.c; Linux kernel/panic.c, init/main.c, init/do_mounts.c,
arch/arm64/mm/fault.c, arch/arm64/kernel/traps.c, lib/bug.c; initramfs-tools
scripts/local and scripts/functions; dracut modules.d/98dracut-systemd and 99base;
systemd src/sulogin-shell/sulogin-shell.c, units/emergency.service.in (< v240) and
src/core/main.c / crash-handler.c; mkinitcpio init_functions; Alpine mkinitfs
initramfs-init.in; FreeBSD kern/vfs_mountroot.c and ddb; Linux kernel/watchdog.c,
rcu/tree_stall.h, hung_task.c; util-linux login-utils/sulogin.c and term-utils/agetty.c;
busybox libbb/login.c.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from harness.console import rows_boot, rows_linux, rows_userspace
from harness.console.rows import Kind as Kind
from harness.console.rows import Pattern as Pattern

# In this order: FAIL rows are tried first to last (rows.py's Kind).
TABLE: tuple[Pattern, ...] = rows_boot.ROWS + rows_linux.ROWS + rows_userspace.ROWS

_HOOK_DEVICE = re.compile(r"devexists-(\S+?)\.sh")
_ESCAPED = re.compile(r"\\x([0-9A-Fa-f]{2})")


def hook_device(text: str) -> str:
    """The device a dracut `devexists-` initqueue hook waits for, from the hook's file
    name (systemd-escaped by dracut-lib.sh: "\\x2fdev\\x2fvda2" is "/dev/vda2");
    "" if `text` names no such hook."""
    found = _HOOK_DEVICE.search(text)
    if found is None:
        return ""
    return _ESCAPED.sub(lambda m: chr(int(m.group(1), 16)), found.group(1))


_ROOT_ARG = re.compile(r"(?:Kernel command line|command line parameters):.*?\sroot=(\S+)")
_BY_TAG = {
    "UUID": "by-uuid",
    "PARTUUID": "by-partuuid",
    "LABEL": "by-label",
    "PARTLABEL": "by-partlabel",
}


def root_device(text: str) -> str:
    """The root device a kernel command line line names ("Kernel command line: ...
    root=UUID=1234", dracut's "Using kernel command line parameters: ..."), as the
    device path dracut waits for (dracut-lib.sh label_uuid_to_dev: UUID=x is
    /dev/disk/by-uuid/x); "" if `text` is no such line or names no root."""
    found = _ROOT_ARG.search(text)
    if found is None:
        return ""
    root = found.group(1).strip("\"'").removeprefix("block:")
    tag, equals, value = root.partition("=")
    if equals and tag in _BY_TAG:
        return f"/dev/disk/{_BY_TAG[tag]}/{value}"
    return root


@dataclass(frozen=True)
class CompiledPattern:
    pattern: Pattern
    regex: re.Pattern[str]


class PatternTable:
    """The table compiled and grouped by kind. Each row is searched on its own: most
    start with a literal, which `re` finds fast, where one alternation of every row
    would be tried at each position of each line (measured: three times slower)."""

    def __init__(self, table: tuple[Pattern, ...] = TABLE):
        self.by_kind: dict[Kind, list[CompiledPattern]] = {kind: [] for kind in Kind}
        for row in table:
            self.by_kind[row.kind].append(CompiledPattern(row, re.compile(row.regex)))

    def first(self, kind: Kind, text: str) -> Pattern | None:
        """The first row of `kind`, in table order, whose regex occurs in `text`."""
        return next((c.pattern for c in self.by_kind[kind] if c.regex.search(text)), None)

    def stages(self, text: str) -> list[Pattern]:
        return [c.pattern for c in self.by_kind[Kind.STAGE] if c.regex.search(text)]
