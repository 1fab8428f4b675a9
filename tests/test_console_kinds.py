"""The kinds of console the watcher got wrong on logs published by others (issue 14):
each small input is a fixture in tests/fixtures/consoles/kinds/, judged through the
real `harness classify`; where a live boot can show the same kind, the live watcher
(driven with a fake clock) must decide it the same way."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import FIXTURES, Harness, misjudged
from fake_guest import Guest, watch

from harness.console.watcher import HINT_QUIET_S, QUIET_S, SETTLE_S, Watcher
from harness.model import Login

KINDS = FIXTURES / "consoles" / "kinds"

# fixture -> (status, stage, reason, text of the deciding line, proof)
EXPECTED = {
    # 1. The end of a saved log is the console going quiet.
    "1-login-prompt-last-line.log": ("pass", "login", "login", "vm1 login:", "prompt"),
    "1-login-prompt-then-blank-and-stray.log": ("pass", "login", "login", "vm1 login:", "prompt"),
    "1-grub-prompt-and-terminal-mark.log": ("fail", "bootloader", "bootloader-prompt", "grub>", ""),
    # 2. Reaching a login prompt is the event; someone else's conversation does not undo it.
    "2-someone-elses-login-refused.log": ("pass", "login", "login", "vm1 login:", "prompt"),
    "2-login-then-a-test-run.log": ("pass", "login", "login", "vm1 login: root", "prompt"),
    "2-busybox-console-without-getty.log": ("pass", "login", "login", "/ #", "prompt"),
    # 3. Stage from everything the log shows.
    "3-starts-mid-boot.log": ("incomplete", "kernel", "log-ended", "crng init done", ""),
    "3-efi-stub-lines.log": ("incomplete", "kernel", "log-ended", "EFI stub: Exiting", ""),
    "3-grub-command-list.log": ("incomplete", "bootloader", "log-ended", "command list", ""),
    "3-oops-runs-into-the-login-prompt.log": (
        "fail",
        "login",
        "kernel-oops",
        "Unable to handle kernel NULL pointer",
        "",
    ),
    "3-oops-after-a-typed-command.log": ("fail", "login", "kernel-oops", "Oops", ""),
    # The QEMU command line a report starts with is the host's shell, not the guest's.
    "3-host-command-line-then-the-boot.log": (
        "incomplete",
        "initramfs",
        "log-ended",
        "Waiting for root",
        "",
    ),
    "3-loader-crash-after-bds.log": ("fail", "bootloader", "firmware-crash", "Synchronous", ""),
    # 4. Loader failures decide; a GRUB error the boot went past never does.
    "4-efi-stub-cannot-relocate.log": (
        "fail",
        "bootloader",
        "efi-stub-error",
        "Failed to relocate kernel",
        "",
    ),
    "4-loader-returned-aborted.log": ("fail", "bootloader", "bootloader-no-boot", "Aborted", ""),
    "4-grub-error-then-the-kernel.log": (
        "incomplete",
        "kernel",
        "log-ended",
        "EFI stub: Exiting boot services",
        "",
    ),
    "4-grub-error-then-loading.log": (
        "incomplete",
        "bootloader",
        "log-ended",
        "Loading initial ramdisk",
        "",
    ),
    # 5. A reset is a reset, whatever the firmware.
    "5-unknown-firmware-resets-once-then-login.log": ("pass", "login", "login", "login:", "prompt"),
    "5-unknown-firmware-reset-loop.log": ("fail", "initramfs", "reset-loop", "TinyFW 0.9", ""),
    # 6. The emulator dying is not a silent log.
    "6-qemu-assertion.log": ("fail", "kernel", "emulator-crash", "Assertion", ""),
    "6-glib-error.log": ("fail", "firmware", "emulator-crash", "assertion failed", ""),
    "6-shell-reports-qemu-abort.log": ("fail", "bootloader", "emulator-crash", "zsh: abort", ""),
    "6-aborted-core-dumped-last.log": ("fail", "initramfs", "emulator-crash", "Aborted", ""),
    "6-segfault-then-the-host-prompt.log": (
        "fail",
        "initramfs",
        "emulator-crash",
        "Segmentation fault",
        "",
    ),
    # 7. The cause before the symptom.
    "7-systemd-device-timeout-then-emergency.log": (
        "fail",
        "userspace",
        "root-not-found",
        "Timed out waiting for device",
        "",
    ),
    "7-dracut-no-device-then-emergency.log": (
        "fail",
        "initramfs",
        "root-not-found",
        "/dev/mapper/fedora-root does not exist",
        "",
    ),
    # 8. Real dracut says early what it waits for.
    "8-dracut-devexists-repeats.log": (
        "fail",
        "initramfs",
        "root-not-found",
        "/dev/disk/by-partuuid/0a1b2c3d-02",
        "",
    ),
    "8-dracut-devexists-then-silence.log": (
        "fail",
        "initramfs",
        "root-not-found",
        "/dev/disk/by-partuuid/0a1b2c3d-02",
        "",
    ),
    "8-dracut-devexists-then-could-not-boot.log": (
        "fail",
        "initramfs",
        "root-not-found",
        "/dev/disk/by-partuuid/0a1b2c3d-02",
        "",
    ),
    "8-dracut-initqueue-timeout-without-device.log": (
        "incomplete",
        "initramfs",
        "emergency-shell",
        "starting timeout scripts",
        "",
    ),
}


def test_every_kind_is_judged_right_by_classify(harness: Harness) -> None:
    assert not misjudged(harness, KINDS, EXPECTED)


def test_the_dracut_hint_repeated_decides_at_the_repeat_not_at_could_not_boot() -> None:
    log = (KINDS / "8-dracut-devexists-repeats.log").read_bytes()
    watcher = Watcher(Login("root", ""))
    verdict = watcher.feed(log, 1.0)  # decided while feeding: no end of log needed
    assert verdict is not None and verdict.reason == "root-not-found"
    assert verdict.line == 4  # the first devexists line, decided at its repeat (line 9)


@pytest.mark.parametrize("wait", [HINT_QUIET_S + 0.5, None])
def test_live_the_dracut_hint_decides_after_a_quiet_spell_or_at_the_timeout(
    wait: float | None,
) -> None:
    text = (KINDS / "8-dracut-devexists-then-silence.log").read_bytes()
    text = text.replace(b"\n", b"\r\n")
    if wait is not None:
        verdict, guest = watch([text, wait])
        assert guest.done == 1 and guest.now > 0  # decided in the quiet spell
    else:  # a boot timeout shorter than the hint's quiet spell
        verdict, guest = watch([text], timeout_s=1.0)
        assert guest.now == pytest.approx(1.0)
    assert (verdict.status, verdict.stage, verdict.reason) == (
        "fail",
        "initramfs",
        "root-not-found",
    )
    assert "/dev/disk/by-partuuid/0a1b2c3d-02" in verdict.text


def test_live_an_initqueue_timeout_without_a_device_stays_a_hint() -> None:
    text = (KINDS / "8-dracut-initqueue-timeout-without-device.log").read_bytes()
    verdict, guest = watch([text.replace(b"\n", b"\r\n")], timeout_s=3 * HINT_QUIET_S)
    assert (verdict.reason, guest.now) == ("timeout", pytest.approx(3 * HINT_QUIET_S))


def test_live_an_unknown_firmware_that_starts_over_three_times_is_a_reset_loop() -> None:
    text = (KINDS / "5-unknown-firmware-reset-loop.log").read_bytes()
    verdict, guest = watch([text.replace(b"\n", b"\r\n")])
    assert (verdict.status, verdict.reason) == ("fail", "reset-loop")
    assert (guest.done, guest.now) == (1, 0)  # decided as the text came


def test_live_one_reset_of_an_unknown_firmware_then_login_passes() -> None:
    text = (KINDS / "5-unknown-firmware-resets-once-then-login.log").read_bytes()
    _, guest = watch([text.replace(b"\n", b"\r\n"), QUIET_S + 0.2])
    assert guest.texts_by(1) == ["root\r"]


def test_live_oops_running_into_the_prompt_is_at_login() -> None:
    text = (KINDS / "3-oops-runs-into-the-login-prompt.log").read_bytes()
    verdict, guest = watch([text.replace(b"\n", b"\r\n")])
    assert (verdict.status, verdict.stage, verdict.reason) == ("fail", "login", "kernel-oops")
    assert (guest.done, guest.now) == (1, 0)


def test_live_a_pass_says_which_proof_it_has() -> None:
    verdict, guest = watch(
        [
            "localhost login: ",
            QUIET_S + 0.2,
            "\r\nlocalhost login: ",
            QUIET_S + SETTLE_S + 0.5,
        ],
        Login(None, ""),
    )
    assert (verdict.status, verdict.proof, guest.done) == ("pass", "prompt", 3)
    verdict, guest = watch(
        [
            "host login: ",
            QUIET_S + 0.2,
            "root\r\nroot@host:~# ",
            QUIET_S + 0.2,
            "harness-shell-42-ok\r\nroot@host:~# ",
            SETTLE_S + 0.2,
        ]
    )
    assert (verdict.status, verdict.proof, guest.done) == ("pass", "shell", 5)


def test_a_crafted_dracut_guest_is_root_not_found_live_early_and_saved_the_same(
    harness: Harness, tmp_path: Path
) -> None:
    """Kind 8 on a real console: the guest prints dracut's devexists listing every
    second (images/tiny/faults/dracut-devexists); live, the repeat decides within
    seconds, long before dracut's `Could not boot.`; its saved log is judged the same."""
    out = tmp_path / "cell"
    proc = harness(
        "run", "fault-dracut-devexists/none/virt/pci", "--out", str(out), "--quiet", timeout=600
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    live = json.loads((out / "result.json").read_text())
    assert (live["status"], live["stage"], live["reason"]) == (
        "fail",
        "initramfs",
        "root-not-found",
    )
    assert "/dev/disk/by-partuuid/0a1b2c3d-02" in live["detail"]
    assert b"Could not boot." not in (out / "console.log").read_bytes()
    saved = harness("classify", "--json", str(out / "console.log"))
    got = json.loads(saved.stdout)
    assert (got["status"], got["stage"], got["reason"], got["text"], got["line"]) == (
        "fail",
        "initramfs",
        "root-not-found",
        live["detail"],
        live["deciding_line"],
    )


def test_a_firmware_that_prints_one_line_before_its_loader_resets_too() -> None:
    boot = (
        "TinyFW 0.9: memory map ready\r\n  Booting `Debian GNU/Linux'\r\n"
        "EFI stub: Booting Linux Kernel...\r\n[    1.5] Run /init as init process\r\n"
    )
    # the console closing right after two boots shows the stage the watcher is at
    at_two, _ = watch([], guest=Guest([boot * 2], ends=True))
    assert (at_two.reason, at_two.stage) == ("qemu-exited", "initramfs")
    verdict, guest = watch([boot * 2, boot])
    assert (verdict.reason, verdict.text) == ("reset-loop", "TinyFW 0.9: memory map ready")
    assert (guest.done, guest.now) == (2, 0)  # decided as the third boot came


def test_our_own_log_keeps_its_refused_login_a_failure(tmp_path: Path) -> None:
    """Re-judging our run: the refusals in the log were the harness's own attempts."""
    from harness.judge import judge_log
    from harness.model import Cell, Image

    log = tmp_path / "console.log"
    log.write_bytes(b"vm1 login: root\r\nLogin incorrect\r\n\r\nvm1 login: ")
    cell = Cell("img", "none", "virt", "pci")
    own = judge_log(log, cell, Image("img", None))
    assert (own.status, own.reason) == ("fail", "login-failed")
    assert judge_log(log).status == "pass"  # someone else's log


def test_short_first_lines_are_no_firmware_sequence() -> None:
    again = "TinyFW 0.9: memory map ready\r\n[    1.5] Run /init as init process\r\n"
    verdict, guest = watch(
        [
            "OK\r\nTinyFW 0.9: memory map ready\r\n  Booting `Debian GNU/Linux'\r\n",
            "[    1.5] Run /init as init process\r\nOK\r\nOK\r\n",
            again * 2,
        ]
    )
    assert verdict.reason == "reset-loop"
    assert (guest.done, guest.now) == (3, 0)  # undecided before the repeats came
