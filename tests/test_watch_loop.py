"""The watch loop itself (boot._watch) on a scripted guest: what it keeps, when it
stops, and what a closed console or a cancel means."""

from __future__ import annotations

import threading

import pytest
from fake_guest import ROOT, Guest, Kept, watch

from harness.boot import _watch
from harness.console.watcher import QUIET_S, Watcher
from harness.errors import QemuCrashError, QemuLaunchError


def test_the_loop_keeps_every_byte_and_stops_at_the_boot_timeout() -> None:
    guest = Guest(["UEFI firmware (version 1)\r\n", 2.0, b"\xff\x00EFI stub: Booting"])
    watcher = Watcher(ROOT, start=0.0)
    log = Kept()
    verdict = _watch(guest, None, watcher, 7.5, log, None, None, clock=guest.clock)
    assert log.data == b"UEFI firmware (version 1)\r\n\xff\x00EFI stub: Booting"
    assert (verdict.stage, verdict.reason, guest.now) == ("firmware", "timeout", 7.5)


@pytest.mark.parametrize(
    ("status", "raised"),
    [("0", None), ("signal 6", QemuCrashError), ("1", QemuLaunchError)],
)
def test_a_console_that_closes_is_the_guest_powering_off_or_qemu_failing(
    status: str, raised: type[Exception] | None
) -> None:
    guest = Guest(["Booting Linux on physical CPU 0x0\r\n", 1.0], ends=True, status=status)
    if raised is None:
        verdict, _ = watch([], guest=guest)
        assert (verdict.status, verdict.stage, verdict.reason) == ("fail", "kernel", "qemu-exited")
        return
    with pytest.raises(raised, match="mid-boot") as caught:
        watch([], guest=guest)
    assert (caught.value.exit_status, caught.value.stage) == (status, "kernel")
    assert str(caught.value).endswith(f"(exit status {status}): qemu: fake stderr")


def test_the_cancel_event_stops_the_loop_as_ctrl_c_would() -> None:
    cancel = threading.Event()

    class Cancelled(Guest):
        def send(self, text: str) -> None:
            super().send(text)
            cancel.set()  # the matrix runner's Ctrl-C, while the loop waits

    guest = Cancelled(["host login: ", QUIET_S + 0.2, "root\r\n# ", 5.0])
    with pytest.raises(KeyboardInterrupt):
        watch([], guest=guest, cancel=cancel)
    assert guest.texts() == ["root\r"] and guest.done == 1
