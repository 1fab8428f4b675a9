"""Every row of the pattern table: text it must recognise (so removing the row fails a
test) and a near miss it must not. The texts are the components' format strings
filled in as a real console shows them (our own recorded boots where we have them),
with the prefixes and noise real consoles add."""

from __future__ import annotations

import pytest

from harness.console.patterns import TABLE, Kind, Pattern, PatternTable
from harness.console.text import clean

# name -> (texts it must be the first match of, near misses it must not match)
EXAMPLES: dict[str, tuple[list[str], list[str]]] = {
    "edk2-banner": (
        [
            "UEFI firmware (version  built at 13:10:49 on Nov  5 2024)",
            "UEFI firmware (version edk2-stable202302 built at 00:00:00 on Jan  1 2023)",
        ],
        ["Loading UEFI firmware tables", "firmware (version 2)"],
    ),
    "edk2-boot-option": (
        [
            'BdsDxe: loading Boot0001 "UEFI Misc Device" from PciRoot(0x0)/Pci(0x1,0x0)',
            'BdsDxe: starting Boot000A "UEFI Misc Device"',
        ],
        ["BdsDxe: failed to load Boot0001", "BdsDxe: loading driver"],
    ),
    "edk2-boot-option-failed": (
        [
            'BdsDxe: failed to load Boot0001 "UEFI Misc Device" from PciRoot(0x0)/Pci(0x1,0x0): Not Found',
            'BdsDxe: failed to start Boot0002 "ubuntu" from HD(1,GPT): Access Denied',
        ],
        ["BdsDxe: loading Boot0001", "failed to load Boot manager"],
    ),
    "edk2-start-loader": (
        ['BdsDxe: starting Boot0001 "UEFI Misc Device" from PciRoot(0x0)/Pci(0x1,0x0)'],
        [
            'BdsDxe: starting Boot0002 "EFI Internal Shell" from Fv(64074AFE)',
            'BdsDxe: starting Boot0003 "UEFI PXEv4 (MAC:525400123456)"',
        ],
    ),
    "edk2-loader-failed": (
        [
            'BdsDxe: failed to start Boot0002 "debian" from HD(1,GPT,0A1B,0x800,0x100000): Aborted',
            'BdsDxe: failed to start Boot0001 "UEFI Misc Device" from PciRoot(0x0): Not Found',
        ],
        [
            'BdsDxe: failed to start Boot0002 "ubuntu" from HD(1,GPT): Access Denied',
            'BdsDxe: failed to load Boot0001 "UEFI Misc Device": Not Found',
        ],
    ),
    "edk2-nothing-bootable": (
        ["BdsDxe: No bootable option or device was found."],
        ["a bootable option was found"],
    ),
    "uefi-network-boot": (
        [
            ">>Start PXE over IPv4.",
            ">>Start HTTP Boot over IPv6.....",
            "iPXE initialising devices...ok",
        ],
        ["Start PXE server on the host", ">>Checking Media Presence......"],
    ),
    "uefi-shell": (
        [
            "UEFI Interactive Shell v2.2",
            "Press ESC in 5 seconds to skip startup.nsh or any other key to continue.",
        ],
        ["UEFI Interactive Shell", "Press ESC to skip"],
    ),
    "uefi-shell-prompt": (["Shell> ", "FS0:\\> "], ["Shell>> ", "Use the Shell> prompt to"]),
    "edk2-exception": (
        [
            "Synchronous Exception at 0x000000007C05F2FC",
            "ASSERT [BdsDxe] /build/edk2/MdeModulePkg/BdsEntry.c(123): !EFI_ERROR (Status)",
            '"Synchronous Abort" handler, esr 0x96000010',
        ],
        ["Synchronous Exception handling enabled", "ASSERT that the value is right"],
    ),
    "grub-banner": (
        ["Welcome to GRUB!", "                             GNU GRUB  version 2.06"],
        ["Welcome to GRUB documentation", "GNU GRUB manual"],
    ),
    # Texts from our own boots of Debian's u-boot-qemu 2023.01 and 2025.01.
    "u-boot-banner": (
        [
            "U-Boot 2023.01+dfsg-2+deb12u3 (Jun 22 2026 - 08:38:07 +0000)",
            "U-Boot 2025.01-3+deb13u1 (Jun 24 2026 - 09:07:15 +0000)",
            "U-Boot SPL 2024.04 (Apr 02 2024 - 10:58:58 +0000)",
            "U-Boot 2023.01 (Jan 01 2023 - 00:00:00 +0000)",
            "U-Boot SPL 2021.04 (Apr 01 2021)",
        ],
        ["U-Boot environment", "efi: EFI v2.100 by Das U-Boot", "Starting kernel ..."],
    ),
    "u-boot-scan": (
        [
            "Scanning virtio 0:1...",
            "Scanning for bootflows in all bootdevs",
            "Scanning bootdev 'virtio-blk#32.bootdev':",
        ],
        ["scanning bus for devices...", "Scanning global bootmeth 'efi_mgr':"],
    ),
    "u-boot-efi-start": (
        [
            "Found EFI removable media binary efi/boot/bootaa64.efi",
            "Booting /efi\\boot\\bootaa64.efi",
            "Booting: virtio 0",
            "** Booting bootflow 'virtio-blk#32.bootdev.part_1' with efi",
        ],
        ["Booting Linux on physical CPU 0x0", "  Booting `Debian GNU/Linux'"],
    ),
    "u-boot-boot-failed": (
        [
            "Loading Boot0000 'virtio 0' failed",
            "Boot failed (err=-14)",
            "** No partition table - virtio 0 **",
            "Couldn't find partition virtio 0:1",
            "Cannot persist EFI variables without system partition",
            "EFI LOAD FAILED: continuing...",
        ],
        ["Loading Environment from Flash... OK", "Failed to load EFI variables"],
    ),
    "u-boot-nothing-bootable": (
        ["BOOTP broadcast 1"],
        ["[    2.1] IP-Config: BOOTP broadcast", "No more bootdevs"],
    ),
    "u-boot-no-more-bootdevs": (
        ["No more bootdevs"],
        ["No more devices to scan", "BOOTP broadcast 1"],
    ),
    "u-boot-starts-kernel": (["Starting kernel ..."], ["Starting kernel services"]),
    "freebsd-loader": (
        ["FreeBSD/arm64 EFI loader, Revision 1.1", "Booting [/boot/kernel/kernel]...   "],
        ["Booting the FreeBSD kernel", "FreeBSD/arm64 (freebsd) (ttyu0)"],
    ),
    "freebsd-single-user": (
        [
            "ERROR: ABORTING BOOT (sending SIGTERM to parent)!",
            "Enter full pathname of shell or RETURN for /bin/sh: ",
        ],
        ["Starting syslogd.", "ERROR: some service"],
    ),
    "freebsd-kernel": (
        ["---<<BOOT>>---", "Copyright (c) 1992-2023 The FreeBSD Project."],
        ["FreeBSD 14.0-RELEASE GENERIC arm64", "Copyright (c) 2023 Someone"],
    ),
    "grub-loading": (
        [
            "Loading Linux 6.1.0-50-arm64 ...",
            "Loading initial ramdisk ...",
            "  Booting `Debian GNU/Linux'",
            "  Booting a command list",
        ],
        ["[    1.1] Loading Linux kernel modules", "Loading initial ramdisk image failed"],
    ),
    "grub-error": (
        [
            "error: file `/boot/grub/arm64-efi/normal.mod' not found.",
            "error: ../../grub-core/term/serial.c:219:serial port `com0' isn't found.",
        ],
        ["[   3.1] EXT4-fs error: bad block", "no error: all good"],
    ),
    "grub-gave-up": (
        [
            "Failed to boot both default and fallback entries.",
            "error: you need to load the kernel first.",
            "Entering rescue mode...",
            "can't load 'kernel'",
        ],
        ["Booting the fallback entry", "you need to load the kernel modules first"],
    ),
    "grub-prompt": (["grub> ", "grub rescue> "], ["grub>> ", "grub> help"]),
    "u-boot-prompt": (["=> "], ["=> bootefi", "a => b"]),
    "efi-stub": (
        [
            "EFI stub: Booting Linux Kernel...",
            "EFI stub: Decompressing Linux Kernel...",
            "EFI stub: Exiting boot services and installing virtual address map...",
            "EFI stub: Exiting boot services...",
        ],
        ["EFI stub: ERROR: Failed to relocate kernel", "Booting Linux Kernel from disk"],
    ),
    "printk": (
        [
            "[    4.980000] virtio_blk virtio1: [vda] 4194304 512-byte logical blocks",
            "<6>[ 4.98] x",
            "[    4.980000][    T1] Run /init as init process",
            "[    0.000000][    C0] printk: console [ttyAMA0] enabled",
        ],
        ["[  OK  ] Reached target Basic System.", "[ TIME ] Timed out waiting for device"],
    ),
    "efi-stub-failed": (
        ["EFI stub: ERROR: Failed to relocate kernel", "EFI stub: ERROR: efi_main() failed!"],
        ["EFI stub: ERROR: FIRMWARE BUG: efi_loaded_image_t::image_base has bogus value"],
    ),
    "efi-stub-error": (
        ["EFI stub: ERROR: FIRMWARE BUG: efi_loaded_image_t::image_base has bogus value"],
        ["EFI stub: WARNING: no RNG", "EFI stub: EFI_RNG_PROTOCOL unavailable"],
    ),
    "linux-start": (
        ["[    0.000000] Booting Linux on physical CPU 0x0000000000 [0x000f0510]"],
        ["Booting Linux on virtual CPUs"],
    ),
    "linux-banner": (
        [
            "[    0.000000] Linux version 6.1.0-50-arm64 (debian-kernel@lists.debian.org) (gcc-12)",
            "Linux version 4.5.0-0.rc7.git0.2.fc24.aarch64 (mockbuild@buildvm)",
        ],
        ["Linux version: see uname -a", "Debian GNU/Linux version 12"],
    ),
    "kernel-no-root": (
        [
            '[    6.7] VFS: Cannot open root device "vda2" or unknown-block(0,0): error -6',
            "[    6.7] No filesystem could mount root, tried:",
            "<0>[    6.7] Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)",
        ],
        ["VFS: Mounted root (ext4 filesystem) readonly", "EXT4-fs (vda2): mounted filesystem"],
    ),
    "kernel-no-init": (
        [
            "[    1.9] Kernel panic - not syncing: No working init found.  Try passing init= option to kernel.",
            "Requested init /sbin/systemd failed (error -2).",
        ],
        ["Run /sbin/init as init process", "No working init scripts in /etc/rc.d"],
    ),
    "kernel-panic": (
        [
            "[    1.996810] Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000b00",
            "<0>[    3.600000] Kernel panic - not syncing: sysrq triggered crash",
            "Begin: Running /scripts/init-premount ... [    2.0] Kernel panic - not syncing: Fatal exception",
            "KDB: enter: panic",
        ],
        ["kernel.panic = 10", "Kernel panic after syncing", "KDB: debugger backends: ddb"],
    ),
    "kernel-oops": (
        [
            "[    2.2] Unable to handle kernel NULL pointer dereference at virtual address 0000000000000000",
            "[    2.2] Unable to handle kernel paging request at virtual address ffff800008000000",
            "Internal error: Oops: 0000000096000004 [#1] PREEMPT SMP",
            "[    5.0] kernel BUG at mm/slub.c:4100!",
        ],
        ["Unable to handle the request", "kernel: oops counter reset"],
    ),
    "kernel-stall": (
        [
            "[   52.1] watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [swapper/0:1]",
            "[   60.0] rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:",
            "[   61.0] rcu: INFO: rcu_sched self-detected stall on CPU",
            "[  242.1] INFO: task kworker/0:1:23 blocked for more than 120 seconds.",
        ],
        ["rcu: Hierarchical RCU implementation.", "watchdog: Delayed init of the lockup detector"],
    ),
    "mountroot-prompt": (["mountroot> "], ["mountroot> ufs:/dev/vtbd0p2", "vfs.root.mountfrom"]),
    "initramfs-start": (
        [
            "<<< NixOS Stage 1 >>>",
            "[    1.98] Run /init as init process",
            "Loading, please wait...",
            "Begin: Loading essential drivers ... ",
            "Welcome to Fedora Linux 38 (Cloud Edition) dracut-059-4.fc38 (Initramfs)!",
            "[    5.1] dracut-initqueue[351]: Scanning devices",
            "Alpine Init 3.20.3",
            ":: running early hook [udev]",
            ":: running hook [udev]",
        ],
        [
            "Run /sbin/init as init process",
            "Loading, please wait for the network",
            "Alpine Initial setup",
            ":: running cleanup hook [udev]",
        ],
    ),
    "initramfs-no-root": (
        [
            "Gave up waiting for root file system device.  Common problems:",
            "Gave up waiting for root device.  Common problems:",
            "ALERT!  UUID=4e2c7d1a-0b9e-4a57 does not exist.  Dropping to a shell!",
            "mount: mounting /dev/vda2 on /root failed: Can't open blockdev",
            "ERROR: device 'UUID=4e2c7d1a-0b9e-4a57' not found. Skipping fsck.",
            "ERROR: Unable to find root device 'UUID=4e2c7d1a-0b9e-4a57'.",
            " * Mounting root: failed.",
            "Mounting root failed. ",
        ],
        [
            "Waiting for root file system ...",
            "ALERT! disk is nearly full",
            "ERROR: device busy",
            " * Mounting root: ok.",
        ],
    ),
    "initramfs-no-init": (["No init found. Try passing init= bootarg."], ["Init found"]),
    "initramfs-rescue": (
        [
            "An error occurred in stage 1 of the boot process, which must mount the",
            "initramfs emergency recovery shell launched. Type 'exit' to continue boot",
            "/sbin/init not found in new root. Launching emergency recovery shell",
            "You are now being dropped into an emergency shell.",
            "You are being dropped to a recovery shell",
        ],
        ["Type 'exit' to continue boot", "emergency shell disabled by rd.shell=0"],
    ),
    "dracut-initqueue-timeout": (
        [
            "[  201.5] dracut-initqueue[351]: Warning: dracut-initqueue timeout - starting timeout scripts",
            "dracut-initqueue[437]: Warning: dracut-initqueue: starting timeout scripts",
            "dracut-initqueue[249]: Warning: dracut-initqueue: timeout, still waiting for following initqueue hooks:",
        ],
        [
            "dracut-initqueue[351]: Scanning devices sda1",
            "[  OK  ] Finished dracut initqueue hook.",
        ],
    ),
    "dracut-waits-for-device": (
        [
            r"dracut-initqueue[249]: Warning: /lib/dracut/hooks/initqueue/finished/devexists-\x2fdev\x2fdisk\x2fby-partuuid\x2f0a1b.sh: "
            '"if ! grep -q After=remote-fs-pre.target /run/systemd/generator/systemd-cryptsetup@*.service',
        ],
        [
            "dracut-initqueue[249]: Warning: /lib/dracut/hooks/initqueue/finished/wait-network.sh: ...",
            r"[  OK  ] Found device dev-disk-by\x2dpartuuid-0a1b.device",
        ],
    ),
    "dracut-gave-up": (
        ["[    6.3] dracut-initqueue[351]: Warning: Could not boot."],
        ["Warning: Could not boot from the network, trying disk"],
    ),
    "dracut-no-device": (
        [
            'Warning: "/dev/mapper/rhel-root" does not exist',
            "Warning: /dev/disk/by-uuid/4e2c7d1a does not exist",
            "dracut Warning: LABEL=root does not exist",
        ],
        ["Warning: /etc/fstab is old", "Warning: /dev/vda1 exists"],
    ),
    "dracut-emergency": (
        [
            "Entering emergency mode. Exit the shell to continue.",
            "[    5.1] dracut: FATAL: No or empty root= argument",
            "Dropping to debug shell.",
        ],
        ["Leaving emergency mode", "Dropping to the next boot option"],
    ),
    "dracut-shell": (["dracut:/# ", "dracut:/sysroot# "], ["dracut:/# ls", "dracut: /# "]),
    "initramfs-shell": (
        ["(initramfs) ", "[rootfs ]# ", "[ramfs /]# "],
        ["(initramfs) ls", "(initramfs tools) ", "[rootfs ]# ls"],
    ),
    "systemd-emergency": (
        [
            'You are in emergency mode. After logging in, type "journalctl -xb" to view',
            'Welcome to emergency mode! After logging in, type "journalctl -xb" to view',
            "Give root password for maintenance",
            "Press Enter for maintenance",
            "(or press Control-D to continue): ",
            "(or type Control-D to continue): ",
            "Cannot open access to console, the root account is locked.",
        ],
        ["Reached target Emergency Shutdown.", "Leaving rescue mode"],
    ),
    "systemd-job-waiting": (
        [
            "[ ***  ] A start job is running for /dev/disk/by-uuid/4E2C-7D1A (1min 2s / no limit)",
            r"[ ***  ] Job dev-disk-by\x2duuid-4E2C\x2d7D1A.device/start running (1min 2s / no limit)",
        ],
        ["[  OK  ] Finished Start job for ifup", "Timed out waiting for the network"],
    ),
    "systemd-device-timeout": (
        [
            "[ TIME ] Timed out waiting for device /dev/disk/by-uuid/4E2C-7D1A.",
            r"[ TIME ] Timed out waiting for device dev-disk-by\x2dlabel-root.device - /dev/disk/by-label/root.",
        ],
        ["Timed out waiting for the network", "[  OK  ] Found device /dev/vda2."],
    ),
    "init-crash": (
        [
            "[    5.0] systemd[1]: Caught <SEGV>, dumped core as pid 312.",
            "systemd[1]: Caught <ABRT> from PID 1.",
            "Caught <Segmentation fault>, core dump failed.",
            "[    5.0] systemd[1]: Freezing execution.",
        ],
        ["Caught up with the time server", "Freezing user space processes"],
    ),
    "userspace-start": (
        [
            "<<< NixOS Stage 2 >>>",
            "[    5.100000] systemd[1]: Switching root.",
            "Welcome to Debian GNU/Linux 12 (bookworm)!",
            "[    1.1] Run /sbin/init as init process",
            "INIT: version 2.96 booting",
            "   OpenRC 0.52 is starting up Linux 6.6.7 (aarch64)",
            "Please press Enter to activate this console. ",
        ],
        [
            "Welcome to GRUB!",
            "Welcome to Fedora Linux 38 dracut-059-4.fc38 (Initramfs)!",
            "Welcome to emergency mode!",
        ],
    ),
    "login-refused": (
        ["Login incorrect", "Login timed out after 60 seconds"],
        ["Login correct", "last login time"],
    ),
    "login-prompt": (
        ["debian-12-tiny login: ", "(none) login: ", "login: ", "localhost login:"],
        ["debian-12-tiny login: root", "Last login: Thu Nov 26 on ttyAMA0"],
    ),
    "login-answered": (
        ["debian-12-tiny login: root", "(none) login: ubuntu", "vm1 login: root (automatic login)"],
        [
            "Last login: Thu Nov 26 03:00:00 2026 on ttyAMA0",
            "Please login: as root, then run the tests.",
        ],
    ),
    "login-succeeded": (
        ["Last login: Mon Nov 30 12:00:00 UTC 2026 on ttyAMA0", "Last login: Tue Dec  1 09:00:01"],
        ["Last login: never", "The last login: was yesterday"],
    ),
    "shell-command-bare": (
        ["/ # uname -a", "~ # ./selftest.sh", "sh-5.2# ls /", "bash-4.4$ make check", "~ $ dmesg"],
        ["# a comment line", "$ qemu-system-aarch64 -M virt", "/ # ", "(initramfs) ls"],
    ),
    "shell-command": (
        [
            "root@vm1:~# cat /proc/cmdline",
            "[root@fedora ~]# ls /",
            "user@host:~/qemu$ ./run-test",
        ],
        [
            "# a comment line",
            "$ ",
            "price: 5$ only",
            "# systemctl start x",
            "$ qemu-system-aarch64 -M virt -nographic",
            "user@host:~$ ./run-qemu.sh",
        ],
    ),
    "emulator-died": (
        [
            "qemu-system-aarch64: ../tcg/tcg.c:4111: tcg_gen_code: Assertion `s->gen_insn_end_off' failed.",
            "ERROR:../accel/tcg/cpu-exec.c:1028:cpu_exec_setjmp: assertion failed: (cpu == current_cpu)",
            "Bail out! ERROR:../target/arm/helper.c:100:f: code should not be reached",
            "zsh: abort      qemu-system-aarch64 -M virt -cpu max -nographic",
            "./run-vm.sh: line 12: 48213 Segmentation fault      (core dumped) qemu-system-aarch64",
            "bash: line 1:  4242 Aborted                 (core dumped) qemu-system-aarch64 -M virt",
            "qemu: fatal: Trying to execute code outside RAM or ROM at 0x0000000000000000",
        ],
        [
            "qemu-system-aarch64: warning: host doesn't support requested feature",
            "qemu-system-aarch64: terminating on signal 15 from pid 1234 (timeout)",
            "[   3.1] systemd[1]: Detected virtualization qemu.",
        ],
    ),
    "systemd-status": (
        [
            "[  OK  ] Started systemd-journald.service - Journal Service.",
            "[FAILED] Failed to start systemd-networkd.service.",
            "[DEPEND] Dependency failed for initrd-root-device.target - Initrd Root Device.",
        ],
        ["[    1.0] OK", "[ OK ]", "OK Started"],
    ),
    "systemd-userspace-unit": (
        [
            "[  OK  ] Reached target multi-user.target - Multi-User System.",
            "[  OK  ] Reached target Login Prompts.",
            "[  OK  ] Started serial-getty@ttyAMA0.service - Serial Getty on ttyAMA0.",
            "[  OK  ] Started systemd-logind.service - User Login Management.",
        ],
        ["[  OK  ] Reached target initrd.target - Initrd Default Target.", "Multi-User System"],
    ),
    "emulator-quit": (
        [
            "QEMU: Terminated",
            "qemu-system-aarch64: terminating on signal 15 from pid 1234 (timeout)",
        ],
        ["[  OK  ] Stopped QEMU Guest Agent.", "qemu-system-aarch64: terminating"],
    ),
    "emulator-aborted": (
        ["Aborted (core dumped)", "Segmentation fault"],
        ["[   3.1] Aborted journal", "Aborted: the user said no"],
    ),
    "password-prompt": (
        ["Password: ", "password:"],
        ["Password: ********", "password was changed"],
    ),
    "shell-prompt": (
        ["root@debian-12-tiny:~# ", "[root@fedora ~]# ", "/ # ", "sh-5.2# ", "~ $ ", "$ "],
        ["# a comment line", "price: 5$ only", "root@host:~# ls"],
    ),
}


def test_every_row_has_examples() -> None:
    assert set(EXAMPLES) == {row.name for row in TABLE}


def first_match(table: PatternTable, row: Pattern, text: str) -> str | None:
    """What the watcher would take `text` for, among the rows of `row`'s kind."""
    if row.kind is Kind.STAGE:
        names = [p.name for p in table.stages(text)]
        return row.name if row.name in names else (names[0] if names else None)
    found = table.first(row.kind, text)
    return found.name if found else None


ROWS = {row.name: row for row in TABLE}
CASES = [(name, text) for name, (texts, _) in EXAMPLES.items() for text in texts]
NEAR = [(name, text) for name, (_, misses) in EXAMPLES.items() for text in misses]


@pytest.mark.parametrize(("name", "text"), CASES)
def test_the_row_recognises_its_text_and_nothing_else_would(name: str, text: str) -> None:
    row = ROWS[name]
    line = clean(text)
    assert first_match(PatternTable(), row, line) == name
    without = PatternTable(tuple(r for r in TABLE if r.name != name))
    assert first_match(without, row, line) != name


@pytest.mark.parametrize(("name", "text"), NEAR)
def test_near_misses_do_not_match(name: str, text: str) -> None:
    row = ROWS[name]
    assert first_match(PatternTable((row,)), row, text) is None


def test_a_specific_reason_wins_over_the_panic_it_causes() -> None:
    table = PatternTable()
    found = table.first(
        Kind.FAIL, "Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)"
    )
    assert found is not None and found.reason == "root-not-found"
