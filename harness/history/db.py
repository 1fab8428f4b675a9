"""The history database: one SQLite file (stdlib sqlite3), results/history.sqlite
unless --db or $HARNESS_HISTORY names another.

WAL journal, so reading the history never blocks a matrix recording its run (and
the reverse); the schema's version is `PRAGMA user_version`, migrated forward only,
each migration in its own transaction; each run is imported in one transaction,
keyed by its run id: importing the same run again changes nothing, importing a run
whose results changed since (a resumed run) replaces it. Sources: SQLite's
documentation of WAL (https://sqlite.org/wal.html) and of user_version
(https://sqlite.org/pragma.html#pragma_user_version).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from harness.errors import UsageError
from harness.history.snapshot import RunSnapshot

HISTORY_ENV = "HARNESS_HISTORY"
HISTORY_FILE = "history.sqlite"
# How long a writer waits for another writer (a concurrent import) before giving up.
BUSY_TIMEOUT_S = 3.0

# MIGRATIONS[n] takes the schema from version n to n + 1. Append only: a database
# made by an older harness is brought forward; one from a newer harness is refused.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE runs (
            id TEXT PRIMARY KEY,
            started_at TEXT NOT NULL,
            profile TEXT NOT NULL,
            qemu_version TEXT NOT NULL,
            harness_version TEXT NOT NULL,
            host TEXT NOT NULL,
            complete INTEGER NOT NULL,
            fingerprint TEXT NOT NULL
        )""",
        """CREATE TABLE results (
            run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
            cell TEXT NOT NULL,
            outcome TEXT NOT NULL,
            status TEXT NOT NULL,
            stage TEXT NOT NULL,
            reason TEXT NOT NULL,
            duration_s REAL NOT NULL,
            stage_times TEXT NOT NULL,
            image_digest TEXT NOT NULL,
            firmware_digest TEXT NOT NULL,
            firmware_version TEXT NOT NULL,
            PRIMARY KEY (run_id, cell)
        )""",
        "CREATE INDEX results_by_cell ON results (cell)",
        "CREATE INDEX runs_by_start ON runs (started_at, id)",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)


def history_path(option: Path | None, env: Mapping[str, str], results: Path) -> Path:
    """--db, else $HARNESS_HISTORY, else history.sqlite in the results directory."""
    if option is not None:
        return option
    if env.get(HISTORY_ENV):
        return Path(env[HISTORY_ENV])
    return results / HISTORY_FILE


@contextmanager
def open_history(path: Path, create: bool = True) -> Iterator[sqlite3.Connection]:
    """A connection to the history at `path`, its schema brought to SCHEMA_VERSION.

    Raises UsageError (one line naming `path`) when the file is not a SQLite
    database, is corrupt, comes from a newer harness, is locked by another writer
    for longer than BUSY_TIMEOUT_S, or (create=False) does not exist; in each case
    nothing was written to it.
    """
    if not path.exists() and not create:
        raise UsageError(f"{path}: no history there (harness history import RUN... makes one)")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    except (OSError, sqlite3.Error) as e:
        raise UsageError(f"{path}: cannot open the history: {e}") from e
    try:
        with _errors(path):
            _check_version(path, connection)
            connection.execute("PRAGMA journal_mode = WAL")
            connection.execute("PRAGMA foreign_keys = ON")
            _migrate(connection)
        with _errors(path):
            yield connection
    finally:
        connection.close()


@contextmanager
def read_only(path: Path) -> Iterator[sqlite3.Connection]:
    """The history at `path` opened read only (SQLite's mode=ro): never created,
    migrated or written, for readers that must not disturb it (shard cuts, reports).
    Raises UsageError as `open_history` does; the file must exist."""
    try:
        connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as e:
        raise UsageError(f"{path}: cannot open the history: {e}") from e
    try:
        with _errors(path):
            _check_version(path, connection)
            yield connection
    finally:
        connection.close()


@contextmanager
def _errors(path: Path) -> Iterator[None]:
    try:
        yield
    except sqlite3.OperationalError as e:
        if "locked" in str(e) or "busy" in str(e):
            raise UsageError(
                f"{path}: the history is locked by another writer (tried {BUSY_TIMEOUT_S:g} s)"
            ) from e
        raise UsageError(f"{path}: not a usable history database: {e}") from e
    except sqlite3.DatabaseError as e:
        raise UsageError(f"{path}: not a usable history database: {e}") from e


def _check_version(path: Path, connection: sqlite3.Connection) -> None:
    (version,) = connection.execute("PRAGMA user_version").fetchone()
    if version > SCHEMA_VERSION:
        raise UsageError(
            f"{path}: history schema version {version} is newer than this harness's "
            f"({SCHEMA_VERSION}): use a newer harness"
        )


def _migrate(connection: sqlite3.Connection) -> None:
    (version,) = connection.execute("PRAGMA user_version").fetchone()
    for target in range(version + 1, SCHEMA_VERSION + 1):
        connection.execute("BEGIN IMMEDIATE")
        try:
            for statement in MIGRATIONS[target - 1]:
                connection.execute(statement)
            connection.execute(f"PRAGMA user_version = {target}")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")


def record_run(connection: sqlite3.Connection, run: RunSnapshot) -> str:
    """Imports `run` in one transaction: "recorded" (new), "unchanged" (the same run
    was recorded before: nothing is written) or "replaced" (its results changed
    since, e.g. it was resumed)."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        row = connection.execute("SELECT fingerprint FROM runs WHERE id = ?", (run.run_id,))
        found = row.fetchone()
        if found is not None and found[0] == run.fingerprint:
            connection.execute("ROLLBACK")
            return "unchanged"
        connection.execute("DELETE FROM runs WHERE id = ?", (run.run_id,))
        connection.execute(
            "INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (run.run_id, run.started_at, run.profile, run.qemu_version, run.harness_version,
             run.host, int(run.complete), run.fingerprint),
        )  # fmt: skip
        connection.executemany(
            "INSERT INTO results VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (run.run_id, c.cell, c.outcome, c.status, c.stage, c.reason, c.duration_s,
                 c.stage_times, c.image_digest, c.firmware_digest, c.firmware_version)
                for c in run.cells
            ],
        )  # fmt: skip
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")
    return "recorded" if found is None else "replaced"


def record_run_dir(db: Path, run: Path) -> str:
    """Reads the run in directory `run` and records it in the history at `db`; says
    how ("recorded", "unchanged", "replaced"). Raises UsageError as `read_run` and
    `open_history` do."""
    from harness.history.snapshot import read_run

    snapshot = read_run(run)
    with open_history(db) as connection:
        return record_run(connection, snapshot)
