"""A SQLite cache of accuracy metrics, keyed by candidate and task configuration.

The key of an entry is a SHA-256 over the caller's candidate key (``"<model_hash>:<recipe_hash>"``) and
everything that decides a task's score: the task and its data source, a fingerprint of the data files'
contents, the generated YAML, the example limit, the few-shot count, metric selection, generation
arguments, seed and lm-eval's version. Re-evaluating the same candidate on the same task configuration
is a hit and never touches the model. The values are the typed :class:`AccuracyMetric` records as JSON.

lm-eval's own response cache (``use_cache=``) is keyed by request text only, not by the model, so two
compressed variants of one base model would share answers: it is never used here.

Example:
    >>> import tempfile, pathlib
    >>> cache = EvaluationCache(pathlib.Path(tempfile.mkdtemp()) / "eval.sqlite")
    >>> key = cache_entry_key("abc123:def456", {"task": "arc_easy", "limit": 20})
    >>> cache.get(key) is None
    True
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Mapping, Sequence
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agentic_compression.core.metrics import AccuracyMetric
from agentic_compression.paths import home

_SCHEMA = """
CREATE TABLE IF NOT EXISTS accuracy_cache (
    entry_key TEXT PRIMARY KEY,
    candidate_key TEXT NOT NULL,
    task TEXT NOT NULL,
    task_config TEXT NOT NULL,
    metrics TEXT NOT NULL,
    created_at TEXT NOT NULL
)
"""


def default_cache_path() -> Path:
    """``home()/eval_cache.sqlite`` (``AGENTIC_COMPRESSION_HOME`` moves it)."""
    return home() / "eval_cache.sqlite"


def cache_entry_key(candidate_key: str, task_config: Mapping[str, Any]) -> str:
    """The entry key: SHA-256 of the candidate key and the canonical JSON of the task config."""
    canonical = json.dumps(
        {"candidate": candidate_key, "task": task_config}, sort_keys=True, default=str
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


class EvaluationCache:
    """Typed accuracy metrics in a SQLite file; counts its hits and misses.

    One short connection per operation, WAL journal and a busy timeout, so several processes (Ray
    workers, a UI) can share one file.
    """

    def __init__(self, path: Path | None = None) -> None:
        self.path = Path(path) if path is not None else default_cache_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.hits = 0
        self.misses = 0
        with closing(self._connect()) as conn, conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=30.0)

    def get(self, entry_key: str) -> tuple[AccuracyMetric, ...] | None:
        """The stored metrics, or None (a miss)."""
        with closing(self._connect()) as conn:
            row = conn.execute(
                "SELECT metrics FROM accuracy_cache WHERE entry_key = ?", (entry_key,)
            ).fetchone()
        if row is None:
            self.misses += 1
            return None
        self.hits += 1
        return tuple(AccuracyMetric.model_validate(item) for item in json.loads(row[0]))

    def put(
        self,
        entry_key: str,
        metrics: Sequence[AccuracyMetric],
        *,
        candidate_key: str,
        task: str,
        task_config: Mapping[str, Any],
    ) -> None:
        """Store (or replace) the metrics of one task for one candidate."""
        payload = json.dumps([m.model_dump(mode="json") for m in metrics])
        with closing(self._connect()) as conn, conn:
            conn.execute(
                "INSERT OR REPLACE INTO accuracy_cache VALUES (?, ?, ?, ?, ?, ?)",
                (
                    entry_key,
                    candidate_key,
                    task,
                    json.dumps(task_config, sort_keys=True, default=str),
                    payload,
                    datetime.now(UTC).isoformat(),
                ),
            )

    def __len__(self) -> int:
        with closing(self._connect()) as conn:
            (count,) = conn.execute("SELECT COUNT(*) FROM accuracy_cache").fetchone()
        return int(count)

    def clear(self) -> None:
        with closing(self._connect()) as conn, conn:
            conn.execute("DELETE FROM accuracy_cache")
