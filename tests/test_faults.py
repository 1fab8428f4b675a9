"""The crafted guests (images/faults.yaml) on real consoles: live, each must end the
way it was made to; saved, `harness classify` must judge its recorded log the same."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import FIXTURES, ROOT, Harness

from harness.catalog import Catalog

# Recorded log -> (status, stage, reason, deciding text) as `harness classify` judges it.
SAVED = {
    "fault-init-exits.log": (
        "fail",
        "initramfs",
        "kernel-panic",
        "Begin: Running /scripts/init-premount ... ",
    ),
    "fault-kernel-oops.log": (
        "fail",
        "initramfs",
        "kernel-oops",
        "Unable to handle kernel NULL pointer dereference",
    ),
    # dracut's "Could not boot." is followed by which device never showed up.
    "fault-dracut-emergency.log": (
        "fail",
        "initramfs",
        "root-not-found",
        "Warning: /dev/disk/by-uuid/4e2c7d1a-0b9e-4a57-9c1e-3f5b2d7e8a10 does not exist",
    ),
    # dracut's initqueue lists the root's devexists hook again a second later: decided.
    "fault-dracut-devexists.log": (
        "fail",
        "initramfs",
        "root-not-found",
        "/dev/disk/by-partuuid/0a1b2c3d-02 never appeared",
    ),
    "fault-no-initramfs.log": (
        "fail",
        "kernel",
        "root-not-found",
        "No filesystem could mount root",
    ),
    "fault-systemd-emergency.log": (
        "fail",
        "userspace",
        "emergency-shell",
        "You are in emergency mode.",
    ),
    # Silent under `quiet`: the probe finds the shell's / to be the initramfs.
    "fault-quiet-rescue.log": ("fail", "initramfs", "emergency-shell", "never mounted"),
    "fault-userspace-hang.log": (
        "incomplete",
        "userspace",
        "log-ended",
        "Welcome to Debian GNU/Linux 12 (bookworm)!",
    ),
    "fault-panic-at-login.log": (
        "fail",
        "login",
        "kernel-panic",
        "Kernel panic - not syncing: sysrq triggered crash",
    ),
    "fault-reboot.log": ("incomplete", "userspace", "log-ended", "reboot: Restarting system"),
    "fault-grub-no-kernel.log": (
        "fail",
        "bootloader",
        "bootloader-no-boot",
        "error: you need to load the kernel first.",
    ),
    "fault-grub-prompt.log": ("fail", "bootloader", "bootloader-prompt", "grub>"),
    "fault-grub-rescue.log": ("fail", "bootloader", "bootloader-prompt", "grub rescue>"),
    "fault-efi-exception.log": (
        "fail",
        "bootloader",
        "firmware-crash",
        "Synchronous Exception at 0x",
    ),
    "fault-no-esp.log": ("fail", "firmware", "firmware-no-boot", ">>Start PXE over IPv4."),
    "fault-silent-kernel.log": (
        "incomplete",
        "kernel",
        "log-ended",
        "EFI stub: Exiting boot services...",
    ),
    "quirk-autologin.log": ("pass", "login", "login", "harness-shell-42-ok"),
    "quirk-console.log": ("pass", "login", "login", "harness-shell-42-ok"),
    # Reboots on its first boot, then logs in: one restart is no reset-loop.
    "quirk-reboot-once.log": ("pass", "login", "login", "harness-shell-42-ok"),
    "reset-loop.log": ("fail", "userspace", "reset-loop", "Booting Linux on physical CPU"),
    # The same two guests booted with QEMU's resets marked in the log: counted from the
    # marks, as live (the loop at QEMU's 4th reset, whose boot printed nothing).
    "quirk-reboot-once-marked.log": ("pass", "login", "login", "harness-shell-42-ok"),
    "fault-reboot-marked.log": ("fail", "userspace", "reset-loop", "QEMU reported reset 4"),
    "uefi-shell.log": ("fail", "firmware", "firmware-no-boot", "UEFI Interactive Shell v2.2"),
    "mmio-only-on-pci-root-not-found.log": (
        "fail",
        "initramfs",
        "root-not-found",
        "Gave up waiting for root file system device.",
    ),
    "tiny-aavmf-pci-pass.log": ("pass", "login", "login", "harness-shell-42-ok"),
    # A real Debian 12 system (debian-12-full: systemd, udev, initramfs-tools).
    "debian-12-full-aavmf-pci-pass.log": ("pass", "login", "login", "harness-shell-42-ok"),
    # Its initramfs made without virtio_pci, on PCI: Debian's own initramfs-tools gives up.
    "debian-12-full-mmio-only-on-pci.log": (
        "fail",
        "initramfs",
        "root-not-found",
        "Gave up waiting for root file system device.",
    ),
    "tiny-direct-mmio-pass.log": ("pass", "login", "login", "harness-shell-42-ok"),
    # U-Boot as the firmware: Debian's 2023.01 (distro_bootcmd) and 2025.01 (bootstd).
    "uboot-tiny-pci-pass.log": ("pass", "login", "login", "harness-shell-42-ok"),
    "uboot-trixie-tiny-mmio-pass.log": ("pass", "login", "login", "harness-shell-42-ok"),
    # Nothing on the ESP: both turn to the network; without a NIC, U-Boot's `=>` prompt.
    "fault-no-esp-uboot.log": ("fail", "firmware", "firmware-no-boot", "BOOTP broadcast 1"),
    "fault-no-esp-uboot-trixie.log": ("fail", "firmware", "firmware-no-boot", "BOOTP broadcast 1"),
    "uboot-prompt.log": ("fail", "bootloader", "bootloader-prompt", "=>"),
}


def test_every_recorded_console_is_judged_right_by_classify(harness: Harness) -> None:
    logs = sorted((FIXTURES / "consoles").glob("*.log"))
    assert {log.name for log in logs} == set(SAVED)
    proc = harness("classify", "--json", *map(str, logs))
    assert proc.returncode == 1  # some logs do not pass
    for line in proc.stdout.splitlines():
        got = json.loads(line)
        status, stage, reason, text = SAVED[Path(got["file"]).name]
        assert (got["status"], got["stage"], got["reason"]) == (status, stage, reason), got["file"]
        assert text in got["text"], got
        assert isinstance(got["line"], int)


def test_classify_plain_output_and_exit_status(harness: Harness) -> None:
    passing = FIXTURES / "consoles" / "tiny-direct-mmio-pass.log"
    proc = harness("classify", str(passing))
    assert proc.returncode == 0
    assert proc.stdout.split()[:4] == ["PASS", "login", "login", str(passing)]
    assert harness("classify", "/nonexistent.log").returncode == 2


@pytest.fixture(scope="module")
def faults_run(
    catalog: Catalog, tmp_path_factory: pytest.TempPathFactory
) -> tuple[subprocess.CompletedProcess[str], Path]:
    """The faults profile booted once (every crafted guest, -j 2), for the tests below."""
    for name in catalog.names():
        if name.startswith(("fault-", "quirk-")):
            catalog.image(name)
    results = tmp_path_factory.mktemp("faults")
    proc = subprocess.run(
        [sys.executable, "-m", "harness.cli", "matrix", "--profile", "faults", "-j", "2",
         "--results", str(results)],
        capture_output=True, text=True, cwd=ROOT, timeout=600, check=False,
    )  # fmt: skip
    return proc, (results / "latest").resolve()


def test_every_crafted_guest_ends_as_made_live_and_classify_agrees(
    faults_run: tuple[subprocess.CompletedProcess[str], Path], harness: Harness
) -> None:
    proc, run = faults_run
    assert proc.returncode == 0, proc.stdout + proc.stderr  # every cell met its expectation
    cells = {c["cell"]: c for c in json.loads((run / "results.json").read_text())["cells"]}
    assert len(cells) == 22  # fault-no-esp under both U-Boots too
    for cell, record in cells.items():
        expected = "pass" if cell.startswith("quirk-") else "xfail"
        assert record["outcome"] == expected, (
            cell,
            record["stage"],
            record["reason"],
            record["detail"],
        )
    # The initqueue timeout is only a hint: the missing device decides, seconds later.
    assert "does not exist" in cells["fault-dracut-emergency/none/virt/pci"]["detail"]
    # A panic after the login prompt is not a pass, and a banner saying login: is no prompt.
    assert cells["fault-panic-at-login/none/virt/pci"]["stage"] == "login"
    rejudged = harness("classify", str(run))
    assert rejudged.returncode == 0, rejudged.stdout
    assert rejudged.stdout.strip().splitlines()[-1].startswith("0 of ")
    assert rejudged.stdout.strip().endswith(f" verdicts would change in {run}")


def test_a_guest_that_reboots_once_passes_and_one_that_always_reboots_is_a_reset_loop(
    faults_run: tuple[subprocess.CompletedProcess[str], Path], harness: Harness, tmp_path: Path
) -> None:
    """Resets are QEMU's own events (QMP RESET), counted into result.json and the
    reports; a reboot on the way to login is no failure, and powering off is no reset.
    The three guests' cells of the faults run (booted once for this file)."""
    _, run = faults_run
    cells = {c["cell"]: c for c in json.loads((run / "results.json").read_text())["cells"]}
    once = cells["quirk-reboot-once/none/virt/pci"]
    assert (once["outcome"], once["stage"], once["resets"]) == ("pass", "login", 1), once
    log = (run / once["log"]).read_text(errors="replace")
    assert "first boot, rebooting once" in log and "rebooted once already" in log
    loop = cells["fault-reboot/none/virt/pci"]
    assert (loop["outcome"], loop["stage"], loop["reason"]) == ("xfail", "userspace", "reset-loop")
    assert loop["resets"] == 3 + 1  # the same stage again with no progress, more than twice
    off = cells["fault-poweroff/none/virt/pci"]
    assert (off["outcome"], off["reason"], off["resets"]) == ("xfail", "qemu-exited", 0), off
    assert "1 reset<" in (run / "report.html").read_text()
    assert "(1 reset)" in (run / "report.md").read_text()
    # in force: matrix.yaml's 180 s, and 30 s for the two guests that hang
    assert "timeout to the prompt: 30 s, 180 s" in (run / "report.md").read_text()
    rejudged = harness("classify", str(run))  # the saved logs tell the same resets
    assert rejudged.stdout.strip().splitlines()[-1].startswith("0 of ")
    assert rejudged.stdout.strip().endswith(f" verdicts would change in {run}"), rejudged.stdout
    # Each reset QEMU reported is marked where it happened, the loop's last one too.
    mark = b"[harness: QEMU reported guest reset "
    assert (run / loop["log"]).read_bytes().count(mark) == 4
    # The guest that reboots once, made to reboot three times on its way: a pass live
    # (MAX_STUCK_RESETS) and, from its marks, re-judged.
    first, _, rest = (run / once["log"]).read_bytes().partition(mark + b"1]\n")
    thrice = tmp_path / "thrice.log"
    thrice.write_bytes(b"".join(first + mark + b"%d]\n" % n for n in (1, 2, 3)) + rest)
    assert harness("classify", str(thrice)).stdout.startswith("PASS"), thrice
