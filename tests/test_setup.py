"""Setup that does not serialise the matrix (harness/commands/common.py): everything a
run needs is prepared before the first boot, one future per image or firmware, so
independent builds overlap; a failed one is the `error` of each cell that needs it,
each cell with its own exception, while the other cells boot and record."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, Harness
from http_server import Served, Server

from harness.commands.common import Memo, discover_host, load_plan, open_catalog, prepare
from harness.commands.sharding import plan_cost
from harness.errors import ImageBuildError
from harness.matrix.shard import costs
from harness.model import Cell, Firmware, Image
from harness.runner import CellSetup


@pytest.fixture
def server() -> Iterator[Server]:
    with Server() as running:
        yield running


def test_independent_builds_overlap_and_each_waiting_cell_gets_its_own_error() -> None:
    started: list[str] = []
    lock = threading.Lock()

    def build(name: str) -> Image:
        with lock:
            started.append(name)
        time.sleep(0.5)
        if name == "broken":
            raise ImageBuildError(f"image {name}: apt failed")
        return Image(name, disk=None)

    images: Memo[str, Image] = Memo(build)
    setup = CellSetup(lambda cell: images.get(cell.image), lambda cell: Firmware("none"))
    cells = [
        Cell(name, "none", "virt", t) for name in ("a", "b", "c", "broken") for t in ("mmio", "pci")
    ]
    clock = time.monotonic()
    problems = prepare(setup, cells, jobs=4, cancel=threading.Event())
    took = time.monotonic() - clock
    assert sorted(started) == ["a", "b", "broken", "c"]  # each built once
    assert took < 1.2, f"four 0.5 s builds took {took:.1f} s: they did not overlap"
    assert problems == ["image broken: image broken: apt failed (its cells will be errors)"]
    raised = []
    for cell in cells[-2:]:
        with pytest.raises(ImageBuildError) as caught:
            setup.image(cell)
        raised.append(caught.value)
    assert raised[0] is not raised[1] and str(raised[0]) == str(raised[1])
    assert raised[0].reason == "image-build-failed"


def test_an_image_or_firmware_that_cannot_be_had_is_its_cells_error_while_others_run(
    tiny: Image, harness: Harness, server: Server, tmp_path: Path
) -> None:
    # A checkout of its own: the real recipes and guest files, plus a firmware build
    # whose suite the (local, empty) mirror does not have and a download that is gone.
    root = tmp_path / "checkout"
    (root / "images").mkdir(parents=True)
    for name in ("recipes.yaml", "catalog.yaml", "faults.yaml", "tiny"):
        (root / "images" / name).symlink_to(ROOT / "images" / name)
    (root / "images" / "firmware.yaml").write_text("aavmf-nowhere: {suite: nowhere}\n")
    (root / "matrix.yaml").symlink_to(ROOT / "matrix.yaml")
    cache = tmp_path / "cache"  # the shared built images, read only through a link
    cache.mkdir()
    (cache / "built").symlink_to((ROOT / "images" / "cache" / "built").resolve())
    gone = {
        "test-gone": {
            "distro": "test", "release": "0", "boot": "uefi", "format": "raw",
            "disk": {"url": server.url("/gone.img"), "digest": "sha256:" + "0" * 64},
            "source": "the tests",
        }
    }  # fmt: skip
    (tmp_path / "catalog.yaml").write_text(yaml.safe_dump(gone))
    matrix = tmp_path / "m.yaml"
    matrix.write_text(
        "profiles:\n  p:\n"
        "    matrix: {image: debian-12-tiny, firmware: none, machine: virt, transport: pci}\n"
        "    include:\n"
        "      - {image: debian-12-tiny, firmware: aavmf-nowhere, machine: virt, transport: [mmio, pci]}\n"
        "      - {image: test-gone, firmware: aavmf, machine: virt, transport: pci}\n"
    )
    env = {
        "HARNESS_ROOT": str(root), "HARNESS_CACHE": str(cache),
        "HARNESS_CATALOG": str(tmp_path / "catalog.yaml"),
        "HARNESS_DEBIAN_MIRROR": server.url("/debian"),
    }  # fmt: skip
    proc = harness(
        "matrix", "--matrix", str(matrix), "--profile", "p", "--results", str(tmp_path / "r"),
        "-j", "2", env=env,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stdout + proc.stderr  # 2: errors
    assert "firmware aavmf-nowhere: " in proc.stdout and "image test-gone: " in proc.stdout
    cells = json.loads((tmp_path / "r" / "latest" / "results.json").read_text())["cells"]
    got = {c["cell"]: (c["outcome"], c["reason"]) for c in cells}
    assert got.pop("debian-12-tiny/none/virt/pci") == ("pass", "login")
    assert set(got) == {
        "debian-12-tiny/aavmf-nowhere/virt/mmio", "debian-12-tiny/aavmf-nowhere/virt/pci",
        "test-gone/aavmf/virt/pci",
    }  # fmt: skip
    assert all(outcome == "error" for outcome, _ in got.values()), got
    assert not (cache / "firmware" / "aavmf-nowhere").exists()
    assert os.path.islink(cache / "built")


def test_setup_takes_the_values_it_needs_not_the_command_line(tmp_path: Path) -> None:
    catalog = open_catalog(offline=True, verify=False, log=lambda _: None)
    assert catalog.offline and not catalog.verify
    host = discover_host(None, catalog)
    plan = load_plan(catalog, host, "smoke", None, "pci and not aavmf")
    # -k matches words inside the id, as pytest's does: libvirt-pci and pcie-port too
    assert plan.cells and all("pci" in p.cell.transport for p in plan.cells)
    assert all(p.cell.firmware != "aavmf" for p in plan.cells)
    # what each cell costs (--durations, --db): values too, estimates with no history
    cost = plan_cost(None, tmp_path / "history.sqlite", tmp_path, "list")
    assert [cost(p) for p in plan.cells] == [costs({})(p) for p in plan.cells]


BUILD_ON_WORKERS = r"""
import os, subprocess, sys, threading
from harness.cancel import wait
from harness.commands.common import Memo, prepare
from harness.model import Cell, Firmware, Image
from harness.runner import CellSetup

cancel = threading.Event()

def build(name):  # a build waiting for its child as the builders do (harness/cancel.py)
    proc = subprocess.Popen(["sleep", "60"], start_new_session=True)
    # Said once the build can be stopped: one write, the threads do not interleave.
    os.write(1, b"%d\n" % proc.pid)
    wait(proc, cancel)
    return Image(name, disk=None)

images = Memo(build)
setup = CellSetup(lambda c: images.get(c.image), lambda c: Firmware("none"))
try:
    prepare(setup, [Cell(n, "none", "virt", "pci") for n in ("a", "b")], 2, cancel)
except KeyboardInterrupt:
    sys.exit(130)
"""


def test_ctrl_c_while_preparing_stops_every_build_under_way(tmp_path: Path) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", BUILD_ON_WORKERS], stdout=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip
    assert child.stdout is not None
    builds: list[int] = []
    try:
        builds = [int(child.stdout.readline()) for _ in range(2)]  # both running, on workers
        clock = time.monotonic()
        child.send_signal(signal.SIGINT)
        assert child.wait(timeout=40) == 130
        took = time.monotonic() - clock
        assert took < 15, f"{took:.1f} s: the command waited for the 60 s builds to end"
        for pid in builds:
            assert not Path(f"/proc/{pid}").exists(), f"build {pid} left running"
    finally:
        child.kill()
        child.wait()
        for pid in builds:  # only on failure: the processes this test started
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


DOWNLOAD_ON_A_WORKER = r"""
import sys, threading
from pathlib import Path
from harness.commands.common import prepare
from harness.images.digest import Digest
from harness.images.download import Downloader
from harness.model import Cell, Firmware, Image
from harness.runner import CellSetup

url, digest, cache = sys.argv[1:]
cancel = threading.Event()

def progress(name, done, total):
    if done == 1 << 16:
        print("downloading", flush=True)

downloader = Downloader(Path(cache), progress=progress, cancel=cancel)

def image(cell):
    downloader.fetch(url, Digest.parse(digest))
    return Image(cell.image, disk=None)

try:
    prepare(CellSetup(image, lambda c: Firmware("none")), [Cell("a", "none", "virt", "pci")], 1, cancel)
except KeyboardInterrupt as e:
    print("interrupted", type(e).__name__, flush=True)
    sys.exit(130)
"""


def test_ctrl_c_while_preparing_stops_a_download_under_way_within_a_second(
    server: Server, tmp_path: Path
) -> None:
    body = os.urandom(8 << 20)  # 64 KiB every 0.1 s: 13 s, were it not stopped
    server.files["/disk.img"] = Served(body, delay_s=0.1)
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    cache = tmp_path / "cache"
    child = subprocess.Popen(
        [sys.executable, "-c", DOWNLOAD_ON_A_WORKER, server.url("/disk.img"), digest, str(cache)],
        stdout=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip
    assert child.stdout is not None
    try:
        assert child.stdout.readline() == "downloading\n"  # on the worker, mid-file
        clock = time.monotonic()
        child.send_signal(signal.SIGINT)
        assert child.wait(timeout=20) == 130
        took = time.monotonic() - clock
        print(f"stopped {took:.2f} s after Ctrl-C")
        assert child.stdout.read() == "interrupted KeyboardInterrupt\n"
        assert took < 1.5, f"{took:.2f} s from Ctrl-C to the end of the download"
        assert not (cache / "blobs").exists()  # only the resumable part is kept
        assert sorted(p.suffix for p in (cache / "partial").iterdir()) == [".json", ".part"]
    finally:
        child.kill()
        child.wait()
