"""Hostile and malformed options and names through the real CLI, none of which boots
a guest: filters that match nothing or nest deeply, numbers out of range, names that
would become paths or shell lines, words no option takes, hosts that lack a tool.
Each ends in one line on stderr and exit 2, and writes nothing it should not. (Run
data from elsewhere: test_hostile_input.py.)"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import ROOT, Harness, one_line_error, previous_latest, write_matrix

from harness.boot import write_cmdline
from harness.model import Cell, Firmware, Image

CELL = "debian-12-tiny/none/virt/pci"


def test_k_nested_3000_levels_is_one_line(harness: Harness) -> None:
    expression = "(" * 3000 + "pci" + ")" * 3000
    line = one_line_error(harness("list", "-k", expression))
    assert line == "harness list: -k: nested more than 50 levels deep"
    # a long flat expression is fine: and/or lists are not nested predicates
    flat = " or ".join(["nope"] * 1000 + ["tiny/none/virt/pci"])
    assert harness("list", "-k", flat).returncode == 0


@pytest.mark.parametrize(
    "option",
    [
        ["--timeout", "-5"], ["--timeout", "nan"], ["--timeout", "0"], ["--timeout", "inf"],
        ["--log-cap", "0"], ["--log-cap", "64 parsecs"], ["--repeat", "0"], ["-j", "0"],
        ["--smp", "0"],
    ],
    ids=lambda option: " ".join(option),
)  # fmt: skip
def test_numbers_out_of_range_are_refused(
    option: list[str], harness: Harness, tmp_path: Path
) -> None:
    line = one_line_error(harness("matrix", *option, "--results", str(tmp_path)))
    assert line.startswith(f"harness matrix: argument {option[0]}") or line.startswith(
        "harness matrix: argument -j/--jobs"
    )
    assert not any(tmp_path.iterdir())


def test_log_cap_takes_the_unit_its_help_shows(harness: Harness, tmp_path: Path) -> None:
    assert "64MiB" in harness("run", "--help").stdout
    proc = harness("matrix", "--log-cap", "64MiB", "-k", "no-such-cell", "--results", str(tmp_path))
    assert one_line_error(proc).startswith("harness matrix: -k 'no-such-cell' matches none")


@pytest.mark.parametrize(
    "args",
    [["-k", "no-such-cell"], ["--matrix", "{tmp}/m.yaml", "--profile", "p"]],
    ids=["-k", "a machine range"],
)
def test_a_run_with_no_cell_is_exit_2_and_leaves_latest(
    args: list[str], harness: Harness, tmp_path: Path
) -> None:
    write_matrix(tmp_path / "m.yaml", "virt-99.0..virt-99.9")
    results = tmp_path / "r"
    earlier = previous_latest(results)
    args = [arg.replace("{tmp}", str(tmp_path)) for arg in args]
    line = one_line_error(harness("matrix", *args, "--results", str(results)))
    assert "matches none" in line or "has no cell on this host" in line
    assert (results / "latest").resolve() == earlier
    assert sorted(p.name for p in results.iterdir()) == [earlier.name, "latest"]


def test_a_matrix_of_skips_only_is_exit_2_and_leaves_latest(
    harness: Harness, tmp_path: Path
) -> None:
    write_matrix(tmp_path / "m.yaml", "virt-1.0")  # a machine type no QEMU here has
    results = tmp_path / "r"
    earlier = previous_latest(results)
    proc = harness("matrix", "--matrix", str(tmp_path / "m.yaml"), "--profile", "p",
                   "--results", str(results))  # fmt: skip
    line = one_line_error(proc)
    assert line == (
        "harness matrix: nothing booted: its 1 cell was skipped "
        "(e.g. debian-12-tiny/none/virt-1.0/pci: machine type virt-1.0 is not in this QEMU)"
    )
    assert (results / "latest").resolve() == earlier


def test_list_counts_only_cells_that_will_boot(harness: Harness) -> None:
    proc = harness("list", "--profile", "debate", "--offline")
    assert proc.returncode == 0, proc.stderr
    *cells, total = proc.stdout.splitlines()
    will_boot = [line for line in cells if "skip:" not in line]
    assert total == f"{len(cells)} cells in profile debate, {len(will_boot)} runnable here"
    assert len(will_boot) < len(cells)  # the 2016 releases are downloads: skips offline


def test_list_counts_no_full_image_cell_where_mmdebstrap_is_missing(
    harness: Harness, tmp_path: Path
) -> None:
    # A PATH with QEMU and qemu-img only, an empty cache: the full images are not built
    # and this host cannot build them; the run makes each such cell an `error`.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("qemu-system-aarch64", "qemu-img"):
        found = shutil.which(tool)
        assert found is not None
        (bin_dir / tool).symlink_to(found)
    env = {"PATH": str(bin_dir), "HARNESS_CACHE": str(tmp_path / "c")}
    proc = harness("list", "--profile", "nightly", "-k", "debian-12-full/none", env=env)
    assert proc.returncode == 0, proc.stderr
    *cells, total, how = proc.stdout.splitlines()
    assert cells and all(
        "(not runnable here: building a full Debian image needs mmdebstrap, "
        "qemu-aarch64-static" in line
        for line in cells
    ), cells
    assert total == f"{len(cells)} cells in profile nightly, 0 runnable here"
    assert how.startswith("full images build where the host has their tools: sudo apt-get")


def path_without_mmdebstrap(tmp_path: Path) -> str:
    """A PATH with every tool of the host but mmdebstrap and qemu-aarch64-static."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for directory in ("/usr/local/bin", "/usr/bin", "/bin", "/usr/sbin", "/sbin"):
        for tool in Path(directory).iterdir() if Path(directory).is_dir() else ():
            name = tool.name
            if name not in ("mmdebstrap", "qemu-aarch64-static") and not (bin_dir / name).exists():
                (bin_dir / name).symlink_to(tool)
    return str(bin_dir)


def test_a_full_image_build_without_mmdebstrap_stops_before_fetching(
    harness: Harness, tmp_path: Path
) -> None:
    # The build said so only after fetching the kernel and GRUB packages (15 s here),
    # and `harness run` after announcing a 22 min build (both found by trials).
    env = {"PATH": path_without_mmdebstrap(tmp_path)}
    proc = harness("images", "build", "--force", "debian-12-full", env=env)
    needs = "building a full Debian image needs mmdebstrap, qemu-aarch64-static: "
    assert one_line_error(proc).startswith(f"harness images: {needs}")
    assert "fetching" not in proc.stdout, proc.stdout
    out = tmp_path / "o"
    empty = {**env, "HARNESS_CACHE": str(tmp_path / "cache")}  # never built there
    proc = harness("run", "debian-12-full/none/virt/pci", "--out", str(out), env=empty)
    assert proc.returncode == 2 and proc.stderr.startswith(f"harness run: {needs}"), proc.stderr
    assert "building it now" not in proc.stdout + proc.stderr
    assert " image-build-failed " in proc.stdout


def test_a_profile_that_is_a_path_stays_inside_results(harness: Harness, tmp_path: Path) -> None:
    matrix = write_matrix(tmp_path / "m.yaml", "virt-1.0", profile="x/../../../elsewhere")
    results = tmp_path / "a" / "b" / "r"
    proc = harness("matrix", "--matrix", str(matrix), "--profile", "x/../../../elsewhere",
                   "--results", str(results))  # fmt: skip
    line = one_line_error(proc)
    assert line.startswith(f"harness matrix: {matrix}:2: profiles: ")
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["m.yaml"]


def test_control_characters_in_names_are_refused(harness: Harness, tmp_path: Path) -> None:
    code = tmp_path / "x\ntouch PWNED\n.fd"
    code.write_bytes(b"\0" * 4096)
    out = tmp_path / "out"
    line = one_line_error(harness("run", f"debian-12-tiny/{code}/virt/pci", "--out", str(out)))
    assert "control character '\\n' is not allowed" in line
    assert not out.exists() and not (ROOT / "PWNED").exists()
    # the same path as a firmware in a matrix file: file:line, before any cell exists
    matrix = tmp_path / "m.yaml"
    matrix.write_text(
        "profiles:\n  p:\n    matrix: {image: debian-12-tiny, "
        f"firmware: {json.dumps(str(code))}, machine: virt, transport: pci}}\n"
    )
    line = one_line_error(harness("list", "--matrix", str(matrix), "--profile", "p"))
    assert line.startswith(f"harness list: {matrix}:3: profiles.p.matrix.firmware: ")
    # an image name in a catalog the user adds
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(
        '"evil\\nname":\n  distro: x\n  release: "1"\n  boot: direct\n  source: x\n'
        "  kernel: {url: 'http://127.0.0.1:9/k'}\n"
    )
    proc = harness("images", "list", env={"HARNESS_CATALOG": str(catalog)})
    assert "evil" in one_line_error(proc)


@pytest.mark.parametrize(
    "bad",
    ["\u2028", "\u2029", "\u202e", "\u2066", "\u200b", "\ufeff", "\x85", "\r", "\t", "\x1b",
     os.fsdecode(b"\xff")],
    ids=["U+2028", "U+2029", "RLO", "LRI", "ZWSP", "BOM", "NEL", "CR", "TAB", "ESC", "not-UTF-8"],
)  # fmt: skip
def test_invisible_characters_in_a_firmware_path_are_refused(
    bad: str, harness: Harness, tmp_path: Path
) -> None:
    # A bidi override reorders the cell id where a reader sees it (PASS line, grid,
    # cmdline.sh); a path's bytes that are not UTF-8 once ended in a traceback, exit 1,
    # while writing cmdline.sh, with an overlay left behind.
    code = tmp_path / f"x{bad}touch v11-injected{bad}CODE.fd"
    for name in (code, code.with_name(code.name.replace("CODE", "VARS"))):
        name.write_bytes(b"\0" * 4096)
    out = tmp_path / "out"
    line = one_line_error(harness("run", f"debian-12-tiny/{code}/virt/mmio", "--out", str(out)))
    assert f"control character {bad!a} is not allowed" in line
    assert line.isascii()  # the name's invisible characters are shown escaped
    assert not out.exists() and not list(tmp_path.rglob("v11-injected"))


def test_cmdline_sh_quotes_every_word(tmp_path: Path) -> None:
    echo = shutil.which("echo")
    assert echo
    firmware = "/tmp/a b;$(touch PWNED)'.fd"
    cell = Cell("img", firmware, "virt", "pci")
    argv = [echo, "-name", f"{cell}", "", "it's", "$HOME", str(tmp_path / "work" / "x")]
    script = tmp_path / "cmdline.sh"
    write_cmdline(script, cell, argv, Image("img", None), Firmware("fw"), tmp_path / "work")
    assert script.read_text().splitlines()[1] == (
        f"# Boots 'img/{firmware.replace(chr(39), chr(39) + chr(34) + chr(39) + chr(34) + chr(39))}"
        "/virt/pci' as the harness did. Ctrl-A X quits QEMU."
    )
    proc = subprocess.run(["sh", str(script)], capture_output=True, text=True, cwd=tmp_path)
    assert proc.stdout == " ".join(argv[1:]) + "\n"
    assert not (tmp_path / "PWNED").exists()


@pytest.mark.parametrize(
    "args",
    [["run", CELL, "extra", "--out", "{tmp}/o"], ["matrix", "extra", "--results", "{tmp}/o"],
     ["images", "build", "--offline"]],
)  # fmt: skip
def test_a_word_no_option_takes_is_told_by_its_subcommand(
    args: list[str], harness: Harness, tmp_path: Path
) -> None:
    # argparse left these to the top parser: `harness: unrecognized arguments: extra`
    command = " ".join(args[:2]) if args[0] == "images" else args[0]
    word = "--offline" if args[0] == "images" else "extra"
    line = one_line_error(harness(*(arg.replace("{tmp}", str(tmp_path)) for arg in args)))
    assert line == (
        f"harness {command}: unrecognized arguments: {word} (see harness {command} --help)"
    )
    assert not (tmp_path / "o").exists()


def test_a_missing_firmware_file_is_named_as_given(harness: Harness, tmp_path: Path) -> None:
    kernel = tmp_path / "Image"
    kernel.write_bytes(b"\0" * 64)
    gone = tmp_path / "gone_CODE.fd"
    proc = harness("run", "--kernel", str(kernel), "--firmware", str(gone),
                   "--out", str(tmp_path / "o"))  # fmt: skip
    assert one_line_error(proc) == f"harness run: --firmware {gone}: no such file"
    assert not (tmp_path / "o").exists()


def test_a_count_of_one_is_singular(harness: Harness, tmp_path: Path) -> None:
    matrix = write_matrix(tmp_path / "m.yaml", "virt")
    proc = harness("list", "--matrix", str(matrix), "--profile", "p")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "1 cell in profile p, 1 runnable here"
    line = one_line_error(harness("matrix", "--matrix", str(matrix), "--profile", "p", "-k", "x"))
    assert "matches none of the 1 cell " in line


@pytest.mark.parametrize(
    ("out", "says"),
    [
        ("", "argument --out: expected a directory, got ''"),  # was the current directory
        ("a\nb", "argument --out: control character '\\n' in 'a\\nb'"),  # was booted
        ("{tmp}/file", "--out {tmp}/file: not a directory"),  # was "File exists"
    ],
    ids=["empty", "newline", "a file"],
)
def test_a_bad_out_is_one_line(out: str, says: str, harness: Harness, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    out, says = out.replace("{tmp}", str(tmp_path)), says.replace("{tmp}", str(tmp_path))
    line = one_line_error(harness("run", CELL, "--out", out, cwd=tmp_path))
    assert line.startswith(f"harness run: {says}"), line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_a_matrix_that_is_no_regular_file_is_refused_unread(
    harness: Harness, tmp_path: Path
) -> None:
    # /dev/zero was read until the kernel's OOM killer stopped the harness (24 GB), a
    # FIFO waited on for ever (a new-user trial)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for path in ("/dev/zero", str(fifo)):
        line = one_line_error(harness("list", "--matrix", path, timeout=30))
        assert line == f"harness list: {path}: not a regular file"


@pytest.mark.parametrize("command", ["list", "matrix"])
def test_an_empty_k_is_refused(command: str, harness: Harness, tmp_path: Path) -> None:
    # it matched every cell: a whole profile ran where the user meant some (a trial)
    line = one_line_error(harness(command, "-k", "", "--results", str(tmp_path))
                          if command == "matrix" else harness(command, "-k", " "))  # fmt: skip
    assert line.startswith(f"harness {command}: argument -k: expected an expression")
    assert not list(tmp_path.iterdir())
