"""The pattern table: what console text means, as data.

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
ArmPkg DefaultExceptionHandlerLib; U-Boot include/config_distro_bootcmd.h, boot/bootflow.c,
cmd/bootefi.c, lib/efi_loader/efi_bootmgr.c, net/bootp.c; GRUB grub-core/kern/err.c, normal/menu.c,
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

import enum
import re
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


S, F, H = Kind.STAGE, Kind.FAIL, Kind.HINT

TABLE: tuple[Pattern, ...] = (
    # --- firmware (edk2 / AAVMF) ---------------------------------------------------
    # PrePi prints this straight to the UART, so release builds show it too.
    Pattern("edk2-banner", S, "firmware", r"UEFI firmware \(version", restart=True),
    Pattern("edk2-boot-option", S, "firmware", r"BdsDxe: (?:loading|starting) Boot[0-9A-Fa-f]{4}"),
    # BDS hands the machine to the option's loader (GRUB, shim, the kernel's EFI stub):
    # what fails from here is the loader's doing. The firmware's own applications
    # (its shell, network boot) are still the firmware.
    Pattern(
        "edk2-start-loader",
        S,
        "bootloader",
        r'BdsDxe: starting Boot[0-9A-Fa-f]{4} "'
        r"(?!EFI Internal Shell|UEFI Shell|UEFI PXE|UEFI HTTP)",
    ),
    # BDS goes on with the next boot option; only a stall after it is a failure.
    Pattern(
        "edk2-boot-option-failed",
        H,
        "firmware",
        r"BdsDxe: failed to (?:load|start) Boot[0-9A-Fa-f]{4}",
        "firmware-no-boot",
    ),
    # StartImage returned: the loader ran and gave up (shim without its GRUB, an EFI
    # stub that could not relocate). A denial by Secure Boot never started it.
    Pattern(
        "edk2-loader-failed",
        F,
        "bootloader",
        r"BdsDxe: failed to start Boot[0-9A-Fa-f]{4} .*: (?!Access Denied|Security Violation)\w",
        "bootloader-no-boot",
    ),
    Pattern(
        "edk2-nothing-bootable",
        F,
        "firmware",
        r"No bootable option or device was found",
        "firmware-no-boot",
    ),
    # The disk was not bootable and the firmware went to the network: AAVMF's PXE and
    # HTTP attempts take minutes, so this decides now.
    Pattern(
        "uefi-network-boot",
        F,
        "firmware",
        r">>Start (?:PXE|HTTP Boot) over IPv[46]|iPXE initialising devices",
        "firmware-no-boot",
    ),
    Pattern(
        "uefi-shell",
        F,
        "firmware",
        r"UEFI Interactive Shell v\d|Press ESC in \d+ seconds to skip startup\.nsh",
        "firmware-no-boot",
    ),
    Pattern(
        "uefi-shell-prompt",
        Kind.FAIL_PROMPT,
        "firmware",
        r"^(?:Shell|FS\d+:\S*)> ?$",
        "firmware-no-boot",
    ),
    Pattern(
        "edk2-exception",
        F,
        "firmware",
        r"(?:Synchronous|SError|IRQ|FIQ) Exception at 0x[0-9A-Fa-f]+|ASSERT \[\w+\] \S+\(\d+\)"
        # U-Boot's exception handler (arch/arm/lib/interrupts_64.c), before it resets.
        r'|"(?:Synchronous Abort|SError|IRQ|FIQ)" handler, esr 0x',
        "firmware-crash",
    ),
    # --- firmware (U-Boot) ---------------------------------------------------------
    # Its banner (include/version.h U_BOOT_VERSION_STRING); -bios starts it at reset.
    Pattern("u-boot-banner", S, "firmware", r"^U-Boot (?:SPL )?\d{4}\.\d{2}", restart=True),
    # Looking for something to boot: distro_bootcmd (include/config_distro_bootcmd.h,
    # up to 2023) or bootstd (boot/bootflow.c, bootdev-uclass.c, since 2023.04).
    Pattern(
        "u-boot-scan",
        S,
        "firmware",
        r"^Scanning (?:virtio|scsi|usb|mmc|nvme) \d+:\d+\.\.\.|^Scanning for bootflows "
        r"|^Scanning bootdev '",
    ),
    # Starting an EFI application: the removable-media path or a boot option
    # (cmd/bootefi.c, lib/efi_loader/efi_bootmgr.c, boot/bootflow.c).
    Pattern(
        "u-boot-efi-start",
        S,
        "firmware",
        r"^Found EFI removable media binary |^Booting /efi\\boot\\|^Booting: \S"
        r"|^\*\* Booting bootflow '",
    ),
    # A boot option or partition that did not work; U-Boot tries the next one.
    Pattern(
        "u-boot-boot-failed",
        H,
        "firmware",
        r"EFI LOAD FAILED|^Boot failed \(err=-?\d+\)|^Loading Boot[0-9A-Fa-f]{4} '.*' failed"
        r"|^\*\* No partition table - |^Couldn't find partition "
        r"|Cannot persist EFI variables without system partition|^No EFI system partition",
        "firmware-no-boot",
    ),
    # Every disk failed and U-Boot turned to the network (DHCP, then TFTP from a server
    # the cells do not have), or bootstd ran out of devices: nothing left to boot.
    Pattern(
        "u-boot-nothing-bootable",
        F,
        "firmware",
        r"^BOOTP broadcast \d+|^No more bootdevs",
        "firmware-no-boot",
    ),
    # --- bootloader (GRUB 2) -------------------------------------------------------
    Pattern("grub-banner", S, "bootloader", r"Welcome to GRUB!|GNU GRUB +version \d", restart=True),
    # U-Boot hands over to a kernel it loaded itself (bootm/booti), not via EFI.
    Pattern("u-boot", S, "bootloader", r"^Starting kernel \.\.\.", restart=True),
    # Debian/Ubuntu grub.cfg echo lines and GRUB's own menu notice.
    Pattern(
        "grub-loading",
        S,
        "bootloader",
        r"^Loading Linux .*\.\.\.|^Loading initial ramdisk \.\.\."
        r"|^ *Booting (?:`[^']*'|a command list)",
        clears_hint=True,
    ),
    # "error: <msg>." (2.12 and Fedora add "file.c:NNN:"); good boots print many.
    Pattern("grub-error", H, "bootloader", r"^error: (?:\S+\.c:\d+:)?.+", "bootloader-error"),
    Pattern(
        "grub-gave-up",
        F,
        "bootloader",
        r"Failed to boot both default and fallback entries|you need to load the kernel first"
        r"|^Entering rescue mode\.\.\.",
        "bootloader-no-boot",
    ),
    Pattern(
        "grub-prompt", Kind.FAIL_PROMPT, "bootloader", r"^grub(?: rescue)?> ?$", "bootloader-prompt"
    ),
    # U-Boot's own shell (CONFIG_SYS_PROMPT "=> "): its boot commands found nothing to boot.
    Pattern("u-boot-prompt", Kind.FAIL_PROMPT, "bootloader", r"^=> ?$", "bootloader-prompt"),
    # --- kernel --------------------------------------------------------------------
    # Every line of the stub but its errors: booting, decompressing, exiting boot
    # services, loading the initrd.
    Pattern("efi-stub", S, "kernel", r"EFI stub: (?!ERROR)\w"),
    # A kernel message with its printk time: a log that starts mid-boot is at least here.
    # CONFIG_PRINTK_CALLER adds the task or CPU ("[    4.98][    T1] ", syzbot, KernelCI).
    Pattern("printk", S, "kernel", r"^(?:<\d>)?\[\s*\d+\.\d+\](?:\[\s*[TC]\d+\])? ", anytime=True),
    # The stub's fatal errors (drivers/firmware/efi/libstub): it returns to the
    # firmware, the kernel never starts; the loader failed.
    Pattern(
        "efi-stub-failed",
        F,
        "bootloader",
        r"EFI stub: ERROR: (?:Failed to relocate kernel|efi_main\(\) failed"
        r"|Failed to get loaded image protocol|Failed to update FDT and exit boot services"
        r"|Exit boot services failed)",
        "efi-stub-error",
        exact=True,
    ),
    # Others are only printed (a "FIRMWARE BUG" about image_base, KASLR without an RNG)
    # and the kernel boots on.
    Pattern("efi-stub-error", H, "kernel", r"EFI stub: ERROR: ", "efi-stub-error"),
    # The kernel proper runs: an EFI stub error printed before it did not stop it.
    Pattern(
        "linux-start",
        S,
        "kernel",
        r"Booting Linux on physical CPU",
        restart=True,
        clears_hint=True,
    ),
    Pattern("linux-banner", S, "kernel", r"Linux version \d+\.\d+\S* \(", clears_hint=True),
    # Root file system failures reported by the kernel itself (no initramfs, or one
    # that handed over a bad root=); they come before the panic they cause.
    Pattern(
        "kernel-no-root",
        F,
        "kernel",
        r"VFS: Unable to mount root fs|VFS: Cannot open root device|No filesystem could mount root",
        "root-not-found",
    ),
    Pattern(
        "kernel-no-init",
        F,
        "kernel",
        r"No working init found|Requested init \S+ failed",
        "no-init",
    ),
    # Linux, and FreeBSD's debugger entered on a panic.
    Pattern(
        "kernel-panic",
        F,
        "kernel",
        r"Kernel panic - not syncing|KDB: enter: panic",
        "kernel-panic",
    ),
    Pattern(
        "kernel-oops",
        F,
        "kernel",
        r"Internal error: Oops|Unable to handle kernel \w[\w -]* at virtual address"
        r"|[Kk]ernel BUG at ",
        "kernel-oops",
    ),
    # Under TCG on a loaded host these can be spurious and pass; they only explain a
    # boot that then stops in the kernel.
    Pattern(
        "kernel-stall",
        H,
        "kernel",
        r"BUG: soft lockup - CPU#\d+ stuck|rcu: INFO: rcu_\w+ (?:self-)?detected stall"
        r"|INFO: task \S+ blocked for more than \d+ seconds",
        "kernel-stall",
    ),
    # FreeBSD asks for its root file system when it cannot find it.
    Pattern("mountroot-prompt", Kind.FAIL_PROMPT, "kernel", r"^mountroot> ?$", "root-not-found"),
    # --- initramfs -----------------------------------------------------------------
    Pattern(
        "initramfs-start",
        S,
        "initramfs",
        r"Run /init as init process|^Loading, please wait\.\.\.|^Begin: .* \.\.\. "
        r"|Welcome to .*\((?:Initramfs|initrd)\)!|dracut-\d+|dracut(?:-\w+)*\[\d+\]: "
        r"|^Alpine Init \S+|^:: running (?:early )?hook \[",
    ),
    # initramfs-tools (old: "root device", new: "root file system device"), busybox,
    # mkinitcpio (init_functions) and Alpine's mkinitfs (its ebegin/eend, quiet or not).
    Pattern(
        "initramfs-no-root",
        F,
        "initramfs",
        r"Gave up waiting for root(?: file system)? device|ALERT!\s+\S.* does not exist"
        r"|[Cc]an't open blockdev|ERROR: (?:device '.*' not found|Unable to find root device)"
        r"|Mounting root:? failed",
        "root-not-found",
    ),
    Pattern("initramfs-no-init", F, "initramfs", r"No init found\. Try passing init=", "no-init"),
    # The rescue shells of mkinitcpio and Alpine's mkinitfs, whatever sent them there.
    Pattern(
        "initramfs-rescue",
        F,
        "initramfs",
        r"emergency recovery shell launched|Launching emergency recovery shell"
        r"|You are (?:now )?being dropped (?:in)?to (?:an emergency|a recovery) shell",
        "emergency-shell",
    ),
    # dracut's initqueue times out at 2/3 of rd.retry; its timeout scripts may still
    # find the root (LVM, degraded RAID, a network wait), so alone this is a hint.
    Pattern(
        "dracut-initqueue-timeout",
        H,
        "initramfs",
        r"dracut-initqueue(?:\[\d+\])?: Warning: dracut-initqueue(?::| timeout)",
        "emergency-shell",
    ),
    # ... but when the hook it still waits for is a `devexists-<device>` one (made by
    # dracut-lib.sh wait_for_dev for the root), the root device never appeared. dracut
    # lists it again every second for minutes before giving up (modules.d/99base
    # dracut-initqueue.sh, main loop): seen again, or followed by silence, it decides.
    Pattern(
        "dracut-waits-for-device",
        H,
        "initramfs",
        r"/hooks/initqueue/finished/devexists-\S+\.sh",
        "root-not-found",
        decides_when_repeated=True,
    ),
    # dracut gives up; the emergency hooks then say which device never showed up.
    Pattern(
        "dracut-gave-up",
        H,
        "initramfs",
        r"Warning: Could not boot\.",
        "emergency-shell",
        gives_up=True,
    ),
    Pattern(
        "dracut-no-device",
        F,
        "initramfs",
        r"Warning: \"?(?:/dev/|(?:PART)?(?:UUID|LABEL)=)\S*?\"? does not exist",
        "root-not-found",
    ),
    Pattern(
        "dracut-emergency",
        F,
        "initramfs",
        r"Entering emergency mode|dracut: FATAL: |Dropping to debug shell",
        "emergency-shell",
    ),
    Pattern("dracut-shell", Kind.FAIL_PROMPT, "initramfs", r"^dracut:/\S*# ?$", "emergency-shell"),
    Pattern(
        "initramfs-shell",
        Kind.FAIL_PROMPT,
        "initramfs",
        r"^\(initramfs\) ?$|^\[(?:rootfs|ramfs) [^\]]*\][#$] ?$",
        "emergency-shell",
    ),
    # --- userspace -----------------------------------------------------------------
    # systemd's emergency mode in the initrd (dracut, mkinitcpio's systemd hook) is the
    # initramfs's; after the switch to the real root it is userspace's (stage reached).
    Pattern(
        "systemd-emergency",
        F,
        "initramfs",
        r"You are in (?:emergency|rescue) mode|Welcome to (?:emergency|rescue) mode"
        r"|Give root password for maintenance|Press Enter for maintenance"
        r"|\(or (?:press|type) Control-D to continue\)"
        r"|Cannot open access to console, the root account is locked",
        "emergency-shell",
    ),
    # systemd waits on a unit (a device from fstab, the network); with no time limit it
    # waits for ever, so this names what a boot that stops here was waiting for. Its
    # initrd prints these too: the stage is the least they show.
    Pattern(
        "systemd-job-waiting",
        H,
        "initramfs",
        r"A start job is running for |Job \S+/start running \(",
        "start-job-waiting",
    ),
    # The cause of the emergency shell that follows (systemd's job timeout, as in
    # "[ TIME ] Timed out waiting for device /dev/disk/by-label/root."): see the watcher.
    Pattern(
        "systemd-device-timeout",
        H,
        "initramfs",
        r"Timed out waiting for device ",
        "root-not-found",
    ),
    # systemd's status lines ("[  OK  ] Reached target ..."): systemd runs, in the initrd
    # at least (src/core/job.c, unit.c status messages); a log may start with them.
    Pattern(
        "systemd-status",
        S,
        "initramfs",
        r"^\[\s*(?:OK|FAILED|DEPEND|TIME|SKIP)\s*\] \S",
        anytime=True,
    ),
    # ... and units only the real root has: userspace.
    Pattern(
        "systemd-userspace-unit",
        S,
        "userspace",
        r"^\[\s*OK\s*\] (?:Reached target .*(?:Multi-User System|Login Prompts|Graphical Interface)"
        r"|Started .*(?:Getty on |User Login Management))",
    ),
    # systemd as PID 1 crashed (src/core/crash-handler.c): nothing will start any more.
    Pattern(
        "init-crash",
        F,
        "userspace",
        r"Freezing execution\.|Caught <[^>]+>(?:,| from )",
        "init-crash",
    ),
    Pattern(
        "userspace-start",
        S,
        "userspace",
        r"Run /(?!init )\S+ as init process|INIT: version \d|OpenRC .* is starting up"
        r"|Please press Enter to activate this console\."  # busybox init, no getty
        r"|Welcome to (?!GRUB|emergency|rescue)(?!.*\((?:Initramfs|initrd)\)!).+!",
    ),
    # --- login ---------------------------------------------------------------------
    # Refused logins are tried again (a cloud image may set its password after the
    # prompt shows); the conversation fails the cell after the last attempt.
    Pattern("login-refused", H, "login", r"Login incorrect|Login timed out", "login-failed"),
    # agetty "<host> login: ", busybox "(none) login: ", agetty --nohostname "login: ".
    Pattern("login-prompt", Kind.LOGIN_PROMPT, "login", r"(?:^|\s)(?:\S+ )?login: ?$"),
    # The same prompt once answered: the user name echoed after it, alone on the line
    # (how a saved log shows that login was reached).
    # agetty --autologin says so after the name (term-utils/agetty.c).
    Pattern("login-answered", S, "login", r"^(?:\S+ )?login: \S+(?: \(automatic login\))?\s*$"),
    # login(1) and pam_lastlog print this only after a login succeeded.
    Pattern("login-succeeded", S, "login", r"^Last login: \w{3} \w{3} [ \d]\d "),
    # A shell prompt with a command typed after it ("root@vm1:~# ls"): someone is at
    # the guest's shell. A command running QEMU is left out: the host's shell, as a
    # report starts.
    Pattern(
        "shell-command",
        S,
        "login",
        r"^(?:\S+@[\w.-]+(?::\S*)? ?[#$]|\[\S+@[^\]]+\][#$]) (?!.*\bqemu)[\w./~-]",
        typed=True,
    ),
    # The prompts without a user@host ("$ uname -a", "/ # ls", "sh-5.2# ls"), which an
    # initramfs's shell prints too. Bare "# " is left out (config files start with it).
    Pattern(
        "shell-command-bare",
        S,
        "login",
        r"^(?:(?:[~/]\S* )?\$|[~/]\S* #|(?:ba|z|k|da)?sh-\d+(?:\.\d+)*[#$])"
        r" (?!.*\bqemu)[\w./~-]",
        initramfs_has_it=True,
        typed=True,
    ),
    Pattern("password-prompt", Kind.PASSWORD_PROMPT, "login", r"[Pp]assword: ?$"),
    # "root@host:~# ", "[root@host ~]# ", "/ # ", "sh-5.2# ", "~ $ ". Only ever a
    # candidate: the harness proves a shell by having it compute something.
    Pattern("shell-prompt", Kind.SHELL_PROMPT, "login", r"(?:^|[\w\]~/:)@-] ?)[#$] ?$"),
    # --- the emulator (a log captured from QEMU's terminal) ----------------------------
    # Quit by its user or killed (chardev/char-mux.c on Ctrl-A x, system/runstate.c on a
    # signal): the guest's console ends at the line before, whatever the host prints.
    Pattern(
        "emulator-quit",
        S,
        "none",
        r"^QEMU: Terminated|qemu-system-[\w-]+: terminating on signal \d+",
        guest_gone=True,
    ),
    # QEMU's own last words: its error_report() lines ("qemu-system-aarch64: ..."), TCG's
    # cpu_abort ("qemu: fatal:"), glib's g_assert ("**" then "ERROR:file:line:func:",
    # "Bail out! ERROR:" under G_TEST) and a shell reporting it killed by a signal. Not
    # the guest's doing; stage "none" leaves the stage reached as it was.
    Pattern(
        "emulator-died",
        F,
        "none",
        r"(?:^|\s)qemu-system-[\w-]+: (?!.*\b(?:warning|info): )(?!terminating on signal)\S"
        r"|^qemu: (?:fatal|hardware error|uncaught target signal)|^Bail out! "
        r"|^(?:\*\* ?)?ERROR:\S+:\d+:\S+: |error: kvm run failed"
        r"|^\w*sh: .*\b(?:abort|[Aa]borted|segmentation fault|bus error|killed)\b.*\bqemu"
        # bash's report of a script's job: "./run.sh: line 12: 4242 Aborted  qemu-..."
        r"|^\S+: line \d+: +\d+ (?:Aborted|Segmentation fault|Bus error|Killed"
        r"|Illegal instruction|Trace/breakpoint trap)\b.*\bqemu",
        "emulator-crash",
        last_words=True,
    ),
    # A shell's report of a process killed by a signal: QEMU's, when it ends the log (a
    # guest's own shell says the same of its programs, so only at the end).
    Pattern(
        "emulator-aborted",
        Kind.FAIL_PROMPT,
        "none",
        r"^(?:Aborted|Segmentation fault|Bus error|Illegal instruction|Killed)"
        r"(?: \(core dumped\))?\s*$",
        "emulator-crash",
    ),
)

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
