"""Devices that work, not only bound: after login the probe reads a known block of
the root disk, gets a DHCP lease from QEMU's user network and reads bytes from the
virtio rng; a device that is bound but dead fails the cell, naming it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import Harness, MadeRun

from harness.console import probe
from harness.console.probe import Findings, Seen, dead_device, parse, with_works
from harness.model import Image


@pytest.mark.parametrize("cell", ["debian-12-tiny/none/virt/mmio", "debian-12-tiny/aavmf/virt/pci"])
def test_the_tiny_guests_disk_nic_and_rng_work(
    cell: str, tiny_run: Callable[[str], MadeRun]
) -> None:
    proc = tiny_run(cell)  # booted once for the tests of several files that read it
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr
    guest = json.loads((proc.run / "result.json").read_text())["guest"]
    drivers = {d["kind"]: d["driver"] for d in guest["devices"]}
    assert drivers == {"block": "virtio_blk", "net": "virtio_net", "rng": "virtio_rng"}
    assert guest["checks"] == {"disk": "ok", "net": "ok", "rng": "ok"}
    assert "net eth0 10.0.2.15" in guest["works"]  # slirp's DHCP lease
    assert any(line.startswith("rng virtio_rng.") for line in guest["works"])
    # what the checks add to the cell, in the guest (a dozen processes, and about 1 s
    # more when udhcpc's first DISCOVER goes unanswered and it sends again): 0.4-1.5 s
    # measured here under TCG at load average 7-11 on 2 cores, up to 3.8 s at the worst
    # of that load (the probe before this one alike: 0.4-3.6 s)
    assert guest["works_s"] < 2.0
    # typed with the terminal's echo off (conversation.QUIET_PROOF): the probe's lines
    # are not echoed back, their output is there
    console = (proc.run / "console.log").read_text(errors="replace")
    assert "harness-works-4-end" in console and probe.WORKS[:40] not in console


def test_a_bound_rng_that_gives_no_bytes_fails_the_cell_naming_it(
    tiny: Image, harness: Harness, tmp_path: Path
) -> None:
    # one byte per ten minutes: the driver binds, /dev/hwrng gives nothing
    starve = ["-global", "virtio-rng-device.max-bytes=1", "-global",
              "virtio-rng-device.period=600000"]  # fmt: skip
    args = [arg for value in starve for arg in ("--qemu-arg", value)]
    proc = harness("run", "debian-12-tiny/none/virt/mmio", "--quiet", "--out", str(tmp_path), *args)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stdout.startswith("FAIL debian-12-tiny/none/virt/mmio login rng-no-bytes ")
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["guest"]["checks"]["rng"] == "rng-no-bytes"
    assert result["detail"].startswith("rng bound but not working")


def test_what_the_probe_cannot_check_is_unchecked_not_a_failure() -> None:
    # a full image: drivers bound, no udhcpc and no address, no timeout for the rng
    lines = ["root /dev/vda1 xfs", "virtio virtio0 id=0x0001 driver=virtio_net transport=virtio-pci",
             "virtio virtio1 id=0x0004 driver=virtio_rng transport=virtio-pci"]  # fmt: skip
    works = ["disk-read 1024 0000", "net enp1s0 unchecked", "rng virtio_rng.0 unchecked"]
    findings = with_works(parse(lines), works)
    assert findings.checks() == {"disk": "ok", "net": "unchecked", "rng": "unchecked"}
    assert dead_device(findings) == ("", "")
    # an older probe's output: nothing to judge
    assert Findings().checks() == {"disk": "unchecked", "net": "unchecked", "rng": "unchecked"}


def test_a_dead_nic_and_an_unreadable_disk_are_named() -> None:
    nic = Seen("virtio0", "net", "virtio_net", "mmio")
    no_lease = Findings(devices=(nic,), works=("net eth0 none",))
    assert dead_device(no_lease) == ("net-no-address", "net bound but not working: net eth0 none")
    disk = Findings(root="/dev/vda2", root_fs="ext4", works=("disk-read 1024 0000",))
    assert dead_device(disk)[0] == "disk-unreadable"
