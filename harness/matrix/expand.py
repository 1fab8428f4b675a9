"""From a validated matrix document and a profile to the planned cells.

Axes multiply (image x firmware x machine x transport); `include` adds cells (keys it
leaves out take every value of the axis), `exclude` drops cells that match all the
keys it gives (as GitHub Actions matrices do). Machine selectors are resolved against
the installed QEMU: `all`, `{newest: N}`, `{oldest: N}`, `virt-A.B..virt-C.D`, or
names; a named machine type QEMU lacks becomes a `skip`, never an error. The optional
`qemu` axis (`host`, the default; `all`; names of images/qemu.yaml) picks QEMU builds,
and machine selectors are resolved per build: `all` on QEMU 10.0 reaches virt-10.0.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypedDict, cast

import yaml

from harness.cells import axis_problem
from harness.devices import TRANSPORT_NAMES as TRANSPORTS
from harness.host import machine_sort_key
from harness.model import (
    BUILTIN_FIRMWARE,
    HOST_QEMU,
    Cell,
    Login,
    control_character,
)
from harness.yamlfile import FileErrors, key_of, line_of

AXES = ("image", "firmware", "machine", "transport", "qemu")
# QEMU build -> its machine types; None: a build of images/qemu.yaml not made yet.
QemuMachines = Mapping[str, Sequence[str] | None]

# The matrix document as harness/schemas/matrix.schema.json lets it be; yamlfile.load
# has checked it against the schema before it gets here.
Machine = str | dict[str, int]  # a name, all, a range, or {newest: N} / {oldest: N}
AxisValue = str | Machine | list[str] | list[Machine]
Where = list[str | int]  # a path of keys and indexes into the document


class LoginSettings(TypedDict, total=False):
    user: str | None
    password: str


class Settings(TypedDict, total=False):
    timeout: float
    accel: str
    retries: int
    login: LoginSettings


class Axes(TypedDict, total=False):
    image: AxisValue
    firmware: AxisValue
    machine: AxisValue
    transport: AxisValue
    qemu: AxisValue


class Profile(TypedDict, total=False):
    description: str
    matrix: Axes
    include: list[Axes]
    exclude: list[Axes]


class ExpectRule(TypedDict, total=False):
    match: Axes
    status: str
    stage: str
    reason: str
    bug: str
    note: str


class MatrixDocument(TypedDict, total=False):
    defaults: Settings
    images: dict[str, Settings]
    expect: list[ExpectRule]
    profiles: dict[str, Profile]


@dataclass(frozen=True)
class Expectation:
    """A cell expected to fail; stage/reason, when given, must match too."""

    stage: str | None = None
    reason: str | None = None
    bug: str = ""
    note: str = ""

    def met_by(self, status: str, stage: str, reason: str) -> bool:
        return status == "fail" and self.stage in (None, stage) and self.reason in (None, reason)


@dataclass(frozen=True)
class Planned:
    cell: Cell
    skip: str = ""  # why the cell cannot run on this host
    expect: Expectation | None = None
    timeout_s: float | None = None
    accel: str = "auto"
    retries: int = 1
    login: Login | None = None  # None: the image's own


@dataclass(frozen=True)
class Plan:
    profile: str
    cells: tuple[Planned, ...]
    # QEMU build -> the versioned type its `virt` is an alias of (matrix/sameboot.py);
    # empty: no cell is recorded from another's boot.
    virt_aliases: Mapping[str, str] = field(default_factory=dict)


class _Context:
    def __init__(
        self,
        path: Path,
        root: yaml.Node,
        images: Sequence[str],
        machines: Sequence[str],
        firmware: Sequence[str],
        qemu: QemuMachines,
    ):
        self.path = path
        self.root = root
        self.images = list(images)
        self.machines = list(machines)
        self.firmware = list(firmware)
        self.qemu = {HOST_QEMU: list(machines), **qemu}
        self.problems: list[str] = []

    def machines_of(self, qemu: str) -> list[str]:
        """The build's machine types (none known for a build not made yet)."""
        return list(self.qemu.get(qemu) or ())

    def problem(self, where: Where, text: str) -> None:
        self.problems.append(f"{self.path}:{line_of(self.root, where)}: {key_of(where)}: {text}")


def _given(axes: Axes) -> dict[str, AxisValue]:
    """The axes a rule names, by name."""
    named = {
        "image": axes.get("image"),
        "firmware": axes.get("firmware"),
        "machine": axes.get("machine"),
        "transport": axes.get("transport"),
        "qemu": axes.get("qemu"),
    }
    return {axis: value for axis, value in named.items() if value is not None}


def _listed(value: AxisValue) -> list[Machine]:
    return list(value) if isinstance(value, list) else [value]


def select_machines(selector: Machine, machines: Sequence[str]) -> list[str] | str:
    """Machine types for one selector, or a problem text."""
    versioned = [m for m in machines if m != "virt"]
    if isinstance(selector, dict):
        ((which, count),) = selector.items()
        return versioned[-count:] if which == "newest" else versioned[:count]
    if selector == "all":
        return [*versioned, "virt"] if "virt" in machines else versioned
    if ".." in selector:
        low, high = selector.split("..", 1)
        if not (low.startswith("virt-") and high.startswith("virt-")):
            return f"range {selector!r} must be virt-A.B..virt-C.D"
        lo, hi = machine_sort_key(low), machine_sort_key(high)
        return [m for m in versioned if lo <= machine_sort_key(m) <= hi]
    if selector != "virt" and not selector.startswith("virt-"):
        return f"machine {selector!r} is not all, virt, virt-X.Y or a range"
    return [selector]


def _axis(
    ctx: _Context, where: Where, axis: str, value: AxisValue, qemu: str = HOST_QEMU
) -> list[str]:
    values: list[str] = []
    for index, item in enumerate(_listed(value)):
        at = [*where, index] if isinstance(value, list) else where
        if isinstance(item, str) and control_character(item):
            # Checked here rather than by a schema pattern: a regex per value in
            # jsonschema doubles the time a huge list takes to refuse.
            ctx.problem(at, f"{axis} {item!r}: control characters are not allowed")
            continue
        if axis == "qemu":
            if item == "all":
                values += list(ctx.qemu)
                continue
            if item not in ctx.qemu:
                ctx.problem(at, f"qemu {item!r} is not all or one of: {', '.join(ctx.qemu)}")
            values.append(str(item))
            continue
        if axis == "machine":
            chosen = select_machines(item, ctx.machines_of(qemu))
            if isinstance(chosen, str):
                ctx.problem(at, chosen)
                continue
            values += chosen
            continue
        choices = {"image": ctx.images, "firmware": ctx.firmware}.get(axis, TRANSPORTS)
        problem = axis_problem(axis, str(item), choices)
        if problem:
            ctx.problem(at, problem)
        values.append(str(item))
    return list(dict.fromkeys(values))


def _cells(
    ctx: _Context,
    where: Where,
    axes: Axes,
    fill: dict[str, list[str]],
    machine_fill: tuple[Where, AxisValue],
) -> list[Cell]:
    """`fill` holds the profile's matrix values for the axes `axes` leaves out, and
    `machine_fill` its machine selectors, resolved here per QEMU build."""
    given = _given(axes)
    values = {
        axis: _axis(ctx, [*where, axis], axis, given[axis]) if axis in given else fill[axis]
        for axis in AXES
        if axis != "machine"
    }
    machine_at, machine = (
        ([*where, "machine"], given["machine"]) if "machine" in given else machine_fill
    )
    cells = []
    for qemu in values["qemu"]:
        machines = _axis(ctx, machine_at, "machine", machine, qemu)
        if ctx.qemu.get(qemu, ()) is None:
            machines = ["virt"]  # a build not made yet: one cell per row, a skip saying so
        for image, firmware, m, transport in itertools.product(
            values["image"], values["firmware"], machines, values["transport"]
        ):
            cells.append(Cell(image, firmware, m, transport, qemu))
    return cells


def _matches(ctx: _Context, where: Where, rule: Axes, cell: Cell) -> bool:
    for axis, value in _given(rule).items():
        if getattr(cell, axis) not in _axis(ctx, [*where, axis], axis, value, cell.qemu):
            return False
    return True


def expand(
    data: Mapping[str, object],
    root: yaml.Node,
    path: Path,
    profile: str,
    images: Sequence[str],
    machines: Sequence[str],
    firmware: Sequence[str] = BUILTIN_FIRMWARE,
    qemu: QemuMachines | None = None,
) -> Plan:
    """The planned cells of `profile`. `machines` are the host QEMU's; `qemu` maps
    each further QEMU build to its machine types (None: not made yet).

    Raises FileErrors with a `file:line: key: problem` line per problem."""
    document = cast(MatrixDocument, data)  # checked against the schema by yamlfile.load
    profiles = document["profiles"]
    if profile not in profiles:
        raise FileErrors([f"{path}: no profile {profile!r}; profiles: {', '.join(profiles)}"])
    ctx = _Context(path, root, images, machines, firmware, qemu or {})
    for name in document.get("images", {}):
        if name not in images:
            ctx.problem(["images", name], f"image {name!r} is not one of: {', '.join(images)}")
    spec = profiles[profile]
    where: Where = ["profiles", profile]
    axes = {"qemu": HOST_QEMU, **_given(spec["matrix"])}  # qemu is optional: the host's
    fill = {
        axis: _axis(ctx, [*where, "matrix", axis], axis, axes[axis])
        for axis in AXES
        if axis != "machine"
    }
    machine_fill: tuple[Where, AxisValue] = ([*where, "matrix", "machine"], axes["machine"])
    cells = _cells(ctx, [*where, "matrix"], spec["matrix"], fill, machine_fill)
    for index, rule in enumerate(spec.get("include", [])):
        cells += _cells(ctx, [*where, "include", index], rule, fill, machine_fill)
    for index, rule in enumerate(spec.get("exclude", [])):
        cells = [c for c in cells if not _matches(ctx, [*where, "exclude", index], rule, c)]
    planned = [_plan(ctx, document, cell) for cell in dict.fromkeys(cells)]
    if ctx.problems:
        raise FileErrors(sorted(set(ctx.problems), key=ctx.problems.index))
    return Plan(profile, tuple(planned))


def _plan(ctx: _Context, data: MatrixDocument, cell: Cell) -> Planned:
    settings: Settings = {**data.get("defaults", {}), **data.get("images", {}).get(cell.image, {})}
    expect = None
    for index, rule in enumerate(data.get("expect", [])):
        if _matches(ctx, ["expect", index, "match"], rule["match"], cell):
            expect = Expectation(rule.get("stage"), rule.get("reason"), rule.get("bug", ""),
                                 rule.get("note", ""))  # fmt: skip
    skip = ""
    if ctx.qemu.get(cell.qemu, ()) is None:
        skip = f"QEMU build {cell.qemu} is not made yet: harness qemu build {cell.qemu}"
    elif cell.machine not in ctx.machines_of(cell.qemu):
        build = "this QEMU" if cell.qemu == HOST_QEMU else f"QEMU build {cell.qemu}"
        skip = f"machine type {cell.machine} is not in {build}"
    login = settings.get("login")
    return Planned(
        cell=cell,
        skip=skip,
        expect=expect,
        timeout_s=settings.get("timeout"),
        accel=settings.get("accel", "auto"),
        retries=settings.get("retries", 1),
        login=Login(login.get("user", "root"), login.get("password", "")) if login else None,
    )
