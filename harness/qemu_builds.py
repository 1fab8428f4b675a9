"""QEMU builds beside the host's (images/qemu.yaml): Debian's qemu-system-arm of a
release for this host's architecture, with every library it needs and its option
ROMs (ipxe-qemu), unpacked into the cache without installing anything: the host's
packages and apt configuration are never touched.

A build is keyed by the versions of all its packages and made once. It runs through
its own dynamic loader (a newer glibc than the host's cannot be loaded by the host's)
with its own libraries, modules, firmware and option ROMs (-L), behind a small
wrapper script, `bin/qemu-system-aarch64`, that the rest of the harness uses like any
QEMU binary (`--qemu PATH`, $HARNESS_QEMU, cmdline.sh).
"""

from __future__ import annotations

import hashlib
import json
import platform
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from harness import cancel as cancelling
from harness.atomic import write_atomic
from harness.cancel import Cancel
from harness.errors import CellSkipped, ImageBuildError, UsageError
from harness.images.debian import Archive, index_digest
from harness.images.store import ImageStore
from harness.yamlfile import safe_load

if TYPE_CHECKING:
    from harness.host import Host

PACKAGE = "qemu-system-arm"  # ships qemu-system-aarch64
PACKAGES = (PACKAGE, "ipxe-qemu")  # ipxe-qemu: efi-virtio.rom for virtio-net-pci
BINARY = "usr/bin/qemu-system-aarch64"
WRAPPER = "bin/qemu-system-aarch64"
# Host architecture -> Debian architecture, multiarch directory, dynamic loader.
ARCHES = {
    "x86_64": ("amd64", "x86_64-linux-gnu", "ld-linux-x86-64.so.2"),
    "aarch64": ("arm64", "aarch64-linux-gnu", "ld-linux-aarch64.so.1"),
}
# Not needed to run QEMU, and most of the tree's size.
_PRUNE = ("etc", "var", "usr/share/doc", "usr/share/man", "usr/share/locale", "usr/sbin")


@dataclass(frozen=True)
class QemuBuild:
    """A QEMU build in the cache: `qemu` is its wrapper, run like qemu-system-aarch64."""

    name: str
    suite: str
    qemu: Path
    version: str  # of the qemu-system-arm package, e.g. "1:10.0.13+ds-0+deb13u1"
    qemu_version: str  # what `qemu-system-aarch64 --version` says, e.g. "10.0.13"
    packages: tuple[str, ...]  # "name=version" of every package in the tree


def load_qemu_builds(path: Path) -> dict[str, str]:
    """QEMU build name -> Debian suite, from images/qemu.yaml (none if it is absent).

    Raises UsageError naming the file and the entry."""
    if not path.exists():
        return {}
    try:
        data = safe_load(path.read_text()) or {}
        builds = {str(name): str(fields["suite"]) for name, fields in data.items()}
    except (OSError, yaml.YAMLError, KeyError, TypeError, AttributeError) as e:
        raise UsageError(f"{path}: cannot read QEMU builds: {e}") from e
    for name in builds:
        if name == "host":
            raise UsageError(f"{path}: {name}: `host` is the host's own QEMU; name it otherwise")
    return builds


def host_arch() -> tuple[str, str, str]:
    machine = platform.machine()
    if machine not in ARCHES:
        raise ImageBuildError(f"QEMU builds need an x86_64 or aarch64 host, not {machine}")
    return ARCHES[machine]


def cached_build(name: str, cache: Path) -> QemuBuild | None:
    """The build of `name` in the cache, or None if it was never made."""
    record = ImageStore(cache / "qemu").record(name)
    return None if record is None else _from_record(record)


def qemu_build(
    name: str, suite: str, cache: Path, mirror: str | None, offline: bool, cancel: Cancel = None
) -> QemuBuild:
    """The build from the cache, or made now (unless offline: CellSkipped).

    Raises ImageBuildError when apt or the unpacked QEMU fails, Cancelled once
    `cancel` is set (harness/cancel.py)."""
    found = cached_build(name, cache)
    if found is not None:
        return found
    if offline or mirror is None:
        raise CellSkipped(f"QEMU build {name} is not cached (offline)")
    return build(name, suite, cache, mirror, cancel)


def build(name: str, suite: str, cache: Path, mirror: str, cancel: Cancel = None) -> QemuBuild:
    """Resolves the packages of `suite` now and makes the build unless the cache holds
    one of exactly these package versions. About 37 MB of .debs for trixie. Stops
    (Cancelled, harness/cancel.py) between packages and in each tool once `cancel`
    is set. A build resolved from the mirror's index as it still is
    (`_still_current`) is taken as it is, without apt (about 10 s of apt's own work
    saved)."""
    current = _still_current(name, suite, cache, mirror)
    if current is not None:
        return current
    arch, multiarch, loader = host_arch()
    archive = Archive(cache / f"apt-{arch}", suite, mirror, arch=arch, cancel=cancel)
    archive.update()
    debs = archive.download_with_dependencies(*PACKAGES)
    versions = sorted(f"{pkg.name}={pkg.version}" for pkg in debs)
    key = hashlib.sha256("\n".join(versions).encode()).hexdigest()[:16]
    store = ImageStore(cache / "qemu")
    record = store.record(name)
    if record is not None and Path(record["path"]).name == key:
        _remember_index(name, key, suite, mirror, archive, cache)
        return _from_record(record)
    main = next((pkg for pkg in debs if pkg.name == PACKAGE), None)
    if main is None:
        raise ImageBuildError(f"Debian {suite} {arch} has no {PACKAGE}")
    with store.building(name) as staging:
        root = staging / "root"
        for deb in debs.values():
            _unpack(deb, root, cancel)
        for sub in _PRUNE:
            shutil.rmtree(root / sub, ignore_errors=True)
        wrapper = staging / WRAPPER
        wrapper.parent.mkdir()
        wrapper.write_text(_wrapper_script(name, main.version, multiarch, loader))
        wrapper.chmod(0o555)
        qemu_version = _version(wrapper, cancel)
        cancelling.check(cancel)
        store.publish(
            name,
            key,
            staging,
            {
                "name": name,
                "suite": suite,
                "arch": arch,
                "version": main.version,
                "qemu_version": qemu_version,
                "packages": versions,
            },
            read_only=False,
        )
    _remember_index(name, key, suite, mirror, archive, cache)
    found = cached_build(name, cache)
    assert found is not None
    return found


def _checked_path(name: str, cache: Path) -> Path:
    return cache / "qemu" / f"checked-{name}.json"


def _still_current(name: str, suite: str, cache: Path, mirror: str) -> QemuBuild | None:
    """The cached build of `name` if its packages were resolved from the mirror's
    index of `suite` that the mirror still serves (the same InRelease: one request),
    else None (then apt resolves them again)."""
    found = cached_build(name, cache)
    try:
        checked = json.loads(_checked_path(name, cache).read_text())
    except (OSError, ValueError):
        return None
    if found is None or not isinstance(checked, dict):
        return None
    if checked.get("build") != str(found.qemu) or checked.get("index") != [mirror, suite]:
        return None
    digest = checked.get("sha256")
    return found if digest and index_digest(mirror, suite) == digest else None


def _remember_index(
    name: str, key: str, suite: str, mirror: str, archive: Archive, cache: Path
) -> None:
    """Notes which index the build of `name` (`key`) was resolved from: apt's
    InRelease, if the mirror still serves that one (else the next build asks apt)."""
    digest = archive.index_digest()
    if digest is None or index_digest(mirror, suite) != digest:
        return
    record = ImageStore(cache / "qemu").record(name)
    if record is None or Path(record["path"]).name != key:
        return
    checked = {"build": str(_from_record(record).qemu), "index": [mirror, suite], "sha256": digest}
    write_atomic(_checked_path(name, cache), json.dumps(checked) + "\n")


def _unpack(deb: Path, root: Path, cancel: Cancel) -> None:
    proc = cancelling.run(["dpkg-deb", "--extract", str(deb), str(root)], cancel, text=True)
    if proc.returncode != 0:
        raise ImageBuildError(f"dpkg-deb could not unpack {deb.name}: {proc.stderr.strip()}")


def _wrapper_script(name: str, version: str, multiarch: str, loader: str) -> str:
    """sh, because the result must be a program any caller can exec: the loader runs
    QEMU with the tree's libraries only; QEMU_MODULE_DIR and -L point it at the tree's
    modules, firmware and option ROMs before the host's."""
    return (
        "#!/bin/sh\n"
        f"# QEMU build {name}: Debian's {PACKAGE} {version}, unpacked by the harness.\n"
        'root="$(dirname "$(dirname "$(readlink -f "$0")")")/root"\n'
        f'lib="$root/usr/lib/{multiarch}"\n'
        'export QEMU_MODULE_DIR="$lib/qemu"\n'
        f'exec "$lib/{loader}" --library-path "$lib" "$root/{BINARY}" '
        '-L "$root/usr/share/qemu" "$@"\n'
    )


def _version(wrapper: Path, cancel: Cancel) -> str:
    """The build's own `--version` line: proves it starts with the tree's libraries."""
    try:
        proc = cancelling.run([str(wrapper), "--version"], cancel, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise ImageBuildError(f"{wrapper} does not start: {e}") from e
    words = proc.stdout.split()
    if proc.returncode != 0 or "version" not in words:
        raise ImageBuildError(f"{wrapper} does not start: {proc.stderr.strip()[:300]}")
    return words[words.index("version") + 1]


def _from_record(record: dict[str, Any]) -> QemuBuild:
    base = Path(record["path"])
    return QemuBuild(
        name=record["name"],
        suite=record["suite"],
        qemu=base / WRAPPER,
        version=record["version"],
        qemu_version=record["qemu_version"],
        packages=tuple(record["packages"]),
    )


def describe(build: QemuBuild) -> str:
    """One line for people: name, QEMU version, package version, where it is."""
    return f"{build.name}: QEMU {build.qemu_version} ({PACKAGE} {build.version}) {build.qemu}"


def build_host(build: QemuBuild, env: Mapping[str, str], cache: Path) -> Host:
    """The Host of a build, as for the host's QEMU: its version and machine types
    asked of it once and remembered per build under `cache`."""
    from harness.host import discover

    return discover(str(build.qemu), env, cache / f"qemu-facts-{build.name}.json")


def build_machines(
    builds: Mapping[str, str], env: Mapping[str, str], cache: Path
) -> dict[str, tuple[str, ...] | None]:
    """Each build's machine types, None for a build not made yet (for expand)."""
    found: dict[str, tuple[str, ...] | None] = {}
    for name in builds:
        made = cached_build(name, cache)
        found[name] = None if made is None else build_host(made, env, cache).machines
    return found


def build_aliases(builds: Mapping[str, str], env: Mapping[str, str], cache: Path) -> dict[str, str]:
    """What each made build's plain `virt` is an alias of (its `-machine help`, asked
    once and remembered as build_host does); a build not made yet is left out."""
    found: dict[str, str] = {}
    for name in builds:
        made = cached_build(name, cache)
        if made is not None:
            found[name] = build_host(made, env, cache).virt_alias
    return found
