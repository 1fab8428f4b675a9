"""A newcomer's first commands, through the real CLI: each wrong turn ends in one
clear line, and each option does what its help says."""

from __future__ import annotations

import json
import time
from pathlib import Path

from conftest import Harness

from harness.catalog import Catalog
from harness.host import Host
from harness.model import Image

ARM32_QEMU = "/usr/bin/qemu-system-arm"


def test_a_qemu_that_cannot_run_aarch64_guests_is_one_line_and_doctor_shows_it(
    harness: Harness, tmp_path: Path
) -> None:
    started = time.monotonic()
    proc = harness(
        "run", "debian-12-tiny/none/virt/mmio", "--qemu", ARM32_QEMU, "--timeout", "20",
        "--out", str(tmp_path / "out"),
    )  # fmt: skip
    assert proc.returncode == 2, proc.stdout[-1000:] + proc.stderr
    assert proc.stderr.splitlines() == [
        f"harness run: QEMU {ARM32_QEMU} cannot run aarch64 guests: no AArch64 CPU in -cpu help"
        " (such as cortex-a57); use qemu-system-aarch64 (--qemu or $HARNESS_QEMU)"
    ]
    assert time.monotonic() - started < 10  # no timeout waited out
    assert not (tmp_path / "out").exists()
    doctor = harness("doctor", "--qemu", ARM32_QEMU)
    assert doctor.returncode == 2
    first = doctor.stdout.splitlines()[0]
    assert first.startswith("MISS qemu") and "cannot run aarch64 guests" in first
    assert "fix: point --qemu or $HARNESS_QEMU at qemu-system-aarch64" in doctor.stdout
    assert harness("doctor").stdout.startswith("ok   qemu         /usr/bin/qemu-system-aarch64")


def test_qemu_arg_values_may_start_with_a_dash_as_the_help_shows(
    tiny: Image, harness: Harness, tmp_path: Path
) -> None:
    """The extra virtio-rng-pci reaches QEMU and the guest, which then has a device
    on PCI in an mmio cell: the probe says transport-mismatch."""
    assert "--qemu-arg -device --qemu-arg virtio-rng-pci" in " ".join(
        harness("run", "--help").stdout.split()
    )
    proc = harness(
        "run", "debian-12-tiny/none/virt/mmio", "--qemu-arg", "-device", "--qemu-arg",
        "virtio-rng-pci", "--quiet", "--out", str(tmp_path),
    )  # fmt: skip
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stdout.startswith("FAIL debian-12-tiny/none/virt/mmio login transport-mismatch ")
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["qemu"]["argv"][-2:] == ["-device", "virtio-rng-pci"]


def test_k_matches_virt_as_the_versioned_type_it_is(host: Host, harness: Harness) -> None:
    assert host.virt_alias.startswith("virt-")
    proc = harness("list", "--profile", "nightly", "-k", f"tiny/aavmf and {host.virt_alias}")
    assert proc.returncode == 0, proc.stderr
    cells = [line.split()[0] for line in proc.stdout.splitlines() if "/" in line.split()[0]]
    assert f"debian-12-tiny/aavmf/{host.virt_alias}/pci" in cells
    assert "debian-12-tiny/aavmf/virt/pci" in cells
    assert not [c for c in cells if c.split("/")[2] not in ("virt", host.virt_alias)]
    excluded = harness(
        "list", "--profile", "nightly", "-k", f"tiny/aavmf and not {host.virt_alias}"
    )
    assert "debian-12-tiny/aavmf/virt/pci" not in excluded.stdout
    help_text = " ".join(harness("list", "--help").stdout.split())
    assert "virt-X.Y also matches virt" in help_text


def test_export_libvirt_refuses_a_cell_with_run_and_never_builds(
    catalog: Catalog, harness: Harness, tmp_path: Path
) -> None:
    both = harness("export", "libvirt", "debian-12-tiny/aavmf/virt/pci", "--run", str(tmp_path))
    assert both.returncode == 2
    assert both.stderr.splitlines() == [
        f"harness export: give a CELL or --run RUN, not both (debian-12-tiny/aavmf/virt/pci and "
        f"--run {tmp_path}): --run exports every passing cell of the run"
    ]
    unbuilt = next(
        n for n in ("debian-12-full", "debian-12-full-mmio-only") if catalog.not_ready(n)
    )
    before = sorted((catalog.workspace.cache / "built").glob("*/*"))
    started = time.monotonic()
    proc = harness("export", "libvirt", f"{unbuilt}/aavmf/virt/pci", timeout=60)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.splitlines() == [
        f"harness export: image {unbuilt} is not built: harness images build {unbuilt}"
    ]
    assert time.monotonic() - started < 10
    assert sorted((catalog.workspace.cache / "built").glob("*/*")) == before


def test_export_libvirt_of_a_run_without_a_passing_cell_says_so(
    tiny: Image, harness: Harness, tmp_path: Path
) -> None:
    """A run whose only cell timed out (2 s) has nothing to export: the command says
    that, not '0 domain XML files in DIR' about a directory it never made."""
    results = tmp_path / "results"
    proc = harness(
        "matrix", "--profile", "smoke", "-k", "debian-12-tiny/none/virt/mmio", "--timeout", "2",
        "-j", "1", "--results", str(results),
    )  # fmt: skip
    assert proc.returncode == 1, proc.stdout + proc.stderr
    run = (results / "latest").resolve()
    out = tmp_path / "xml"
    export = harness("export", "libvirt", "--run", str(run), "--out", str(out))
    assert export.returncode == 0, export.stderr
    assert export.stdout.splitlines() == [f"no passing cell in {run}: no domain XML written"]
    assert not out.exists()
