"""--offline never asks the Debian mirror: an image that must be built is a skip
"not built (offline)"; `doctor` says which images are built. The mirror is a local
server that records every request."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Harness
from http_server import Server


@pytest.fixture
def mirror() -> Iterator[Server]:
    with Server() as running:
        yield running


@pytest.fixture
def env(mirror: Server, tmp_path: Path) -> dict[str, str]:
    """An empty cache (nothing built) and a mirror that only records."""
    return {
        "HARNESS_CACHE": str(tmp_path / "cache"),
        "HARNESS_DEBIAN_MIRROR": mirror.url("/debian"),
    }


def test_an_unbuilt_image_offline_is_a_skip_and_the_mirror_is_not_asked(
    env: dict[str, str], mirror: Server, harness: Harness, tmp_path: Path
) -> None:
    proc = harness(
        "run", "debian-12-tiny/none/virt/pci", "--offline", "--quiet", "--out", str(tmp_path / "a"),
        env=env,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stdout + proc.stderr  # a single cell that could not run
    assert proc.stdout.startswith("SKIP debian-12-tiny/none/virt/pci")
    result = json.loads((tmp_path / "a" / "result.json").read_text())
    assert (result["status"], result["reason"]) == ("skip", "not-built-offline")
    assert result["detail"].startswith("not built (offline): debian-12-tiny")
    listed = harness("list", "--profile", "smoke", "--offline", env=env).stdout
    assert "debian-12-tiny/none/virt/pci  (skip: not built (offline))" in listed
    refused = harness("images", "build", "debian-12-tiny", env={**env, "HARNESS_OFFLINE": "1"})
    assert refused.returncode == 2
    assert "cannot build debian-12-tiny offline" in refused.stderr
    assert mirror.requests == [] and mirror.connections == 0


def test_doctor_says_which_images_are_built(
    env: dict[str, str], mirror: Server, harness: Harness
) -> None:
    proc = harness("doctor", env={**env, "HARNESS_OFFLINE": "1"})
    line = next(ln for ln in proc.stdout.splitlines() if " images " in f" {ln} ")
    assert "built: none yet; not built: " in line and "debian-12-tiny" in line
    assert "(offline: their cells are skips)" in line
    assert mirror.requests == []
