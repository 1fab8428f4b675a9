"""A Debian mirror on 127.0.0.1 for build tests: one suite's signed InRelease, its
arm64 Packages index and the .deb files the shared image cache already holds, served
by tests/http_server.py (so a build needs no other address, and the requests are
recorded). Built from the cache's own apt state: what the last real build used."""

from __future__ import annotations

import hashlib
import posixpath
import re
import subprocess
from pathlib import Path

from http_server import Served, Server

APT_HELPER = "/usr/lib/apt/apt-helper"


def _one(found: list[Path], what: str) -> Path:
    if len(found) != 1:
        raise FileNotFoundError(f"the shared cache has {len(found)} {what}: build an image first")
    return found[0]


def serve_suite(
    server: Server, cache: Path, suite: str = "bookworm", deb_delay_s: float = 0.0
) -> str:
    """Adds the suite's files to `server`; returns the mirror URI. `deb_delay_s`:
    a pause per 64 KiB of each .deb (a slow mirror)."""
    lists = cache / "apt" / suite / "lists"
    inrelease = _one(sorted(lists.glob(f"*_dists_{suite}_InRelease")), f"{suite} InRelease")
    index = _one(sorted(lists.glob(f"*_dists_{suite}_main_binary-arm64_Packages*")), "index")
    # apt keeps its lists compressed (lz4); apt-helper reads them back as they came.
    packages = subprocess.run(
        [APT_HELPER, "cat-file", str(index)], capture_output=True, check=True
    ).stdout
    base = f"/debian/dists/{suite}"
    server.files[f"{base}/InRelease"] = Served(inrelease.read_bytes())
    digest = hashlib.sha256(packages).hexdigest()
    for path in ("Packages", f"by-hash/SHA256/{digest}"):
        server.files[f"{base}/main/binary-arm64/{path}"] = Served(packages)
    # The cache names .debs with their epoch (1%3a1.35...), the pool without it.
    debs = {re.sub(r"_\d+%3a", "_", p.name): p for p in (cache / "apt" / "debs").glob("*.deb")}
    for found in re.finditer(rb"^Filename: (\S+)$", packages, re.M):
        filename = found.group(1).decode()
        if posixpath.basename(filename) in debs:
            deb = debs[posixpath.basename(filename)].read_bytes()
            server.files[f"/debian/{filename}"] = Served(deb, delay_s=deb_delay_s)
    return server.url("/debian")
