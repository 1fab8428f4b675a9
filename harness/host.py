"""What this host can run: the QEMU binary, its version and machine types, whether KVM
works, and what the CPU model supports. Found by asking QEMU, never assumed.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.atomic import write_atomic
from harness.errors import InfraError

QEMU_ENV = "HARNESS_QEMU"
DEFAULT_QEMU = "qemu-system-aarch64"
_VIRT = re.compile(r"^(virt(?:-\d+\.\d+)?)\s+.*?(?:\(alias of (\S+)\))?$")


@dataclass(frozen=True)
class Host:
    qemu: str
    qemu_version: str
    machines: tuple[str, ...]  # "virt" and every "virt-X.Y", oldest first
    virt_alias: str  # the versioned type that plain "virt" is
    arch: str
    kvm: bool
    cpus: int
    memory_mib: int
    tcg_cpu_options: tuple[str, ...]  # e.g. ("pauth-impdef=on",)

    def accel(self, wanted: str) -> str:
        if wanted == "auto":
            return "kvm" if self.kvm else "tcg"
        if wanted == "kvm" and not self.kvm:
            raise InfraError(f"KVM cannot run aarch64 guests on this {self.arch} host")
        return wanted

    def facts(self) -> dict[str, Any]:
        return {
            "arch": self.arch,
            "kvm": self.kvm,
            "cpus": self.cpus,
            "memory_mib": self.memory_mib,
            "qemu": self.qemu,
            "qemu_version": self.qemu_version,
            "kernel": platform.release(),
        }


def find_qemu(option: str | None, env: Mapping[str, str]) -> str:
    wanted = option or env.get(QEMU_ENV) or DEFAULT_QEMU
    path = shutil.which(wanted)
    if path is None:
        raise InfraError(
            f"QEMU {wanted!r} not found: install it (apt-get install qemu-system-arm) "
            f"or point --qemu / ${QEMU_ENV} at qemu-system-aarch64"
        )
    return path


def _ask(qemu: str, *args: str) -> str:
    try:
        proc = subprocess.run(
            [qemu, *args], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise InfraError(f"{qemu} {' '.join(args)} failed: {e}") from e
    if proc.returncode != 0:
        raise InfraError(f"{qemu} {' '.join(args)} failed: {proc.stderr.strip()[:200]}")
    return proc.stdout


def machine_types(machine_help: str) -> tuple[tuple[str, ...], str]:
    """The virt machine types in `-machine help` output, oldest first, and what
    plain `virt` is an alias of."""
    found: list[str] = []
    alias = ""
    for line in machine_help.splitlines():
        match = _VIRT.match(line.strip())
        if match:
            found.append(match.group(1))
            alias = match.group(2) or alias
    return tuple(sorted(set(found), key=machine_sort_key)), alias


def machine_sort_key(machine: str) -> tuple[int, ...]:
    """virt-2.6 < virt-2.10 < virt-7.2 < virt (the newest, whatever it aliases)."""
    numbers = re.findall(r"\d+", machine)
    return tuple(int(n) for n in numbers) if numbers else (1 << 30,)


def kvm_usable(arch: str) -> bool:
    if arch not in ("aarch64", "arm64"):
        return False
    try:
        os.close(os.open("/dev/kvm", os.O_RDWR))
    except OSError:
        return False
    return True


def _memory_mib() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // (1 << 20)
    except (ValueError, OSError):
        return 0


def _ask_qemu(qemu: str) -> dict[str, Any]:
    """What only the QEMU binary can tell: version, machine types, CPU options."""
    version_text = _ask(qemu, "--version")
    match = re.search(r"version (\S+)", version_text)
    machines, alias = machine_types(_ask(qemu, "-machine", "help"))
    cpu_help = _ask(qemu, "-device", "max-arm-cpu,help")
    return {
        "version": match.group(1) if match else version_text.strip(),
        "machines": list(machines),
        "alias": alias,
        # Pointer authentication with QEMU's own hash instead of the architected
        # QARMA is far cheaper to emulate under TCG.
        "cpu_options": ["pauth-impdef=on"] if "pauth-impdef" in cpu_help else [],
    }


def _qemu_facts(qemu: str, cache: Path | None) -> dict[str, Any]:
    """_ask_qemu, remembered per binary (path, size, mtime): asking costs three QEMU
    starts, a tenth of a second on every command."""
    stat = os.stat(qemu)
    key = f"{os.path.realpath(qemu)}|{stat.st_size}|{stat.st_mtime_ns}"
    try:
        if cache is not None:
            stored: dict[str, Any] = json.loads(cache.read_text())
            if stored.get("key") == key:
                return stored
    except (OSError, ValueError):
        pass
    facts = {"key": key, **_ask_qemu(qemu)}
    if cache is not None:
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(cache, json.dumps(facts))
        except OSError:
            pass
    return facts


def discover(qemu_option: str | None, env: Mapping[str, str], cache: Path | None = None) -> Host:
    qemu = find_qemu(qemu_option, env)
    facts = _qemu_facts(qemu, cache)
    arch = platform.machine()
    return Host(
        qemu=qemu,
        qemu_version=facts["version"],
        machines=tuple(facts["machines"]),
        virt_alias=facts["alias"],
        arch=arch,
        kvm=kvm_usable(arch),
        cpus=os.cpu_count() or 1,
        memory_mib=_memory_mib(),
        tcg_cpu_options=tuple(facts["cpu_options"]),
    )
