"""What a nightly job meets, for real: signals, QEMU dying, a full or read-only disk,
hostile matrix files, a flooding console, and QEMU's sockets."""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, Harness, qemu_processes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.errors import UsageError
from harness.matrix.expand import expand
from harness.model import Image
from harness.yamlfile import load

MACHINES = ("virt-2.6", "virt-7.2", "virt")


def ours(marker: str) -> list[int]:
    """The QEMU processes whose command line mentions `marker` (a test's own dir)."""
    found = []
    for pid in qemu_processes():
        try:
            if marker in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace"):
                found.append(int(pid))
        except OSError:
            continue
    return found


def wait_for(predicate, seconds: float) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.1)


def harness_process(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "harness.cli", *args], cwd=ROOT, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
        preexec_fn=_no_core_files,
    )  # fmt: skip


def _no_core_files() -> None:
    """A QEMU a test makes abort must not leave a core file in the checkout."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def test_sigterm_stops_every_qemu_and_marks_the_reports_incomplete(
    tiny: Image, tmp_path: Path
) -> None:
    child = harness_process(
        "matrix", "--profile", "smoke", "-k", "aavmf", "-j", "2", "--results", str(tmp_path)
    )
    wait_for(lambda: len(ours(str(tmp_path))) == 2, 60)
    running = ours(str(tmp_path))
    os.kill(child.pid, signal.SIGTERM)
    assert child.wait(timeout=5) == 128 + signal.SIGTERM  # every QEMU stopped and reaped by then
    assert not [pid for pid in running if Path(f"/proc/{pid}").exists()]
    assert "terminated" in child.stderr.read()  # type: ignore[union-attr]
    # the run itself, not `latest`: stopped in AAVMF, its guests may not have printed yet
    (run,) = tmp_path.glob("2*")
    assert '"complete": false' in (run / "results.json").read_text()


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGABRT, signal.SIGSEGV])
def test_qemu_crashing_mid_boot_is_an_error_naming_qemu_not_a_failure(
    signum: int, tiny: Image, tmp_path: Path
) -> None:
    """A QEMU killed by a signal (an assertion's abort, a segfault, a kill) is the
    emulator's fault: `error`, reason qemu-crashed, never the guest's `fail`."""
    child = harness_process(
        "run", "debian-12-tiny/none/virt/pci", "--quiet", "--out", str(tmp_path)
    )
    wait_for(
        lambda: (
            b"Booting Linux" in (tmp_path / "console.log").read_bytes()
            if (tmp_path / "console.log").exists()
            else False
        ),
        60,
    )
    (qemu,) = ours(str(tmp_path))
    os.kill(qemu, signum)
    out, err = child.communicate(timeout=30)
    assert child.returncode == 2, out + err
    assert err.strip().splitlines() == [
        f"harness run: QEMU crashed mid-boot (exit status signal {signum})"
    ]
    status, cell, stage, reason, _ = out.split()
    assert (status, cell, reason) == ("ERROR", "debian-12-tiny/none/virt/pci", "qemu-crashed")
    assert stage in ("kernel", "initramfs", "userspace")  # how far it got when QEMU died
    result = json.loads((tmp_path / "result.json").read_text())
    assert (result["status"], result["reason"]) == ("error", "qemu-crashed")
    assert not ours(str(tmp_path))


def test_qemu_refusing_a_firmware_file_is_a_one_line_error(
    tiny: Image, harness: Harness, tmp_path: Path
) -> None:
    code, template = tmp_path / "EMPTY_CODE.fd", tmp_path / "EMPTY_VARS.fd"
    code.write_bytes(b"")
    shutil.copy("/usr/share/AAVMF/AAVMF_VARS.fd", template)
    proc = harness(
        "run", f"debian-12-tiny/{code}/virt/pci", "--quiet", "--out", str(tmp_path / "out")
    )
    assert proc.returncode == 2
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith(
        "harness run: QEMU exited at start (exit status 1): qemu-system-aarch64: "
    )
    missing = harness(
        "run", f"debian-12-tiny/{tmp_path / 'NONE_CODE.fd'}/virt/pci", "--quiet",
        "--out", str(tmp_path / "missing"),
    )  # fmt: skip
    assert missing.returncode == 2 and len(missing.stderr.strip().splitlines()) == 1
    assert "firmware" in missing.stderr


def in_mount_namespace(setup: str, *args: str) -> subprocess.CompletedProcess[str]:
    """The harness in a private mount namespace prepared by `setup` (root only)."""
    command = f"{setup} && exec {sys.executable} -m harness.cli " + " ".join(f"'{a}'" for a in args)
    return subprocess.run(
        ["unshare", "-m", "sh", "-c", command],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_full_disk_is_a_one_line_error_and_leaves_no_qemu(tiny: Image, tmp_path: Path) -> None:
    out = tmp_path / "full"
    out.mkdir()
    proc = in_mount_namespace(
        f"mount -t tmpfs -o size=12k tmpfs {out}",
        "run",
        "debian-12-tiny/none/virt/pci",
        "--quiet",
        "--out",
        str(out / "cell"),
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert "no room for the cell" in line and "Traceback" not in proc.stderr
    assert proc.stdout.split()[:4] == [
        "ERROR",
        "debian-12-tiny/none/virt/pci",
        "none",
        "host-disk-full",
    ]
    assert not ours(str(out))


def test_a_full_results_disk_stops_the_matrix_in_one_line(tiny: Image, tmp_path: Path) -> None:
    """--results on a file system with no room for results.jsonl: the run stops with
    the line naming the file; the reports it then cannot write are no second line
    ahead of it (once "no partial reports: [Errno 28] ..." came first)."""
    results = tmp_path / "full"
    results.mkdir()
    proc = in_mount_namespace(
        f"mount -t tmpfs -o size=8k tmpfs {results}",
        "matrix", "-k", "debian-12-tiny/none/virt/mmio", "--results", str(results),
        "--db", str(tmp_path / "history.sqlite"),
    )  # fmt: skip
    assert proc.returncode == 2, proc.stdout + proc.stderr
    # (an image rebuilt on the way says so on stderr too: not an error line)
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("harness matrix:")]
    assert len(lines) == 1, proc.stderr
    line = lines[0]
    assert line.startswith("harness matrix: cannot record a result in "), line
    assert line.endswith("results.jsonl: No space left on device")
    assert not ours(str(results))


def test_a_nearly_full_disk_is_the_hosts_error_before_boot_and_during_it(
    catalog: object, tmp_path: Path
) -> None:
    """--out on a file system with too little room: refused before QEMU starts; with
    room to start but not for what the guest writes (quirk-disk-writer: 48 MiB), QEMU
    stops the guest on the write error (werror=stop) and says so over QMP: the host's
    error, exit 2, never the guest's timeout."""
    catalog.image("quirk-disk-writer")  # type: ignore[attr-defined]
    out = tmp_path / "small"
    out.mkdir()
    before = in_mount_namespace(
        f"mount -t tmpfs -o size=16m tmpfs {out}",
        "run", "quirk-disk-writer/none/virt/pci", "--quiet", "--out", str(out / "cell"),
    )  # fmt: skip
    assert before.returncode == 2, before.stdout + before.stderr
    assert before.stderr.startswith(f"harness run: no room for the cell in {out / 'cell'}: ")
    assert before.stdout.split()[3] == "host-disk-full"
    started = time.monotonic()
    during = in_mount_namespace(
        f"mount -t tmpfs -o size=40m tmpfs {out}",
        "run", "quirk-disk-writer/none/virt/pci", "--quiet", "--out", str(out / "cell"),
        "--timeout", "120",
    )  # fmt: skip
    assert during.returncode == 2, during.stdout + during.stderr
    (line,) = during.stderr.strip().splitlines()
    assert line.startswith("harness run: QEMU stopped the guest: write error on disk0"), line
    assert "No space left on device" in line
    status, _, stage, reason, _ = during.stdout.split()
    assert (status, stage, reason) == ("ERROR", "userspace", "host-disk-full")
    assert time.monotonic() - started < 100  # decided when QEMU stopped, not at the timeout
    assert not ours(str(out))


def test_a_read_only_results_dir_is_a_one_line_error(tiny: Image, tmp_path: Path) -> None:
    results = tmp_path / "ro"
    results.mkdir()
    setup = f"mount -o bind,ro {results} {results}"
    for args in (("matrix", "-k", "tiny/none/virt/pci", "--results", str(results)),
                 ("run", "debian-12-tiny/none/virt/pci", "--out", str(results / "cell"))):  # fmt: skip
        proc = in_mount_namespace(setup, *args)
        assert proc.returncode == 2, proc.stdout + proc.stderr
        (line,) = proc.stderr.strip().splitlines()
        assert "Read-only file system" in line and str(results) in line


yaml_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20)
)
yaml_values = st.recursive(
    yaml_scalars,
    lambda children: (
        st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=12), children, max_size=6)
    ),
    max_leaves=40,
)
matrix_keys = st.sampled_from(
    [
        "profiles",
        "defaults",
        "images",
        "expect",
        "matrix",
        "image",
        "firmware",
        "machine",
        "transport",
        "include",
        "exclude",
        "smoke",
    ]
)
matrix_like = st.recursive(
    yaml_scalars
    | st.sampled_from(
        ["all", "virt", "virt-2.6..virt-7.2", "mmio", "pci", "none", "aavmf", "debian-12-tiny"]
    ),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(matrix_keys, children, max_size=5)
    ),
    max_leaves=30,
)


def judged(path: Path, text: str) -> None:
    """Loading and expanding `text` ends in a plan or in errors that each name
    the file and a line; nothing else, and fast."""
    path.write_text(text)
    started = time.monotonic()
    try:
        data, root = load(path)
        for profile in data["profiles"]:
            expand(data, root, path, profile, ["debian-12-tiny"], MACHINES)
    except UsageError as e:
        for problem in str(e).splitlines():
            assert problem.startswith(f"{path}:"), problem
            assert (
                problem.split(":")[1].split()[0].isdigit()
                or "cannot read" in problem
                or "no profile" in problem
            ), problem
    assert time.monotonic() - started < 1.0


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(value=yaml_values)
def test_fuzzed_yaml_values(tmp_path: Path, value: object) -> None:
    judged(tmp_path / "matrix.yaml", yaml.safe_dump(value))


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(value=matrix_like)
def test_fuzzed_matrix_shaped_documents(tmp_path: Path, value: object) -> None:
    judged(
        tmp_path / "matrix.yaml",
        yaml.safe_dump({"profiles": {"p": value}} if not isinstance(value, dict) else value),
    )


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=st.text(alphabet=st.sampled_from(list("abc:-[]{}&*!|>'\"#\n  \t0123")), max_size=200))
def test_fuzzed_yaml_text(tmp_path: Path, text: str) -> None:
    judged(tmp_path / "matrix.yaml", text)


def test_a_huge_list_and_an_alias_bomb_through_the_cli(harness: Harness, tmp_path: Path) -> None:
    huge = tmp_path / "huge.yaml"
    huge.write_text(
        yaml.safe_dump(
            {
                "profiles": {
                    "p": {
                        "matrix": {
                            "image": ["x"] * 20000,
                            "firmware": "none",
                            "machine": "virt",
                            "transport": "pci",
                        }
                    }
                }
            }
        )
    )
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(
        "a: &a [x,x,x,x,x,x,x,x,x,x]\n"
        + "".join(
            f"{c}: &{c} [{', '.join(['*' + p] * 10)}]\n"
            for p, c in zip("abcdefg", "bcdefgh", strict=True)
        )
        + "profiles: *h\n"
    )
    big = tmp_path / "big.yaml"
    with big.open("wb") as sparse:
        sparse.truncate(17 * 2**20)
    for path in (huge, bomb, big):
        started = time.monotonic()
        proc = harness("list", "--matrix", str(path))
        assert proc.returncode == 2 and time.monotonic() - started < 5
        assert all(
            line.startswith(f"harness list: {path}:") or line.startswith(f"{path}:")
            for line in proc.stderr.strip().splitlines()
        )


def test_a_flooding_console_keeps_memory_bounded_and_the_log_capped(
    catalog: object, tmp_path: Path
) -> None:
    catalog.image("quirk-flood")  # type: ignore[attr-defined]
    append = "root=LABEL=root console=ttyAMA0 rootdelay=5 harness.flood=3"
    child = harness_process("run", "quirk-flood/none/virt/pci", "--quiet", "--out", str(tmp_path), "--log-cap", "1000000",
                            "--qemu-arg=-append", f"--qemu-arg={append}")  # fmt: skip
    peak = 0
    while child.poll() is None:
        try:
            rss = next(
                line
                for line in Path(f"/proc/{child.pid}/status").read_text().splitlines()
                if line.startswith("VmRSS:")
            )
            peak = max(peak, int(rss.split()[1]))
        except (OSError, StopIteration):
            pass
        time.sleep(0.05)
    out = child.stdout.read()  # type: ignore[union-attr]
    assert child.returncode == 0 and out.startswith("PASS quirk-flood/none/virt/pci login"), out
    log = (tmp_path / "console.log").read_bytes()
    assert 1_000_000 < len(log) < 1_000_100 and log.endswith(
        b"[harness: console log capped at 1000000 bytes]\n"
    )
    assert peak < 100 * 1024, f"the harness used {peak} KiB"


def test_qemu_listens_on_no_socket(tiny: Image, tmp_path: Path) -> None:
    child = harness_process(
        "run", "debian-12-tiny/aavmf/virt/mmio", "--quiet", "--out", str(tmp_path)
    )
    try:
        wait_for(lambda: bool(ours(str(tmp_path))), 30)
        (qemu,) = ours(str(tmp_path))
        time.sleep(3)  # well into the boot: firmware up, network device set up
        listening = subprocess.run(
            ["ss", "-H", "-l", "-n", "-p", "-t", "-u", "-x", "-w"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert f"pid={qemu}," not in listening
    finally:
        child.communicate(timeout=120)
    assert child.returncode == 0
