"""What the history keeps of one run, read from its directory.

A run directory (results/<run>/, as harness/matrix/rundir.py writes it: run.json and
results.jsonl) becomes one `RunSnapshot`: the run's id, when it started, the QEMU and
harness versions, and per cell its final outcome, stage, reason, duration, stage
times and the digests of what it booted.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from harness.errors import UsageError
from harness.matrix.rundir import RESULTS, RunDir
from harness.records import object_of

if TYPE_CHECKING:
    from harness.records import FinalRecord


@dataclass(frozen=True)
class CellRow:
    """One cell's final word in one run; durations in seconds."""

    cell: str
    outcome: str  # pass/fail/error/skip/xfail/xpass/unstable
    status: str
    stage: str
    reason: str
    duration_s: float
    stage_times: str  # JSON object: stage -> seconds from the start when first seen
    image_digest: str
    firmware_digest: str
    firmware_version: str


@dataclass(frozen=True)
class RunSnapshot:
    run_id: str  # run.json's "run" (the directory's name when the run was made)
    started_at: str  # YYYYMMDDTHHMMSSZ, UTC, as run.json gives it
    profile: str
    qemu_version: str
    harness_version: str
    host: str  # JSON of the host's facts
    complete: bool
    cells: tuple[CellRow, ...]

    @property
    def fingerprint(self) -> str:
        """sha256 of the whole snapshot: the same run imported twice has the same one."""
        text = json.dumps(asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()


def read_run(path: Path) -> RunSnapshot:
    """The snapshot of the run in `path`.

    Raises UsageError (one line naming `path`) when it is not a run directory, its
    run.json is not a JSON object or it holds no result.
    """
    from harness.report.results import load_final

    if not path.is_dir():
        raise UsageError(f"{path}: not a run directory")
    run = RunDir.open(path)
    try:
        meta = run.meta()
        if not isinstance(meta, dict):
            raise ValueError("not a JSON object")
        final = load_final(run)
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise UsageError(f"{path}: not a readable run ({type(e).__name__}: {e})") from e
    if not final:
        raise UsageError(f"{path}: no result in {RESULTS} to record")
    host = meta.get("host") or {}
    cells = tuple(_row(record) for record in final)
    return RunSnapshot(
        run_id=str(meta.get("run") or path.name),
        started_at=str(meta.get("started_at") or ""),
        profile=str(meta.get("profile") or ""),
        qemu_version=str(host.get("qemu_version") or _qemu_version(final)),
        harness_version=str(host.get("harness_version") or ""),
        host=json.dumps(host, sort_keys=True),
        complete=len(final) >= len(meta.get("cells") or []),
        cells=cells,
    )


def _qemu_version(final: list[FinalRecord]) -> str:
    """The first qemu.version a record has ("" when none has one)."""
    versions = (object_of(r.get("qemu")).get("version") for r in final)
    return next((str(v) for v in versions if v), "")


def _row(record: FinalRecord) -> CellRow:
    try:
        return CellRow(
            cell=str(record["cell"]),
            outcome=str(record["outcome"]),
            status=str(record.get("status", "")),
            stage=str(record.get("stage", "")),
            reason=str(record.get("reason", "")),
            duration_s=float(record.get("duration_s") or 0.0),
            stage_times=json.dumps(record.get("stage_times") or {}, sort_keys=True),
            image_digest=str(record.get("image_digest") or ""),
            firmware_digest=str(record.get("firmware_digest") or ""),
            firmware_version=str(record.get("firmware_version") or ""),
        )
    except (KeyError, TypeError, ValueError) as e:
        raise UsageError(f"a result of cell {record.get('cell')!r} lacks {e}") from e
