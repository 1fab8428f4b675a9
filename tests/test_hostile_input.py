"""Hostile and malformed run data from elsewhere through the real CLI (compare, merge,
--resume, --baseline, the reports), none of which boots a guest. Each ends in one line
on stderr and exit 2, and writes nothing it should not. (Options and names:
test_hostile_options.py.)"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, Harness, one_line_error, previous_latest

from harness.report.pages import render_html

CELL = "debian-12-tiny/none/virt/pci"
RECORD = {
    "cell": CELL, "image": "debian-12-tiny", "firmware": "none", "machine": "virt",
    "transport": "pci", "status": "pass", "outcome": "pass", "stage": "login",
    "reason": "login", "detail": "", "duration_s": 5.0, "stage_times": {"kernel": 0.5},
    "repeat": 0, "attempts": 1,
}  # fmt: skip


def make_run(where: Path, records: list[bytes] | None = None, **meta: object) -> Path:
    """A run directory as `harness matrix -k CELL` leaves it."""
    where.mkdir(parents=True)
    meta = {"run": where.name, "profile": "smoke", "keyword": CELL, "repeat": 1,
            "cells": [CELL], "host": {}, **meta}  # fmt: skip
    (where / "run.json").write_text(json.dumps(meta))
    lines = records if records is not None else [json.dumps(RECORD).encode()]
    (where / "results.jsonl").write_bytes(b"".join(line + b"\n" for line in lines))
    return where


def test_a_valid_run_compares_and_merges(harness: Harness, tmp_path: Path) -> None:
    """The baseline of the tests below: the crafted run is a good run."""
    run = make_run(tmp_path / "run")
    assert harness("compare", str(run), str(run)).returncode == 0
    proc = harness("merge", str(run), "--results", str(tmp_path / "m"))
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "m" / "latest" / "report.html").is_file()


BAD_RUN_JSON = {
    "not JSON": b"{nope",
    "not an object": b"[1, 2]",
    "cells a number": json.dumps({"cells": 5}).encode(),
    "a profile that is a path": json.dumps({"profile": "x/../../elsewhere", "cells": []}).encode(),
}
BAD_LINES = {
    "null": b"null",
    "a list": b"[1,2,3]",
    "an empty object": b"{}",
    "no outcome": json.dumps({k: v for k, v in RECORD.items() if k != "outcome"}).encode(),
    "invalid UTF-8": json.dumps(RECORD).encode().replace(b'"login"', b'"\xff\xfe"', 1),
    "an outcome of HTML": json.dumps(
        {**RECORD, "outcome": 'x"><script>alert(1)</script>'}
    ).encode(),
    "a newline in a cell": json.dumps({**RECORD, "cell": "a\nb/none/virt/pci"}).encode(),
    # a bidi override reorders what `compare` prints; an escaped lone surrogate is
    # no character any UTF-8 report can hold
    "a bidi override in a cell": json.dumps({**RECORD, "cell": "a\u202eb/none/virt/pci"}).encode(),
    "a lone surrogate in an image": json.dumps({**RECORD, "image": "a\udcff"}).encode(),
}
# Keys the reports read (harness/records.py types them) that the schema's `record` did
# not check: a shard's line without them, or with them of another type, was a traceback
# in `merge` (report.html's float("soon"), a grid row named None).
UNREADABLE = {
    "no image": json.dumps({k: v for k, v in RECORD.items() if k != "image"}).encode(),
    "a timeout that is text": json.dumps({**RECORD, "timeout_s": "soon"}).encode(),
}


@pytest.mark.parametrize("command", ["compare", "merge", "resume"])
@pytest.mark.parametrize("bad", BAD_RUN_JSON)
def test_a_bad_run_json_is_one_line(
    command: str, bad: str, harness: Harness, tmp_path: Path
) -> None:
    run = make_run(tmp_path / "run")
    (run / "run.json").write_bytes(BAD_RUN_JSON[bad])
    line = one_line_error(run_command(harness, command, run, tmp_path))
    assert str(run / "run.json") in line
    assert not (tmp_path / "m").exists() or not any((tmp_path / "m").iterdir())


@pytest.mark.parametrize("command", ["compare", "merge", "resume"])
@pytest.mark.parametrize("bad", BAD_LINES)
def test_a_bad_results_line_is_one_line(
    command: str, bad: str, harness: Harness, tmp_path: Path
) -> None:
    good = json.dumps(RECORD).encode()
    run = make_run(tmp_path / "run", [good, BAD_LINES[bad], good])
    line = one_line_error(run_command(harness, command, run, tmp_path))
    assert f"{run / 'results.jsonl'}:2: " in line
    # merge made no run (nor a `latest`) out of it; resume booted nothing
    assert not (tmp_path / "m").exists() or not any((tmp_path / "m").iterdir())
    assert (run / "results.jsonl").read_bytes().count(b"\n") == 3


@pytest.mark.parametrize("bad", UNREADABLE)
def test_a_record_the_reports_cannot_read_is_one_line(
    bad: str, harness: Harness, tmp_path: Path
) -> None:
    run = make_run(tmp_path / "run", [UNREADABLE[bad]])
    line = one_line_error(run_command(harness, "merge", run, tmp_path))
    assert f"{run / 'results.jsonl'}:1: " in line
    assert not (tmp_path / "m").exists() or not any((tmp_path / "m").iterdir())


def run_command(
    harness: Harness, command: str, run: Path, tmp_path: Path
) -> subprocess.CompletedProcess[str]:
    if command == "compare":
        return harness("compare", str(run), str(run), timeout=30)
    if command == "merge":
        return harness("merge", str(run), "--results", str(tmp_path / "m"), timeout=30)
    return harness("matrix", "--resume", str(run), timeout=30)


@pytest.mark.parametrize(
    "document",
    [
        b'{"cells": "abc"}',
        b'{"cells": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        b"\xff\xfe",
        json.dumps({"schema_version": 1, "cells": [{"cell": CELL}]}).encode(),
    ],
    ids=["cells a string", "nested 100000 deep", "not UTF-8", "a cell without fields"],
)
def test_a_bad_results_json_is_one_line(document: bytes, harness: Harness, tmp_path: Path) -> None:
    run = make_run(tmp_path / "run")
    bad = tmp_path / "results.json"
    bad.write_bytes(document)
    line = one_line_error(harness("compare", str(run), str(bad), timeout=30))
    assert str(bad) in line


def test_compare_reads_an_endless_file_with_a_limit(harness: Harness, tmp_path: Path) -> None:
    run = make_run(tmp_path / "run")
    line = one_line_error(harness("compare", str(run), "/dev/zero", timeout=30))
    assert line == (
        "harness compare: /dev/zero: not a run directory or results.json: "
        "larger than 64 MiB: not run data"
    )


def test_a_bad_baseline_stops_the_matrix_before_it_boots(harness: Harness, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"cells": 5}')
    results = tmp_path / "r"
    line = one_line_error(
        harness("matrix", "-k", CELL, "--baseline", str(bad), "--results", str(results))
    )
    assert line.startswith(f"harness matrix: {bad}: ")
    assert not results.exists()


def test_a_merge_of_skips_only_is_exit_2_as_the_matrix_is(harness: Harness, tmp_path: Path) -> None:
    skip = {**RECORD, "status": "skip", "outcome": "skip", "stage": "none",
            "reason": "skip", "detail": "machine type virt-1.0 is not in this QEMU"}  # fmt: skip
    run = make_run(tmp_path / "run", [json.dumps(skip).encode()])
    line = one_line_error(harness("merge", str(run), "--results", str(tmp_path / "m")))
    assert line == (
        f"harness merge: nothing booted: its 1 cell was skipped "
        f"(e.g. {CELL}: machine type virt-1.0 is not in this QEMU)"
    )


def test_merge_copies_only_regular_files(harness: Harness, tmp_path: Path) -> None:
    run = make_run(tmp_path / "run")
    cell = run / "cells" / "debian-12-tiny_none_virt_pci"
    cell.mkdir(parents=True)
    secret = tmp_path / "secret"
    secret.write_text("root only\n")
    (cell / "console.log").symlink_to(secret)
    os.mkfifo(cell / "qemu.stderr")
    (cell / "result.json").write_text("{}\n")
    (run / "cells" / "linked").symlink_to(tmp_path)
    proc = harness("merge", str(run), "--results", str(tmp_path / "m"), timeout=30)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    merged = (tmp_path / "m" / "latest" / "cells").resolve()
    assert sorted(str(p.relative_to(merged)) for p in merged.rglob("*")) == [
        "debian-12-tiny_none_virt_pci",
        "debian-12-tiny_none_virt_pci/result.json",
    ]
    assert proc.stderr.count("not a regular file, not copied") == 3


def test_a_baseline_compared_under_k_has_no_missing_cells(harness: Harness, tmp_path: Path) -> None:
    other = "debian-12-tiny/aavmf/virt/pci"
    baseline = make_run(
        tmp_path / "base",
        [json.dumps(RECORD).encode(), json.dumps({**RECORD, "cell": other}).encode()],
        cells=[CELL, other],
        keyword=None,
    )
    run = make_run(tmp_path / "run")  # -k CELL
    proc = harness("matrix", "--resume", str(run), "--baseline", str(baseline))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "missing" not in proc.stdout and other not in proc.stdout
    assert "1 still-passing" in proc.stdout.splitlines()


def test_a_reader_that_goes_away_is_not_a_success(tmp_path: Path) -> None:
    child = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "list", "--profile", "nightly"], cwd=ROOT,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert child.stdout is not None and child.stderr is not None
    # a pipe of one page, so the listing cannot fit in it before the reader goes away
    fcntl.fcntl(child.stdout.fileno(), fcntl.F_SETPIPE_SZ, 4096)
    child.stdout.readline()  # `| head -1`
    child.stdout.close()
    assert child.wait(timeout=60) == 141
    assert child.stderr.read() == ""


@pytest.mark.parametrize("cap", [None, "64K"])
def test_merge_caps_a_huge_console_log_as_the_runner_does(
    cap: str | None, harness: Harness, tmp_path: Path
) -> None:
    """A shard's 200 MB console.log (sparse: no disk used) is kept up to --log-cap (64
    MiB by default), then the runner's mark; other files are copied whole."""
    from harness.console.marks import cap_mark
    from harness.model import DEFAULT_LOG_CAP

    run = make_run(tmp_path / "run")
    cell = run / "cells" / "debian-12-tiny_none_virt_pci"
    cell.mkdir(parents=True)
    with (cell / "console.log").open("wb") as log:
        log.write(b"[    0.000000] Booting Linux on physical CPU 0x0\r\n")
        log.truncate(200 << 20)
    (cell / "qemu.stderr").write_bytes(b"x" * 100_000)
    options = ("--log-cap", cap) if cap else ()
    proc = harness("merge", str(run), "--results", str(tmp_path / "m"), *options, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    merged = (tmp_path / "m" / "latest" / "cells" / cell.name).resolve()
    limit = 64 << 10 if cap else DEFAULT_LOG_CAP
    kept = (merged / "console.log").read_bytes()
    assert kept.startswith(b"[    0.000000] Booting Linux")
    assert kept[limit:] == cap_mark(limit) and len(kept) == limit + len(cap_mark(limit))
    assert (merged / "qemu.stderr").stat().st_size == 100_000


def test_resume_reads_its_own_results_line_by_line_past_the_whole_file_limit(
    harness: Harness, tmp_path: Path
) -> None:
    """The run's own results.jsonl (under its lock) has no whole-file limit: 66 MiB of
    records (a long history of resumes) resume, its torn last line set aside; a line
    longer than a record can be is one line naming it. Read as data from elsewhere
    (compare), the same file is refused by its size."""
    from harness.matrix.rundata import MAX_RECORD_LINE, MAX_RESULTS

    line = json.dumps({**RECORD, "detail": "x" * (600 << 10)}).encode()
    count = MAX_RESULTS // len(line) + 2
    run = make_run(tmp_path / "run", [line] * count)
    with (run / "results.jsonl").open("ab") as jsonl:
        jsonl.write(line[:1000])  # cut short by a crash
    assert (run / "results.jsonl").stat().st_size > MAX_RESULTS
    proc = harness("matrix", "--resume", str(run), timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "its last line was cut short (1000 bytes" in proc.stderr
    assert (run / "results.jsonl").read_bytes().count(b"\n") == count
    line = one_line_error(harness("compare", str(run), str(run), timeout=60))
    assert line.endswith("larger than 64 MiB: not run data")
    too_long = json.dumps({**RECORD, "detail": "x" * MAX_RECORD_LINE}).encode()
    run = make_run(tmp_path / "long", [json.dumps(RECORD).encode(), too_long])
    line = one_line_error(harness("matrix", "--resume", str(run), timeout=60))
    assert line.endswith(f"{run / 'results.jsonl'}:2: longer than 1 MiB: not a record")


def test_the_report_lists_no_k_among_the_options_that_changed_verdicts(
    harness: Harness, tmp_path: Path
) -> None:
    """-k picks the cells; only options that change verdicts are listed (--smp here).
    An earlier results.json that still lists the keyword is read as before."""
    from harness.report.pages import run_options

    run = make_run(tmp_path / "run", smp=2)  # run with -k CELL
    proc = harness("matrix", "--resume", str(run), timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    page = (run / "report.html").read_text()
    assert "Options that changed verdicts: --smp 2</p>" in page
    assert json.loads((run / "results.json").read_text())["options"] == {"repeat": 1, "smp": 2}
    assert run_options({"keyword": CELL, "timeout": 9}) == (
        "--timeout 9 (instead of matrix.yaml's timeouts)",
    )


def test_a_run_of_errors_only_leaves_latest(harness: Harness, tmp_path: Path) -> None:
    # Every cell's image cannot be had: each is `error image-build-failed`, no QEMU
    # ever starts, so `latest` stays on the last run that booted something.
    gone = tmp_path / "gone.img"
    catalog = tmp_path / "catalog.yaml"
    kernel = {"url": gone.as_uri(), "digest": "sha256:" + "0" * 64}
    entry = {"distro": "test", "release": "0", "boot": "direct", "format": "raw",
             "source": "the tests", "kernel": kernel}  # fmt: skip
    catalog.write_text(json.dumps({"test-gone": entry}))
    matrix = tmp_path / "m.yaml"
    matrix.write_text(
        "profiles:\n  p:\n    matrix: {image: test-gone, firmware: none, machine: virt, "
        "transport: [pci, mmio]}\n"
    )
    results = tmp_path / "r"
    earlier = previous_latest(results)
    env = {"HARNESS_CATALOG": str(catalog), "HARNESS_CACHE": str(tmp_path / "c")}
    proc = harness("matrix", "--matrix", str(matrix), "--profile", "p", "--results",
                   str(results), env=env)  # fmt: skip
    assert proc.returncode == 2, proc.stdout + proc.stderr
    (run,) = (p for p in results.glob("2*") if p != earlier)
    records = [json.loads(line) for line in (run / "results.jsonl").read_text().splitlines()]
    assert [r["status"] for r in records] == ["error", "error"], records
    assert (results / "latest").resolve() == earlier


def test_report_html_escapes_what_a_shard_says(tmp_path: Path) -> None:
    hostile = '"><script>alert(1)</script>'
    record = {**RECORD, "cell": f"img{hostile}/none/virt/pci", "image": f"img{hostile}",
              "outcome": "fail", "detail": hostile, "log": f"{hostile}.log"}  # fmt: skip
    page = render_html(f"run {hostile}", [record], {record["cell"]: f"new{hostile}"})
    assert "<script" not in page and "&lt;script&gt;" in page
