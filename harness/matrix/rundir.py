"""A run's directory: results/<run>/ with run.json (what was asked), results.jsonl
(one line per finished boot, appended and fsync'd as it finishes, so a killed run
loses nothing it finished) and cells/<cell>/ (console.log, result.json, cmdline.sh).
results/latest points at the newest matrix run that booted something (bisect keeps
results/latest-bisect).

One writer per run: the writer holds an flock(2) on `.lock` in the directory (freed
by the kernel however the process ends), so a second `--resume` of the same run
stops with one line instead of booting every cell twice.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, cast

from harness.atomic import write_atomic
from harness.errors import InfraError, UsageError
from harness.matrix.rundata import (
    MAX_RECORD_LINE,
    MAX_RESULTS,
    check,
    load_meta,
    parse_json,
    read_bounded,
    validator,
)
from harness.model import Cell, check_path_name

if TYPE_CHECKING:
    from harness.records import Record, RunMeta

RESULTS = "results.jsonl"
RUN = "run.json"
LOCK = ".lock"
TORN = "results.jsonl.torn"
LATEST = "latest"


def slug(cell: Cell) -> str:
    return re.sub(r"[^\w.-]+", "_", cell.id).strip("_")


class RunDir:
    def __init__(self, path: Path):
        self.path = path
        self._lock: int | None = None
        # Lines of results.jsonl already checked, or written by this process: the
        # schema check costs about a millisecond a line, and the reports read the
        # file more than once.
        self._checked: set[bytes] = set()

    @classmethod
    def create(cls, results: Path, name: str, meta: RunMeta) -> RunDir:
        """A new, locked run directory `results/<UTC stamp>-<name>`; `name` must be a
        path name (model.check_path_name). `latest` is not moved: see mark_latest."""
        check_path_name("run name", name)
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        path = results / f"{stamp}-{name}"
        suffix = 1
        while path.exists():
            suffix += 1
            path = results / f"{stamp}-{name}-{suffix}"
        path.mkdir(parents=True)
        run = cls(path)
        run.lock()
        run.write_meta({"run": path.name, "started_at": stamp, **meta})
        return run

    @classmethod
    def open(cls, path: Path) -> RunDir:
        """An existing run, its run.json checked (UsageError: one line naming it)."""
        if not (path / RUN).is_file():
            raise UsageError(f"{path}: not a run directory (no {RUN})")
        run = cls(path)
        run.meta()
        return run

    def lock(self) -> None:
        """Makes this process the run's one writer; UsageError when another holds it."""
        try:
            fd = os.open(self.path / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise InfraError(f"cannot lock {self.path}: {e.strerror or e}") from e
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise UsageError(
                f"{self.path} is being written by another harness (pid {holder}); "
                "one run directory has one writer"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._lock = fd

    def meta(self) -> RunMeta:
        """run.json, checked against results.schema.json's `run`."""
        return load_meta(self.path / RUN)

    def write_meta(self, meta: RunMeta) -> None:
        write_atomic(self.path / RUN, json.dumps(meta, indent=2) + "\n")

    def mark_latest(self, pointer: str = LATEST) -> None:
        """Points results/<pointer> at this run, atomically."""
        link = self.path.parent / pointer
        partial = self.path.parent / f".{pointer}.tmp"
        partial.unlink(missing_ok=True)
        partial.symlink_to(self.path.name)
        os.replace(partial, link)

    def cell_dir(self, cell: Cell, repeat: int = 0) -> Path:
        base = self.path / "cells" / slug(cell)
        return base / f"repeat-{repeat + 1}" if repeat else base

    def append(self, record: Record) -> None:
        line = json.dumps(record, sort_keys=True)
        try:
            with (self.path / RESULTS).open("a") as f:
                f.write(line + "\n")
                f.flush()
                os.fsync(f.fileno())
        except OSError as e:
            raise InfraError(
                f"cannot record a result in {self.path / RESULTS}: {e.strerror or e}"
            ) from e
        self._checked.add(line.encode())

    def repair(self) -> bytes:
        """Before appending to a run that was killed: a last line without its newline
        (cut short mid-write) is moved to results.jsonl.torn and cut off, so the next
        record starts on a fresh line and the cut cell, having no result, runs again.
        Returns the cut bytes (b"" when the file was whole)."""
        path = self.path / RESULTS
        if not path.exists():
            return b""
        # Only the end is read: a line is at most MAX_RECORD_LINE, whatever the file's size.
        try:
            with path.open("rb") as f:
                size = f.seek(0, os.SEEK_END)
                start = f.seek(max(0, size - MAX_RECORD_LINE - 1))
                tail = f.read()
        except OSError as e:
            raise UsageError(f"{path}: cannot read it: {e.strerror or e}") from e
        if not tail or tail.endswith(b"\n"):
            return b""
        cut = tail.rfind(b"\n") + 1
        if not cut and start:
            raise UsageError(f"{path}: its last line is longer than a record can be: not run data")
        with (self.path / TORN).open("ab") as torn:
            torn.write(tail[cut:] + b"\n")
            torn.flush()
            os.fsync(torn.fileno())
        os.truncate(path, start + cut)
        return tail[cut:]

    def records(self) -> list[Record]:
        """Every complete line of results.jsonl, each checked against results.schema.json's
        `record`; a last line without its newline (a crash mid-write) is left out.
        UsageError `file:line: problem` for any other bad line."""
        path = self.path / RESULTS
        if not path.exists():
            return []
        check_record = None
        records: list[Record] = []
        for number, line in self._lines(path):
            where = f"{path}:{number}"
            record = parse_json(line, where)
            if line not in self._checked:
                check_record = check_record or validator("record")
                check(check_record, record, where)
                self._checked.add(line)
            # checked now, or earlier: what passed `record` has its shape (records.py)
            records.append(cast("Record", record))
        return records

    def _lines(self, path: Path) -> Iterator[tuple[int, bytes]]:
        """The complete lines of results.jsonl, numbered from 1, without their
        newlines (the part after the last newline is torn or empty). A run this
        process holds the lock of is its own, written by the harness: read line by
        line, each at most MAX_RECORD_LINE. Another run's is data from elsewhere: the
        whole file at most MAX_RESULTS. UsageError beyond those or if unreadable."""
        if self._lock is None:
            yield from enumerate(read_bounded(path, MAX_RESULTS).split(b"\n")[:-1], 1)
            return
        try:
            with path.open("rb") as f:
                for number, line in enumerate(
                    iter(lambda: f.readline(MAX_RECORD_LINE + 1), b""), 1
                ):
                    if not line.endswith(b"\n"):
                        if len(line) > MAX_RECORD_LINE:
                            raise UsageError(
                                f"{path}:{number}: longer than {MAX_RECORD_LINE >> 20} MiB: "
                                "not a record"
                            )
                        return
                    yield number, line[:-1]
        except OSError as e:
            raise UsageError(f"{path}: cannot read it: {e.strerror or e}") from e

    def done(self) -> set[tuple[str, int]]:
        """(cell, repeat) pairs with a verdict; errors count as not done, so a
        resumed run tries them again."""
        return {
            (r["cell"], r.get("repeat", 0)) for r in self.records() if r.get("status") != "error"
        }


def report_torn(run: RunDir, torn: bytes, command: str) -> None:
    """Says on stderr that a torn last line was set aside (see RunDir.repair)."""
    if torn:
        print(
            f"harness {command}: {run.path / RESULTS}: its last line was cut short "
            f"({len(torn)} bytes, kept in {TORN}); that cell runs again",
            file=sys.stderr,
        )


def latest_per_cell(records: Iterable[Record]) -> dict[tuple[str, int], Record]:
    """The last record of every (cell, repeat): later lines (a resume) win."""
    latest: dict[tuple[str, int], Record] = {}
    for record in records:
        latest[(record["cell"], record.get("repeat", 0))] = record
    return latest
