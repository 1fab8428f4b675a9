"""Every command in README.md's code blocks is run, as written where it can be, in a
throwaway checkout (a temporary directory whose images/ and matrix.yaml are the real
ones, through $HARNESS_ROOT), so `results/latest` and `results/<run>` mean what the
README says and nothing lands in the real results/.

EXAMPLES is the documented list: each README command, and how it is run here. A
profile is narrowed to one or two tiny direct-boot cells with `-k` (the README's
`nightly` would boot for hours); placeholders are filled with real things; the few
commands that need the internet or boot for many minutes name the test that runs
them. A new example in README.md fails this test until it is added here.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import ROOT

from harness.catalog import Catalog
from harness.model import Image

TINY = "debian-12-tiny/none/virt/mmio"


@dataclass(frozen=True)
class Run:
    """Run the README's command with these arguments appended (or, with `argv`,
    these instead, for placeholders) and expect this exit status."""

    extra: tuple[str, ...] = ()
    argv: tuple[str, ...] = ()
    exit: int = 0


@dataclass(frozen=True)
class Elsewhere:
    """Run by another test (it needs the internet or boots for many minutes)."""

    test: str


EXAMPLES: dict[str, Run | Elsewhere] = {
    "make smoke": Elsewhere(
        "tests/test_matrix_cli.py::test_matrix_boots_the_cells_and_meets_expectations"
    ),
    "make test": Elsewhere("the whole suite, this file included"),
    ".venv/bin/harness run debian-12-tiny/aavmf/virt/pci": Run(("--quiet",)),
    "harness run --kernel Image --initrd initrd.img --append 'root=/dev/vda console=ttyAMA0' "
    "--disk rootfs.qcow2 --machine virt-4.2 --transport mmio --firmware none --login root": Run(
        # The tiny image's files; its root file system is the disk's second partition.
        argv=(
            "run",
            "--kernel",
            "{kernel}",
            "--initrd",
            "{initrd}",
            "--append",
            "root=LABEL=root console=ttyAMA0",
            "--disk",
            "{disk}",
            "--machine",
            "virt-4.2",
            "--transport",
            "mmio",
            "--firmware",
            "none",
            "--login",
            "root",
            "--quiet",
        ),
    ),
    "harness qemu build": Elsewhere(
        "tests/test_qemu_builds.py::test_the_trixie_build_is_qemu_10_with_virt_10_and_its_own_roms"
    ),
    "harness qemu list": Run(),
    "harness run debian-12-tiny/none/virt-10.0/pci@qemu-trixie": Run(("--quiet",)),
    "harness list --profile nightly -k 'pci and not aavmf'": Run(),
    "harness matrix --profile smoke -j 2": Run(("-k", TINY)),
    "harness matrix --resume results/<run>": Run(argv=("matrix", "--resume", "{smoke_run}")),
    "harness matrix --profile nightly --shard 2/4": Run(("-k", "debian-12-tiny/none/virt/")),
    "harness list --profile nightly --shard 2/4": Run(),
    "harness merge results/*-nightly": Run(argv=("merge", "{nightly_runs}")),
    "harness compare results/<last-night> results/latest": Run(
        argv=("compare", "{smoke_run}", "results/latest")
    ),
    "harness matrix --profile nightly --baseline results/<last-night>": Run(
        argv=("matrix", "--profile", "nightly", "--baseline", "{smoke_run}", "-k", TINY)
    ),
    # The smoke and nightly runs above recorded themselves in results/history.sqlite.
    "harness history import results/2*/": Run(argv=("history", "import", "{smoke_run}")),
    "harness history debian-12-tiny/none/virt/pci": Run(argv=("history", TINY)),
    "harness history --since-failing": Run(),
    "harness history --flaky --nights 30": Run(),
    "harness history --slower": Run(),
    "harness images fetch fedora-40-cloud ubuntu-24.04-cloud": Elsewhere(
        "tests/test_download.py (the same fetch, from a local HTTP server)"
    ),
    "harness images list": Run(),
    "harness run fedora-40-cloud/aavmf/virt/pci": Elsewhere(
        "tests/test_download.py::test_a_downloaded_image_boots_through_aavmf_with_its_nocloud_seed"
    ),
    "harness export libvirt debian-12-tiny/aavmf/virt-7.2/pci": Run(),
    "harness export libvirt --run results/latest": Run(),
    "harness export facts results/latest": Run(),
    "harness bisect debian-12-tiny/aavmf/pci --machines virt-2.6..virt-7.2": Run(
        # Two direct boots instead of about seven through AAVMF.
        argv=("bisect", "debian-12-tiny/none/pci", "--machines", "virt-7.1..virt-7.2"),
        exit=1,  # both ends pass: "no change" is exit 1
    ),
    "harness bisect debian-12-tiny/virt/pci --firmware aavmf-bullseye,aavmf-bookworm,aavmf-trixie": Elsewhere(
        "tests/test_libvirt_question.py::test_bisect_over_firmware_builds_reports_no_change_when_none_breaks"
    ),
    "harness bisect debian-12-tiny/none/virt-7.2/pci --qemu-builds host,qemu-trixie": Elsewhere(
        # the same bisect over both builds, of a guest that breaks on the newer one
        "tests/test_qemu_axis.py::test_a_planted_difference_between_builds_is_reported_and_bisected"
    ),
    "harness images build [NAME...]": Run(argv=("images", "build", "debian-12-tiny")),
}


def readme_commands() -> list[str]:
    """The commands of README.md's ```sh blocks, in order, continuation lines
    joined, comments and repeats left out."""
    text = (ROOT / "README.md").read_text()
    commands: list[str] = []
    for block in re.findall(r"```sh\n(.*?)```", text, re.DOTALL):
        for line in block.replace("\\\n", " ").splitlines():
            command = re.sub(r"\s+", " ", re.sub(r"\s+#\s.*$", "", line)).strip()
            if command and command not in commands:
                commands.append(command)
    return commands


def test_every_readme_command_is_in_the_documented_list() -> None:
    assert readme_commands() == list(EXAMPLES)
    for example in EXAMPLES.values():
        if isinstance(example, Elsewhere) and "::" in example.test:
            path, name = example.test.split("::")
            assert f"def {name}(" in (ROOT / path).read_text(), example.test


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A checkout of its own: the real images/ (and their cache) and matrix.yaml."""
    (tmp_path / "images").symlink_to(ROOT / "images")
    (tmp_path / "matrix.yaml").symlink_to(ROOT / "matrix.yaml")
    return tmp_path


def argv_of(command: str, example: Run, places: dict[str, list[str]]) -> list[str]:
    """The README's own words (quotes removed as a shell would) plus `extra`, or
    `argv` with each {placeholder} word replaced by its words."""
    if not example.argv:
        return [*shlex.split(command)[1:], *example.extra]
    out: list[str] = []
    for word in example.argv:
        out += places[word[1:-1]] if word.startswith("{") else [word]
    return out


def test_the_readme_examples_run(catalog: Catalog, tiny: Image, checkout: Path) -> None:
    assert tiny.kernel and tiny.initrd and tiny.disk
    places = {"kernel": [str(tiny.kernel)], "initrd": [str(tiny.initrd)], "disk": [str(tiny.disk)]}
    env = {**os.environ, "HARNESS_ROOT": str(checkout)}
    took: dict[str, float] = {}
    for command, example in EXAMPLES.items():
        if isinstance(example, Elsewhere):
            continue
        runs = sorted((checkout / "results").glob("*-*"))
        places["smoke_run"] = [str(r) for r in runs if r.name.endswith("-smoke")][:1]
        places["nightly_runs"] = [str(r) for r in runs if r.name.endswith("-nightly")]
        argv = argv_of(command, example, places)
        started = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-m", "harness.cli", *argv],
            capture_output=True, text=True, cwd=checkout, env=env, timeout=900, check=False,
        )  # fmt: skip
        took[command] = time.monotonic() - started
        assert proc.returncode == example.exit, (
            f"{command}\n-> harness {shlex.join(argv)}\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}"
        )
        assert "Traceback" not in proc.stderr
    print("\n".join(f"{seconds:6.1f}s  {command}" for command, seconds in took.items()))
