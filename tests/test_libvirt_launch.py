"""Cells booted through a real libvirtd (transient domains, the console through
libvirt's API, the same watcher), the libvirt daemon set-up, and the direct launcher's
pcie-root-port topology."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import ROOT, Harness

from harness.console.probe import Findings, Seen, mismatch
from harness.libvirt_boot import sweep_domain_logs
from harness.libvirt_host import binding
from harness.model import Image

VIRSH = ["virsh", "-c", "qemu:///system"]
LOGS = Path("/var/log/libvirt/qemu")


@pytest.fixture(scope="module")
def libvirtd() -> str:
    """The daemon, started as `make setup` starts it; its version."""
    proc = subprocess.run(
        [sys.executable, "-m", "harness.libvirt_host"], capture_output=True, text=True, cwd=ROOT
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split()[1]


def domains() -> list[str]:
    """Every domain libvirtd has, running or defined."""
    proc = subprocess.run([*VIRSH, "list", "--all", "--name"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split()


def processes_naming(word: str) -> list[str]:
    proc = subprocess.run(["pgrep", "-f", word], capture_output=True, text=True)
    return proc.stdout.split()


def test_a_relative_out_names_every_file_to_libvirtd_from_the_root(
    libvirtd: str, tiny: Image, harness: Harness, tmp_path: Path
) -> None:
    """libvirtd opens the files in its own directory: `--out cell` relative to the
    user's must still boot (the overlay and the VARS copy named from /)."""
    cell = "debian-12-tiny/aavmf/virt/libvirt-pci"
    proc = harness("run", cell, "--quiet", "--out", "cell", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    domain = ET.parse(tmp_path / "cell" / "domain.xml").getroot()
    disk = domain.find("devices/disk/source").get("file")  # type: ignore[union-attr]
    assert disk == str(tmp_path / "cell" / "work" / "disk.qcow2")


@pytest.mark.parametrize(
    "cell",
    [
        "debian-12-tiny/none/virt/libvirt-mmio",
        "debian-12-tiny/none/virt/libvirt-pci",
        "debian-12-tiny/aavmf/virt/libvirt-mmio",
        "debian-12-tiny/aavmf/virt/libvirt-pci",
    ],
)
def test_a_libvirt_cell_boots_through_libvirtd_and_leaves_nothing(
    cell: str, libvirtd: str, tiny: Image, harness: Harness, tmp_path: Path
) -> None:
    proc = harness("run", cell, "--quiet", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith(f"PASS {cell} login ")
    result = json.loads((tmp_path / "result.json").read_text())
    qemu = result["qemu"]
    assert qemu["launcher"] == "libvirt" and qemu["libvirt_version"] == libvirtd
    argv = " ".join(qemu["argv"])  # the command line libvirt generated, from its log
    assert qemu["argv"][0].endswith("qemu-system-aarch64") and f"guest={qemu['domain']}" in argv
    bus = cell.rsplit("-", 1)[1]
    assert result["guest"]["transports"] == [bus]
    if bus == "mmio":
        assert "virtio-blk-device" in argv and "pcie-root-port" not in argv
    else:  # libvirt chose: a root port for each device
        assert argv.count('"driver":"pcie-root-port"') >= 3 and "virtio-blk-pci" in argv
    live = ET.parse(tmp_path / "domain.live.xml").getroot()  # what libvirt chose, kept
    chosen = {live.find(f"devices/{d}/address").get("type") for d in ("disk", "interface", "rng")}  # type: ignore[union-attr]
    assert chosen == {"virtio-mmio" if bus == "mmio" else "pci"}
    assert qemu["placement"] == ("virtio-mmio" if bus == "mmio" else "pcie-root-port")
    assert ("-kernel" in qemu["argv"]) == ("/none/" in cell)
    # the domain wrote to the cell's own overlay and VARS copy, now removed with work/
    domain = ET.parse(tmp_path / "domain.xml").getroot()
    disk = domain.find("devices/disk/source").get("file")  # type: ignore[union-attr]
    assert disk == str(tmp_path / "work" / "disk.qcow2") and tiny.disk is not None
    assert f'"filename":"{tiny.disk.resolve()}"' in argv  # the base: a read-only backing file
    if "/aavmf/" in cell:
        assert domain.find("os/nvram").text == str(tmp_path / "work" / "vars.fd")  # type: ignore[union-attr]
        assert "menu=on,splash-time=0" in argv  # libvirt passed the boot-menu wait on
    assert not (tmp_path / "work").exists()
    assert "shutting down, reason=destroyed" in (tmp_path / "qemu.stderr").read_text()
    assert qemu["domain"] not in domains()
    assert not processes_naming(qemu["domain"])
    assert not Path(f"/var/log/libvirt/qemu/{qemu['domain']}.log").exists()


def test_killing_the_runner_mid_boot_leaves_no_domain_and_no_qemu(
    libvirtd: str, tiny: Image, tmp_path: Path
) -> None:
    cell = "debian-12-tiny/none/virt/libvirt-mmio"
    runner = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "run", cell, "--quiet", "--out", str(tmp_path)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    log = tmp_path / "console.log"
    deadline = time.monotonic() + 120
    while not (log.exists() and b"Linux version" in log.read_bytes()):
        assert runner.poll() is None and time.monotonic() < deadline, "the guest never started"
        time.sleep(0.2)
    name = ET.parse(tmp_path / "domain.xml").getroot().findtext("name")
    assert name and name.startswith("harness-") and name in domains()
    assert processes_naming(f"guest={name}")
    runner.send_signal(signal.SIGKILL)
    runner.wait()
    deadline = time.monotonic() + 15  # libvirtd notices the closed connection
    while name in domains() or processes_naming(f"guest={name}"):
        assert time.monotonic() < deadline, f"{name} outlived the runner"
        time.sleep(0.2)
    # No code of the killed runner moved libvirt's log: the next libvirt cell's sweep
    # removes it, once it is older than a live runner would leave it.
    left = LOGS / f"{name}.log"
    while "shutting down" not in left.read_text():
        assert time.monotonic() < deadline, f"libvirt never closed {left}"
        time.sleep(0.2)
    control = binding().open("qemu:///system")
    try:
        assert left not in sweep_domain_logs(control) and left.exists()  # too fresh to judge
        os.utime(left, (time.time() - 120, time.time() - 120))
        assert left in sweep_domain_logs(control) and not left.exists()
    finally:
        control.close()


def test_ctrl_c_while_the_domain_starts_leaves_no_domain_and_no_libvirt_log(
    libvirtd: str, tiny: Image, tmp_path: Path
) -> None:
    cell = "debian-12-tiny/aavmf/virt/libvirt-mmio"
    runner = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "run", cell, "--quiet", "--out", str(tmp_path)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while not (tmp_path / "domain.xml").exists():
        assert runner.poll() is None and time.monotonic() < deadline, "no domain.xml"
        time.sleep(0.01)
    name = ET.parse(tmp_path / "domain.xml").getroot().findtext("name")
    log = LOGS / f"{name}.log"
    while not log.exists():  # created, paused, its console not yet open or read
        assert runner.poll() is None and time.monotonic() < deadline, "libvirt wrote no log"
        time.sleep(0.01)
    runner.send_signal(signal.SIGINT)
    out, err = runner.communicate(timeout=60)
    assert runner.returncode == 130, out + err
    assert not (tmp_path / "domain.live.xml").exists(), "interrupted after the start"
    time.sleep(2)  # what libvirtd would still do on its own (autodestroy, last log line)
    assert name not in domains() and not processes_naming(f"guest={name}")
    assert not log.exists(), log.read_text()
    assert "shutting down, reason=destroyed" in (tmp_path / "qemu.stderr").read_text()


@pytest.mark.parametrize("stop", ["ctrl-c", "timeout"])
def test_a_libvirt_cell_stopped_mid_boot_destroys_its_domain_before_it_exits(
    stop: str, libvirtd: str, tiny: Image, tmp_path: Path
) -> None:
    cell = "debian-12-tiny/aavmf/virt/libvirt-pci"
    command = [sys.executable, "-m", "harness.cli", "run", cell, "--quiet", "--out", str(tmp_path)]
    runner = subprocess.Popen(
        [*command, *(["--timeout", "4"] if stop == "timeout" else [])],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    if stop == "ctrl-c":
        log = tmp_path / "console.log"
        deadline = time.monotonic() + 120
        while not (log.exists() and b"UEFI firmware" in log.read_bytes()):
            assert runner.poll() is None and time.monotonic() < deadline, "no firmware banner"
            time.sleep(0.2)
        runner.send_signal(signal.SIGINT)
    out, err = runner.communicate(timeout=60)
    name = ET.parse(tmp_path / "domain.xml").getroot().findtext("name")
    assert name and name not in domains() and not processes_naming(f"guest={name}")
    assert not (tmp_path / "work").exists()  # the overlay and the nvram (VARS copy)
    result = json.loads((tmp_path / "result.json").read_text())
    if stop == "ctrl-c":
        assert runner.returncode == 130 and result["reason"] == "interrupted", out + err
    else:
        assert runner.returncode == 1 and out.startswith(f"FAIL {cell} "), out + err
        assert result["reason"] == "timeout"


def test_a_libvirt_cell_without_libvirt_is_a_skip_with_the_reason(
    tiny: Image, harness: Harness, tmp_path: Path
) -> None:
    env = {"HARNESS_LIBVIRT_URI": "qemu:///nowhere"}
    proc = harness("run", "debian-12-tiny/none/virt/libvirt-pci", "--quiet",
                   "--out", str(tmp_path), env=env)  # fmt: skip
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["status"] == "skip", proc.stdout + proc.stderr
    assert "libvirt is not usable: no libvirt at qemu:///nowhere" in result["detail"]
    assert "Traceback" not in proc.stderr
    doctor = harness("doctor", env=env)
    assert "MISS libvirt      optional: no libvirt at qemu:///nowhere" in doctor.stdout
    # the fix names the variable that chose that URI, not the daemon it does not reach
    fix = "check $HARNESS_LIBVIRT_URI (qemu:///nowhere), or unset it for qemu:///system"
    assert f"(fix: {fix})" in result["detail"] and f"fix: {fix}" in doctor.stdout


def test_a_pcie_port_cell_puts_each_device_behind_its_own_root_port(
    tiny: Image, harness: Harness, tmp_path: Path
) -> None:
    cell = "debian-12-tiny/none/virt/pcie-port"
    proc = harness("run", cell, "--quiet", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads((tmp_path / "result.json").read_text())
    argv = result["qemu"]["argv"]
    ports = [a for a in argv if a.startswith("pcie-root-port,")]
    assert [p.split("chassis=")[1].split(",")[0] for p in ports] == ["1", "2", "3"]
    assert "virtio-blk-pci,drive=disk0,bus=virtio-blk0-port,addr=0" in argv
    assert result["guest"]["transports"] == ["pci"]


def test_the_probe_takes_a_root_port_cell_for_pci_and_not_for_mmio() -> None:
    on_pci = Findings(devices=(Seen("virtio0", "block", "virtio_blk", "pci"),), root="/dev/vda2")
    assert mismatch("pcie-port", on_pci, True) == ""
    assert mismatch("libvirt-pci", on_pci, True) == ""
    why = mismatch("libvirt-mmio", on_pci, True)
    assert why == "expected every virtio device on mmio, but the guest has block virtio0 on pci"


def test_no_harness_domain_is_left_defined(libvirtd: str) -> None:
    """The libvirt counterpart of "no QEMU left". Other test files boot libvirt cells
    at the same time, so a domain counts as left once its run is over: the overlay
    it writes (removed with the cell's work/) is gone."""
    left = []
    for name in (d for d in domains() if d.startswith("harness-")):
        proc = subprocess.run([*VIRSH, "dumpxml", name], capture_output=True, text=True)
        if proc.returncode != 0:  # ended between the list and now
            continue
        sources = ET.fromstring(proc.stdout).findall("devices/disk/source")
        if not any(Path(s.get("file", "")).exists() for s in sources):
            left.append(name)
    assert not left


FAILURE_2016 = """\
images:
  debian-12-tiny-mmio-only: {timeout: 90}
expect:
  - match: {image: debian-12-tiny-mmio-only, transport: libvirt-pci}
    status: fail
    reason: root-not-found
profiles:
  through-libvirt:
    matrix:
      image: debian-12-tiny-mmio-only
      firmware: none
      machine: virt
      transport: [libvirt-mmio, libvirt-pci]
"""


def test_the_2016_failure_through_libvirt_answers_the_default_question(
    libvirtd: str, mmio_only: Image, harness: Harness, tmp_path: Path
) -> None:
    # libvirt's own PCI default (a root port each) loses the root disk of a guest
    # whose initramfs has no virtio_pci; forcing mmio in the XML boots it
    matrix = tmp_path / "matrix.yaml"
    matrix.write_text(FAILURE_2016)
    results = tmp_path / "results"
    run = harness("matrix", "--matrix", str(matrix), "--profile", "through-libvirt",
                  "-j", "1", "--results", str(results))  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    path = (results / "latest").resolve()
    proc = harness("export", "facts", str(path))
    assert proc.returncode == 0, proc.stderr
    facts = json.loads((path / "facts.json").read_text())["oses"][0]
    assert facts["virtio_pci_default_safe"]["virt"] == {
        "safe": False, "failures": ["none/libvirt-pci: initramfs root-not-found"],
    }  # fmt: skip
    assert facts["reached_login"] == ["none/virt/libvirt-mmio"]
    report = (path / "report.md").read_text()  # the grid says what libvirt chose
    assert "(libvirt chose pcie-root-port)" in report and "(libvirt chose virtio-mmio)" in report
    assert not [d for d in domains() if d.startswith("harness-")]


def test_the_exported_domain_writes_to_an_overlay_never_to_the_cached_image(
    tiny: Image, harness: Harness, tmp_path: Path
) -> None:
    assert tiny.disk is not None
    base = str(tiny.disk.resolve())
    cell = "debian-12-tiny/aavmf/virt/libvirt-pci"
    proc = harness("export", "libvirt", cell, "-o", str(tmp_path / "d.xml"))
    assert proc.returncode == 0, proc.stderr
    domain = ET.parse(tmp_path / "d.xml").getroot()
    assert [d.find("source").get("file") for d in domain.iter("disk")] == [  # type: ignore[union-attr]
        str(tmp_path / "d.qcow2")
    ]
    assert not list(domain.iter("address"))  # libvirt picks
    info = subprocess.run(
        ["qemu-img", "info", "--output=json", str(tmp_path / "d.qcow2")],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert json.loads(info.stdout)["backing-filename"] == base
    printed = harness("export", "libvirt", cell, cwd=tmp_path)
    assert printed.returncode == 0, printed.stderr
    assert f"file={base!r}" not in printed.stdout.replace('"', "'")
    assert f"make the disk first: qemu-img create -f qcow2 -F raw -b {base} " in printed.stdout


def test_a_libvirt_cell_boots_with_the_cpus_asked_for_and_refuses_qemu_args(
    libvirtd: str, tiny: Image, harness: Harness, tmp_path: Path
) -> None:
    cell = "debian-12-tiny/none/virt/libvirt-mmio"
    refused = harness("run", cell, "--qemu-arg", "-no-reboot", "--out", str(tmp_path))
    assert refused.returncode == 2 and not (tmp_path / "result.json").exists()
    assert refused.stderr.strip().splitlines() == [
        f"harness run: --qemu-arg: {cell} is booted by libvirt, whose QEMU command line "
        "the harness does not write; use a direct transport"
    ]
    proc = harness("run", cell, "--smp", "2", "--quiet", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    argv = json.loads((tmp_path / "result.json").read_text())["qemu"]["argv"]
    assert argv[argv.index("-smp") + 1].startswith("2,"), argv
    assert ET.parse(tmp_path / "domain.xml").getroot().findtext("vcpu") == "2"


def test_a_stopped_daemon_is_one_line_and_a_skip_not_a_hang(
    tiny: Image, harness: Harness, tmp_path: Path
) -> None:
    """A libvirt daemon that is running but stopped (SIGSTOP) accepts the connection
    and never answers; libvirt's client would wait for ever. `make setup`'s start
    gives up after ANSWER_S with one line naming the daemon, a libvirt cell is a skip
    with that reason. The daemon here is a process of the test's own, listening on
    the socket $HARNESS_LIBVIRT_URI names, then stopped: the system's is not touched."""
    from harness.libvirt_host import ANSWER_S

    sock = tmp_path / "libvirt-sock"
    listen = f"import socket, time; s = socket.socket(socket.AF_UNIX); s.bind({str(sock)!r}); "
    listen += "s.listen(16); print('ready', flush=True); time.sleep(600)"
    daemon = subprocess.Popen([sys.executable, "-c", listen], stdout=subprocess.PIPE, text=True)
    try:
        assert daemon.stdout is not None and daemon.stdout.readline() == "ready\n"
        os.kill(daemon.pid, signal.SIGSTOP)
        env = {"HARNESS_LIBVIRT_URI": f"qemu+unix:///system?socket={sock}"}
        started = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-m", "harness.libvirt_host"],
            capture_output=True, text=True, cwd=ROOT, env={**os.environ, **env}, timeout=60,
        )  # fmt: skip
        assert time.monotonic() - started < ANSWER_S + 20
        assert proc.returncode == 1
        (line,) = proc.stderr.splitlines()
        assert f"at {env['HARNESS_LIBVIRT_URI']} does not answer within 10 s" in line, line
        assert "(fix: check the daemon behind $HARNESS_LIBVIRT_URI)" in line
        cell = "debian-12-tiny/none/virt/libvirt-pci"
        run = harness("run", cell, "--quiet", "--out", str(tmp_path / "out"), env=env, timeout=60)
        assert run.stdout.startswith(f"SKIP {cell}"), run.stdout + run.stderr
        assert "does not answer within 10 s (stopped or hung)" in run.stderr
    finally:
        daemon.kill()
        daemon.wait()


def test_a_refusal_without_libvirt_s_message_is_still_one_line(tmp_path: Path) -> None:
    """An error the binding raises itself has no libvirt message (get_error_message
    is None, found by typing the binding): the cell's error says the binding's text
    instead of failing on None."""
    from harness.errors import QemuLaunchError
    from harness.libvirt_boot import DomainConsole

    libvirt = binding()
    assert libvirt is not None

    class Refusing:  # a connection whose createXML fails with no libvirt error set
        def createXML(self, xml: str, flags: int) -> None:
            raise libvirt.libvirtError("virDomainCreateXML() failed")

        def lookupByName(self, name: str) -> None:
            raise libvirt.libvirtError("virDomainLookupByName() failed")

    refusing = Refusing()
    console = DomainConsole(refusing, refusing, "<domain/>", "x", tmp_path / "x.log")  # type: ignore[arg-type]
    with pytest.raises(QemuLaunchError) as refused:
        console.__enter__()
    assert refused.value.stderr == "virDomainCreateXML() failed"
    assert str(refused.value) == (
        "libvirt did not start the domain (exit status not started): virDomainCreateXML() failed"
    )
