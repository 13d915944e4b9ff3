"""The results store: every run and every trial, measured values and provenance, in SQL.

It records *what was measured*; the LangGraph checkpointer (``workflow.checkpointer``) records *where
the loop is*. The two are kept apart on purpose: exports, the ``runs`` command and the UI read only
this store, and the workflow's evaluate step consults it so a trial that finished just before a crash
is reused rather than measured twice.

A URL picks the backend (one factory, as Optuna's storages):

* ``sqlite:///relative/path.sqlite`` or ``sqlite:////absolute/path.sqlite`` (the default, under the
  runs folder; WAL mode, so several processes can share it);
* ``postgresql://user@host:5432/db`` (psycopg 3, the ``[postgres]`` extra). libpq options work, e.g.
  ``?options=-csearch_path%3Dmyschema`` keeps the tables in their own schema.

Tables are ``ac_runs`` and ``ac_trials`` (prefixed so they can share a database with other
applications). ``(run_id, number)`` and ``(run_id, recipe_hash)`` are unique: a trial can be neither
lost to a renumbering nor stored twice.

Example:
    >>> import tempfile
    >>> with make_results_store(f"sqlite:///{tempfile.mkdtemp()}/results.sqlite") as store:
    ...     store.list_runs()
    []
"""

from __future__ import annotations

import json
import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Self

from agentic_compression.core.provenance import now
from agentic_compression.errors import AgenticCompressionError, UserInputError
from agentic_compression.redaction import redact_url, scrub
from agentic_compression.results.records import RunRecord, RunStatus, TrialRecord


class TrialConflictError(AgenticCompressionError):
    """A trial number or recipe hash is already stored with different content."""


@dataclass(frozen=True)
class StorageUrl:
    """A parsed storage URL: a SQLite file path or a PostgreSQL connection string."""

    kind: Literal["sqlite", "postgresql"]
    #: The file path (sqlite) or the libpq connection string (postgresql).
    target: str


def parse_storage_url(url: str) -> StorageUrl:
    """Parse ``sqlite:///path`` or ``postgresql://...`` (also ``postgres://``, ``postgresql+psycopg://``).

    >>> parse_storage_url("sqlite:///runs/results.sqlite")
    StorageUrl(kind='sqlite', target='runs/results.sqlite')
    >>> parse_storage_url("postgresql+psycopg://u@h/db").target
    'postgresql://u@h/db'
    """
    scheme, _, rest = url.partition("://")
    if scheme == "sqlite" and rest.startswith("/") and len(rest) > 1:
        return StorageUrl("sqlite", rest[1:])
    if scheme in ("postgresql", "postgres", "postgresql+psycopg"):
        return StorageUrl("postgresql", f"postgresql://{rest}")
    raise UserInputError(
        f"unsupported storage URL {redact_url(url)!r}; use sqlite:///path/to/file.sqlite "
        "or postgresql://user@host:5432/database"
    )


def connection_error(conninfo: str, error: Exception) -> UserInputError:
    """A one-line error for a failed database connection that never shows the password (a bad
    ``%`` escape makes the driver quote the password it could not decode)."""
    first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    hint = (
        "write a '%' in the password as %25"
        if "percent-encoded" in first
        else "check the URL and server"
    )
    detail = scrub(first, urls=[conninfo])
    return UserInputError(f"cannot connect to {redact_url(conninfo)} ({detail}); {hint}")


class ResultsStore(ABC):
    """Runs and trials, one implementation per backend (see the module docstring)."""

    @abstractmethod
    def create_run(self, run: RunRecord) -> None:
        """Store a new run; raises UserInputError if the id is taken."""

    @abstractmethod
    def get_run(self, run_id: str) -> RunRecord | None: ...

    @abstractmethod
    def list_runs(self) -> list[RunRecord]:
        """All runs, newest first."""

    @abstractmethod
    def mark_running(self, run_id: str, pid: int, host: str) -> None:
        """The run is (again) being worked on by process ``pid`` on ``host``."""

    @abstractmethod
    def set_progress(self, run_id: str, progress: str | None) -> None: ...

    @abstractmethod
    def end_run(
        self,
        run_id: str,
        status: RunStatus,
        *,
        stop_reason: str | None = None,
        error: str | None = None,
    ) -> None: ...

    @abstractmethod
    def save_trial(self, trial: TrialRecord) -> TrialRecord:
        """Store ``trial`` once. Saving the same trial again is a no-op that returns the stored
        record; a different recipe under the same number, or the same recipe under another
        number, raises :class:`TrialConflictError`."""

    @abstractmethod
    def discard_phase_costs(self, run_id: str, number: int) -> None:
        """Forget the phase costs recorded under ``number`` (work that finished and was counted)."""

    @abstractmethod
    def replace_trial(self, trial: TrialRecord) -> TrialRecord:
        """Replace stored trial ``trial.number`` (same recipe) by ``trial``: a screened trial by its
        full-fidelity measurement. Raises :class:`TrialConflictError` if no such trial is stored."""

    @abstractmethod
    def get_trial(self, run_id: str, number: int) -> TrialRecord | None: ...

    @abstractmethod
    def list_trials(self, run_id: str) -> list[TrialRecord]:
        """The run's trials in number order."""

    @abstractmethod
    def count_trials(self, run_id: str) -> int: ...

    @abstractmethod
    def record_phase_cost(
        self, run_id: str, number: int, phase: str, energy_kwh: float, co2_kg: float
    ) -> None:
        """Keep what a phase of trial ``number`` cost as soon as it ends (so a kill loses none)."""

    @abstractmethod
    def take_unfinished_costs(self, run_id: str) -> tuple[float, float]:
        """(kWh, kg CO2) of phases whose trial was never saved (work a kill threw away); the
        phase rows of the run are cleared, so each is counted once."""

    @abstractmethod
    def delete_run(self, run_id: str) -> None:
        """Remove a run and its trials."""

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_RUN_COLUMNS = (
    "run_id, model, config, status, stop_reason, error, progress, pid, host, created_at, updated_at"
)
_TRIAL_COLUMNS = (
    "run_id, number, recipe_hash, candidate_id, status, error, recipe, objectives, seconds, "
    "provenance, result, created_at"
)


def _schema(json_type: str, float_type: str) -> list[str]:
    return [
        f"""CREATE TABLE IF NOT EXISTS ac_runs (
            run_id TEXT PRIMARY KEY, model TEXT NOT NULL, config {json_type} NOT NULL,
            status TEXT NOT NULL, stop_reason TEXT, error TEXT, progress TEXT, pid INTEGER,
            host TEXT, created_at TEXT NOT NULL, updated_at TEXT NOT NULL)""",
        f"""CREATE TABLE IF NOT EXISTS ac_trials (
            run_id TEXT NOT NULL REFERENCES ac_runs(run_id) ON DELETE CASCADE,
            number INTEGER NOT NULL, recipe_hash TEXT NOT NULL, candidate_id TEXT NOT NULL,
            status TEXT NOT NULL, error TEXT, recipe {json_type} NOT NULL,
            objectives {json_type}, seconds {float_type} NOT NULL,
            provenance {json_type} NOT NULL, result {json_type} NOT NULL, created_at TEXT NOT NULL,
            PRIMARY KEY (run_id, number), UNIQUE (run_id, recipe_hash))""",
        f"""CREATE TABLE IF NOT EXISTS ac_phase_costs (
            run_id TEXT NOT NULL REFERENCES ac_runs(run_id) ON DELETE CASCADE,
            number INTEGER NOT NULL, phase TEXT NOT NULL, energy_kwh {float_type} NOT NULL,
            co2_kg {float_type} NOT NULL, recorded_at TEXT NOT NULL)""",
    ]


class _SqlResultsStore(ResultsStore):
    """The SQL both backends share; subclasses supply the connection and the dialect's details."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    @abstractmethod
    def _execute(self, sql: str, params: tuple[Any, ...] = ()) -> list[Mapping[str, Any]]:
        """Run one statement (``?`` placeholders) in its own transaction; rows as mappings."""

    @abstractmethod
    def _json(self, value: Any) -> Any:
        """A JSON-ready Python value as this backend's JSON parameter."""

    @staticmethod
    def _load(value: Any) -> Any:
        return json.loads(value) if isinstance(value, str | bytes) else value

    def create_run(self, run: RunRecord) -> None:
        if self.get_run(run.run_id) is not None:
            raise UserInputError(f"run {run.run_id!r} already exists; choose another run id")
        self._execute(
            f"INSERT INTO ac_runs ({_RUN_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (run.run_id, run.model, self._json(run.config), run.status, run.stop_reason,
             run.error, run.progress, run.pid, run.host, run.created_at, run.updated_at),
        )  # fmt: skip

    def _run(self, row: Mapping[str, Any]) -> RunRecord:
        data = dict(row)
        data["config"] = self._load(data["config"])
        return RunRecord.model_validate(data)

    def get_run(self, run_id: str) -> RunRecord | None:
        rows = self._execute(f"SELECT {_RUN_COLUMNS} FROM ac_runs WHERE run_id = ?", (run_id,))
        return self._run(rows[0]) if rows else None

    def list_runs(self) -> list[RunRecord]:
        rows = self._execute(f"SELECT {_RUN_COLUMNS} FROM ac_runs ORDER BY created_at DESC, run_id")
        return [self._run(row) for row in rows]

    def mark_running(self, run_id: str, pid: int, host: str) -> None:
        self._execute(
            "UPDATE ac_runs SET status = 'running', error = NULL, pid = ?, host = ?, "
            "updated_at = ? WHERE run_id = ?",
            (pid, host, now(), run_id),
        )

    def set_progress(self, run_id: str, progress: str | None) -> None:
        self._execute(
            "UPDATE ac_runs SET progress = ?, updated_at = ? WHERE run_id = ?",
            (None if progress is None else scrub(progress), now(), run_id),
        )

    def end_run(
        self,
        run_id: str,
        status: RunStatus,
        *,
        stop_reason: str | None = None,
        error: str | None = None,
    ) -> None:
        self._execute(
            "UPDATE ac_runs SET status = ?, stop_reason = ?, error = ?, progress = NULL, "
            "updated_at = ? WHERE run_id = ?",
            (status, stop_reason, None if error is None else scrub(error), now(), run_id),
        )

    def _trial(self, row: Mapping[str, Any]) -> TrialRecord:
        data = dict(row)
        for column in ("recipe", "objectives", "provenance", "result"):
            data[column] = self._load(data[column])
        return TrialRecord.model_validate(data)

    def save_trial(self, trial: TrialRecord) -> TrialRecord:
        payload = trial.model_dump(mode="json")
        self._execute(
            f"INSERT INTO ac_trials ({_TRIAL_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT DO NOTHING",
            (trial.run_id, trial.number, trial.recipe_hash, trial.candidate_id, trial.status,
             trial.error, self._json(payload["recipe"]), self._json(payload["objectives"]),
             trial.seconds, self._json(payload["provenance"]), self._json(payload["result"]),
             trial.created_at),
        )  # fmt: skip
        stored = self.get_trial(trial.run_id, trial.number)
        if stored is None:
            raise TrialConflictError(
                f"run {trial.run_id}: recipe {trial.recipe_hash} is already stored as another "
                f"trial; trial {trial.number} would repeat it"
            )
        if stored.recipe_hash != trial.recipe_hash:
            raise TrialConflictError(
                f"run {trial.run_id}: trial {trial.number} is stored with recipe "
                f"{stored.recipe_hash}, not {trial.recipe_hash}"
            )
        return stored

    def replace_trial(self, trial: TrialRecord) -> TrialRecord:
        payload = trial.model_dump(mode="json")
        self._execute(
            "UPDATE ac_trials SET candidate_id = ?, status = ?, error = ?, objectives = ?, "
            "seconds = ?, provenance = ?, result = ?, created_at = ? "
            "WHERE run_id = ? AND number = ? AND recipe_hash = ?",
            (trial.candidate_id, trial.status, trial.error, self._json(payload["objectives"]),
             trial.seconds, self._json(payload["provenance"]), self._json(payload["result"]),
             trial.created_at, trial.run_id, trial.number, trial.recipe_hash),
        )  # fmt: skip
        stored = self.get_trial(trial.run_id, trial.number)
        if stored is None or stored.created_at != trial.created_at:
            raise TrialConflictError(
                f"run {trial.run_id}: no trial {trial.number} with recipe {trial.recipe_hash} "
                "to replace"
            )
        return stored

    def get_trial(self, run_id: str, number: int) -> TrialRecord | None:
        rows = self._execute(
            f"SELECT {_TRIAL_COLUMNS} FROM ac_trials WHERE run_id = ? AND number = ?",
            (run_id, number),
        )
        return self._trial(rows[0]) if rows else None

    def list_trials(self, run_id: str) -> list[TrialRecord]:
        rows = self._execute(
            f"SELECT {_TRIAL_COLUMNS} FROM ac_trials WHERE run_id = ? ORDER BY number", (run_id,)
        )
        return [self._trial(row) for row in rows]

    def count_trials(self, run_id: str) -> int:
        rows = self._execute("SELECT COUNT(*) AS n FROM ac_trials WHERE run_id = ?", (run_id,))
        return int(rows[0]["n"])

    def record_phase_cost(
        self, run_id: str, number: int, phase: str, energy_kwh: float, co2_kg: float
    ) -> None:
        self._execute(
            "INSERT INTO ac_phase_costs (run_id, number, phase, energy_kwh, co2_kg, recorded_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (run_id, number, phase, energy_kwh, co2_kg, now()),
        )

    def discard_phase_costs(self, run_id: str, number: int) -> None:
        self._execute(
            "DELETE FROM ac_phase_costs WHERE run_id = ? AND number = ?", (run_id, number)
        )

    def take_unfinished_costs(self, run_id: str) -> tuple[float, float]:
        rows = self._execute(
            "SELECT COALESCE(SUM(energy_kwh), 0) AS kwh, COALESCE(SUM(co2_kg), 0) AS kg "
            "FROM ac_phase_costs c WHERE run_id = ? AND NOT EXISTS (SELECT 1 FROM ac_trials t "
            "WHERE t.run_id = c.run_id AND t.number = c.number)",
            (run_id,),
        )
        self._execute("DELETE FROM ac_phase_costs WHERE run_id = ?", (run_id,))
        return float(rows[0]["kwh"]), float(rows[0]["kg"])

    def delete_run(self, run_id: str) -> None:
        # One statement, one transaction: the trials go with the run (ON DELETE CASCADE).
        self._execute("DELETE FROM ac_runs WHERE run_id = ?", (run_id,))


class SqliteResultsStore(_SqlResultsStore):
    """SQLite file store (WAL journal, 30 s busy timeout so concurrent runs wait, not fail)."""

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        self.path = Path(path).expanduser()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(
            self.path, timeout=30, check_same_thread=False, isolation_level=None
        )
        self._conn.row_factory = sqlite3.Row
        try:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA foreign_keys=ON")
            for statement in _schema("TEXT", "REAL"):
                self._conn.execute(statement)
        except sqlite3.DatabaseError as error:
            self._conn.close()
            raise UserInputError(
                f"results store {str(self.path)!r} is not a usable SQLite database ({error}); "
                "point --store-url (or --runs-dir) at a results store or a new file"
            ) from None

    def _execute(self, sql: str, params: tuple[Any, ...] = ()) -> list[Mapping[str, Any]]:
        with self._lock:
            return list(self._conn.execute(sql, params).fetchall())

    def _json(self, value: Any) -> Any:
        return None if value is None else json.dumps(value)

    def close(self) -> None:
        self._conn.close()


class PostgresResultsStore(_SqlResultsStore):
    """PostgreSQL store (psycopg 3, autocommit; JSON columns are ``jsonb``)."""

    def __init__(self, conninfo: str) -> None:
        super().__init__()
        try:
            import psycopg
            from psycopg.rows import dict_row
        except ImportError:
            raise UserInputError(
                "a postgresql:// store needs psycopg: pip install 'agentic-compression[postgres]'"
            ) from None
        try:
            self._conn = psycopg.connect(conninfo, autocommit=True, row_factory=dict_row)
        except psycopg.Error as error:
            raise connection_error(conninfo, error) from None
        # Two processes creating the tables at once would race; an advisory lock serialises them.
        with self._conn.transaction():
            self._conn.execute("SELECT pg_advisory_xact_lock(4242001)")
            for statement in _schema("JSONB", "DOUBLE PRECISION"):
                self._conn.execute(statement)

    def _execute(self, sql: str, params: tuple[Any, ...] = ()) -> list[Mapping[str, Any]]:
        with self._lock:
            cursor = self._conn.execute(sql.replace("?", "%s"), params)
            return list(cursor.fetchall()) if cursor.description else []

    def _json(self, value: Any) -> Any:
        from psycopg.types.json import Jsonb

        return None if value is None else Jsonb(value)

    def close(self) -> None:
        self._conn.close()


def make_results_store(url: str) -> ResultsStore:
    """Open the store at ``url`` (``sqlite:///...`` or ``postgresql://...``), creating its tables.

    >>> import tempfile
    >>> store = make_results_store(f"sqlite:///{tempfile.mkdtemp()}/r.sqlite")
    >>> type(store).__name__
    'SqliteResultsStore'
    >>> store.close()
    """
    parsed = parse_storage_url(url)
    if parsed.kind == "sqlite":
        return SqliteResultsStore(parsed.target)
    return PostgresResultsStore(parsed.target)
