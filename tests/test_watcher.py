"""The watcher on recorded real boots, and on the conversations a live boot has as
the real watch loop (boot._watch) holds them with a scripted guest (fake_guest.py)."""

from __future__ import annotations

import random

import pytest
from conftest import FIXTURES
from fake_guest import ROOT, Step, watch

from harness.boot import PROOF_S
from harness.console import probe
from harness.console.conversation import ANSWER_QUIET_S
from harness.console.watcher import QUIET_S, RETRY_S, SETTLE_S, SHELL_PROOF, Verdict, Watcher
from harness.model import Login

NO_LOGIN = Login(None, "")


def judge_saved(log: bytes, login: Login = ROOT) -> Verdict:
    """The verdict of a saved log, as `harness classify` judges it."""
    watcher = Watcher(login)
    watcher.feed(log, 1.0)
    return watcher.end_of_log()


def judge_log(name: str, login: Login = ROOT) -> Verdict:
    return judge_saved((FIXTURES / "consoles" / name).read_bytes(), login)


def test_recorded_direct_boot_passes_at_login() -> None:
    verdict = judge_log("tiny-direct-mmio-pass.log")
    assert (verdict.status, verdict.stage) == ("pass", "login")
    assert list(verdict.stage_times) == ["kernel", "initramfs", "userspace", "login"]


def test_recorded_aavmf_boot_goes_through_every_stage() -> None:
    verdict = judge_log("tiny-aavmf-pci-pass.log")
    assert verdict.status == "pass"
    assert list(verdict.stage_times) == [
        "firmware",
        "bootloader",
        "kernel",
        "initramfs",
        "userspace",
        "login",
    ]


def test_recorded_mmio_only_guest_on_pci_is_root_not_found() -> None:
    verdict = judge_log("mmio-only-on-pci-root-not-found.log")
    assert (verdict.status, verdict.stage, verdict.reason) == (
        "fail",
        "initramfs",
        "root-not-found",
    )
    assert verdict.text.startswith("Gave up waiting for root file system device")
    assert verdict.line is not None and verdict.line > 200


def test_login_conversation_with_credentials() -> None:
    verdict, guest = watch(
        [
            "Welcome to Debian GNU/Linux 12 (bookworm)!\r\n\r\nhost login: ",
            QUIET_S + 0.2,
            "root\r\n\r\nroot@host:~# ",
            QUIET_S + 0.2,
            "echo harness-shell-$((6*7))-ok\r\nharness-shell-42-ok\r\nroot@host:~# ",
            SETTLE_S + 0.2,
        ]
    )
    assert (verdict.status, verdict.stage) == ("pass", "login")
    assert guest.typed == [(1, "root\r"), (3, SHELL_PROOF + "\r")]
    assert guest.done == 5  # decided in the settle time after the proof


def test_the_echo_of_the_proof_is_not_the_proof() -> None:
    script: list[Step] = ["host login: ", 1.0, "root\r\n# ", 1.0]
    verdict, guest = watch([*script, "echo harness-shell-$((6*7))-ok\r\n", 5.0])
    assert verdict.status != "pass" and guest.done == 6, verdict


def test_panic_a_second_after_the_login_prompt_fails() -> None:
    verdict, guest = watch(
        [
            "Welcome to Debian!\r\nhost login: ",
            QUIET_S + 0.2,
            "[   12.3] Kernel panic - not syncing: Attempted to kill init! exitcode=0x0000000b\r\n",
        ]
    )
    assert (verdict.status, verdict.reason) == ("fail", "kernel-panic")
    assert guest.done == 3


def test_oops_on_the_prompt_line_fails() -> None:
    verdict, _ = watch(
        [
            "host login: [   13.1] Unable to handle kernel paging request at virtual address 0000dead",
            QUIET_S + 0.2,
        ]
    )
    assert (verdict.status, verdict.reason) == ("fail", "kernel-oops")


def test_login_word_inside_a_banner_is_not_a_prompt() -> None:
    verdict, guest = watch(
        ["Please login: as root with the password from the docs\r\n"], NO_LOGIN, timeout_s=10
    )
    assert (verdict.reason, guest.now) == ("timeout", 10)
    assert guest.typed == []


def test_without_credentials_the_prompt_must_come_back_after_enter() -> None:
    verdict, guest = watch(
        [
            "Welcome to Fedora!\r\nlocalhost login: ",
            QUIET_S + 0.2,
            "\r\nlocalhost login: ",
            QUIET_S + SETTLE_S + 0.5,
        ],
        NO_LOGIN,
    )
    assert verdict.status == "pass" and guest.done == 3
    assert guest.typed[0] == (1, "\r")


def test_a_dead_guest_at_a_prompt_does_not_pass() -> None:
    verdict, guest = watch(["localhost login: "], NO_LOGIN)
    assert (verdict.status, verdict.reason) == ("fail", "timeout")
    # from the prompt (told by the short quiet after it, when Enter is pressed) on, the
    # proof's own time bounds the boot, not the boot timeout
    assert guest.now == pytest.approx(ANSWER_QUIET_S + PROOF_S)


def test_random_bytes_never_pass() -> None:
    noise = random.Random(7)
    script: list[Step] = []
    for _ in range(200):
        script += [bytes(noise.randrange(256) for _ in range(200)), 0.6]
    verdict, _ = watch(script)
    assert verdict.status != "pass"


@pytest.mark.parametrize(
    ("tail", "stage", "reason"),
    [
        ("error: file `/vmlinuz' not found.\r\ngrub> ", "bootloader", "bootloader-prompt"),
        ("Entering rescue mode...\r\ngrub rescue> ", "bootloader", "bootloader-no-boot"),
        ("Begin: Waiting ... \r\n(initramfs) ", "initramfs", "emergency-shell"),
        ("UEFI firmware (version  built at 1)\r\nShell> ", "firmware", "firmware-no-boot"),
    ],
)
def test_failing_prompts_decide_when_the_guest_waits(tail: str, stage: str, reason: str) -> None:
    verdict, guest = watch([tail, QUIET_S + 0.2])
    assert (verdict.status, verdict.stage, verdict.reason) == ("fail", stage, reason)
    assert guest.done <= 2


def test_a_shell_prompt_in_the_initramfs_is_an_emergency_shell() -> None:
    verdict, guest = watch(
        [
            "Run /init as init process\r\nsh: can't access tty; job control turned off\r\n/ # ",
            QUIET_S + 0.2,
        ]
    )
    assert (verdict.stage, verdict.reason) == ("initramfs", "emergency-shell")
    assert guest.done <= 2


def probed_shell(root_line: str, login_first: bool) -> Verdict:
    """A guest whose shell (after a login or without one) answers the probe with
    `root_line`, and whose console said nothing of the stage it is in (`quiet`)."""
    login: list[Step] = ["buildroot login: ", QUIET_S + 0.2] if login_first else []
    verdict, guest = watch(
        [
            *login,
            "~ # ",
            QUIET_S + 0.2,
            "harness-shell-42-ok\r\n~ # ",
            0.3,
            f"harness-probe-3-begin\r\nkernel 6.6.7-0-virt\r\n{root_line}\r\nharness-probe-3-end\r\n",
            # the device checks, typed once the first line has ended (probe.WORKS)
            0.3,
            "harness-works-4-begin\r\nnet eth0 unchecked\r\nharness-works-4-end\r\n",
            SETTLE_S + 0.2,
        ],
        probe_devices=True,
    )
    assert guest.done >= len(guest.script) - 3, "decided before the probe's answer"
    return verdict


def test_a_shell_with_no_login_on_the_initramfs_is_an_emergency_shell() -> None:
    verdict = probed_shell("root rootfs rootfs", login_first=False)
    assert (verdict.status, verdict.stage, verdict.reason) == (
        "fail",
        "initramfs",
        "emergency-shell",
    )
    assert "never mounted" in verdict.text


@pytest.mark.parametrize(
    ("root_line", "login_first"),
    [
        ("root /dev/vda2 ext4", False),  # autologin on the real root
        ("root tmpfs tmpfs", False),  # a live system (Alpine's ISO) runs from tmpfs
        ("root rootfs rootfs", True),  # an initramfs-only system with its own getty
        ("root /dev/vda2", False),  # what the probe said before it named the type
    ],
)
def test_a_shell_on_a_real_root_or_behind_a_login_passes(root_line: str, login_first: bool) -> None:
    verdict = probed_shell(root_line, login_first)
    assert verdict.status == "pass", verdict


def test_timeout_names_the_last_stage_and_the_soft_error_before_it() -> None:
    verdict, guest = watch(
        ['UEFI firmware (version 1)\r\nBdsDxe: failed to load Boot0001 "disk": Not Found\r\n'],
        timeout_s=10,
    )
    assert (verdict.status, verdict.stage, verdict.reason) == ("fail", "firmware", "timeout")
    assert verdict.text.startswith("BdsDxe: failed to load Boot0001")
    assert guest.now == 10  # the boot timeout, to the poll


@pytest.mark.parametrize(
    ("log", "stage", "reason", "text"),
    [
        (
            b"Welcome to Fedora Linux 38 (Cloud Edition)!\r\n"
            b"[ ***  ] A start job is running for /dev/disk/by-uuid/4E2C-7D1A (1min 2s / no limit)\r",
            "userspace",
            "start-job-waiting",
            "/dev/disk/by-uuid/4E2C-7D1A",
        ),
        (  # a stall message after the stage was reached still explains the stop
            b"Welcome to Debian GNU/Linux 12 (bookworm)!\r\n"
            b"[   60.0] rcu: INFO: rcu_sched self-detected stall on CPU\r\n",
            "userspace",
            "kernel-stall",
            "detected stall",
        ),
    ],
)
def test_a_saved_log_that_stops_after_a_soft_error_names_it(
    log: bytes, stage: str, reason: str, text: str
) -> None:
    verdict = judge_saved(log)
    assert (verdict.status, verdict.stage, verdict.reason) == ("incomplete", stage, reason)
    assert text in verdict.text


def test_dracut_names_the_device_that_never_showed_up() -> None:
    watcher = Watcher(ROOT)
    verdict = watcher.feed(
        b"Welcome to Fedora Linux 40 (Cloud Edition) dracut-101-1.fc40 (Initramfs)!\r\n"
        b"[*     ] A start job is running for /dev/disk/by-uuid/4e2c-7d1a (2min 30s / no limit)\r\n"
        b"[  250.3] dracut-initqueue[432]: Warning: Could not boot.\r\n"
        b'Warning: "/dev/disk/by-uuid/4e2c-7d1a" does not exist\r\n',
        1.0,
    )
    assert verdict is not None
    assert (verdict.status, verdict.stage, verdict.reason) == (
        "fail",
        "initramfs",
        "root-not-found",
    )


def test_an_efi_stub_error_the_kernel_boots_past_is_no_failure() -> None:
    verdict, _ = watch(
        [
            "EFI stub: ERROR: FIRMWARE BUG: efi_loaded_image_t::image_base has bogus value\r\n"
            "EFI stub: Exiting boot services...\r\n",
            1.0,
            "[    0.0] Booting Linux on physical CPU 0x0\r\nRun /init as init process\r\n",
        ],
        timeout_s=5,
    )
    assert (verdict.stage, verdict.reason) == ("initramfs", "timeout")
    # A fatal one (issue 14, kind 4) is the loader failing: decided at once.
    fatal = judge_saved(b"EFI stub: ERROR: Failed to relocate kernel\r\n")
    assert (fatal.status, fatal.stage, fatal.reason) == ("fail", "bootloader", "efi-stub-error")


def test_a_soft_error_the_boot_got_past_is_not_the_reason() -> None:
    verdict, _ = watch(
        [
            "error: no such device: 1234.\r\nEFI stub: Booting Linux Kernel...\r\n"
            "EFI stub: Exiting boot services...\r\n"
        ],
        timeout_s=5,
    )
    assert (verdict.stage, verdict.reason) == ("kernel", "timeout")
    assert verdict.text == "EFI stub: Exiting boot services..."


def test_failure_is_decided_by_the_line_itself_not_by_a_later_timer() -> None:
    verdict, guest = watch(
        [
            "Begin: Waiting for root file system ... \r\n"
            "Gave up waiting for root file system device.  Common problems:\r\n",
            QUIET_S + 0.2,
        ]
    )
    assert verdict.reason == "root-not-found" and guest.now == 0


def test_reason_split_over_two_lines_by_serial_wrapping() -> None:
    verdict, guest = watch(["[    3.6] Kernel pan\r\nic - not syncing: VFS\r\n", 1.0])
    assert verdict.reason == "kernel-panic" and guest.now == 0


def test_a_reset_loop_fails() -> None:
    banner = "UEFI firmware (version 1)\r\nBooting Linux on physical CPU 0x0\r\n"
    verdict, guest = watch([banner, banner, banner, 1.0])
    assert verdict.reason == "reset-loop" and guest.done == 3


def test_saved_log_that_stops_mid_boot_is_incomplete_with_its_stage() -> None:
    verdict = judge_saved(
        b"EFI stub: Booting Linux Kernel...\r\nEFI stub: Exiting boot services...\r\n"
    )
    assert (verdict.status, verdict.stage) == ("incomplete", "kernel")


def test_saved_log_ending_at_a_login_prompt_passes() -> None:
    verdict = judge_saved(b"Welcome to Ubuntu 16.04!\r\n\r\nubuntu login: ")
    assert (verdict.status, verdict.stage) == ("pass", "login")


def test_a_refused_login_is_tried_again_then_fails() -> None:
    refused: list[Step] = ["root\r\nLogin incorrect\r\n\r\nhost login: ", RETRY_S + 1]
    verdict, guest = watch(["host login: ", QUIET_S + 0.2, *refused * 3])
    assert (verdict.status, verdict.stage, verdict.reason) == ("fail", "login", "login-failed")
    assert verdict.text == "Login incorrect"
    assert guest.texts() == ["root\r"] * 3


def test_a_password_set_late_lets_the_second_attempt_in() -> None:
    verdict, guest = watch(
        [
            "ubuntu login: ",
            QUIET_S + 0.2,
            "ubuntu\r\nPassword: ",
            QUIET_S + 0.2,
            "\r\nLogin incorrect\r\nubuntu login: ",
            RETRY_S + 1,
            "ubuntu\r\nPassword: ",
            QUIET_S + 0.2,
            "\r\nubuntu@host:~$ ",
            QUIET_S + 0.2,
            "harness-shell-42-ok\r\nubuntu@host:~$ ",
            SETTLE_S + 0.2,
        ],
        Login("ubuntu", "s3cret"),
    )
    assert verdict.status == "pass" and guest.done == 11
    assert guest.typed == [
        (1, "ubuntu\r"),
        (3, "s3cret\r"),
        (5, "ubuntu\r"),
        (7, "s3cret\r"),
        (9, SHELL_PROOF + "\r"),
    ]


def test_saved_log_ending_after_someone_elses_refused_login_passes_at_the_prompt() -> None:
    # Issue 14, kind 2: the prompt was reached; the login itself is not proven.
    verdict = judge_saved(b"host login: nobody\r\nLogin incorrect\r\n\r\nhost login: ")
    assert (verdict.status, verdict.stage, verdict.proof) == ("pass", "login", "prompt")


def test_after_login_the_device_probe_runs_and_its_findings_come_with_the_pass() -> None:
    verdict, guest = watch(
        [
            "host login: ",
            QUIET_S + 0.2,
            "root\r\nroot@host:~# ",
            QUIET_S + 0.2,
            "harness-shell-42-ok\r\nroot@host:~# ",
            0.3,
            "harness-probe-3-begin\r\nkernel 6.1.0-50-arm64\r\n"
            "virtio virtio0 id=0x0002 driver=virtio_blk transport=virtio-mmio\r\n"
            "virtio virtio1 id=0x0001 driver=virtio_net transport=virtio-pci\r\n"
            'root /dev/vda2\r\nos ID=debian\r\nos VERSION_ID="12"\r\nharness-probe-3-end\r\nroot@host:~# ',
            0.3,
            "harness-works-4-begin\r\nnet eth0 10.0.2.15\r\nharness-works-4-end\r\n",
            SETTLE_S + 0.2,
        ],
        probe_devices=True,
    )
    # the probe after the proof, then the device checks on a line of their own
    assert guest.typed[-2:] == [(5, probe.SCRIPT + "\r"), (7, probe.WORKS + "\r")]
    assert verdict.status == "pass" and verdict.findings is not None and guest.done == 9
    found = verdict.findings
    assert (
        found.kernel == "6.1.0-50-arm64"
        and found.root == "/dev/vda2"
        and found.os == {"ID": "debian", "VERSION_ID": "12"}
    )
    assert [(d.kind, d.transport) for d in found.devices] == [("block", "mmio"), ("net", "pci")]
    assert (
        probe.mismatch("mmio", found, has_disk=True)
        == "expected every virtio device on mmio, but the guest has net virtio1 on pci"
    )
    assert probe.mismatch("pci", found, has_disk=True).endswith("block virtio0 on mmio")
    assert found.works == ("net eth0 10.0.2.15",) and found.checks()["net"] == "ok"


def test_a_guest_that_never_answers_the_probe_still_passes_unprobed() -> None:
    verdict, _ = watch(
        ["/ # ", QUIET_S + 0.2, "harness-shell-42-ok\r\n/ # ", 2 * RETRY_S + SETTLE_S + 1],
        probe_devices=True,
    )
    assert verdict.status == "pass" and verdict.findings is None


def test_a_prompt_that_cloud_init_wrote_over_is_still_answered() -> None:
    verdict, guest = watch(
        [
            "Welcome to Ubuntu 24.04 LTS!\r\n\r\nubuntu login: [   35.120000] cloud-init[812]: Cloud-init v. 24.1 finished at Tue. Up 35.10 seconds\r\n"
        ]
    )
    assert guest.typed[0] == (1, "root\r")
    assert (verdict.stage, verdict.reason) == ("login", "timeout")


@pytest.mark.parametrize(
    "after",
    [
        "         Starting Record Runlevel Change in UTMP...",
        "[FAILED] Failed to start cloud-final.service - Execute cloud user/final scripts.",
        "[  OK  ] Finished cloud-final.service - Execute cloud user/final scripts.",
    ],
)
def test_a_prompt_that_systemd_status_wrote_over_is_still_answered(after: str) -> None:
    _, guest = watch([f"Welcome to Ubuntu 24.04 LTS!\r\n\r\nubuntu login: {after}\r\n"])
    assert guest.typed[0] == (1, "root\r")


def test_a_banner_sentence_with_login_in_it_is_not_an_overrun_prompt() -> None:
    verdict, guest = watch(
        ["Welcome to Debian!\r\nPlease login: as root, then run the tests.\r\n"], timeout_s=10
    )
    assert verdict.reason == "timeout" and guest.typed == []


def test_a_saved_log_that_ends_after_an_overrun_prompt_reached_login() -> None:
    verdict = judge_saved(
        b"Welcome to Fedora!\r\nlocalhost login: ci-info: no authorized SSH keys fingerprints found for user fedora.\r\n"
    )
    assert (verdict.status, verdict.stage) == ("pass", "login")


def test_the_settle_time_counts_from_the_proof_so_a_slow_probe_adds_no_wait() -> None:
    verdict, guest = watch(
        [
            "/ # ",
            QUIET_S + 0.2,
            "harness-shell-42-ok\r\n/ # ",
            SETTLE_S + 0.1,  # the probe is typed, its answer not back yet
            "harness-probe-3-begin\r\nvirtio virtio0 id=0x0002 driver=virtio_blk "
            "transport=virtio-mmio\r\nroot /dev/vda\r\nharness-probe-3-end\r\n/ # ",
            0.1,  # the device checks are typed next (probe.WORKS)
            "harness-works-4-begin\r\nharness-works-4-end\r\n/ # ",
            0.1,
        ],
        probe_devices=True,
    )
    # The guest has been watched for more than SETTLE_S since its proof: no more wait.
    assert verdict.status == "pass" and verdict.findings is not None
    assert guest.done == 7 and guest.now <= QUIET_S + SETTLE_S + 0.5


def test_a_quick_probe_still_waits_out_the_settle_time_after_the_proof() -> None:
    verdict, guest = watch(
        [
            "/ # ",
            QUIET_S + 0.2,
            "harness-shell-42-ok\r\n/ # ",
            0.1,
            "harness-probe-3-begin\r\nroot /dev/vda\r\nharness-probe-3-end\r\n/ # ",
            0.2,
            "Kernel panic - not syncing: Attempted to kill init!\r\n",
            0.1,
        ],
        probe_devices=True,
    )
    assert (verdict.status, verdict.reason) == ("fail", "kernel-panic") and guest.done == 7
