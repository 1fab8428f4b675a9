"""More logs of the kinds of issue 14, written as a new user would find them (other
distros, firmware, line ends, tools), each one the watcher got wrong once: judged
through the real `harness classify`; where a live boot can show the same kind, the
live watcher (driven with a fake clock) decides it the same way."""

from __future__ import annotations

from conftest import FIXTURES, Harness, misjudged
from fake_guest import Guest, watch

from harness.console.watcher import HINT_QUIET_S, QUIET_S

MORE = FIXTURES / "consoles" / "kinds-more"

# fixture -> (status, stage, reason, text of the deciding line, proof)
EXPECTED = {
    # 1. The end of the log: the terminal's mark after the last line end, and U-Boot's
    # own shell ("=> ") waiting for input, are prompts too.
    "1-grub-prompt-then-stray-mark-and-newline.log": (
        "fail",
        "bootloader",
        "bootloader-prompt",
        "grub>",
        "",
    ),
    # QEMU quit (Ctrl-A x, a signal): the host's prompt after it is not the guest's.
    "1-grub-prompt-then-quit-and-the-host-prompt.log": (
        "fail",
        "bootloader",
        "bootloader-prompt",
        "grub>",
        "",
    ),
    "6-quit-then-the-host-prompt.log": (
        "incomplete",
        "initramfs",
        "log-ended",
        "QEMU: Terminated",
        "",
    ),
    "6-killed-by-a-signal-then-the-host-prompt.log": (
        "incomplete",
        "initramfs",
        "log-ended",
        "terminating on signal 2",
        "",
    ),
    # A shell prompt after a boot that never ran init is the host's.
    "3-kernel-then-a-host-prompt.log": (
        "incomplete",
        "kernel",
        "log-ended",
        "Freeing unused kernel memory",
        "",
    ),
    "1-u-boot-shell-prompt-last.log": ("fail", "bootloader", "bootloader-prompt", "=>", ""),
    "4-u-boot-bad-image-then-its-prompt.log": (
        "fail",
        "bootloader",
        "bootloader-prompt",
        "=>",
        "",
    ),
    # 2. A shell reached: busybox's "/ # cmd", bash's "sh-5.2# cmd", login's lastlog line.
    "2-busybox-shell-command-then-a-test-run.log": (
        "pass",
        "login",
        "login",
        "/ # uname -a",
        "prompt",
    ),
    "2-sh-prompt-command-then-a-test-run.log": ("pass", "login", "login", "sh-5.2# ls", "prompt"),
    "2-starts-at-last-login-then-a-test-run.log": (
        "pass",
        "login",
        "login",
        "Last login:",
        "prompt",
    ),
    # The guest's own shell reports its programs so: not the emulator, after a login.
    "2-guest-shell-reports-killed-after-a-test-run.log": (
        "pass",
        "login",
        "login",
        "vm1 login: root",
        "prompt",
    ),
    "2-guest-shell-reports-segfault-then-its-prompt.log": ("pass", "login", "login", "#", "prompt"),
    # 3. Stage from everything the log shows. A command typed at the initramfs's shell
    # is no login.
    "3-initramfs-shell-with-a-typed-command.log": (
        "fail",
        "initramfs",
        "emergency-shell",
        "/ #",
        "",
    ),
    "3-printk-with-caller-ids.log": ("incomplete", "kernel", "log-ended", "crng init done", ""),
    "3-starts-with-systemd-status-lines.log": (
        "incomplete",
        "initramfs",
        "log-ended",
        "Local File Systems",
        "",
    ),
    "3-starts-with-userspace-units.log": (
        "incomplete",
        "userspace",
        "log-ended",
        "Multi-User System",
        "",
    ),
    # U-Boot started by -bios is the firmware: its crash is at that stage.
    "3-u-boot-exception.log": ("fail", "firmware", "firmware-crash", "Synchronous Abort", ""),
    # The command line a report starts with (a script, not only QEMU's own) is the
    # host's when the boot then starts; kernel text without printk times overran getty.
    "3-host-script-prompt-then-the-boot-panics.log": (
        "fail",
        "kernel",
        "root-not-found",
        "Kernel panic",
        "",
    ),
    "1-host-script-then-a-grub-prompt.log": (
        "fail",
        "bootloader",
        "bootloader-prompt",
        "grub>",
        "",
    ),
    "3-untimed-kernel-message-runs-into-the-login-prompt.log": (
        "pass",
        "login",
        "login",
        "vm1 login:",
        "prompt",
    ),
    # 4. An EFI stub error the kernel went past is not the reason.
    "4-efi-stub-warning-then-the-kernel.log": (
        "incomplete",
        "kernel",
        "log-ended",
        "Booting Linux",
        "",
    ),
    # 5. Rebooted after reaching login each time: a reboot test, not a reset loop.
    "5-reboot-test-reaches-login-each-time.log": ("pass", "login", "login", "login:", "prompt"),
    "5-host-command-line-then-an-unknown-firmware-loop.log": (
        "fail",
        "initramfs",
        "reset-loop",
        "TinyFW 0.9",
        "",
    ),
    "5-host-script-prompt-then-an-unknown-firmware-loop.log": (
        "fail",
        "initramfs",
        "reset-loop",
        "TinyFW 0.9",
        "",
    ),
    # 6. QEMU's error is its last words only if the boot did not go on after it.
    "6-qemu-error-it-survives-then-login.log": ("pass", "login", "login", "login:", "prompt"),
    "6-script-reports-qemu-segfault.log": (
        "fail",
        "kernel",
        "emulator-crash",
        "Segmentation fault",
        "",
    ),
    "6-tcg-fatal-register-dump-then-host-prompt.log": (
        "fail",
        "bootloader",
        "emulator-crash",
        "qemu: fatal:",
        "",
    ),
    # 7. systemd's emergency mode in the initrd is the initramfs's.
    "7-systemd-initrd-timeout-then-locked-emergency.log": (
        "fail",
        "initramfs",
        "root-not-found",
        "Timed out waiting for device /dev/disk/by-uuid/abcd",
        "",
    ),
    # 8. The hook's line wrapped by a terminal at 80 columns.
    "8-devexists-hook-wrapped-by-the-terminal.log": (
        "fail",
        "initramfs",
        "root-not-found",
        "/dev/disk/by-uuid/abcd never appeared",
        "",
    ),
    # The devexists hint, then the root came (LVM from a timeout script): a pass.
    "8-devexists-then-the-root-comes-then-a-test-run.log": (
        "pass",
        "login",
        "login",
        "localhost login: root",
        "prompt",
    ),
}


def test_every_log_is_judged_right_by_classify(harness: Harness) -> None:
    assert not misjudged(harness, MORE, EXPECTED)


def crlf(name: str) -> bytes:
    return (MORE / name).read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def test_live_the_root_that_comes_after_the_devexists_hint_is_logged_into() -> None:
    text = crlf("8-devexists-then-the-root-comes-then-a-test-run.log")
    boot = text[: text.index(b"localhost login: ") + len(b"localhost login: ")]
    _, guest = watch([boot, HINT_QUIET_S + 1])
    assert guest.done >= 2  # undecided through the quiet spell
    assert guest.texts_by(1)[:1] == ["root\r"]


def test_live_reboots_after_login_are_no_reset_loop() -> None:
    text = crlf("5-reboot-test-reaches-login-each-time.log")
    # the console closing after the quiet spell shows the stage the watcher is at
    verdict, guest = watch([], guest=Guest([text, QUIET_S + 0.2], ends=True))
    assert (verdict.reason, verdict.stage) == ("qemu-exited", "login")
    assert guest.texts() == ["root\r"]


def test_live_resets_that_never_reach_login_again_are_a_loop() -> None:
    text = crlf("5-reboot-test-reaches-login-each-time.log")
    first = text[: text.index(b"UEFI firmware", 10)]  # one boot that reached login
    stuck = b"UEFI firmware (version x built at 12:00:00 on Sep  1 2023)\r\n"
    stuck += b"[    0.000000] Booting Linux on physical CPU 0x0\r\n"
    # the reset after login starts the count: undecided after two stuck boots
    verdict, guest = watch([first + stuck * 2, stuck])
    assert verdict.reason == "reset-loop"
    assert (guest.done, guest.now) == (2, 0)


def test_live_a_u_boot_exception_decides_at_once() -> None:
    verdict, guest = watch([crlf("3-u-boot-exception.log")])
    assert (verdict.status, verdict.stage, verdict.reason) == (
        "fail",
        "firmware",
        "firmware-crash",
    )
    assert (guest.done, guest.now) == (1, 0)


def test_live_the_initrd_emergency_mode_is_at_initramfs() -> None:
    verdict, guest = watch([crlf("7-systemd-initrd-timeout-then-locked-emergency.log")])
    assert (verdict.status, verdict.stage, verdict.reason) == (
        "fail",
        "initramfs",
        "root-not-found",
    )
    assert (guest.done, guest.now) == (1, 0)


def test_live_a_u_boot_prompt_fails_when_the_console_goes_quiet() -> None:
    verdict, guest = watch([crlf("1-u-boot-shell-prompt-last.log"), QUIET_S + 0.2])
    assert (verdict.status, verdict.reason) == ("fail", "bootloader-prompt")
    assert guest.done == 1 and guest.now > 0  # decided in the quiet spell


def test_live_kernel_text_without_times_over_the_login_prompt_is_answered() -> None:
    text = crlf("3-untimed-kernel-message-runs-into-the-login-prompt.log")
    _, guest = watch([text, QUIET_S + 0.2])
    assert guest.texts_by(1) == ["root\r"]
