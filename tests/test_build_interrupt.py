"""Ctrl-C or SIGTERM during a real `harness images build` (of an image not yet built,
in a cache of its own, from a Debian mirror on 127.0.0.1) ends as interrupted, exit
130 / 143, not as a tool's failure; nothing half-built stays in the cache and no
child is left running."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ROOT
from debian_mirror import serve_suite
from http_server import Server


@pytest.fixture
def mirror() -> Iterator[Server]:
    with Server() as running:
        yield running


def descendants(pid: int) -> list[str]:
    """Names of the processes below `pid`."""
    children: dict[int, list[tuple[int, str]]] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            stat = (entry / "stat").read_text()
        except (OSError, ValueError):
            continue
        name, rest = stat.split("(", 1)[1].rsplit(")", 1)
        children.setdefault(int(rest.split()[1]), []).append((int(entry.name), name))
    found, todo = [], [pid]
    while todo:
        for child, name in children.get(todo.pop(), []):
            found.append(name)
            todo.append(child)
    return found


def using(cache: Path) -> list[str]:
    """Command lines of processes that name the cache (children left behind)."""
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if str(cache) in cmdline and entry.name != str(os.getpid()):
            found.append(cmdline)
    return found


def build(env: dict[str, str]) -> subprocess.Popen[str]:
    """`harness images build debian-12-tiny` as a terminal's foreground job: its own
    process group, which Ctrl-C signals as a whole."""
    return subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "images", "build", "debian-12-tiny"],
        cwd=ROOT, env={**os.environ, **env}, start_new_session=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def wait_for(proc: subprocess.Popen[str], ready: object, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not ready():  # type: ignore[operator]
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the build never got there"
        time.sleep(0.05)


def assert_clean(cache: Path) -> None:
    built = cache / "built"
    assert not (built / "debian-12-tiny" / "current").exists()
    leftovers = [p.name for p in built.iterdir() if p.is_dir()] if built.exists() else []
    assert leftovers == [], leftovers  # no staging directory, no entry
    assert list(cache.glob(".unpacked-*")) == []
    assert list((cache / "apt" / "debs").glob(".download-*")) == []
    assert using(cache) == []


def test_ctrl_c_during_dpkg_deb_extraction_is_interrupted(mirror: Server, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    env = {
        "HARNESS_CACHE": str(cache),
        "HARNESS_DEBIAN_MIRROR": serve_suite(mirror, ROOT / "images" / "cache"),
    }
    proc = build(env)
    wait_for(proc, lambda: "dpkg-deb" in descendants(proc.pid))
    time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, out + err
    assert err.strip().splitlines()[-1] == "harness images: interrupted"
    assert "dpkg-deb" not in err and "Traceback" not in err
    assert_clean(cache)


def test_sigterm_during_the_deb_download_is_terminated(mirror: Server, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    url = serve_suite(mirror, ROOT / "images" / "cache", deb_delay_s=0.01)
    proc = build({"HARNESS_CACHE": str(cache), "HARNESS_DEBIAN_MIRROR": url})
    wait_for(proc, lambda: any(r.path.endswith(".deb") for r in mirror.requests))
    time.sleep(1)
    os.kill(proc.pid, signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 143, out + err
    assert err.strip().splitlines()[-1] == "harness images: terminated"
    assert "failed" not in err and "Traceback" not in err
    assert_clean(cache)
    assert list((cache / "apt" / "debs").glob("*.deb")) == []  # no half a .deb
