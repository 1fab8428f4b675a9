"""`harness run` on real guests under QEMU, as a user runs it."""

from __future__ import annotations

import json
import re
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pexpect
import pytest
from conftest import ROOT, Harness, MadeRun

from harness.catalog import Catalog
from harness.model import Image

SUMMARY = re.compile(r"^(PASS|FAIL|ERROR) (\S+) (\w+)(?: (\S+))? (\d+\.\d)s$")


def summary(stdout: str) -> tuple[str, ...]:
    """The verdict line: the last line, or the one before "results in ..."."""
    lines = [line for line in stdout.strip().splitlines() if not line.startswith("results in ")]
    match = SUMMARY.match(lines[-1])
    assert match, f"not a verdict line: {lines[-1]!r}"
    return match.groups()


@pytest.mark.parametrize(
    "cell",
    [
        "debian-12-tiny/none/virt/mmio",
        "debian-12-tiny/none/virt-2.6/pci",
        "debian-12-tiny/aavmf/virt-2.6/mmio",
        "debian-12-tiny/aavmf/virt/pci",
    ],
)
def test_tiny_guest_reaches_login(
    cell: str, tiny: Image, tiny_run: Callable[[str], MadeRun]
) -> None:
    # `harness run CELL --out DIR`, booted once for this test, test_acpi.py and
    # test_devices_work.py (they read the same cells' runs).
    proc = tiny_run(cell)
    out = proc.run
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr
    status, shown_cell, stage, _, _ = summary(proc.stdout)
    assert (status, shown_cell, stage) == ("PASS", cell, "login")
    assert proc.stdout.startswith(
        "/usr/bin/qemu-system-aarch64 -name "
    )  # the command line comes first
    assert "debian-12-tiny login: " in proc.stdout  # the console is shown live
    result = json.loads((out / "result.json").read_text())
    assert result["schema_version"] == 1
    assert (result["status"], result["stage"], result["machine"], result["transport"]) == (
        "pass",
        "login",
        cell.split("/")[2],
        cell.split("/")[3],
    )
    assert result["stage_times"]["login"] > result["stage_times"]["kernel"] > 0
    assert result["image_digest"] == tiny.digest
    assert result["qemu"]["argv"][0] == "/usr/bin/qemu-system-aarch64"
    assert "harness-shell-42-ok" in (out / "console.log").read_text()
    assert not (out / "work").exists()  # overlay and VARS removed
    if "/aavmf/" in cell:
        assert result["firmware_digest"].startswith("sha256:")
        assert result["stage_times"]["firmware"] < result["stage_times"]["bootloader"]


def test_mmio_only_guest_fails_on_pci_at_its_root_disk(
    mmio_only: Image, harness: Harness, tmp_path: Path
) -> None:
    proc = harness("run", "debian-12-tiny-mmio-only/none/virt/pci", "--out", str(tmp_path))
    assert proc.returncode == 1, proc.stderr
    assert summary(proc.stdout)[:4] == (
        "FAIL",
        "debian-12-tiny-mmio-only/none/virt/pci",
        "initramfs",
        "root-not-found",
    )
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["detail"].startswith("Gave up waiting for root file system device")
    log = (tmp_path / "console.log").read_text().splitlines()
    assert log[result["deciding_line"] - 1].startswith("Gave up waiting")


def test_mmio_only_guest_passes_on_mmio(mmio_only: Image, harness: Harness, tmp_path: Path) -> None:
    proc = harness(
        "run", "debian-12-tiny-mmio-only/aavmf/virt/mmio", "--quiet", "--out", str(tmp_path)
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith("PASS debian-12-tiny-mmio-only/aavmf/virt/mmio login ")


def test_bad_cell_is_one_line_and_exit_2(harness: Harness) -> None:
    proc = harness("run", "debian-12-tiny/aavmf/virt-9.9/usb")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "machine 'virt-9.9' is not one of" in lines[0] and "virt-2.6" in lines[0]
    assert "transport 'usb' is not one of: mmio, pci" in lines[0]


def test_timeout_names_the_stage_reached(tiny: Image, harness: Harness, tmp_path: Path) -> None:
    proc = harness(
        "run", "debian-12-tiny/aavmf/virt/pci", "--timeout", "4", "--quiet", "--out", str(tmp_path)
    )
    assert proc.returncode == 1
    status, _, stage, reason, seconds = summary(proc.stdout)
    assert (status, reason) == ("FAIL", "timeout")
    assert 4.0 <= float(seconds) < 6
    # the furthest stage the console showed (how far AAVMF got in 4 s varies with load)
    reached = json.loads((tmp_path / "result.json").read_text())["stage_times"]
    assert stage == list(reached)[-1] and stage in ("firmware", "bootloader", "kernel", "initramfs")


def test_the_timeout_bounds_the_boot_to_its_prompt_not_the_proof(
    catalog: Catalog, harness: Harness, tmp_path: Path
) -> None:
    """quirk-slow-login shows its prompt early and proves its shell 20 s later: with a
    --timeout just above the time to the prompt, the cell passes and says which timeout
    was in force; re-judging its log agrees. The time to the prompt is measured (a busy
    host varies it); a boot that came so fast that its proof beat the timeout anyway
    proves nothing and is measured again."""
    catalog.image("quirk-slow-login")
    cell = "quirk-slow-login/none/virt/pci"
    measured = tmp_path / "measured"
    first = harness("run", cell, "--quiet", "--out", str(measured))
    assert first.returncode == 0, first.stdout + first.stderr
    for attempt in range(3):
        result = json.loads((measured / "result.json").read_text())
        assert result["duration_s"] - result["stage_times"]["login"] > 19  # the slow shell
        timeout = round(result["stage_times"]["login"] + 10, 1)
        out = tmp_path / f"cell{attempt}"
        proc = harness("run", cell, "--quiet", "--out", str(out), "--timeout", str(timeout))
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert summary(proc.stdout)[:3] == ("PASS", cell, "login")
        result = json.loads((out / "result.json").read_text())
        assert result["timeout_s"] == timeout
        if result["duration_s"] > timeout:
            break
        measured = out
    assert result["stage_times"]["login"] < timeout < result["duration_s"]  # proof after it
    rejudged = harness("classify", str(out / "console.log"))
    assert rejudged.returncode == 0 and rejudged.stdout.split()[:2] == ["PASS", "login"]


def test_classify_rejudges_a_run_directory_of_harness_run(
    tiny: Image, tiny_run: Callable[[str], MadeRun], harness: Harness
) -> None:
    # results/single/<run> (or --out) holds one cell: result.json and its console.log
    cell = "debian-12-tiny/none/virt/mmio"
    out = tiny_run(cell).run
    proc = harness("classify", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines() == [
        f"same    {cell}: pass login login -> pass login login",
        f"0 of 1 verdict would change in {out}",
    ]
    (line,) = harness("classify", "--json", str(out)).stdout.splitlines()
    judged = json.loads(line)
    assert (judged["file"], judged["cell"], judged["changed"]) == (
        str(out / "console.log"),
        cell,
        False,
    )
    assert (judged["status"], judged["proof"]) == ("pass", "shell")


def test_a_comma_in_a_firmware_path_reaches_qemu_escaped(
    tiny: Image, harness: Harness, tmp_path: Path
) -> None:
    """QEMU's -name holds the cell id, firmware path and all: a comma there is doubled
    as in every other option value, or QEMU refuses to start."""
    firmware = tmp_path / "fw,1"
    firmware.mkdir()
    shutil.copy("/usr/share/AAVMF/AAVMF_CODE.fd", firmware / "CODE.fd")
    shutil.copy("/usr/share/AAVMF/AAVMF_VARS.fd", firmware / "VARS.fd")
    cell = f"debian-12-tiny/{firmware}/CODE.fd/virt/pci"
    proc = harness("run", cell, "--quiet", "--timeout", "6", "--out", str(tmp_path / "out"))
    assert proc.returncode == 1, proc.stdout + proc.stderr  # QEMU ran the firmware: no error
    assert summary(proc.stdout)[3] == "timeout"
    assert b"UEFI firmware" in (tmp_path / "out" / "console.log").read_bytes()


@pytest.mark.parametrize("transport", ["libvirt-pci", "virt-install", "virt-install-mmio"])
def test_qemu_args_are_refused_for_every_cell_libvirt_starts(
    transport: str, harness: Harness, tmp_path: Path
) -> None:
    # virt-install cells took them and booted without them, as if they had been applied
    cell = f"debian-12-tiny/none/virt/{transport}"
    proc = harness("run", cell, "--qemu-arg", "-no-reboot", "--out", str(tmp_path / "out"))
    assert proc.returncode == 2 and not (tmp_path / "out").exists()
    assert proc.stderr == (
        f"harness run: --qemu-arg: {cell} is booted by libvirt, whose QEMU command line "
        "the harness does not write; use a direct transport\n"
    )


def test_qemu_that_fails_to_start_is_an_error_with_its_message(
    tiny: Image, harness: Harness, tmp_path: Path
) -> None:
    fake = tmp_path / "qemu-system-aarch64"
    fake.write_text(
        '#!/bin/sh\ncase "$1" in --version|-machine|-device|-cpu|-L) exec qemu-system-aarch64 "$@";; esac\n'
        "echo 'qemu-system-aarch64: -drive if=pflash: Could not open firmware' >&2\nexit 1\n"
    )
    fake.chmod(0o755)
    proc = harness(
        "run",
        "debian-12-tiny/aavmf/virt/pci",
        "--qemu",
        str(fake),
        "--quiet",
        "--out",
        str(tmp_path / "out"),
    )
    assert proc.returncode == 2
    assert (
        proc.stderr.strip()
        == "harness run: QEMU exited at start (exit status 1): qemu-system-aarch64: -drive if=pflash: Could not open firmware"
    )
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    assert (result["status"], result["reason"]) == ("error", "qemu-failed")


def test_cmdline_sh_boots_the_cell_by_hand(tiny: Image, harness: Harness, tmp_path: Path) -> None:
    proc = harness("run", "debian-12-tiny/none/virt/pci", "--quiet", "--out", str(tmp_path))
    assert proc.returncode == 0
    script = tmp_path / "cmdline.sh"
    by_hand = pexpect.spawn(str(script), timeout=60)
    try:
        by_hand.expect("debian-12-tiny login: ")
    finally:
        by_hand.close(force=True)
    assert (tmp_path / "work" / "disk.qcow2").is_file()  # its own overlay, not the base


def test_adhoc_files_boot_without_the_catalog(
    tiny: Image, harness: Harness, tmp_path: Path
) -> None:
    assert tiny.kernel and tiny.initrd and tiny.disk
    proc = harness(
        "run", "--kernel", str(tiny.kernel), "--initrd", str(tiny.initrd), "--disk", str(tiny.disk),
        "--append", tiny.append, "--machine", "virt-4.2", "--transport", "mmio", "--login", "root",
        "--quiet", "--out", str(tmp_path),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith("PASS custom/none/virt-4.2/mmio login ")


def test_the_debian_installer_is_up_at_its_first_screen(
    catalog: object, harness: Harness, tmp_path: Path
) -> None:
    catalog.image("debian-12-installer")  # type: ignore[attr-defined]
    proc = harness("run", "debian-12-installer/none/virt/mmio", "--quiet", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads((tmp_path / "result.json").read_text())
    assert (result["status"], result["stage"]) == ("pass", "login")
    assert re.search("Select a language|Choose language|Language selection", result["detail"])


def test_interactive_hands_the_console_over_after_the_verdict(tiny: Image, tmp_path: Path) -> None:
    child = pexpect.spawn(
        sys.executable, ["-m", "harness.cli", "run", "debian-12-tiny/none/virt/pci", "--interactive", "--out", str(tmp_path)],
        cwd=str(ROOT), timeout=90, encoding="utf-8", codec_errors="replace",
    )  # fmt: skip
    try:
        child.expect_exact("[harness: the console is yours; Ctrl-] returns, Ctrl-A X quits QEMU]")
        child.sendline("echo typed-by-$((2*2))-hands")
        # echoed: the device checks turned the echo the proof had turned off on again
        child.expect_exact("echo typed-by-$((2*2))-hands")
        child.expect_exact("typed-by-4-hands")
        # the tiny guest's rcS took a lease at boot (the probe's udhcpc configures nothing)
        child.sendline("ip -o -f inet addr show eth0")
        child.expect_exact("inet 10.0.2.15/24")
        child.send("\x1d")  # Ctrl-]
        child.expect(r"PASS debian-12-tiny/none/virt/pci login \d+\.\ds")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0
