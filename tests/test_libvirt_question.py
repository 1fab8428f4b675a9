"""The answer for the tools that pick defaults: devices proven on their transport from
inside the guest, libvirt XML validated by libvirt itself, per-OS facts, bisect, and
the flaky-cell report."""

from __future__ import annotations

import json
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import Harness, MadeRun

from harness.catalog import Catalog
from harness.model import Image


def test_a_pass_carries_what_the_guest_saw(tiny: Image, harness: Harness, tmp_path: Path) -> None:
    proc = harness("run", "debian-12-tiny/aavmf/virt-2.6/pci", "--quiet", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stdout
    guest = json.loads((tmp_path / "result.json").read_text())["guest"]
    assert guest["transports"] == ["pci"]
    assert sorted(d["kind"] for d in guest["devices"]) == ["block", "net", "rng"]
    assert (
        guest["os"]["ID"] == "debian"
        and guest["kernel"].endswith("-arm64")
        and guest["root"].startswith("/dev/vd")
    )


def test_a_device_on_the_other_transport_is_caught(
    tiny: Image, harness: Harness, tmp_path: Path
) -> None:
    # A planted mismatch: one more rng, on PCI, in an mmio cell (as a default PCI NIC
    # QEMU added on its own would be).
    proc = harness("run", "debian-12-tiny/none/virt/mmio", "--quiet", "--out", str(tmp_path),
                   "--qemu-arg=-device", "--qemu-arg=virtio-rng-pci")  # fmt: skip
    assert proc.returncode == 1
    assert proc.stdout.startswith("FAIL debian-12-tiny/none/virt/mmio login transport-mismatch ")
    detail = json.loads((tmp_path / "result.json").read_text())["detail"]
    assert detail.startswith(
        "expected every virtio device on mmio, but the guest has rng virtio"
    ) and detail.endswith("on pci")


@pytest.mark.parametrize(
    "cell", ["debian-12-tiny/aavmf/virt-7.2/pci", "debian-12-tiny-mmio-only/none/virt-2.6/mmio"]
)
def test_exported_domain_xml_is_valid_for_libvirt(
    cell: str, tiny: Image, mmio_only: Image, harness: Harness, tmp_path: Path
) -> None:
    xml = tmp_path / "domain.xml"
    proc = harness("export", "libvirt", cell, "-o", str(xml))
    assert proc.returncode == 0, proc.stderr
    schema = subprocess.run(
        ["virt-xml-validate", str(xml), "domain"], capture_output=True, text=True
    )
    assert schema.returncode == 0, schema.stdout + schema.stderr
    define = subprocess.run(
        ["virsh", "-c", "test:///default", "define", "--validate", str(xml)],
        capture_output=True,
        text=True,
    )
    assert define.returncode == 0 and "defined from" in define.stdout, define.stderr
    domain = ET.parse(xml).getroot()
    _, firmware, machine, transport = cell.split("/")
    assert domain.find("os/type").get("machine") == machine  # type: ignore[union-attr]
    addresses = [a.get("type") for a in domain.iter("address")]
    assert addresses == (["virtio-mmio"] * 3 if transport == "mmio" else ["pci"] * 3)
    if firmware == "aavmf":
        assert domain.find("os/loader").text == "/usr/share/AAVMF/AAVMF_CODE.fd"  # type: ignore[union-attr]
        assert domain.find("os/nvram").get("template") == "/usr/share/AAVMF/AAVMF_VARS.fd"  # type: ignore[union-attr]
    else:
        assert domain.find("os/kernel") is not None and domain.find("os/loader") is None


def test_a_runs_facts_answer_whether_pci_is_a_safe_default(
    mmio_only: Image, harness: Harness, tmp_path: Path
) -> None:
    run = harness(
        "matrix",
        "--profile",
        "smoke",
        "-k",
        "mmio-only or (debian-12-tiny/none/virt/pci and not pcie-port)",
        "--results",
        str(tmp_path),
    )
    assert run.returncode == 0, run.stdout
    path = (tmp_path / "latest").resolve()
    proc = harness("export", "facts", str(path))
    assert proc.returncode == 0, proc.stderr
    assert "| Debian GNU/Linux 12 (bookworm) (debian-12-tiny) | 6.1.0-" in proc.stdout
    assert "| Debian GNU/Linux 12 (bookworm) (debian-12-tiny-mmio-only) | " in proc.stdout
    document = json.loads((path / "facts.json").read_text())
    oses = {os["os"]["image"]: os for os in document["oses"]}
    assert oses["debian-12-tiny"]["virtio_pci_default_safe"]["virt"]["safe"] is True
    unsafe = oses["debian-12-tiny-mmio-only"]["virtio_pci_default_safe"]["virt"]
    assert unsafe == {"safe": False, "failures": ["none: initramfs root-not-found"]}
    assert "none/virt/mmio" in oses["debian-12-tiny-mmio-only"]["reached_login"]
    exported = harness("export", "libvirt", "--run", str(path))
    assert exported.returncode == 0 and len(list((path / "libvirt").glob("*.xml"))) == 2


def test_bisect_finds_the_first_machine_type_that_breaks_a_guest(
    catalog: Catalog, harness: Harness, tmp_path: Path
) -> None:
    # fault-pptt-panic dies when the machine type gives it an ACPI PPTT table, which
    # QEMU's virt machine does from virt-6.2 on.
    catalog.image("fault-pptt-panic")
    proc = harness(
        "bisect", "fault-pptt-panic/aavmf/pci", "--machines", "virt-6.0..virt-7.2",
        "--results", str(tmp_path), timeout=900,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    last = proc.stdout.strip().splitlines()[-1]
    assert last.startswith(
        "first machine type that changes it: virt-6.2 (fail userspace kernel-panic); last as before: virt-6.1 (pass)"
    )
    boots = [line for line in proc.stdout.splitlines() if line.startswith("  ")]
    # 2 ends + log2(6 machine types): 6.0 passes, 7.2 fails, then 6.2 and 6.1 (each
    # boot through AAVMF; a wider range would only add halvings of the same kind)
    assert len(boots) <= 4


def test_repeats_that_disagree_are_unstable_with_their_logs_side_by_side(
    coin_flip_run: MadeRun,
) -> None:
    # fault-coin-flip panics on one boot in two, booted ten times (the run
    # test_newcomer_report.py reads too).
    assert coin_flip_run.returncode == 1, coin_flip_run.stderr  # unstable: no met expectation
    run = coin_flip_run.run
    (cell,) = json.loads((run / "results.json").read_text())["cells"]
    assert (
        cell["outcome"] == "unstable"
        and set(cell["repeats"]) == {"pass", "fail"}
        and len(cell["repeats"]) == 10
    )
    # The cell stands for a repeat that failed: its reason and its console log.
    assert cell["reason"] == "kernel-panic"
    assert "heads, this boot dies" in (run / cell["log"]).read_text(errors="replace")
    page = (run / "flaky.html").read_text()
    assert (
        page.count("<pre>") == 2
        and "heads, this boot dies" in page
        and "tails, this boot lives" in page
    )


def test_bisect_over_firmware_builds_reports_no_change_when_none_breaks(
    tiny: Image, harness: Harness, tmp_path: Path
) -> None:
    proc = harness(
        "bisect",
        "debian-12-tiny/virt/pci",
        "--firmware",
        "aavmf-bullseye,aavmf-trixie",
        "--results",
        str(tmp_path),
        timeout=600,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == (
        "no change: debian-12-tiny/aavmf-bullseye/virt/pci and debian-12-tiny/aavmf-trixie/virt/pci both end pass"
    )
    bad = harness("bisect", "debian-12-tiny/pci", "--machines", "all", "--results", str(tmp_path))
    assert bad.returncode == 2 and "bad bisect spec" in bad.stderr
