"""The watcher on recorded real boots and on the conversations a live boot has."""

from __future__ import annotations

import random

import pytest
from conftest import FIXTURES

from harness.console import probe
from harness.console.watcher import QUIET_S, RETRY_S, SETTLE_S, SHELL_PROOF, Reply, Verdict, Watcher
from harness.model import Login

ROOT = Login("root", "")
NO_LOGIN = Login(None, "")


def judge_saved(log: bytes, login: Login = ROOT) -> Verdict:
    """The verdict of a saved log, as `harness classify` judges it."""
    watcher = Watcher(login)
    watcher.feed(log, 1.0)
    return watcher.end_of_log()


def judge_log(name: str, login: Login = ROOT) -> Verdict:
    return judge_saved((FIXTURES / "consoles" / name).read_bytes(), login)


class Live:
    """Drives a watcher as boot.py does, with a fake clock."""

    def __init__(self, login: Login = ROOT, probe_devices: bool = False):
        self.now = 0.0
        self.watcher = Watcher(login, start=0.0, probe_devices=probe_devices)
        self.typed: list[str] = []

    def guest(self, text: str | bytes) -> Verdict | None:
        data = text.encode() if isinstance(text, str) else text
        return self.watcher.feed(data, self.now)

    def wait(self, seconds: float) -> Verdict | None:
        """Lets time pass with the guest silent, ticking as the boot loop does."""
        end = self.now + seconds
        while self.now < end:
            self.now = round(self.now + 0.1, 3)
            step = self.watcher.tick(self.now)
            if isinstance(step, Reply):
                self.typed.append(step.text)
            elif step is not None:
                return step
        return None


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
    live = Live()
    live.guest("Welcome to Debian GNU/Linux 12 (bookworm)!\r\n\r\nhost login: ")
    assert live.wait(QUIET_S + 0.2) is None
    assert live.typed == ["root\r"]
    live.guest("root\r\n\r\nroot@host:~# ")
    assert live.wait(QUIET_S + 0.2) is None
    assert live.typed[-1] == SHELL_PROOF + "\r"
    live.guest("echo harness-shell-$((6*7))-ok\r\nharness-shell-42-ok\r\nroot@host:~# ")
    verdict = live.wait(SETTLE_S + 0.2)
    assert verdict is not None and (verdict.status, verdict.stage) == ("pass", "login")


def test_the_echo_of_the_proof_is_not_the_proof() -> None:
    live = Live()
    live.guest("host login: ")
    live.wait(1)
    live.guest("root\r\n# ")
    live.wait(1)
    live.guest("echo harness-shell-$((6*7))-ok\r\n")
    assert live.wait(5) is None


def test_panic_a_second_after_the_login_prompt_fails() -> None:
    live = Live()
    live.guest("Welcome to Debian!\r\nhost login: ")
    live.wait(QUIET_S + 0.2)
    verdict = live.guest(
        "[   12.3] Kernel panic - not syncing: Attempted to kill init! exitcode=0x0000000b\r\n"
    )
    assert verdict is not None and (verdict.status, verdict.reason) == ("fail", "kernel-panic")


def test_oops_on_the_prompt_line_fails() -> None:
    live = Live()
    live.guest(
        "host login: [   13.1] Unable to handle kernel paging request at virtual address 0000dead"
    )
    verdict = live.wait(QUIET_S + 0.2)
    assert verdict is not None and (verdict.status, verdict.reason) == ("fail", "kernel-oops")


def test_login_word_inside_a_banner_is_not_a_prompt() -> None:
    live = Live(NO_LOGIN)
    live.guest("Please login: as root with the password from the docs\r\n")
    assert live.wait(3) is None
    assert live.typed == []


def test_without_credentials_the_prompt_must_come_back_after_enter() -> None:
    live = Live(NO_LOGIN)
    live.guest("Welcome to Fedora!\r\nlocalhost login: ")
    assert live.wait(QUIET_S + 0.2) is None
    assert live.typed == ["\r"]
    live.guest("\r\nlocalhost login: ")
    verdict = live.wait(QUIET_S + SETTLE_S + 0.5)
    assert verdict is not None and verdict.status == "pass"


def test_a_dead_guest_at_a_prompt_does_not_pass() -> None:
    live = Live(NO_LOGIN)
    live.guest("localhost login: ")
    assert live.wait(3 * RETRY_S) is None
    assert live.watcher.stopped("timeout").status == "fail"


def test_random_bytes_never_pass() -> None:
    noise = random.Random(7)
    live = Live()
    for _ in range(200):
        live.guest(bytes(noise.randrange(256) for _ in range(200)))
        if live.wait(0.6) is not None:
            break
    verdict = live.watcher.verdict or live.watcher.stopped("timeout")
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
    live = Live()
    verdict = live.guest(tail) or live.wait(QUIET_S + 0.2)
    assert verdict is not None
    assert (verdict.status, verdict.stage, verdict.reason) == ("fail", stage, reason)


def test_a_shell_prompt_in_the_initramfs_is_an_emergency_shell() -> None:
    live = Live()
    live.guest("Run /init as init process\r\nsh: can't access tty; job control turned off\r\n/ # ")
    verdict = live.wait(QUIET_S + 0.2)
    assert verdict is not None and (verdict.stage, verdict.reason) == (
        "initramfs",
        "emergency-shell",
    )


def probed_shell(root_line: str, login_first: bool) -> Verdict | None:
    """A guest whose shell (after a login or without one) answers the probe with
    `root_line`, and whose console said nothing of the stage it is in (`quiet`)."""
    live = Live(probe_devices=True)
    if login_first:
        live.guest("buildroot login: ")
        live.wait(QUIET_S + 0.2)
    live.guest("~ # ")
    live.wait(QUIET_S + 0.2)
    live.guest("harness-shell-42-ok\r\n~ # ")
    live.wait(0.3)
    live.guest(
        f"harness-probe-3-begin\r\nkernel 6.6.7-0-virt\r\n{root_line}\r\nharness-probe-3-end\r\n"
    )
    # the device checks, typed once the first line has ended (probe.WORKS)
    live.wait(0.3)
    live.guest("harness-works-4-begin\r\nnet eth0 unchecked\r\nharness-works-4-end\r\n")
    return live.wait(SETTLE_S + 0.2)


def test_a_shell_with_no_login_on_the_initramfs_is_an_emergency_shell() -> None:
    verdict = probed_shell("root rootfs rootfs", login_first=False)
    assert verdict is not None
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
    assert verdict is not None and verdict.status == "pass", verdict


def test_timeout_names_the_last_stage_and_the_soft_error_before_it() -> None:
    live = Live()
    live.guest('UEFI firmware (version 1)\r\nBdsDxe: failed to load Boot0001 "disk": Not Found\r\n')
    live.wait(10)
    verdict = live.watcher.stopped("timeout")
    assert (verdict.status, verdict.stage, verdict.reason) == ("fail", "firmware", "timeout")
    assert verdict.text.startswith("BdsDxe: failed to load Boot0001")


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
    live = Live()
    live.guest(
        "EFI stub: ERROR: FIRMWARE BUG: efi_loaded_image_t::image_base has bogus value\r\n"
        "EFI stub: Exiting boot services...\r\n"
    )
    assert live.watcher.verdict is None
    live.guest("[    0.0] Booting Linux on physical CPU 0x0\r\nRun /init as init process\r\n")
    assert live.watcher.stopped("timeout").reason == "timeout"
    # A fatal one (issue 14, kind 4) is the loader failing: decided at once.
    fatal = judge_saved(b"EFI stub: ERROR: Failed to relocate kernel\r\n")
    assert (fatal.status, fatal.stage, fatal.reason) == ("fail", "bootloader", "efi-stub-error")


def test_a_soft_error_the_boot_got_past_is_not_the_reason() -> None:
    live = Live()
    live.guest(
        "error: no such device: 1234.\r\nEFI stub: Booting Linux Kernel...\r\nEFI stub: Exiting boot services...\r\n"
    )
    verdict = live.watcher.stopped("timeout")
    assert (verdict.stage, verdict.reason) == ("kernel", "timeout")
    assert verdict.text == "EFI stub: Exiting boot services..."


def test_failure_is_decided_by_the_line_itself_not_by_a_later_timer() -> None:
    live = Live()
    verdict = live.guest(
        "Begin: Waiting for root file system ... \r\nGave up waiting for root file system device.  Common problems:\r\n"
    )
    assert verdict is not None and verdict.reason == "root-not-found"


def test_reason_split_over_two_lines_by_serial_wrapping() -> None:
    live = Live()
    verdict = live.guest("[    3.6] Kernel pan\r\nic - not syncing: VFS\r\n")
    assert verdict is not None and verdict.reason == "kernel-panic"


def test_a_reset_loop_fails() -> None:
    live = Live()
    banner = "UEFI firmware (version 1)\r\nBooting Linux on physical CPU 0x0\r\n"
    assert live.guest(banner) is None
    live.guest(banner)
    verdict = live.guest(banner)
    assert verdict is not None and verdict.reason == "reset-loop"


def test_saved_log_that_stops_mid_boot_is_incomplete_with_its_stage() -> None:
    verdict = judge_saved(
        b"EFI stub: Booting Linux Kernel...\r\nEFI stub: Exiting boot services...\r\n"
    )
    assert (verdict.status, verdict.stage) == ("incomplete", "kernel")


def test_saved_log_ending_at_a_login_prompt_passes() -> None:
    verdict = judge_saved(b"Welcome to Ubuntu 16.04!\r\n\r\nubuntu login: ")
    assert (verdict.status, verdict.stage) == ("pass", "login")


def test_a_refused_login_is_tried_again_then_fails() -> None:
    live = Live()
    live.guest("host login: ")
    live.wait(QUIET_S + 0.2)
    for _ in range(3):
        live.guest("root\r\nLogin incorrect\r\n\r\nhost login: ")
        verdict = live.wait(RETRY_S + 1)
        if verdict is not None:
            break
    assert verdict is not None and (verdict.status, verdict.stage, verdict.reason) == (
        "fail",
        "login",
        "login-failed",
    )
    assert verdict.text == "Login incorrect"
    assert live.typed == ["root\r"] * 3


def test_a_password_set_late_lets_the_second_attempt_in() -> None:
    live = Live(Login("ubuntu", "s3cret"))
    live.guest("ubuntu login: ")
    live.wait(QUIET_S + 0.2)
    live.guest("ubuntu\r\nPassword: ")
    live.wait(QUIET_S + 0.2)
    live.guest("\r\nLogin incorrect\r\nubuntu login: ")
    assert live.wait(RETRY_S + 1) is None
    live.guest("ubuntu\r\nPassword: ")
    live.wait(QUIET_S + 0.2)
    live.guest("\r\nubuntu@host:~$ ")
    live.wait(QUIET_S + 0.2)
    live.guest("harness-shell-42-ok\r\nubuntu@host:~$ ")
    verdict = live.wait(SETTLE_S + 0.2)
    assert verdict is not None and verdict.status == "pass"
    assert live.typed == ["ubuntu\r", "s3cret\r", "ubuntu\r", "s3cret\r", SHELL_PROOF + "\r"]


def test_saved_log_ending_after_someone_elses_refused_login_passes_at_the_prompt() -> None:
    # Issue 14, kind 2: the prompt was reached; the login itself is not proven.
    verdict = judge_saved(b"host login: nobody\r\nLogin incorrect\r\n\r\nhost login: ")
    assert (verdict.status, verdict.stage, verdict.proof) == ("pass", "login", "prompt")


def test_after_login_the_device_probe_runs_and_its_findings_come_with_the_pass() -> None:
    live = Live(probe_devices=True)
    live.guest("host login: ")
    live.wait(QUIET_S + 0.2)
    live.guest("root\r\nroot@host:~# ")
    live.wait(QUIET_S + 0.2)
    live.guest("harness-shell-42-ok\r\nroot@host:~# ")
    assert live.wait(0.3) is None
    assert live.typed[-1] == probe.SCRIPT + "\r"
    live.guest(
        "harness-probe-3-begin\r\nkernel 6.1.0-50-arm64\r\n"
        "virtio virtio0 id=0x0002 driver=virtio_blk transport=virtio-mmio\r\n"
        "virtio virtio1 id=0x0001 driver=virtio_net transport=virtio-pci\r\n"
        'root /dev/vda2\r\nos ID=debian\r\nos VERSION_ID="12"\r\nharness-probe-3-end\r\nroot@host:~# '
    )
    assert live.wait(0.3) is None  # then the device checks, on a line of their own
    assert live.typed[-1] == probe.WORKS + "\r"
    live.guest("harness-works-4-begin\r\nnet eth0 10.0.2.15\r\nharness-works-4-end\r\n")
    verdict = live.wait(SETTLE_S + 0.2)
    assert verdict is not None and verdict.status == "pass" and verdict.findings is not None
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
    live = Live(probe_devices=True)
    live.guest("/ # ")
    live.wait(QUIET_S + 0.2)
    live.guest("harness-shell-42-ok\r\n/ # ")
    verdict = live.wait(2 * RETRY_S + SETTLE_S + 1)
    assert verdict is not None and verdict.status == "pass" and verdict.findings is None


def test_a_prompt_that_cloud_init_wrote_over_is_still_answered() -> None:
    live = Live()
    live.guest(
        "Welcome to Ubuntu 24.04 LTS!\r\n\r\nubuntu login: [   35.120000] cloud-init[812]: Cloud-init v. 24.1 finished at Tue. Up 35.10 seconds\r\n"
    )
    assert live.wait(QUIET_S + 0.2) is None
    assert live.typed == ["root\r"]
    assert live.watcher.stage == "login"


@pytest.mark.parametrize(
    "after",
    [
        "         Starting Record Runlevel Change in UTMP...",
        "[FAILED] Failed to start cloud-final.service - Execute cloud user/final scripts.",
        "[  OK  ] Finished cloud-final.service - Execute cloud user/final scripts.",
    ],
)
def test_a_prompt_that_systemd_status_wrote_over_is_still_answered(after: str) -> None:
    live = Live()
    live.guest(f"Welcome to Ubuntu 24.04 LTS!\r\n\r\nubuntu login: {after}\r\n")
    assert live.wait(QUIET_S + 0.2) is None
    assert live.typed == ["root\r"]


def test_a_banner_sentence_with_login_in_it_is_not_an_overrun_prompt() -> None:
    live = Live()
    live.guest("Welcome to Debian!\r\nPlease login: as root, then run the tests.\r\n")
    assert live.wait(3) is None and live.typed == []


def test_a_saved_log_that_ends_after_an_overrun_prompt_reached_login() -> None:
    verdict = judge_saved(
        b"Welcome to Fedora!\r\nlocalhost login: ci-info: no authorized SSH keys fingerprints found for user fedora.\r\n"
    )
    assert (verdict.status, verdict.stage) == ("pass", "login")


def test_the_settle_time_counts_from_the_proof_so_a_slow_probe_adds_no_wait() -> None:
    live = Live(probe_devices=True)
    live.guest("/ # ")
    live.wait(QUIET_S + 0.2)
    live.guest("harness-shell-42-ok\r\n/ # ")
    assert live.wait(SETTLE_S + 0.1) is None  # the probe is typed, its answer not back yet
    live.guest(
        "harness-probe-3-begin\r\nvirtio virtio0 id=0x0002 driver=virtio_blk "
        "transport=virtio-mmio\r\nroot /dev/vda\r\nharness-probe-3-end\r\n/ # "
    )
    assert live.wait(0.1) is None  # the device checks are typed next (probe.WORKS)
    live.guest("harness-works-4-begin\r\nharness-works-4-end\r\n/ # ")
    # The guest has been watched for more than SETTLE_S since its proof: no more wait.
    verdict = live.wait(0.1)
    assert verdict is not None and verdict.status == "pass" and verdict.findings is not None


def test_a_quick_probe_still_waits_out_the_settle_time_after_the_proof() -> None:
    live = Live(probe_devices=True)
    live.guest("/ # ")
    live.wait(QUIET_S + 0.2)
    live.guest("harness-shell-42-ok\r\n/ # ")
    live.wait(0.1)
    live.guest("harness-probe-3-begin\r\nroot /dev/vda\r\nharness-probe-3-end\r\n/ # ")
    assert live.wait(0.2) is None
    live.guest("Kernel panic - not syncing: Attempted to kill init!\r\n")
    verdict = live.wait(0.1)
    assert verdict is not None and (verdict.status, verdict.reason) == ("fail", "kernel-panic")
