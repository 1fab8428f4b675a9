"""The images built here, checked on the real artifacts (built once, cached)."""

from __future__ import annotations

import gzip
import json
import subprocess
from pathlib import Path

from conftest import Harness

from harness.catalog import Catalog
from harness.images.cpio import Archive
from harness.images.debian import MIRROR_ENV, find_mirror
from harness.images.disk import ESP_TYPE, LINUX_TYPE
from harness.model import Image


def read_newc(data: bytes) -> dict[str, tuple[int, int, bytes]]:
    """name -> (mode, rdev major, body) of a newc archive."""
    entries = {}
    at = 0
    while True:
        assert data[at : at + 6] == b"070701"
        fields = [int(data[at + 6 + 8 * i : at + 14 + 8 * i], 16) for i in range(13)]
        mode, size, rmajor, namesize = fields[1], fields[6], fields[9], fields[11]
        name_at = at + 110
        name = data[name_at : name_at + namesize - 1].decode()
        body_at = name_at + namesize + (-(110 + namesize) % 4)
        if name == "TRAILER!!!":
            return entries
        entries[name] = (mode, rmajor, data[body_at : body_at + size])
        at = body_at + size + (-size % 4)


def test_cpio_round_trip_with_a_device_node() -> None:
    archive = Archive()
    archive.directory("dev")
    archive.char_device("dev/console", 5, 1)
    archive.file("init", b"#!/bin/sh\n", 0o755)
    archive.symlink("bin/sh", "busybox")
    entries = read_newc(gzip.decompress(archive.gzipped()))
    assert entries["dev/console"][:2] == (0o20600, 5)
    assert entries["init"] == (0o100755, 0, b"#!/bin/sh\n")
    assert entries["bin/sh"][2] == b"busybox"


def test_tiny_initramfs_loads_dependencies_first(tiny: Image) -> None:
    assert tiny.initrd is not None
    entries = read_newc(gzip.decompress(tiny.initrd.read_bytes()))
    order = entries["etc/initramfs-modules"][2].decode().split()
    assert order.index("virtio_pci_modern_dev") < order.index("virtio_pci")
    assert order.index("jbd2") < order.index("ext4")
    for module in order:
        assert entries[f"lib/modules/{module}.ko"][2][:4] == b"\x7fELF"
    assert entries["dev/console"][:2] == (0o20600, 5)
    assert b"Gave up waiting for root file system device" in entries["init"][2]


def test_mmio_only_initramfs_has_no_virtio_pci(mmio_only: Image) -> None:
    assert mmio_only.initrd is not None
    order = read_newc(gzip.decompress(mmio_only.initrd.read_bytes()))["etc/initramfs-modules"][
        2
    ].split()
    assert b"virtio_pci" not in order and b"virtio_mmio" in order


def test_disk_is_gpt_with_esp_and_root_and_read_only(tiny: Image) -> None:
    assert tiny.disk is not None
    table = json.loads(
        subprocess.run(
            ["sfdisk", "--json", str(tiny.disk)], capture_output=True, text=True, check=True
        ).stdout
    )
    parts = table["partitiontable"]["partitions"]
    assert table["partitiontable"]["label"] == "gpt"
    assert [p["type"] for p in parts] == [ESP_TYPE, LINUX_TYPE]
    esp_offset = parts[0]["start"] * 512
    listing = subprocess.run(
        ["mdir", "-/", "-b", "-i", f"{tiny.disk}@@{esp_offset}", "::/"],
        capture_output=True, text=True, check=True, env={"MTOOLS_SKIP_CHECK": "1"},
    ).stdout  # fmt: skip
    assert "::/EFI/BOOT/BOOTAA64.EFI" in listing and "::/vmlinuz" in listing
    assert tiny.disk.stat().st_mode & 0o222 == 0


def test_mirror_from_configuration_or_the_hosts_apt_sources(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\n\n"
        "Types: deb deb-src\nURIs: http://mirror.example/debian/\nSuites: bookworm bookworm-updates\n"
    )
    assert find_mirror({}, tmp_path) == "http://mirror.example/debian"
    assert (
        find_mirror({MIRROR_ENV: "http://other.example/d/"}, tmp_path) == "http://other.example/d"
    )
    (tmp_path / "sources.list").write_text(
        "deb [arch=amd64] http://first.example/debian bullseye main\n"
    )
    assert find_mirror({}, tmp_path) == "http://first.example/debian"


def test_rebuild_with_nothing_changed_does_nothing(
    catalog: Catalog, tiny: Image, harness: Harness
) -> None:
    before = catalog.store.record("debian-12-tiny")
    proc = harness("images", "build", "debian-12-tiny")
    assert proc.returncode == 0, proc.stderr
    assert "debian-12-tiny: unchanged" in proc.stdout
    assert catalog.store.record("debian-12-tiny") == before


def test_images_list_shows_name_size_digest_and_build_time(tiny: Image, harness: Harness) -> None:
    proc = harness("images", "list")
    assert proc.returncode == 0
    row = next(line for line in proc.stdout.splitlines() if line.startswith("debian-12-tiny "))
    assert "built" in row and "MiB" in row and "sha256:" in row and "T" in row


def test_a_full_image_with_a_module_list_gets_its_initramfs_settings_before_the_kernel(
    tmp_path: Path,
) -> None:
    from harness.images.full import _hooks
    from harness.images.recipes import Recipe

    recipe = Recipe(
        "debian-12-full-mmio-only", "bookworm", "Debian", ("virtio_mmio", "virtio_blk", "ext4")
    )
    hooks = _hooks(recipe, tmp_path)
    assert f"--setup-hook=copy-in {tmp_path}/conf.d {tmp_path}/hooks /etc/initramfs-tools/" in hooks
    assert (tmp_path / "conf.d" / "harness-modules").read_text() == "MODULES=list\n"
    hook = (tmp_path / "hooks" / "harness-modules").read_text()
    assert (
        hook.endswith("manual_add_modules virtio_mmio virtio_blk ext4\n")
        and "virtio_pci" not in hook
    )
    plain = _hooks(Recipe("debian-12-full", "bookworm", "Debian", ()), tmp_path / "plain")
    assert not any(h.startswith("--setup-hook") for h in plain)
