"""The pattern rows of the kernel (Linux, its EFI stub, FreeBSD's) and the
initramfs (initramfs-tools, dracut, mkinitcpio, Alpine's mkinitfs, NixOS stage 1),
in table order (see patterns.py)."""

from __future__ import annotations

from harness.console.rows import F, H, Kind, Pattern, S

ROWS: tuple[Pattern, ...] = (
    # --- kernel --------------------------------------------------------------------
    # U-Boot's last words before it jumps to the kernel (boot/bootm_os.c,
    # announce_and_cleanup): silence after them is the kernel's.
    Pattern("u-boot-starts-kernel", S, "kernel", r"^Starting kernel \.\.\.", restart=True),
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
    # FreeBSD's kernel: its first line and copyright (sys/kern/init_main.c).
    Pattern(
        "freebsd-kernel",
        S,
        "kernel",
        r"^---<<BOOT>>---|^Copyright \(c\) 1992-\d{4} The FreeBSD Project\.",
        restart=True,
    ),
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
        r"|^Alpine Init \S+|^:: running (?:early )?hook \[|^<<< NixOS Stage 1 >>>",
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
        r"|You are (?:now )?being dropped (?:in)?to (?:an emergency|a recovery) shell"
        # NixOS's stage 1 (nixos/modules/system/boot/stage-1-init.sh), waiting for a key.
        r"|An error occurred in stage 1 of the boot process",
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
        any_device=True,
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
)
