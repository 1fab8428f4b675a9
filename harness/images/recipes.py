"""Image recipes: images/recipes.yaml (the guests the matrix is about) and
images/faults.yaml (crafted guests that fail in one known way each, for proving the
console watcher on real consoles)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from harness.errors import UsageError
from harness.yamlfile import safe_load

APPEND = "root=LABEL=root console=ttyAMA0 rootdelay=5"


@dataclass(frozen=True)
class Recipe:
    name: str
    suite: str
    os: str
    modules: tuple[str, ...]
    description: str = ""
    append: str = APPEND
    # A directory of images/tiny/faults/ whose files change the guest: an
    # initramfs-hook run by /init, rootfs/ files over the base root, a grub.cfg.
    fault: str = ""
    initrd: bool = True  # False: no initramfs at all (direct boot and GRUB)
    esp: bool = True  # False: an EFI system partition with nothing on it
    grub: str = "standalone"  # or "rescue": GRUB looking for its modules where none are
    hostname: str | None = None  # None: the image name; "": none ("(none) login:")
    cloud_init: bool = False  # root's password comes from a NoCloud seed
    # kind "installer": the Debian installer's netboot kernel and initrd from
    # `package`; it passes when `ready` (its first screen) shows, not at a login.
    # kind "full": a whole Debian system from mmdebstrap (images/full.py).
    kind: str = "tiny"
    package: str = ""
    ready: str = ""

    @property
    def host_name(self) -> str:
        return self.name if self.hostname is None else self.hostname


_FIELDS = {
    "suite": str, "os": str, "modules": tuple, "description": str, "append": str,
    "fault": str, "initrd": bool, "esp": bool, "grub": str, "hostname": str, "cloud_init": bool,
    "kind": str, "package": str, "ready": str,
}  # fmt: skip


def load_recipes(*paths: Path) -> dict[str, Recipe]:
    recipes: dict[str, Recipe] = {}
    for path in paths:
        if not path.exists():
            continue
        try:
            data = safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as e:
            raise UsageError(f"{path}: cannot read image recipes: {e}") from e
        for name, fields in data.items():
            recipes[name] = _recipe(path, name, fields)
    return recipes


def _recipe(path: Path, name: str, fields: object) -> Recipe:
    if not isinstance(fields, dict):
        raise UsageError(f"{path}: {name}: expected a mapping of recipe fields")
    unknown = set(fields) - set(_FIELDS)
    missing = {"suite", "os", "modules"} - set(fields)
    if unknown or missing:
        raise UsageError(f"{path}: {name}: unknown {sorted(unknown)} / missing {sorted(missing)}")
    values: dict[str, Any] = {}
    for key, value in fields.items():
        kind = _FIELDS[key]
        if kind is tuple:
            values[key] = tuple(str(v) for v in value)
        elif not isinstance(value, kind) and not (kind is str and value is None):
            raise UsageError(f"{path}: {name}.{key}: expected {kind.__name__}, got {value!r}")
        else:
            values[key] = value
    if values.get("grub", "standalone") not in ("standalone", "rescue"):
        raise UsageError(f"{path}: {name}.grub: standalone or rescue")
    if values.get("kind", "tiny") not in ("tiny", "installer", "full"):
        raise UsageError(f"{path}: {name}.kind: tiny, installer or full")
    if values.get("kind") == "installer" and not (values.get("package") and values.get("ready")):
        raise UsageError(f"{path}: {name}: an installer needs `package` and `ready`")
    return Recipe(name=name, **values)


def base_record(recipe: Recipe, kind: str) -> dict[str, Any]:
    """The fields every image record starts with."""
    return {
        "name": recipe.name,
        "kind": kind,
        "suite": recipe.suite,
        "os": recipe.os,
        "description": recipe.description,
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


# Measured on the 2-core x86_64 host of the README (TCG, qemu-user for the full ones).
_TYPICAL_S = {"tiny": 10.0, "installer": 10.0, "full": 22 * 60.0}
_FULL_WITH_MODULE_LIST_S = 4 * 60.0


def expected_build_s(recipe: Recipe, last: dict[str, Any] | None) -> float:
    """Seconds a build of `recipe` is expected to take: its last build's time when
    there was one (`last`, its image.json), else the kind's measured typical time
    (a full image with a module list makes a small initramfs: 4 minutes, not 22)."""
    if last and isinstance(last.get("build_seconds"), (int, float)):
        return float(last["build_seconds"])
    if recipe.kind == "full" and recipe.modules:
        return _FULL_WITH_MODULE_LIST_S
    return _TYPICAL_S.get(recipe.kind, _TYPICAL_S["tiny"])


def duration(seconds: float) -> str:
    """`45 s`, `4 min`, `1 h 5 min`: a rough duration for people."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60} min"
