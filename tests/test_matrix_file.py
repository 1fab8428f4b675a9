"""matrix.yaml: schema errors with file:line:key, and expansion into cells."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.catalog import Catalog
from harness.errors import UsageError
from harness.matrix.expand import Plan, expand, select_machines
from harness.matrix.select import keyword_filter
from harness.qemu_builds import load_qemu_builds
from harness.virt_install import firmware_problem
from harness.yamlfile import FileErrors, load

MACHINES = ("virt-2.6", "virt-2.7", "virt-2.10", "virt-4.2", "virt-7.2", "virt")
IMAGES = ["debian-12-tiny", "debian-12-tiny-mmio-only"]
GOOD = """\
defaults: {timeout: 60}
images:
  debian-12-tiny: {timeout: 30, login: {user: root, password: ""}}
expect:
  - match: {image: debian-12-tiny-mmio-only, transport: pci}
    status: fail
    reason: root-not-found
profiles:
  smoke:
    matrix:
      image: debian-12-tiny
      firmware: [none, aavmf]
      machine: [{oldest: 1}, virt]
      transport: [mmio, pci]
    include:
      - {image: debian-12-tiny-mmio-only, firmware: none, machine: virt, transport: [mmio, pci]}
    exclude:
      - {firmware: aavmf, machine: virt-2.6, transport: mmio}
  wide:
    matrix: {image: debian-12-tiny, firmware: none, machine: all, transport: pci}
  gone:
    matrix: {image: debian-12-tiny, firmware: none, machine: [virt-1.0, virt-2.6..virt-4.2], transport: mmio}
"""


def plan_of(tmp_path: Path, text: str, profile: str) -> Plan:
    path = tmp_path / "matrix.yaml"
    path.write_text(text)
    data, root = load(path)
    return expand(data, root, path, profile, IMAGES, MACHINES)


def problems(tmp_path: Path, text: str, profile: str = "smoke") -> list[str]:
    with pytest.raises(FileErrors) as caught:
        plan_of(tmp_path, text, profile)
    return caught.value.problems


def test_axes_multiply_include_adds_exclude_drops(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, GOOD, "smoke")
    ids = [p.cell.id for p in plan.cells]
    assert ids == [
        "debian-12-tiny/none/virt-2.6/mmio",
        "debian-12-tiny/none/virt-2.6/pci",
        "debian-12-tiny/none/virt/mmio",
        "debian-12-tiny/none/virt/pci",
        "debian-12-tiny/aavmf/virt-2.6/pci",
        "debian-12-tiny/aavmf/virt/mmio",
        "debian-12-tiny/aavmf/virt/pci",
        "debian-12-tiny-mmio-only/none/virt/mmio",
        "debian-12-tiny-mmio-only/none/virt/pci",
    ]
    by_id = {p.cell.id: p for p in plan.cells}
    assert by_id["debian-12-tiny-mmio-only/none/virt/pci"].expect is not None
    assert by_id["debian-12-tiny-mmio-only/none/virt/mmio"].expect is None
    assert by_id["debian-12-tiny/none/virt/pci"].timeout_s == 30
    assert by_id["debian-12-tiny-mmio-only/none/virt/pci"].timeout_s == 60


def test_all_is_every_machine_type_of_this_qemu(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, GOOD, "wide")
    assert [p.cell.machine for p in plan.cells] == list(MACHINES)


def test_machine_types_this_qemu_lacks_are_skips_not_errors(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, GOOD, "gone")
    assert [(p.cell.machine, bool(p.skip)) for p in plan.cells] == [
        ("virt-1.0", True), ("virt-2.6", False), ("virt-2.7", False), ("virt-2.10", False), ("virt-4.2", False),
    ]  # fmt: skip
    assert "virt-1.0 is not in this QEMU" in plan.cells[0].skip


def test_selectors() -> None:
    assert select_machines({"newest": 2}, MACHINES) == ["virt-4.2", "virt-7.2"]
    assert select_machines({"oldest": 1}, MACHINES) == ["virt-2.6"]
    assert select_machines("virt-2.7..virt-4.2", MACHINES) == ["virt-2.7", "virt-2.10", "virt-4.2"]
    assert "range" in str(select_machines("2.6..4.2", MACHINES))


def test_every_error_at_once_with_file_line_and_key(tmp_path: Path) -> None:
    text = GOOD.replace("defaults: {timeout: 60}", "defaults: {timeout: -1, colour: red}").replace(
        "transport: [mmio, pci]\n    include", "transport: [mmio, usb]\n    include"
    )
    found = problems(tmp_path, text)
    path = tmp_path / "matrix.yaml"
    assert f"{path}:1: defaults: unknown key ('colour' was unexpected)" in found
    assert f"{path}:1: defaults.timeout: -1 is less than or equal to the minimum of 0" in found
    assert any(p.startswith(f"{path}:14: profiles.smoke.matrix.transport") for p in found)
    assert len(found) == 3


def test_unknown_image_and_bad_machine_name_their_lines(tmp_path: Path) -> None:
    text = GOOD.replace(
        "image: debian-12-tiny\n      firmware: [none, aavmf]",
        "image: fedora-23\n      firmware: [none, aavmf]",
    )
    text = text.replace("machine: [{oldest: 1}, virt]", "machine: [{oldest: 1}, q35]")
    found = problems(tmp_path, text)
    path = tmp_path / "matrix.yaml"
    assert (
        f"{path}:11: profiles.smoke.matrix.image: image 'fedora-23' is not one of: debian-12-tiny, debian-12-tiny-mmio-only"
        in found
    )
    assert (
        f"{path}:13: profiles.smoke.matrix.machine[1]: machine 'q35' is not all, virt, virt-X.Y or a range"
        in found
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("profiles: [\n", "not valid YAML"),
        ("", "the file is empty"),
        ("- just\n- a list\n", "expected a mapping"),
        (
            "a: &a [1,1,1,1,1,1,1,1,1]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
            "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n",
            "once aliases are expanded",
        ),
        ("profiles: !!python/object:os.system {}\n", "not valid YAML"),
    ],
)
def test_broken_files_are_one_clear_error(tmp_path: Path, text: str, expected: str) -> None:
    found = problems(tmp_path, text)
    assert len(found) == 1 and expected in found[0] and str(tmp_path / "matrix.yaml") in found[0]


def test_unknown_profile_lists_the_profiles(tmp_path: Path) -> None:
    assert problems(tmp_path, GOOD, "nightly") == [
        f"{tmp_path / 'matrix.yaml'}: no profile 'nightly'; profiles: smoke, wide, gone"
    ]


def test_keyword_expressions() -> None:
    pick = keyword_filter("pci and not (aavmf or mmio-only)")
    assert pick("debian-12-tiny/none/virt/pci")
    assert not pick("debian-12-tiny/aavmf/virt/pci")
    assert not pick("debian-12-tiny-mmio-only/none/virt/pci")
    with pytest.raises(UsageError):
        keyword_filter("pci and")


def test_the_committed_matrix_is_valid(catalog: Catalog) -> None:
    root = Path(__file__).resolve().parent.parent
    data, node = load(root / "matrix.yaml")
    # The QEMU builds of images/qemu.yaml, made or not (not made: their cells are skips).
    builds = {name: None for name in load_qemu_builds(root / "images" / "qemu.yaml")}
    for profile in data["profiles"]:
        plan = expand(
            data,
            node,
            root / "matrix.yaml",
            profile,
            catalog.names(),
            MACHINES,
            catalog.firmware_names(),
            builds,
        )
        # no profile plans a cell that is `impossible` from its id alone (a virt-install
        # cell of a firmware libvirt's own pick cannot honour)
        assert [firmware_problem(p.cell) for p in plan.cells if firmware_problem(p.cell)] == []
    smoke = expand(
        data, node, root / "matrix.yaml", "smoke", catalog.names(), MACHINES, qemu=builds
    )
    cells = [p.cell for p in smoke.cells]
    # both launchers, both PCI topologies (virt-install's cells are the libvirt profile's)
    assert {c.transport for c in cells} == {
        "mmio",
        "pci",
        "pcie-port",
        "libvirt-mmio",
        "libvirt-pci",
    }
    libvirt = {(c.firmware, c.transport) for c in cells if c.transport.startswith("libvirt-")}
    assert libvirt == {(f, t) for f in ("none", "aavmf") for t in ("libvirt-mmio", "libvirt-pci")}
    assert {c.firmware for c in cells} == {"none", "aavmf", "uboot"}  # one U-Boot cell
    assert {c.qemu for c in cells} == {"host", "qemu-trixie"}  # one cell on QEMU 10.0
    assert {"virt", "virt-2.6"} <= {c.machine for c in cells}
    assert any(
        p.cell.image.endswith("mmio-only") and p.cell.transport == "pci" and p.expect
        for p in smoke.cells
    )


def test_a_file_that_is_no_matrix_is_not_echoed(tmp_path: Path) -> None:
    # a password file given as --matrix: every line a key, each was repeated back
    entries = "".join(f"user{n}:$6$salt{n}$secret{n}:20228:0:99999:7:::\n" for n in range(25))
    found = problems(tmp_path, entries)
    assert f"{tmp_path / 'matrix.yaml'}:1: (top): 25 unknown keys: is this the right file?" in found
    assert not any("secret" in p for p in found), found
