"""A cached download stays `verified` only while it is the file that was verified:
an edit or a chmod after the download is seen (stat record), hashed again, and a
changed blob is fetched again; file:// URLs (a local mirror) are downloads too."""

from __future__ import annotations

import hashlib
import lzma
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from conftest import Harness
from http_server import Served, Server

from harness.images.blobs import mark_checked, unchanged

# random, so a cache cannot know it; "ok" first, so an edit of its first bytes changes it
PAYLOAD = b"ok" + os.urandom(1 << 20) + b"end"
PACKED = lzma.compress(PAYLOAD, preset=0)


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture
def server() -> Iterator[Server]:
    with Server() as running:
        yield running


@pytest.fixture
def env(server: Server, tmp_path: Path) -> dict[str, str]:
    server.files["/disk.img"] = Served(PAYLOAD)
    server.files["/disk.img.xz"] = Served(PACKED)
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "disk.img").write_bytes(PAYLOAD)
    (mirror / "SHA256SUMS").write_text(f"{hashlib.sha256(PAYLOAD).hexdigest()}  disk.img\n")

    def entry(disk: dict[str, object], **more: str) -> dict[str, object]:
        return {"distro": "test", "release": "0", "boot": "uefi", "format": "raw",
                "disk": disk, "source": "the tests", **more}  # fmt: skip

    entries = {
        "test-img": entry({"url": server.url("/disk.img"), "digest": sha256(PAYLOAD)}),
        "test-xz": entry(
            {"url": server.url("/disk.img.xz"), "digest": sha256(PACKED)}, compression="xz"
        ),
        "test-local": entry(
            {"url": (mirror / "disk.img").as_uri(), "checksums": (mirror / "SHA256SUMS").as_uri()}
        ),
        "test-local-missing": entry(
            {"url": (mirror / "gone.img").as_uri(), "digest": sha256(b"gone")}
        ),
    }
    (tmp_path / "catalog.yaml").write_text(yaml.safe_dump(entries))
    return {"HARNESS_CATALOG": str(tmp_path / "catalog.yaml"), "HARNESS_CACHE": str(tmp_path / "c")}


def state(harness: Harness, env: dict[str, str], name: str) -> str:
    listing = harness("images", "list", env=env).stdout.splitlines()
    return next(line for line in listing if line.startswith(name + " ")).split()[1]


def blob(env: dict[str, str], data: bytes) -> Path:
    return Path(env["HARNESS_CACHE"]) / "blobs" / "sha256" / hashlib.sha256(data).hexdigest()


def tamper(path: Path, data: bytes) -> None:
    """Changes a file and puts its mtime back, as a careless or hostile hand would."""
    before = path.stat()
    path.chmod(0o644)
    path.write_bytes(data)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


def test_an_edited_blob_is_not_verified_and_is_fetched_again(
    env: dict[str, str], server: Server, harness: Harness
) -> None:
    assert harness("images", "fetch", "test-img", env=env).returncode == 0
    assert state(harness, env, "test-img") == "verified"
    tamper(blob(env, PAYLOAD), b"X" + PAYLOAD[1:])
    assert state(harness, env, "test-img") == "changed"
    offline = harness("images", "fetch", "test-img", "--offline", env=env)
    assert offline.returncode == 2
    assert (
        "not cached (offline)" in offline.stdout
        and "changed since it was verified" in offline.stdout
    )
    again = harness("images", "fetch", "test-img", env=env)
    assert again.returncode == 0 and "test-img: verified" in again.stdout
    assert blob(env, PAYLOAD).read_bytes() == PAYLOAD
    assert blob(env, PAYLOAD).stat().st_mode & 0o222 == 0
    assert len(server.gets("/disk.img")) == 2
    assert state(harness, env, "test-img") == "verified"


def test_a_chmod_alone_is_rehashed_and_kept(
    env: dict[str, str], server: Server, harness: Harness
) -> None:
    assert harness("images", "fetch", "test-img", env=env).returncode == 0
    blob(env, PAYLOAD).chmod(0o666)
    assert state(harness, env, "test-img") == "changed"
    again = harness("images", "fetch", "test-img", "--offline", env=env)
    assert again.returncode == 0 and "test-img: verified" in again.stdout
    assert blob(env, PAYLOAD).stat().st_mode & 0o777 == 0o444
    assert len(server.gets("/disk.img")) == 1
    assert state(harness, env, "test-img") == "verified"


def test_an_edited_unpacked_image_is_unpacked_again(env: dict[str, str], harness: Harness) -> None:
    assert harness("images", "fetch", "test-xz", env=env).returncode == 0
    unpacked = blob(env, PACKED).with_name(blob(env, PACKED).name + ".unpacked")
    assert unpacked.read_bytes() == PAYLOAD
    tamper(unpacked, b"evil" + PAYLOAD[4:])
    again = harness("images", "fetch", "test-xz", "--offline", env=env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert unpacked.read_bytes() == PAYLOAD and unpacked.stat().st_mode & 0o222 == 0
    # The content-addressed directory holds only digests (what test_zz_integrity reads).
    names = {p.name for p in unpacked.parent.iterdir()}
    assert names == {blob(env, PACKED).name, unpacked.name}


def test_file_urls_are_a_local_mirror(env: dict[str, str], harness: Harness) -> None:
    got = harness("images", "fetch", "test-local", "--offline", env=env)
    assert got.returncode == 0, got.stdout + got.stderr
    assert f"test-local: verified {sha256(PAYLOAD)}" in got.stdout
    assert blob(env, PAYLOAD).read_bytes() == PAYLOAD
    assert state(harness, env, "test-local") == "verified"
    missing = harness("images", "fetch", "test-local-missing", env=env)
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert missing.stdout.strip().endswith("gone.img: No such file or directory")


def test_records_written_by_several_threads_at_once_are_whole(tmp_path: Path) -> None:
    # Cells set up in parallel may mark one blob at once; the record had its own
    # writer with one temporary name per process, and threads renamed it from under
    # each other (FileNotFoundError). It is now the one atomic writer (harness/atomic.py).
    blob = tmp_path / "cache" / "blobs" / "sha256" / ("0" * 64)
    blob.parent.mkdir(parents=True)
    blob.write_bytes(b"blob")
    failed: list[BaseException] = []

    def mark() -> None:
        for _ in range(200):
            try:
                mark_checked(blob)
            except OSError as e:
                failed.append(e)

    threads = [threading.Thread(target=mark) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failed, failed[:2]
    assert unchanged(blob)
    checked = tmp_path / "cache" / "checked" / "sha256"
    assert [p.name for p in checked.iterdir()] == [f"{'0' * 64}.json"]  # no temporary left
