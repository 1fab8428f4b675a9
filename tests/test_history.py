"""The results history: a real matrix run records itself, copies of it with planted
changes (a regression, a flaky cell, a slowdown) are imported as later nights, and
each question of `harness history` is answered from them; bad databases and bad run
directories are one line, exit 2, the database unchanged."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, Harness

from harness.model import Image

MATRIX = """\
profiles:
  h:
    matrix: {image: debian-12-tiny, firmware: none, machine: [virt, virt-7.2], transport: [mmio, pci]}
    exclude:
      - {machine: virt-7.2, transport: mmio}
"""
REGRESSED = "debian-12-tiny/none/virt/mmio"
FLAKY = "debian-12-tiny/none/virt/pci"
SLOWER = "debian-12-tiny/none/virt-7.2/pci"
NEW_IMAGE = "sha256:" + "ab" * 32
FLAKY_OUTCOMES = {2: "fail", 3: "pass", 4: "fail", 5: "pass", 6: "pass"}


def plant(record: dict[str, object], night: int) -> dict[str, object]:
    """Night `night`'s version of a real result: X fails from night 4 on a new image,
    Y flips, Z takes 1.6 times as long from night 4 on."""
    failed = {"status": "fail", "outcome": "fail", "stage": "login", "reason": "login-failed"}
    if record["cell"] == REGRESSED and night >= 4:
        return {**record, **failed, "image_digest": NEW_IMAGE}
    if record["cell"] == FLAKY and FLAKY_OUTCOMES[night] == "fail":
        return {**record, **failed}
    if record["cell"] == SLOWER and night >= 4:
        return {**record, "duration_s": round(float(record["duration_s"]) * 1.6, 3)}  # type: ignore[arg-type]
    return record


@pytest.fixture(scope="module")
def history(tiny: Image, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    """The history after a real run (night 1) and its five planted copies (nights 2-6)."""
    base = tmp_path_factory.mktemp("history")
    (base / "matrix.yaml").write_text(MATRIX)
    db = base / "h.sqlite"
    proc = subprocess.run(
        [sys.executable, "-m", "harness.cli", "matrix", "--matrix", str(base / "matrix.yaml"),
         "--profile", "h", "-j", "2", "--results", str(base / "r"), "--db", str(db)],
        capture_output=True, text=True, cwd=ROOT, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"history: recorded in {db}" in proc.stdout
    real = (base / "r" / "latest").resolve()
    nights = [real]
    for night in range(2, 7):
        copy = base / "nights" / str(night)
        copy.mkdir(parents=True)
        meta = json.loads((real / "run.json").read_text())
        meta["run"] = f"202612{night:02d}T011700Z-h"
        meta["started_at"] = f"202612{night:02d}T011700Z"
        if night >= 4:
            meta["host"]["harness_version"] = "0.2.0"
        (copy / "run.json").write_text(json.dumps(meta))
        lines = (real / "results.jsonl").read_text().splitlines()
        planted = [json.dumps(plant(json.loads(line), night)) for line in lines]
        (copy / "results.jsonl").write_text("\n".join(planted) + "\n")
        nights.append(copy)
    imported = subprocess.run(
        [sys.executable, "-m", "harness.cli", "history", "import", *map(str, nights), "--db", str(db)],
        capture_output=True, text=True, cwd=ROOT, timeout=60, check=False,
    )  # fmt: skip
    assert imported.returncode == 0, imported.stdout + imported.stderr
    words = [line.split()[0] for line in imported.stdout.splitlines()]
    assert words == ["unchanged"] + ["recorded"] * 5  # the matrix had recorded night 1
    return db, nights


def dump(db: Path) -> list[str]:
    """The history's content, whatever the order its rows were written in."""
    with sqlite3.connect(db) as connection:
        return sorted(connection.iterdump())


def test_the_database_is_wal_and_versioned(history: tuple[Path, list[Path]]) -> None:
    db, _ = history
    with sqlite3.connect(db) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert connection.execute("PRAGMA user_version").fetchone() == (1,)
        assert connection.execute("SELECT count(*) FROM runs").fetchone() == (6,)
        assert connection.execute("SELECT count(*) FROM results").fetchone() == (18,)


def test_a_cell_night_by_night_with_what_changed(
    history: tuple[Path, list[Path]], harness: Harness
) -> None:
    db, _ = history
    proc = harness("history", REGRESSED, "--db", str(db))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()[1:]
    assert [line.split()[1] for line in lines] == ["pass"] * 3 + ["fail"] * 3
    night4 = lines[3]
    assert night4.startswith("20261204T011700Z-h") and "login-failed" in night4
    assert f"-> {NEW_IMAGE[:19]}" in night4 and "harness 0.1.0 -> 0.2.0" in night4
    assert "->" not in lines[4]  # nothing changed between nights 4 and 5


def test_since_failing_names_the_streak_and_what_changed(
    history: tuple[Path, list[Path]], harness: Harness
) -> None:
    db, _ = history
    proc = harness("history", "--since-failing", "--db", str(db))
    assert proc.returncode == 0, proc.stderr
    (line, total) = proc.stdout.splitlines()
    assert line.startswith(
        f"{REGRESSED}: failing since 20261204T011700Z-h (fail login login-failed); "
        "last passed 20261203T011700Z-h (pass); changed between: image sha256:"
    )
    assert f"-> {NEW_IMAGE[:19]}; harness 0.1.0 -> 0.2.0" in line
    assert total == "1 failing cell"


def test_flaky_ranks_cells_that_flip_more_than_once(
    history: tuple[Path, list[Path]], harness: Harness
) -> None:
    db, _ = history
    proc = harness("history", "--flaky", "--nights", "30", "--db", str(db))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        f"  4 flips  {FLAKY}  pass fail pass fail pass pass",
        "1 flaky cell in the last 30 nights",
    ]
    last3 = harness("history", "--flaky", "--nights", "3", "--db", str(db))
    assert last3.stdout.splitlines() == ["0 flaky cells in the last 3 nights"]


def test_slower_finds_the_grown_median(history: tuple[Path, list[Path]], harness: Harness) -> None:
    db, _ = history
    proc = harness("history", "--slower", "--db", str(db))
    assert proc.returncode == 0, proc.stderr
    (line, total) = proc.stdout.splitlines()
    assert line.startswith("+60%") and SLOWER in line and "harness 0.1.0 -> 0.2.0" in line
    assert total == "1 cell slower by more than 20% (last 3 of 30 nights)"


def test_import_is_idempotent_and_a_changed_run_replaces_itself(
    history: tuple[Path, list[Path]], harness: Harness, tmp_path: Path
) -> None:
    db, nights = history
    before = dump(db)
    again = harness("history", "import", *map(str, nights), "--db", str(db))
    assert again.returncode == 0 and again.stdout.count("unchanged") == 6
    assert dump(db) == before
    # A resumed run: the same run id with one more result than before.
    resumed = tmp_path / "resumed"
    shutil.copytree(nights[1], resumed)
    with (resumed / "results.jsonl").open("a") as f:
        record = json.loads((resumed / "results.jsonl").read_text().splitlines()[0])
        f.write(json.dumps({**record, "cell": "debian-12-tiny/none/virt-7.1/pci"}) + "\n")
    replaced = harness("history", "import", str(resumed), "--db", str(db))
    assert replaced.stdout.startswith("replaced 20261202T011700Z-h (4 cells)")
    harness("history", "import", str(nights[1]), "--db", str(db))  # back as it was
    assert dump(db) == before


def one_line_exit_2(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    return line


def test_bad_databases_and_runs_are_one_line_and_change_nothing(
    history: tuple[Path, list[Path]], harness: Harness, tmp_path: Path
) -> None:
    db, nights = history
    newer = tmp_path / "newer.sqlite"
    with sqlite3.connect(newer) as connection:
        connection.execute("PRAGMA user_version = 99")
    corrupt = tmp_path / "corrupt.sqlite"
    corrupt.write_bytes(b"SQLite format 2\0" + bytes(range(256)) * 8)
    for bad, expected in ((newer, "schema version 99 is newer"), (corrupt, "not a usable history")):
        content = bad.read_bytes()
        line = one_line_exit_2(harness("history", "import", str(nights[0]), "--db", str(bad)))
        assert str(bad) in line and expected in line
        assert bad.read_bytes() == content and sorted(tmp_path.iterdir()) == [corrupt, newer]

    before = dump(db)
    (tmp_path / "empty").mkdir()
    line = one_line_exit_2(harness("history", "import", str(tmp_path / "empty"), "--db", str(db)))
    assert line == f"harness history: {tmp_path / 'empty'}: not a run directory (no run.json)"
    mixed = harness("history", "import", str(nights[0]), str(tmp_path / "nope"), "--db", str(db))
    assert "nope: not a run directory" in one_line_exit_2(mixed)

    other = tmp_path / "other"
    shutil.copytree(nights[1], other)
    meta = json.loads((other / "run.json").read_text())
    (other / "run.json").write_text(json.dumps({**meta, "run": "another-night"}))
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        line = one_line_exit_2(harness("history", "import", str(other), "--db", str(db)))
        assert "locked by another writer" in line
        reader = harness("history", FLAKY, "--db", str(db))  # WAL: a reader is not blocked
        assert reader.returncode == 0 and len(reader.stdout.splitlines()) == 7
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert dump(db) == before
    assert "not in the history" in one_line_exit_2(
        harness("history", "debian-12-tiny/none/virt-2.6/pci", "--db", str(db))
    )


def test_report_shows_each_cells_nights_trend_and_stages_in_a_real_browser(
    history: tuple[Path, list[Path]], harness: Harness, tmp_path: Path
) -> None:
    import re

    from PIL import Image as Picture
    from test_matrix_run import browser

    from harness.report.history import STAGE_COLOURS, TIMELINE_PX
    from harness.report.pages import COLOURS

    db, nights = history
    merged = harness("merge", str(nights[-1]), "--results", str(tmp_path / "m"),
                     env={"HARNESS_HISTORY": str(db)})  # fmt: skip
    assert merged.returncode == 1, merged.stdout + merged.stderr  # night 6 has a failure
    page = (tmp_path / "m" / "latest" / "report.html").resolve()
    dom = browser(tmp_path, "--dump-dom", page.as_uri()).stdout
    rows = dict(re.findall(r'<tr data-cell="([^"]+)">(.*?)</tr>', dom, re.S))
    assert set(rows) == {REGRESSED, FLAKY, SLOWER}
    marks = re.findall(r'class="mark (\w+)"', rows[FLAKY])
    assert marks == ["pass", "fail", "pass", "fail", "pass", "pass"]  # tonight is night 6
    assert re.findall(r'class="mark (\w+)"', rows[REGRESSED]) == ["pass"] * 3 + ["fail"] * 3
    assert all("<polyline" in row for row in rows.values())
    # The timelines share one scale: each is as wide as its boot is long.
    document = json.loads((page.parent / "results.json").read_text())
    seconds = {c["cell"]: c["duration_s"] for c in document["cells"]}
    widths = {cell: int(re.search(r'<svg width="(\d+)" height="14"', row).group(1))  # type: ignore[union-attr]
              for cell, row in rows.items()}  # fmt: skip
    longest = max(seconds, key=seconds.__getitem__)
    assert widths[longest] == TIMELINE_PX
    for cell, width in widths.items():
        assert abs(width - TIMELINE_PX * seconds[cell] / seconds[longest]) <= 1
    stages = re.findall(r'class="stage (\w+)"', rows[FLAKY])
    assert stages[-1] == "login" and "kernel" in stages
    shot = tmp_path / "report.png"
    browser(tmp_path, f"--screenshot={shot}", "--window-size=1100,900", page.as_uri())
    picture = Picture.open(shot).convert("RGB")
    colours = {colour for _, colour in picture.getcolors(maxcolors=1 << 20) or []}
    for hex_colour in (COLOURS["pass"], COLOURS["fail"], STAGE_COLOURS["kernel"],
                       STAGE_COLOURS["login"]):  # fmt: skip
        rgb = tuple(int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
        assert rgb in colours, f"{hex_colour} not drawn"
