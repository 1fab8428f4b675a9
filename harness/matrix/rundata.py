"""Reading run data that may come from elsewhere (a shard, last night's artifact, a
file the user names): bounded in size, parsed as UTF-8 JSON with a depth limit, and
checked against harness/schemas/results.schema.json before any field is used.

Every problem is one UsageError line naming the file (and line), so `compare`,
`merge`, `--resume` and `--baseline` end with exit 2 instead of a traceback.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, cast

from harness.errors import UsageError

if TYPE_CHECKING:
    import jsonschema

    from harness.records import JSON, JSONObject, Record, ResultsDocument, RunMeta

# run.json lists every planned cell (a nightly has hundreds, 100 bytes each).
MAX_META = 16 << 20
# results.jsonl and results.json: a nightly writes a few MiB; far more is not a run
# (e.g. `compare RUN /dev/zero`), and is refused before it fills the memory.
MAX_RESULTS = 64 << 20
# One line of a run's own results.jsonl (a record is a few KiB): read line by line,
# the file itself may grow past MAX_RESULTS (many repeats, a long --resume history).
MAX_RECORD_LINE = 1 << 20


def read_bounded(path: Path, limit: int) -> bytes:
    """The bytes of `path`, at most `limit` of them; UsageError if it is longer or
    cannot be read. Reads limit + 1 bytes at most, so an endless file (a device, a
    growing file) costs no more than that."""
    try:
        with path.open("rb") as f:
            data = f.read(limit + 1)
    except OSError as e:
        raise UsageError(f"{path}: cannot read it: {e.strerror or e}") from e
    if len(data) > limit:
        raise UsageError(f"{path}: larger than {limit >> 20} MiB: not run data")
    return data


def parse_json(data: bytes, where: str) -> JSON:
    """JSON (RFC 8259: UTF-8) from `data`; UsageError naming `where` otherwise."""
    try:
        value: JSON = json.loads(data.decode("utf-8"))
        return value
    except UnicodeDecodeError as e:
        raise UsageError(f"{where}: not UTF-8 (byte {e.start})") from e
    except json.JSONDecodeError as e:
        raise UsageError(f"{where}: not JSON: {e.msg} (line {e.lineno})") from e
    except RecursionError as e:  # json's decoder recurses once per level
        raise UsageError(f"{where}: nested too deeply") from e


def check(validator: jsonschema.protocols.Validator, value: JSON, where: str) -> JSONObject:
    """`value` unchanged when `validator` (see `validator`) finds it valid; UsageError
    naming `where` and the first problem's key otherwise."""
    errors = sorted(validator.iter_errors(value), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        error = errors[0]
        key = "".join(
            f"[{step}]" if isinstance(step, int) else f".{step}" for step in error.absolute_path
        ).lstrip(".")
        message = error.message if len(error.message) <= 160 else error.message[:157] + "..."
        raise UsageError(f"{where}: {key or '(top)'}: {message}")
    if not isinstance(value, dict):  # the schemas require objects; this is for mypy
        raise UsageError(f"{where}: expected a JSON object")
    return value


def load_json(path: Path, kind: str, limit: int) -> JSONObject:
    """A whole JSON file, bounded, parsed and checked as `kind` (see `validator`)."""
    return check(validator(kind), parse_json(read_bounded(path, limit), str(path)), str(path))


# What passed the schema's check has the schema's shape (harness/records.py): the
# casts below are where run data read from disk gets its type.


def load_meta(path: Path) -> RunMeta:
    """run.json at `path`, checked against results.schema.json's `run`."""
    return cast("RunMeta", load_json(path, "run", MAX_META))


def load_result(path: Path) -> Record:
    """A `harness run`'s result.json at `path` as the record of its one cell, checked
    against results.schema.json's `record`; its outcome is its status (`harness run`
    reads no expectation)."""
    value = parse_json(read_bounded(path, MAX_META), str(path))
    if isinstance(value, dict):
        value = {"outcome": value.get("status"), **value}
    return cast("Record", check(validator("record"), value, str(path)))


def load_document(path: Path) -> ResultsDocument:
    """A results.json at `path`, checked against results.schema.json."""
    return cast("ResultsDocument", load_json(path, "document", MAX_RESULTS))


def validator(kind: str) -> jsonschema.protocols.Validator:
    """A validator for `kind`: `document` (results.json), or one of results.schema.json's
    $defs: `run` (run.json), `record` (a line of results.jsonl)."""
    import jsonschema  # a tenth of a second to load: only when run data is read

    text = resources.files("harness.schemas").joinpath("results.schema.json").read_text()
    schema = json.loads(text)
    root = {"$defs": schema["$defs"], "$ref": "#/$defs/" + kind} if kind != "document" else schema
    validator: jsonschema.protocols.Validator = jsonschema.Draft202012Validator(root)
    return validator
