"""QEMU builds beside the host's (images/qemu.yaml): trixie's QEMU 10.0 unpacked from
Debian's packages into the cache, run with its own loader, libraries and option ROMs,
and booting the tiny guest on a machine type the host's QEMU does not have."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, Harness

from harness.catalog import Workspace
from harness.errors import UsageError
from harness.model import Image
from harness.qemu_builds import QemuBuild, cached_build, load_qemu_builds


def _host_qemu() -> tuple[str, str]:
    """The host's qemu-system-arm package version and what its binary says."""
    package = subprocess.run(
        ["dpkg-query", "-W", "-f=${Version}", "qemu-system-arm"],
        capture_output=True, text=True, check=False,
    ).stdout  # fmt: skip
    binary = subprocess.run(
        ["qemu-system-aarch64", "--version"], capture_output=True, text=True, check=False
    ).stdout.splitlines()[0]
    return package, binary


@pytest.fixture(scope="module")
def trixie(workspace: Workspace) -> QemuBuild:
    """Made by the real CLI (once: later runs find it in the cache), with the host's
    QEMU checked before and after."""
    before = _host_qemu()
    proc = subprocess.run(
        [sys.executable, "-m", "harness.cli", "qemu", "build", "qemu-trixie"],
        capture_output=True, text=True, timeout=900, check=False, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert _host_qemu() == before  # nothing installed, nothing changed
    found = cached_build("qemu-trixie", workspace.cache)
    assert found is not None
    return found


def test_the_trixie_build_is_qemu_10_with_virt_10_and_its_own_roms(
    trixie: QemuBuild, harness: Harness
) -> None:
    assert trixie.qemu_version.startswith("10.0."), trixie
    assert trixie.version.startswith("1:10.0"), trixie
    assert any(p.startswith("ipxe-qemu=") for p in trixie.packages)
    assert any(p.startswith("libc6=") for p in trixie.packages)  # its own C library
    listing = harness("qemu", "list")
    assert listing.returncode == 0, listing.stderr
    assert f"qemu-trixie: QEMU {trixie.qemu_version} " in listing.stdout
    assert "virt = virt-10.0;" in listing.stdout and " virt-9.2 " in listing.stdout
    doctor = harness("doctor")
    assert f"qemu build   qemu-trixie: QEMU {trixie.qemu_version}" in doctor.stdout, doctor.stdout
    assert "virt = virt-10.0; " in doctor.stdout
    # Firmware and option ROMs come from the build's own tree first (-L).
    search = subprocess.run(
        [str(trixie.qemu), "-L", "help"], capture_output=True, text=True, check=True
    ).stdout.split()
    tree = trixie.qemu.parent.parent / "root" / "usr/share/qemu"
    assert Path(search[0]) == tree and (tree / "efi-virtio.rom").is_file(), search


def test_the_trixie_build_boots_the_tiny_guest_on_virt_10(
    trixie: QemuBuild, tiny: Image, harness: Harness, tmp_path: Path
) -> None:
    proc = harness(
        "run", "debian-12-tiny/none/virt-10.0/pci", "--qemu", str(trixie.qemu),
        "--quiet", "--out", str(tmp_path), timeout=400,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith("PASS debian-12-tiny/none/virt-10.0/pci login")
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["qemu"]["version"] == trixie.qemu_version
    assert result["qemu"]["argv"][0] == str(trixie.qemu)
    # The host's QEMU 7.2 has no virt-10.0: the same cell is refused there, in one line.
    host = harness("run", "debian-12-tiny/none/virt-10.0/pci", "--out", str(tmp_path / "h"))
    assert host.returncode == 2 and "machine 'virt-10.0' is not one of" in host.stderr


def test_qemu_yaml_errors_are_one_line(tmp_path: Path, harness: Harness) -> None:
    path = tmp_path / "qemu.yaml"
    path.write_text("host: {suite: trixie}\n")
    with pytest.raises(UsageError, match=r"qemu\.yaml: host: `host` is the host's own QEMU"):
        load_qemu_builds(path)
    path.write_text("qemu-x: [trixie]\n")
    with pytest.raises(UsageError, match=r"qemu\.yaml: cannot read QEMU builds"):
        load_qemu_builds(path)
    proc = harness("qemu", "build", "qemu-nope")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "harness qemu: unknown QEMU build qemu-nope; builds: qemu-trixie"
    ]


def test_a_second_build_asks_the_mirror_once_and_no_apt(
    trixie: QemuBuild, harness: Harness, tmp_path: Path
) -> None:
    """Made (or found) by the fixture, the build was resolved from the mirror's index
    as it still is: `qemu build` again takes it after one request for the InRelease,
    without apt (an apt that fails is never run). Where the index differs (another
    mirror here), apt resolves the packages again."""
    fake = tmp_path / "bin"
    fake.mkdir()
    for tool in ("apt-get", "apt-cache"):
        (fake / tool).write_text("#!/bin/sh\necho 'E: the fake apt was asked' >&2\nexit 100\n")
        (fake / tool).chmod(0o755)
    env = {"PATH": f"{fake}:{os.environ['PATH']}"}
    again = harness("qemu", "build", "qemu-trixie", env=env, timeout=120)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"qemu-trixie: QEMU {trixie.qemu_version} " in again.stdout
    assert str(trixie.qemu) in again.stdout
    mirror = tmp_path / "mirror"
    (mirror / "dists" / "trixie").mkdir(parents=True)
    (mirror / "dists" / "trixie" / "InRelease").write_text("another index\n")
    env["HARNESS_DEBIAN_MIRROR"] = f"file://{mirror}"
    other = harness("qemu", "build", "qemu-trixie", env=env, timeout=120)
    assert other.returncode == 2, other.stdout + other.stderr
    assert "the fake apt was asked" in other.stderr
