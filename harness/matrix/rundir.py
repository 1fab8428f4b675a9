"""A run's directory: results/<run>/ with run.json (what was asked), results.jsonl
(one line per finished boot, appended and fsync'd as it finishes, so a killed run
loses nothing it finished) and cells/<cell>/ (console.log, result.json, cmdline.sh).
results/latest points at the newest run.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from harness.atomic import write_atomic
from harness.errors import InfraError, UsageError
from harness.model import Cell

RESULTS = "results.jsonl"
RUN = "run.json"


def slug(cell: Cell) -> str:
    return re.sub(r"[^\w.-]+", "_", cell.id).strip("_")


class RunDir:
    def __init__(self, path: Path):
        self.path = path

    @classmethod
    def create(cls, results: Path, name: str, meta: dict[str, Any]) -> RunDir:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        path = results / f"{stamp}-{name}"
        suffix = 1
        while path.exists():
            suffix += 1
            path = results / f"{stamp}-{name}-{suffix}"
        path.mkdir(parents=True)
        run = cls(path)
        run.write_meta({"run": path.name, "started_at": stamp, **meta})
        run.mark_latest()
        return run

    @classmethod
    def open(cls, path: Path) -> RunDir:
        if not (path / RUN).is_file():
            raise UsageError(f"{path}: not a run directory (no {RUN})")
        return cls(path)

    def meta(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.path / RUN).read_text())
        return data

    def write_meta(self, meta: dict[str, Any]) -> None:
        write_atomic(self.path / RUN, json.dumps(meta, indent=2) + "\n")

    def mark_latest(self) -> None:
        link = self.path.parent / "latest"
        partial = self.path.parent / ".latest.tmp"
        partial.unlink(missing_ok=True)
        partial.symlink_to(self.path.name)
        os.replace(partial, link)

    def cell_dir(self, cell: Cell, repeat: int = 0) -> Path:
        base = self.path / "cells" / slug(cell)
        return base / f"repeat-{repeat + 1}" if repeat else base

    def append(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, sort_keys=True) + "\n"
        try:
            with (self.path / RESULTS).open("a") as f:
                f.write(line)
                f.flush()
                os.fsync(f.fileno())
        except OSError as e:
            raise InfraError(
                f"cannot record a result in {self.path / RESULTS}: {e.strerror or e}"
            ) from e

    def records(self) -> list[dict[str, Any]]:
        """Every complete line; a line cut short by a crash is ignored."""
        try:
            text = (self.path / RESULTS).read_text()
        except FileNotFoundError:
            return []
        records = []
        for line in text.splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return records

    def done(self) -> set[tuple[str, int]]:
        """(cell, repeat) pairs with a verdict; errors count as not done, so a
        resumed run tries them again."""
        return {
            (r["cell"], r.get("repeat", 0)) for r in self.records() if r.get("status") != "error"
        }


def latest_per_cell(records: Iterable[dict[str, Any]]) -> dict[tuple[str, int], dict[str, Any]]:
    """The last record of every (cell, repeat): later lines (a resume) win."""
    latest: dict[tuple[str, int], dict[str, Any]] = {}
    for record in records:
        latest[(record["cell"], record.get("repeat", 0))] = record
    return latest
