"""A row of the pattern table (patterns.py): what kind of evidence a pattern is, the
stage it shows and how the watcher treats it. The rows themselves are data, by stage,
in rows_boot.py, rows_linux.py and rows_userspace.py."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Kind(enum.Enum):
    STAGE = "stage"
    FAIL = "fail"
    HINT = "hint"
    FAIL_PROMPT = "fail-prompt"
    LOGIN_PROMPT = "login-prompt"
    PASSWORD_PROMPT = "password-prompt"
    SHELL_PROMPT = "shell-prompt"


@dataclass(frozen=True)
class Pattern:
    name: str
    kind: Kind
    stage: str
    regex: str
    reason: str = ""
    # Printed only when a machine starts: seen again after a later stage, the guest
    # was reset (a reset loop when it keeps happening).
    restart: bool = False
    # A hint that names the cause: seen again, or followed by silence, it decides
    # (dracut lists the same initqueue hooks every second until it gives up).
    decides_when_repeated: bool = False
    # A failure that belongs to `stage` whatever the lines before it showed: the EFI
    # stub prints as the kernel's image, but its fatal errors mean the kernel never ran.
    exact: bool = False
    # Progress that shows the soft error before it, in the same stage, did not stop
    # the boot (GRUB goes on to load a kernel after an unknown command in grub.cfg).
    clears_hint: bool = False
    # The component gave up: a repeating cause seen before it decides now.
    gives_up: bool = False
    # The emulator's last words: they decide only if nothing after them shows the boot
    # going on (QEMU also reports errors it survives, e.g. a network packet it dropped).
    last_words: bool = False
    # An initramfs's rescue shell looks the same ("/ # ls", "sh-5.2# ls"): while the
    # boot is in the initramfs, this shows no progress.
    initramfs_has_it: bool = False
    # QEMU was told to quit: what follows in a saved log is the host's terminal.
    guest_gone: bool = False
    # A running system prints this at any time, not only on its way up (kernel
    # messages, systemd's status lines).
    anytime: bool = False
    # A command typed at a shell: before anything of the guest, the host's that
    # started it, if the boot then starts.
    typed: bool = False
    # Printed once each time the machine starts: seen again in the same stage after
    # other output, the machine restarted (a U-Boot that resets itself).
    once_per_start: bool = False
    # Said of every device the component waited for (dracut's emergency hooks warn for
    # the root and a resume swap alike): once the command line named the root, only
    # the line naming it decides.
    any_device: bool = False


S, F, H = Kind.STAGE, Kind.FAIL, Kind.HINT
