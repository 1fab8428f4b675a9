"""Downloads against a real HTTP server on 127.0.0.1: verified, resumed, retried,
locked, offline; and a downloaded image booted through AAVMF with its NoCloud seed."""

from __future__ import annotations

import hashlib
import json
import lzma
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, Harness
from http_server import Served, Server

from harness.images.blobs import unpack
from harness.images.digest import Digest, from_checksums
from harness.images.download import DigestMismatch, Downloader, DownloadError, NotCached
from harness.model import Image

PAYLOAD = os.urandom(3 << 20) + b"end"


def sha256(data: bytes) -> Digest:
    return Digest("sha256", hashlib.sha256(data).hexdigest())


@pytest.fixture
def server() -> Iterator[Server]:
    with Server() as running:
        yield running


def downloader(tmp_path: Path, **kwargs: object) -> Downloader:
    return Downloader(tmp_path / "cache", backoff_s=0.05, **kwargs)  # type: ignore[arg-type]


def test_a_good_download_is_verified_cached_and_read_only(server: Server, tmp_path: Path) -> None:
    server.files["/disk.img"] = Served(PAYLOAD)
    fetcher = downloader(tmp_path)
    got = fetcher.fetch(server.url("/disk.img"), sha256(PAYLOAD))
    assert got.verified and got.downloaded == len(PAYLOAD) and got.path.read_bytes() == PAYLOAD
    assert got.path == tmp_path / "cache" / "blobs" / "sha256" / sha256(PAYLOAD).hex
    assert got.path.stat().st_mode & 0o222 == 0
    again = downloader(tmp_path).fetch(server.url("/disk.img"), sha256(PAYLOAD))
    assert again.downloaded == 0 and len(server.gets("/disk.img")) == 1


def test_a_cut_download_resumes_with_range(server: Server, tmp_path: Path) -> None:
    server.files["/disk.img"] = Served(PAYLOAD, cut_first_after=1 << 20)
    got = downloader(tmp_path).fetch(server.url("/disk.img"), sha256(PAYLOAD))
    assert got.path.read_bytes() == PAYLOAD
    assert [r.range for r in server.gets("/disk.img")] == [None, f"bytes={1 << 20}-"]
    assert got.downloaded == len(PAYLOAD)


def test_a_server_that_ignores_range_makes_it_start_over(server: Server, tmp_path: Path) -> None:
    server.files["/disk.img"] = Served(PAYLOAD, cut_first_after=1 << 20, ignore_range=True)
    got = downloader(tmp_path).fetch(server.url("/disk.img"), sha256(PAYLOAD))
    assert got.path.read_bytes() == PAYLOAD
    assert len(server.gets("/disk.img")) == 2 and got.downloaded == (1 << 20) + len(PAYLOAD)


def test_a_changed_file_is_not_glued_to_an_old_partial(server: Server, tmp_path: Path) -> None:
    old = b"old" * 500_000
    server.files["/disk.img"] = Served(old, cut_first_after=1 << 20)
    with pytest.raises(DownloadError, match="partial download is kept"):
        downloader(tmp_path, attempts=1).fetch(server.url("/disk.img"), sha256(PAYLOAD))
    server.files["/disk.img"] = Served(PAYLOAD)  # a new file, with a new ETag
    got = downloader(tmp_path).fetch(server.url("/disk.img"), sha256(PAYLOAD))
    assert got.path.read_bytes() == PAYLOAD
    assert server.gets("/disk.img")[-1].range == f"bytes={1 << 20}-"  # If-Range said no


def test_a_wrong_digest_is_rejected_and_leaves_the_cache_clean(
    server: Server, tmp_path: Path
) -> None:
    server.files["/disk.img"] = Served(PAYLOAD)
    wrong = sha256(b"something else")
    with pytest.raises(DigestMismatch) as caught:
        downloader(tmp_path).fetch(server.url("/disk.img"), wrong)
    assert server.url("/disk.img") in str(caught.value) and str(sha256(PAYLOAD)) in str(
        caught.value
    )
    cache = tmp_path / "cache"
    assert not list((cache / "partial").iterdir())
    assert not (cache / "blobs").exists() or not any((cache / "blobs").rglob("*"))
    assert len(server.gets("/disk.img")) == 1  # a wrong digest is never retried


def test_503_is_retried_and_404_is_not(server: Server, tmp_path: Path) -> None:
    server.files["/busy.img"] = Served(PAYLOAD, fail_first=2)
    got = downloader(tmp_path).fetch(server.url("/busy.img"), sha256(PAYLOAD))
    assert got.verified and len(server.gets("/busy.img")) == 3
    with pytest.raises(DownloadError, match="HTTP 404"):
        downloader(tmp_path).fetch(server.url("/gone.img"), sha256(b"gone"))
    assert len(server.gets("/gone.img")) == 1


def test_offline_never_opens_a_socket(server: Server, tmp_path: Path) -> None:
    server.files["/disk.img"] = Served(PAYLOAD)
    with pytest.raises(NotCached, match="not cached \\(offline\\)"):
        downloader(tmp_path, offline=True).fetch(server.url("/disk.img"), sha256(PAYLOAD))
    assert server.connections == 0
    downloader(tmp_path).fetch(server.url("/disk.img"), sha256(PAYLOAD))
    assert (
        downloader(tmp_path, offline=True)
        .fetch(server.url("/disk.img"), sha256(PAYLOAD))
        .downloaded
        == 0
    )


def test_checksum_file_styles() -> None:
    hex256, hex512 = "a" * 64, "b" * 128
    assert from_checksums(f"{hex256}  disk.qcow2\n{'c' * 64} *other.img\n", "disk.qcow2") == Digest(
        "sha256", hex256
    )
    assert from_checksums(f"{hex256} *disk.qcow2\n", "disk.qcow2") == Digest("sha256", hex256)
    fedora = (
        "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n"
        f"# Fedora-Cloud-40-1.14-aarch64.qcow2: 123 bytes\nSHA256 (Fedora-Cloud-40-1.14-aarch64.qcow2) = {hex256}\n"
        "-----BEGIN PGP SIGNATURE-----\n\nabc\n-----END PGP SIGNATURE-----\n"
    )
    assert from_checksums(fedora, "Fedora-Cloud-40-1.14-aarch64.qcow2") == Digest("sha256", hex256)
    both = f"SHA256 (x.img) = {hex256}\nSHA512 (x.img) = {hex512}\n"
    assert from_checksums(both, "x.img") == Digest("sha512", hex512)
    assert from_checksums(f"{hex256}  x.img.sig\n", "x.img") is None


def test_xz_images_are_unpacked_once_and_keep_the_originals_digest(
    server: Server, tmp_path: Path
) -> None:
    packed = lzma.compress(PAYLOAD, preset=0)
    server.files["/disk.img.xz"] = Served(packed)
    got = downloader(tmp_path).fetch(server.url("/disk.img.xz"), sha256(packed))
    plain = unpack(got.path, "xz")
    assert plain.read_bytes() == PAYLOAD and plain != got.path
    assert unpack(got.path, "xz") == plain and plain.stat().st_mode & 0o222 == 0


@pytest.fixture
def cloud(tiny: Image, catalog: object, server: Server, tmp_path: Path) -> dict[str, str]:
    """A downloadable cloud-like image: quirk-nocloud's disk as qcow2, whose root
    password only a NoCloud seed can set; served with a checksum file."""
    nocloud = catalog.image("quirk-nocloud")  # type: ignore[attr-defined]
    qcow2 = tmp_path / "cloud.qcow2"
    subprocess.run(
        ["qemu-img", "convert", "-O", "qcow2", str(nocloud.disk), str(qcow2)], check=True
    )
    digest = sha256(qcow2.read_bytes())
    server.files["/cloud/cloud.qcow2"] = Served(qcow2, delay_s=0.002)
    server.files["/cloud/SHA256SUMS"] = Served(f"{digest.hex}  cloud.qcow2\n".encode())
    server.files["/plain.img"] = Served(PAYLOAD)
    entries = {
        "test-cloud": {
            "distro": "debian", "release": "12", "boot": "uefi", "format": "qcow2",
            "disk": {"url": server.url("/cloud/cloud.qcow2"), "checksums": server.url("/cloud/SHA256SUMS")},
            "login": {"user": "root", "cloud_init": True}, "timeout": 120, "memory_mib": 1024,
            "source": "built by the tests",
        },
        "test-nodigest": {
            "distro": "test", "release": "0", "boot": "uefi", "format": "raw",
            "disk": {"url": server.url("/plain.img")}, "source": "the tests",
        },
        "test-unreachable": {
            "distro": "test", "release": "0", "boot": "uefi", "format": "raw",
            "disk": {"url": "http://harness-test.invalid/disk.img", "digest": str(sha256(PAYLOAD))},
            "source": "the tests",
        },
    }  # fmt: skip
    (tmp_path / "catalog.yaml").write_text(yaml.safe_dump(entries))
    return {
        "HARNESS_CATALOG": str(tmp_path / "catalog.yaml"),
        "HARNESS_CACHE": str(tmp_path / "cache"),
    }


def test_two_fetches_at_once_download_once(cloud: dict[str, str], server: Server) -> None:
    fetches = [
        subprocess.Popen([sys.executable, "-m", "harness.cli", "images", "fetch", "test-cloud"], cwd=ROOT,
                         env={**os.environ, **cloud}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]  # fmt: skip
    outputs = [fetch.communicate(timeout=120) for fetch in fetches]
    assert all(fetch.returncode == 0 for fetch in fetches), outputs
    assert len(server.gets("/cloud/cloud.qcow2")) == 1
    assert all("test-cloud: verified sha256:" in out for out, _ in outputs)


def test_unverifiable_downloads_need_no_verify(cloud: dict[str, str], harness: Harness) -> None:
    refused = harness("images", "fetch", "test-nodigest", env=cloud)
    assert refused.returncode == 2 and "--no-verify" in refused.stdout
    taken = harness("images", "fetch", "test-nodigest", "--no-verify", env=cloud)
    assert taken.returncode == 0 and "UNVERIFIED" in taken.stdout
    listing = harness("images", "list", env=cloud).stdout
    assert any(
        line.startswith("test-nodigest") and "unverified" in line for line in listing.splitlines()
    )


def test_an_unreachable_network_is_an_error_cell_and_offline_a_skip(
    cloud: dict[str, str], harness: Harness, tmp_path: Path
) -> None:
    proc = harness(
        "run", "test-unreachable/aavmf/virt/pci", "--quiet", "--out", str(tmp_path / "a"), env=cloud
    )
    assert proc.returncode == 2
    result = json.loads((tmp_path / "a" / "result.json").read_text())
    assert (result["status"], result["reason"]) == ("error", "download-failed")
    assert "http://harness-test.invalid/disk.img" in result["detail"]
    offline = harness(
        "run",
        "test-cloud/aavmf/virt/pci",
        "--offline",
        "--quiet",
        "--out",
        str(tmp_path / "b"),
        env=cloud,
    )
    result = json.loads((tmp_path / "b" / "result.json").read_text())
    assert (result["status"], result["reason"]) == ("skip", "not-cached-offline")
    assert offline.stdout.startswith("SKIP test-cloud/aavmf/virt/pci")


def test_a_downloaded_image_boots_through_aavmf_with_its_nocloud_seed(
    cloud: dict[str, str], harness: Harness, tmp_path: Path
) -> None:
    proc = harness(
        "run", "test-cloud/aavmf/virt/pci", "--quiet", "--out", str(tmp_path / "run"), env=cloud
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith("PASS test-cloud/aavmf/virt/pci login ")
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert result["image_verified"] is True and result["image_digest"].startswith("sha256:")
    assert "harness-nocloud: applied the seed" in (tmp_path / "run" / "console.log").read_text()
    base = Path(cloud["HARNESS_CACHE"]) / "blobs" / "sha256" / result["image_digest"].split(":")[1]
    assert hashlib.sha256(base.read_bytes()).hexdigest() == result["image_digest"].split(":")[1]
    again = harness(
        "run",
        "test-cloud/aavmf/virt/mmio",
        "--offline",
        "--quiet",
        "--out",
        str(tmp_path / "again"),
        env=cloud,
    )
    assert again.returncode == 0, again.stdout + again.stderr  # cached: no network needed


def test_named_firmware_builds_are_debian_packages_of_other_releases(
    tiny: Image, harness: Harness, tmp_path: Path
) -> None:
    proc = harness(
        "run", "debian-12-tiny/aavmf-bullseye/virt/pci", "--quiet", "--out", str(tmp_path)
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["firmware_version"].startswith("2020.11")  # bullseye's edk2
    assert result["firmware_digest"].startswith("sha256:")
    assert "BdsDxe: " in (tmp_path / "console.log").read_text()  # bullseye's edk2 prints no banner
    assert "firmware" in result["stage_times"]
    listed = harness("list", "--profile", "nightly", "-k", "aavmf-trixie").stdout
    assert "debian-12-tiny/aavmf-trixie/virt/pci" in listed


def test_a_combination_an_image_cannot_do_is_a_skip_in_a_matrix(
    cloud: dict[str, str], harness: Harness, tmp_path: Path
) -> None:
    matrix = tmp_path / "m.yaml"
    matrix.write_text(
        "profiles:\n  p:\n    matrix: {image: test-cloud, firmware: none, machine: virt, transport: pci}\n"
    )
    proc = harness(
        "matrix",
        "--matrix",
        str(matrix),
        "--profile",
        "p",
        "--results",
        str(tmp_path / "r"),
        env=cloud,
    )
    # the one cell is a skip: nothing booted, which is exit 2 (README, The matrix)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "nothing booted: its 1 cell was skipped" in proc.stderr
    # nor does `latest` move to it (README: the newest run that booted something)
    assert not (tmp_path / "r" / "latest").exists()
    (run,) = (tmp_path / "r").glob("2*-p")
    (cell,) = json.loads((run / "results.json").read_text())["cells"]
    assert (cell["outcome"], cell["reason"]) == ("skip", "impossible")
    assert "has no kernel for direct boot" in cell["detail"]
    alone = harness("run", "test-cloud/none/virt/pci", "--out", str(tmp_path / "alone"), env=cloud)
    assert alone.returncode == 2 and "has no kernel for direct boot" in alone.stderr
