"""How soon the real watch loop (boot._watch, with a scripted guest: fake_guest.py)
answers a prompt and passes a proven guest (issue 15), and the guarantees the old
fixed quiet periods gave, kept: a prompt that decides still waits QUIET_S, output
after a prompt still counts, and a failure after the proof still fails the cell."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence

import pytest
from fake_guest import ROOT, Guest, Step, watch

from harness.boot import POLL_S
from harness.console import probe
from harness.console.conversation import ANSWER_QUIET_S, QUIET_PROOF
from harness.console.watcher import QUIET_S, RETRY_S, SETTLE_S, SHELL_PROOF, Verdict, Watcher

QUERY = "\x1b[6n"  # busybox's line editor asks where the cursor is, after its prompt
PROMPT = f"root@debian:~# {QUERY}"
LOGIN: list[Step] = ["Welcome to Debian GNU/Linux 12 (bookworm)!\r\n\r\ndebian login: ", 0.3]
PROBED: list[Step] = [  # the proof, then both probe lines answered at 0.1 s each
    f"root\r\n{PROMPT}",
    0.05,
    f"harness-shell-42-ok\r\n{PROMPT}",
    0.1,
    "harness-probe-3-begin\r\n"
    "virtio virtio0 id=0x0002 driver=virtio_blk transport=virtio-mmio\r\n"
    f"root /dev/vda2 ext4\r\nharness-probe-3-end\r\n{PROMPT}",
    0.1,
    "harness-works-4-begin\r\ndisk-read 1024 53ef\r\nharness-works-4-end\r\n",
    0.1,
]


class Timed(Guest):
    """The scripted guest, also keeping when (on its clock) each text was typed."""

    def __init__(self, script: Sequence[Step]):
        super().__init__(script)
        self.sent_at: list[tuple[float, str]] = []

    def send(self, text: str) -> None:
        super().send(text)
        self.sent_at.append((round(self.now, 3), text))


def run(
    script: Sequence[Step], probe_devices: bool = False, timeout_s: float = 300.0
) -> tuple[Verdict, Timed]:
    guest = Timed(script)
    verdict, _ = watch(script, probe_devices=probe_devices, timeout_s=timeout_s, guest=guest)
    return verdict, guest


def test_a_login_prompt_is_answered_after_the_short_quiet_not_the_long_one() -> None:
    _, guest = run(["Welcome!\r\n\r\nhost login: ", 1.0], timeout_s=5)
    assert ANSWER_QUIET_S < QUIET_S
    assert guest.sent_at[0] == (ANSWER_QUIET_S, "root\r")
    # not again at QUIET_S for the same quiet spell: only the retry of an unread answer
    assert all(at >= RETRY_S for at, _ in guest.sent_at[1:])


def test_a_shell_prompt_followed_by_the_line_editors_query_is_answered_at_once() -> None:
    verdict, guest = run([*LOGIN, f"root\r\n{PROMPT}", 0.3, "harness-shell-42-ok\r\n", 1.0])
    assert guest.sent_at[:2] == [(ANSWER_QUIET_S, "root\r"), (0.3, SHELL_PROOF + "\r")]
    assert verdict.status == "pass"


def test_a_shell_prompt_without_the_query_waits_the_short_quiet() -> None:
    _, guest = run([*LOGIN, "root\r\n[root@host ~]# ", 0.5, "harness-shell-42-ok\r\n", 1.0])
    assert guest.sent_at[1] == (0.3 + ANSWER_QUIET_S, SHELL_PROOF + "\r")


def test_a_query_that_no_prompt_precedes_or_more_output_follows_is_not_answered() -> None:
    # systemd 257 asks where the cursor is while it boots: no prompt there
    verdict, guest = run([f"[  OK  ] Started Journal Service.\r\n{QUERY}", 2.0], timeout_s=2)
    assert (verdict.reason, guest.typed) == ("timeout", [])
    _, guest = run([f"{PROMPT}[    9.1] random: crng init done", 2.0], timeout_s=2)
    assert guest.typed == []


@pytest.mark.parametrize(
    ("tail", "reason"),
    [
        ("error: file `/vmlinuz' not found.\r\ngrub> ", "bootloader-prompt"),
        ("Begin: Waiting ... \r\n(initramfs) ", "emergency-shell"),
        (f"Begin: Waiting ... \r\n(initramfs) {QUERY}", "emergency-shell"),  # busybox ash
        (f"Begin: Mounting root file system ... \r\n/ # {QUERY}", "emergency-shell"),
    ],
)
def test_a_prompt_that_decides_still_waits_the_full_quiet(tail: str, reason: str) -> None:
    verdict, guest = run([tail, 1.0])
    assert (verdict.status, verdict.reason) == ("fail", reason)
    assert guest.now >= QUIET_S and guest.typed == []  # nothing typed at it before


def test_output_right_after_a_login_prompt_delays_the_answer_to_the_full_quiet() -> None:
    # cloud-init writes over the prompt: it is no longer the last output
    overrun = "[   35.1] cloud-init[812]: Cloud-init v. 24.1 finished\r\n"
    gap = ANSWER_QUIET_S / 2  # it came before the prompt had been quiet long enough
    _, guest = run(["Welcome!\r\n\r\nubuntu login: ", gap, overrun, 1.0], timeout_s=5)
    at, text = guest.sent_at[0]
    assert text == "root\r" and gap + QUIET_S <= at <= gap + QUIET_S + POLL_S


def test_a_panic_after_an_early_answer_still_fails() -> None:
    panic = "[   12.3] Kernel panic - not syncing: Attempted to kill init!\r\n"
    verdict, guest = run([*LOGIN, f"root\r\n{panic}", 1.0])
    assert (verdict.status, verdict.reason) == ("fail", "kernel-panic")
    assert guest.sent_at == [(ANSWER_QUIET_S, "root\r")]


def test_with_the_probe_the_pass_comes_once_the_shell_is_back_after_it() -> None:
    script = [*LOGIN, *PROBED, PROMPT, 5.0]
    verdict, guest = run(script, probe_devices=True)
    assert (verdict.status, verdict.proof) == ("pass", "shell")
    assert verdict.findings is not None and verdict.findings.works == ("disk-read 1024 53ef",)
    assert guest.texts() == ["root\r", QUIET_PROOF + "\r", probe.SCRIPT + "\r", probe.WORKS + "\r"]
    assert guest.done == len(script) - 1  # decided as the prompt came back
    proof_at = 0.35  # the proof's line came 0.05 s after it was typed at 0.3
    assert guest.now - proof_at < SETTLE_S  # no fixed settle time waited out


@pytest.mark.parametrize(
    "failure",
    [
        "[   20.1] Unable to handle kernel paging request at virtual address 0000dead\r\n",
        "[   20.1] Kernel panic - not syncing: Attempted to kill init!\r\n",
    ],
)
def test_a_failure_right_after_the_proof_or_the_probe_still_fails(failure: str) -> None:
    verdict, _ = run([*LOGIN, f"root\r\n{PROMPT}", 0.05, "harness-shell-42-ok\r\n" + failure, 2.0])
    assert verdict.status == "fail"
    verdict, _ = run([*LOGIN, *PROBED, failure + PROMPT, 2.0], probe_devices=True)
    assert verdict.status == "fail"


def test_without_the_probe_the_pass_still_waits_the_settle_time() -> None:
    verdict, guest = run(
        [*LOGIN, f"root\r\n{PROMPT}", 0.05, f"harness-shell-42-ok\r\n{PROMPT}", 2.0]
    )
    assert verdict.status == "pass"
    assert guest.now >= 0.35 + SETTLE_S


def test_the_live_conversation_judged_as_a_saved_log_passes_the_same() -> None:
    script = [*LOGIN, *PROBED, PROMPT, 5.0]
    live, guest = run(script, probe_devices=True)
    log = b"".join(step.encode() for step in script[: guest.done] if isinstance(step, str))
    saved = Watcher(ROOT, own_log=True)
    saved.feed(log, 1.0)
    again = saved.end_of_log()
    assert (again.status, again.stage, again.reason, again.proof) == (
        live.status,
        live.stage,
        live.reason,
        live.proof,
    )
    assert again.findings == live.findings


@pytest.mark.parametrize("shell", ["dash", "bash"])  # Debian's sh, and its login shell
def test_the_probe_lines_are_posix_sh_and_fit_busybox_ash_line_editor(shell: str) -> None:
    # busybox ash's line editor keeps at most 1024 characters a line (probe.py)
    assert len(probe.SCRIPT) < 1024 and len(probe.WORKS) < 1024
    found = shutil.which(shell)
    assert found is not None, f"{shell} is part of every Debian host"
    for line in (probe.SCRIPT, probe.WORKS):
        proc = subprocess.run([found, "-n", "-c", line], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize(
    ("tail", "stage"),
    [
        ("debian login: ", "login"),  # Ctrl-C before the answer: the prompt was there
        ("Password: ", "login"),
        ("root@debian:~# ", "login"),
        ("[    3.1] systemd[1]: Started getty@tty1.service\r\n", "userspace"),
    ],
)
def test_an_interrupt_records_a_prompt_waiting_unanswered_as_login(tail: str, stage: str) -> None:
    watcher = Watcher(ROOT, start=0.0)
    boot = "[    0.000000] Linux version 6.1.0-13-arm64\r\nRun /sbin/init as init process\r\n"
    assert watcher.feed((boot + tail).encode(), 2.0) is None
    reached, times = watcher.interrupted()
    assert reached == stage and times.get("login") == (2.0 if stage == "login" else None)


def test_an_interrupt_at_an_initramfs_shell_is_not_a_login() -> None:
    watcher = Watcher(ROOT, start=0.0)
    boot = (
        "[    0.000000] Linux version 6.1.0-13-arm64\r\nRun /init as init process\r\n(initramfs) "
    )
    assert watcher.feed(boot.encode(), 2.0) is None
    assert watcher.interrupted()[0] == "initramfs"
