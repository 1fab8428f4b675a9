"""The shapes of run data, as harness/schemas/results.schema.json defines them: a
cell's result.json, a line of results.jsonl, run.json and results.json.

TypedDicts, so mypy checks every key a writer puts in and a report reads out. What
comes from disk is checked against the schema first (harness/matrix/rundata.py),
and only then has one of these types; a key's type here is never wider than the
schema lets it be. Objects the schema leaves open (host facts, QEMU's launch, the
in-guest probe's findings, an expectation) are `JSONObject`s, narrowed where read.

Optional keys are in the `total=False` classes (typing.NotRequired is Python 3.11).
"""

from __future__ import annotations

from typing import TypedDict

# A JSON value as json.loads returns it (RFC 8259).
JSON = dict[str, "JSON"] | list["JSON"] | str | int | float | bool | None
JSONObject = dict[str, JSON]


def text_of(value: object) -> str:
    """`value` when it is a string, else "" (an open object's key read as text)."""
    return value if isinstance(value, str) else ""


def object_of(value: object) -> JSONObject:
    """`value` when it is a JSON object, else {} (an open object read as one)."""
    return value if isinstance(value, dict) else {}


class _Booted(TypedDict):
    """What every result of a cell says: the schema's required keys of `record`."""

    cell: str  # IMAGE/FIRMWARE/MACHINE/TRANSPORT[@BUILD] (model.Cell.id)
    image: str
    firmware: str
    machine: str
    transport: str
    status: str  # pass, fail, error, skip (model.Outcome)
    stage: str  # model.STAGES
    reason: str
    stage_times: dict[str, float]  # stage -> seconds since QEMU started
    duration_s: float


class _Described(_Booted, total=False):
    """Keys a result.json, a record and a results.json cell have in common, of one type."""

    accel: str | None
    detail: str | None
    deciding_line: int | None
    started_at: str | None
    qemu_build: str | None
    qemu_version: str | None
    proof: str | None  # shell, prompt, ready or ""
    resets: int | None
    timeout_s: float | None
    guest: JSONObject | None  # console/probe.py Findings.to_json
    # The cell whose boot this one is recorded from (matrix/sameboot.py; never in result.json)
    same_boot_as: str | None


class ResultJson(_Described, total=False):
    """A cell's result.json (model.CellResult.to_json)."""

    schema_version: int
    qemu: JSONObject  # binary, version, argv, exit and the launcher's own keys
    image_digest: str
    image_verified: bool
    firmware_digest: str
    firmware_version: str
    host: JSONObject  # host.Host.facts
    log_path: str


class _Judged(TypedDict):
    outcome: str  # model.Outcome: the status read against the cell's expectation


class CellRecord(_Described, _Judged, total=False):
    """What a line of results.jsonl and a results.json cell share: what compare,
    the grid and the reports read from either."""

    attempts: int | None
    expect: JSONObject | None  # matrix.expand.Expectation as a dict


class Record(ResultJson, CellRecord, total=False):
    """One line of results.jsonl: one finished boot (matrix/run.py record_of)."""

    repeat: int  # 0-based; absent is 0


class FinalRecord(Record):
    """A run's final word on a cell (report/results.py final_records): its last try
    of each repeat, with the repeats' outcomes and `stage reason`s."""

    repeats: list[str]
    repeat_reasons: list[str]


class _Listed(CellRecord):
    cmdline: list[str]  # QEMU's argv
    log: str  # the console log, relative to the run directory ("" when none)


class CellEntry(_Listed, total=False):
    """One of results.json's `cells` (report/results.py results_document)."""

    placement: str  # libvirt cells: what libvirt put the virtio devices behind
    repeats: list[str]
    repeat_reasons: list[str]
    image_verified: bool | None
    firmware_version: str | None
    comparison: str  # report/compare.py's label, with a baseline


class _RunCells(TypedDict):
    cells: list[str]  # the planned cells' ids


class RunMeta(_RunCells, total=False):
    """run.json: what a run was asked to do (matrix/rundir.py, commands/matrix.py)."""

    run: str
    profile: str
    started_at: str
    matrix: str | None
    keyword: str | None
    repeat: int
    timeout: float | None
    smp: int
    shard: str | None
    shards: list[str]
    host: JSONObject  # host.Host.facts


class QemuOfRun(TypedDict):
    binary: str
    version: str


class _Document(TypedDict):
    schema_version: int
    run: str
    profile: str
    complete: bool  # false when planned cells have no result (an interrupted run)
    host: JSONObject
    qemu: QemuOfRun
    images: dict[str, str]  # image -> sha256:digest
    firmware: dict[str, str]
    summary: dict[str, int]  # outcome -> cells
    cells: list[CellEntry]


class Comparison(TypedDict):
    baseline: str
    counts: dict[str, int]  # label -> cells


class ResultsDocument(_Document, total=False):
    """results.json (report/results.py results_document)."""

    started_at: str
    written_at: str
    planned: int
    shards: list[str]
    options: JSONObject  # report/results.py run_options_of
    comparison: Comparison
