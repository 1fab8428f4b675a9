"""Downloads are bounded: an endless body stops at the catalog's size (or the
configured maximum), a trickling server is given up on, a checksum file is read up to
a small limit; each is one line, and the cache keeps nothing half-made."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from conftest import Harness
from http_server import Served, Server

from harness.images.digest import Digest
from harness.images.download import Downloader, DownloadError
from harness.images.limits import DownloadLimits

BLOCK = os.urandom(1 << 20)


def sha256(data: bytes) -> Digest:
    return Digest("sha256", hashlib.sha256(data).hexdigest())


@pytest.fixture
def server() -> Iterator[Server]:
    with Server() as running:
        yield running


def cache_is_clean(cache: Path) -> bool:
    partial = list((cache / "partial").iterdir()) if (cache / "partial").exists() else []
    blobs = (
        [p for p in (cache / "blobs").rglob("*") if p.is_file()]
        if (cache / "blobs").exists()
        else []
    )
    return not partial and not blobs


def test_an_endless_body_stops_at_the_catalogs_size(server: Server, tmp_path: Path) -> None:
    server.files["/endless.img"] = Served(BLOCK, endless=True)
    fetcher = Downloader(tmp_path / "cache", backoff_s=0.05)
    started = time.monotonic()
    with pytest.raises(
        DownloadError, match=r"more than the catalog's size of it \(3145728 bytes\)"
    ):
        fetcher.fetch(server.url("/endless.img"), sha256(BLOCK * 3), size=3 << 20)
    assert time.monotonic() - started < 10
    assert cache_is_clean(tmp_path / "cache")
    assert len(server.gets("/endless.img")) == 1  # a body too big is not tried again


def test_without_a_size_the_configured_maximum_bounds_it(server: Server, tmp_path: Path) -> None:
    server.files["/endless.img"] = Served(BLOCK, endless=True)
    fetcher = Downloader(tmp_path / "cache", limits=DownloadLimits(max_bytes=2 << 20))
    with pytest.raises(DownloadError, match=r"more than 2097152 bytes \(\$HARNESS_DOWNLOAD_MAX\)"):
        fetcher.fetch(server.url("/endless.img"), sha256(BLOCK))
    assert cache_is_clean(tmp_path / "cache")


def test_a_length_beyond_the_size_is_refused_before_reading(server: Server, tmp_path: Path) -> None:
    server.files["/big.img"] = Served(BLOCK, length=10 << 30)
    with pytest.raises(DownloadError, match="the server offers 10737418240 bytes, more than"):
        Downloader(tmp_path / "cache").fetch(server.url("/big.img"), sha256(BLOCK), size=1 << 20)
    assert cache_is_clean(tmp_path / "cache")


def test_a_trickling_server_is_given_up_on(server: Server, tmp_path: Path) -> None:
    server.files["/slow.img"] = Served(b"x" * 100, trickle_s=2.0)
    limits = DownloadLimits(min_rate=1000, rate_window_s=3.0)
    started = time.monotonic()
    with pytest.raises(DownloadError, match=r"too slow: \d bytes in the last \d s"):
        Downloader(tmp_path / "cache", limits=limits).fetch(server.url("/slow.img"), sha256(b"x"))
    assert time.monotonic() - started < 12


@pytest.fixture
def bad_catalog(server: Server, tmp_path: Path) -> dict[str, str]:
    server.files["/endless.img"] = Served(BLOCK, endless=True)
    server.files["/slow.img"] = Served(b"x" * 100, trickle_s=2.0)
    server.files["/SUMS"] = Served(b"0" * 64 + b"  x.img\n", endless=True)
    server.files["/x.img"] = Served(BLOCK)

    def entry(disk: dict[str, object]) -> dict[str, object]:
        return {"distro": "test", "release": "0", "boot": "uefi", "format": "raw", "disk": disk,
                "source": "the tests"}  # fmt: skip

    entries = {
        "test-endless": entry({"url": server.url("/endless.img"), "digest": str(sha256(BLOCK)),
                               "size": 3 << 20}),
        "test-endless-nosize": entry({"url": server.url("/endless.img"), "digest": str(sha256(BLOCK))}),
        "test-slow": entry({"url": server.url("/slow.img"), "digest": str(sha256(b"x"))}),
        "test-sums": entry({"url": server.url("/x.img"), "checksums": server.url("/SUMS")}),
    }  # fmt: skip
    (tmp_path / "catalog.yaml").write_text(yaml.safe_dump(entries))
    return {"HARNESS_CATALOG": str(tmp_path / "catalog.yaml"), "HARNESS_CACHE": str(tmp_path / "c")}


def test_bounded_downloads_through_the_cli(
    bad_catalog: dict[str, str], harness: Harness, tmp_path: Path
) -> None:
    endless = harness("images", "fetch", "test-endless", env=bad_catalog, timeout=60)
    assert endless.returncode == 2, endless.stdout + endless.stderr
    assert "test-endless: " in endless.stdout and "more than the catalog's size" in endless.stdout
    capped = harness(
        "images", "fetch", "test-endless-nosize", timeout=60,
        env={**bad_catalog, "HARNESS_DOWNLOAD_MAX": "4MiB"},
    )  # fmt: skip
    assert capped.returncode == 2 and "more than 4194304 bytes" in capped.stdout
    started = time.monotonic()
    slow = harness(
        "images", "fetch", "test-slow", env={**bad_catalog, "HARNESS_DOWNLOAD_DEADLINE": "3"},
        timeout=60,
    )  # fmt: skip
    assert slow.returncode == 2 and "not done after 3 s" in slow.stdout, slow.stdout + slow.stderr
    assert time.monotonic() - started < 30
    sums = harness("images", "fetch", "test-sums", env=bad_catalog, timeout=60)
    assert sums.returncode == 2
    assert "a checksum file of more than 1048576 bytes: refused" in sums.stdout
    for proc in (endless, capped, slow, sums):
        assert "Traceback" not in proc.stderr and len(proc.stdout.strip().splitlines()) == 1
    cache = Path(bad_catalog["HARNESS_CACHE"])
    assert (
        not [p for p in (cache / "blobs").rglob("*") if p.is_file()]
        if (cache / "blobs").exists()
        else True
    )
    assert all(p.stat().st_size < 200 for p in (cache / "partial").glob("*.part"))
    bad = harness(
        "images", "fetch", "test-slow", env={**bad_catalog, "HARNESS_DOWNLOAD_MAX": "lots"}
    )
    assert bad.returncode == 2 and "HARNESS_DOWNLOAD_MAX='lots'" in bad.stderr
