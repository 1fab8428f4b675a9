"""What this host can run: the QEMU binary, its version and machine types, whether KVM
works, and what the CPU model supports. Found by asking QEMU, never assumed.
"""

from __future__ import annotations

import hashlib
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
# CPU models that run AArch64 code (QEMU's target/arm/cpu64.c and cpu-v7m.c:
# qemu-system-arm has "max" and the 32-bit Cortex-A/R/M, qemu-system-aarch64 adds these).
AARCH64_CPUS = frozenset(
    ("a64fx", "cortex-a35", "cortex-a53", "cortex-a55", "cortex-a57", "cortex-a72",
     "cortex-a76", "cortex-a710", "neoverse-n1", "neoverse-n2", "neoverse-v1")
)  # fmt: skip


class WrongTarget(InfraError):
    """The QEMU binary exists and answers but cannot run aarch64 guests."""


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
            "harness_version": harness_version(),
        }


def harness_version() -> str:
    """This harness's version as installed (pyproject.toml), "" when run from a bare
    checkout: the history names it among what changed between two nights."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("aarch64-boot-harness")
    except PackageNotFoundError:
        return ""


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
        "aarch64_cpus": aarch64_cpus(_ask(qemu, "-cpu", "help")),
        # Pointer authentication with QEMU's own hash instead of the architected
        # QARMA is far cheaper to emulate under TCG.
        "cpu_options": ["pauth-impdef=on"] if "pauth-impdef" in cpu_help else [],
    }


def _qemu_facts(qemu: str, cache: Path | None) -> dict[str, Any]:
    """_ask_qemu, remembered per binary (path, size, mtime): asking costs four QEMU
    starts, a tenth of a second on every command. Each binary has its own file
    beside `cache` (named by a digest of its path), so trying another QEMU does not
    make the usual one be asked again."""
    stat = os.stat(qemu)
    real = os.path.realpath(qemu)
    key = f"{real}|{stat.st_size}|{stat.st_mtime_ns}"
    if cache is not None:
        tag = hashlib.sha256(real.encode()).hexdigest()[:12]
        cache = cache.with_name(f"{cache.stem}-{tag}{cache.suffix}")
    try:
        if cache is not None:
            stored: dict[str, Any] = json.loads(cache.read_text())
            # Facts remembered by an older harness lack the target check: asked again.
            if stored.get("key") == key and "aarch64_cpus" in stored:
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


def aarch64_cpus(cpu_help: str) -> list[str]:
    """The AArch64 CPU models in `-cpu help` output (one name first on each line,
    after "Available CPUs:"), sorted; none means the binary cannot run our guests."""
    names = {line.split()[0] for line in cpu_help.splitlines()[1:] if line.strip()}
    return sorted(names & AARCH64_CPUS)


def check_target(qemu: str, facts: Mapping[str, Any]) -> None:
    """Raises WrongTarget unless this QEMU runs AArch64 guests on `virt`: a
    qemu-system-arm has `virt` too, and boots nothing of ours (an empty console
    until the timeout)."""
    lacks = []
    if not facts["aarch64_cpus"]:
        lacks.append("no AArch64 CPU in -cpu help (such as cortex-a57)")
    if not facts["machines"]:
        lacks.append("no virt machine type in -machine help")
    if lacks:
        raise WrongTarget(
            f"QEMU {qemu} cannot run aarch64 guests: {' and '.join(lacks)}; "
            f"use qemu-system-aarch64 (--qemu or ${QEMU_ENV})"
        )


def discover(qemu_option: str | None, env: Mapping[str, str], cache: Path | None = None) -> Host:
    """The host as QEMU and the kernel describe it.

    Raises InfraError when QEMU is missing, fails to answer, or cannot run aarch64
    guests (check_target)."""
    qemu = find_qemu(qemu_option, env)
    facts = _qemu_facts(qemu, cache)
    check_target(qemu, facts)
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
