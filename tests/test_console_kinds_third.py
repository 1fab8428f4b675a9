"""A third round of logs of the kinds of issue 14 that the watcher got wrong: the
stage after a reset, a U-Boot that resets itself, dracut waiting for more than one
device, motd text that reads like a prompt, logs saved by other tools (LAVA, capture
timestamps) and more distro boots. Judged through the real `harness classify`; where
a live boot can show the same kind, the live watcher decides it the same way."""

from __future__ import annotations

import json

from conftest import FIXTURES, Harness, misjudged
from fake_guest import watch

from harness.console import formats
from harness.console.watcher import HINT_QUIET_S

THIRD = FIXTURES / "consoles" / "kinds-third"
ROOT_UUID = "/dev/disk/by-uuid/7b77a3c4-1e2a-4e2c-9a40-5c1a2f0b9e11"

# fixture -> (status, stage, reason, text of the deciding line, proof)
EXPECTED = {
    # The stage is the current boot cycle's, not the furthest of the whole log.
    "1-login-then-reboot-then-kernel-panic.log": (
        "fail",
        "kernel",
        "kernel-oops",
        "Unable to handle kernel paging request",
        "",
    ),
    "1-login-then-reboot-then-log-ends-in-initramfs.log": (
        "incomplete",
        "initramfs",
        "log-ended",
        "Waiting for root file system",
        "",
    ),
    # U-Boot's banner again after its own output: it reset itself (in the firmware
    # stage: U-Boot started by -bios is the firmware).
    "1-u-boot-resets-itself-loop.log": (
        "fail",
        "firmware",
        "reset-loop",
        "U-Boot 2024.01 (Jan 08 2024",
        "",
    ),
    # The same for edk2's banner, printed once a start: a firmware restarting by itself.
    "1-edk2-restarts-before-any-loader.log": (
        "fail",
        "firmware",
        "reset-loop",
        "UEFI firmware (version edk2-stable202408",
        "",
    ),
    "1-u-boot-resets-once-then-login.log": ("pass", "login", "login", "qemuarm64 login:", "prompt"),
    # dracut waits for the root and a swap (resume=): the root is the one named.
    "1-dracut-waits-for-swap-then-root.log": (
        "fail",
        "initramfs",
        "root-not-found",
        f"{ROOT_UUID} never appeared",
        "",
    ),
    "1-dracut-waits-for-two-devices-no-command-line.log": (
        "fail",
        "initramfs",
        "root-not-found",
        "/dev/mapper/cs-root never appeared",
        "",
    ),
    # A sentence ending in "to login: " is no getty prompt ("HOSTNAME login: ").
    "1-motd-says-to-login-then-the-console-stops.log": (
        "incomplete",
        "userspace",
        "log-ended",
        "to login:",
        "",
    ),
    "1-motd-says-to-login-then-the-real-prompt.log": (
        "pass",
        "login",
        "login",
        "orangepi5 login:",
        "prompt",
    ),
    # 2. Logs as other tools save them (harness/console/formats.py). LAVA's log.yaml:
    # only `target` lines are the console; its own lines quote "Kernel panic - not
    # syncing" as a pattern it watches for.
    "2-lava-log-yaml-login.log": ("pass", "login", "login", "debian login: root", "prompt"),
    "2-lava-log-yaml-kernel-oops.log": (
        "fail",
        "initramfs",
        "kernel-oops",
        "Unable to handle kernel NULL pointer",
        "",
    ),
    "2-lava-log-yaml-initramfs-no-root.log": (
        "fail",
        "initramfs",
        "root-not-found",
        "Gave up waiting for root file system device",
        "",
    ),
    # A capture timestamp before each line hid the prompt at the end and the anchored rows.
    "2-minicom-timestamps-login.log": ("pass", "login", "login", "localhost login:", "prompt"),
    "2-iso-timestamps-grub-rescue.log": (
        "fail",
        "bootloader",
        "bootloader-no-boot",
        "Entering rescue mode",
        "",
    ),
    "2-millisecond-timestamps-kernel-panic.log": (
        "fail",
        "initramfs",
        "kernel-oops",
        "Unable to handle kernel NULL pointer",
        "",
    ),
    "2-cr-cr-lf-line-ends-login.log": ("pass", "login", "login", "localhost login:", "prompt"),
    "2-html-page-of-a-buildroot-log.log": ("pass", "login", "login", "#", "prompt"),
    # script(1)'s closing line is the recorder's: the prompt before it is where it ends.
    "2-script-typescript-ends-at-a-grub-prompt.log": (
        "fail",
        "bootloader",
        "bootloader-prompt",
        "grub>",
        "",
    ),
    "2-script-typescript-ends-at-login.log": (
        "pass",
        "login",
        "login",
        "localhost login:",
        "prompt",
    ),
    # 3. Distro boots: FreeBSD's loader and kernel are stages of their own; NixOS's
    # stage 1 waits for a key after it failed; a data disk of fstab that never came
    # is no root-not-found once the real root runs.
    "3-freebsd-stops-after-its-kernel-banner.log": (
        "incomplete",
        "kernel",
        "log-ended",
        "FreeBSD 14.0-RELEASE",
        "",
    ),
    "3-freebsd-mountroot-prompt.log": ("fail", "kernel", "root-not-found", "mountroot>", ""),
    "3-freebsd-login.log": ("pass", "login", "login", "login:", "prompt"),
    "3-freebsd-fsck-fails-to-single-user.log": (
        "fail",
        "userspace",
        "emergency-shell",
        "ERROR: ABORTING BOOT",
        "",
    ),
    "3-freebsd-loader-without-its-kernel.log": (
        "fail",
        "bootloader",
        "bootloader-no-boot",
        "can't load 'kernel'",
        "",
    ),
    "3-debian-fstab-data-disk-timeout-then-emergency.log": (
        "fail",
        "userspace",
        "emergency-shell",
        "You are in emergency mode",
        "",
    ),
    "3-nixos-stage-1-cannot-find-root.log": (
        "fail",
        "initramfs",
        "root-not-found",
        "Timed out waiting for device /dev/disk/by-label/nixos",
        "",
    ),
    "3-nixos-login.log": ("pass", "login", "login", "nixos login:", "prompt"),
    # systemd left the initrd for the real root it mounted: what hangs after is there.
    "3-fedora-switches-root-then-silence.log": (
        "incomplete",
        "userspace",
        "log-ended",
        "Switching root.",
        "",
    ),
    # U-Boot handed over to the kernel, which printed nothing (a wrong console=).
    "3-u-boot-starts-the-kernel-then-silence.log": (
        "incomplete",
        "kernel",
        "log-ended",
        "Starting kernel ...",
        "",
    ),
    # dracut's emergency hooks warn for every device waited for: the root's decides.
    "3-centos-dracut-warns-for-swap-then-root.log": (
        "fail",
        "initramfs",
        "root-not-found",
        "/dev/disk/by-uuid/7b77a3c4-1e2a-4e2c-9a40-5c1a2f0b9e11 does not exist",
        "",
    ),
    # ... and when no warning names the command line's root, the first one decides.
    "3-dracut-warns-for-a-device-the-command-line-does-not-name.log": (
        "fail",
        "initramfs",
        "root-not-found",
        "/dev/disk/by-uuid/4e2c7d1a-0b9e-4a57-9c1e-3f5b2d7e8a10 does not exist",
        "",
    ),
    "3-rhel-lvm-root-timeout-then-dracut-emergency.log": (
        "fail",
        "initramfs",
        "root-not-found",
        "/dev/mapper/rhel-root does not exist",
        "",
    ),
}


def test_every_log_is_judged_right_by_classify(harness: Harness) -> None:
    assert not misjudged(harness, THIRD, EXPECTED)


def crlf(name: str) -> bytes:
    return (THIRD / name).read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def test_live_a_u_boot_resetting_itself_is_a_reset_loop() -> None:
    verdict, guest = watch([crlf("1-u-boot-resets-itself-loop.log")])
    assert (verdict.status, verdict.stage, verdict.reason) == ("fail", "firmware", "reset-loop")
    assert (guest.done, guest.now) == (1, 0)


def test_live_after_a_reset_the_stage_is_the_new_boots() -> None:
    verdict, guest = watch([crlf("1-login-then-reboot-then-kernel-panic.log")])
    assert (verdict.status, verdict.stage, verdict.reason) == ("fail", "kernel", "kernel-oops")
    assert (guest.done, guest.now) == (1, 0)
    assert "login" in verdict.stage_times  # the first boot's times are kept


def test_live_dracut_waiting_for_two_devices_names_the_root() -> None:
    text = crlf("1-dracut-waits-for-swap-then-root.log")
    first_listing = text[: text.index(b"[  182.2")]
    verdict, guest = watch([first_listing, HINT_QUIET_S + 1])
    assert guest.done == 1 and guest.now > 0  # the second hook is no repeat: the quiet decides
    assert verdict.reason == "root-not-found"
    assert verdict.text.startswith(ROOT_UUID), verdict


def test_a_lava_log_names_the_line_of_the_file(harness: Harness) -> None:
    log = THIRD / "2-lava-log-yaml-kernel-oops.log"
    proc = harness("classify", "--json", str(log))
    got = json.loads(proc.stdout)
    line = log.read_text().splitlines()[got["line"] - 1]
    assert '"lvl": "target"' in line and "Unable to handle kernel" in line, got


def test_formats_are_told_from_the_first_lines() -> None:
    def format_of(name: str) -> formats.Format:
        return formats.detect((THIRD / name).read_bytes())

    assert format_of("2-lava-log-yaml-login.log") is formats.Format.LAVA
    assert format_of("2-minicom-timestamps-login.log") is formats.Format.STAMPED
    assert format_of("2-millisecond-timestamps-kernel-panic.log") is formats.Format.STAMPED
    assert format_of("2-html-page-of-a-buildroot-log.log") is formats.Format.HTML
    assert format_of("2-script-typescript-ends-at-login.log") is formats.Format.TYPESCRIPT
    # The kernel's own printk times, a grabserial pair of times, a plain console.
    assert format_of("1-login-then-reboot-then-kernel-panic.log") is formats.Format.CONSOLE
    printk = b"[    0.000000] Booting Linux\n[    0.100000] Linux version 6.1\n"
    assert formats.detect(printk) is formats.Format.CONSOLE
    grabserial = b"[0.000000 0.000000] U-Boot 2024.01\n[0.500000 0.500000] DRAM:  1 GiB\n"
    assert formats.detect(grabserial) is formats.Format.STAMPED
    # minicom's own header before the stamped lines of the console.
    header = b"Welcome to minicom 2.8\n\nOPTIONS: I18n\nPort /dev/ttyUSB0, 12:00:00\n\n"
    header += b"Press CTRL-A Z for help on special keys\n\n"
    stamped = b"".join(b"[2024-05-01 12:00:%02d] line %d\n" % (i, i) for i in range(8))
    assert formats.detect(header + stamped) is formats.Format.STAMPED


def test_formats_read_in_small_chunks_say_the_same() -> None:
    for name in ("2-lava-log-yaml-login.log", "2-minicom-timestamps-login.log"):
        data = (THIRD / name).read_bytes()
        whole = b"".join(formats.console_bytes([data]))
        pieces = b"".join(formats.console_bytes(data[i : i + 7] for i in range(0, len(data), 7)))
        assert whole == pieces
        assert whole.count(b"\n") == data.count(b"\n")  # line numbers stay the file's
        assert b'"lvl"' not in whole and b"[2024-05-01" not in whole
    assert b"".join(formats.console_bytes([b"plain\r\r\nlogin: "])) == b"plain\r\r\nlogin: "
