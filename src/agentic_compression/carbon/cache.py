"""Carbon-intensity readings cached in SQLite for a time-to-live, keyed by (provider, zone, kind).

A cached reading is returned exactly as fetched, ``fetched_at`` included, so a run reports the time
the value was obtained, not the time it was read back from the cache.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sqlite3
import time
from contextlib import closing
from pathlib import Path
from typing import Literal

from agentic_compression.carbon.intensity import IntensityReading
from agentic_compression.paths import home

logger = logging.getLogger(__name__)

ReadingKind = Literal["latest", "forecast"]
# Electricity Maps and WattTime refresh every 5 to 60 minutes; 15 minutes keeps API use low without
# using a value older than one typical update.
DEFAULT_TTL_S = 15 * 60
_SCHEMA = """
CREATE TABLE IF NOT EXISTS readings (
    provider TEXT NOT NULL,
    zone TEXT NOT NULL,
    kind TEXT NOT NULL,
    stored_at REAL NOT NULL,
    readings_json TEXT NOT NULL,
    PRIMARY KEY (provider, zone, kind)
)
"""


class ReadingCache:
    """A small SQLite cache of readings.

    ``path`` defaults to ``carbon_cache.sqlite`` in the package home (``AGENTIC_COMPRESSION_HOME``
    or ``~/.cache/agentic_compression``); the file is created on first write.

    Example:
        >>> cache = ReadingCache(path=tmp_path / "carbon.sqlite", ttl_s=900)  # doctest: +SKIP
        >>> cache.put("electricitymaps", "FR", "latest", [reading])  # doctest: +SKIP
        >>> cache.get("electricitymaps", "FR", "latest") == [reading]  # doctest: +SKIP
        True
    """

    def __init__(self, path: Path | str | None = None, *, ttl_s: float = DEFAULT_TTL_S) -> None:
        if ttl_s < 0:
            raise ValueError(f"ttl_s must be >= 0, got {ttl_s}")
        self._path = Path(path) if path is not None else None
        self.ttl_s = ttl_s

    @property
    def path(self) -> Path:
        """The SQLite file (resolving the default creates the package home folder)."""
        if self._path is None:
            self._path = home() / "carbon_cache.sqlite"
        return self._path

    def get(self, provider: str, zone: str, kind: ReadingKind) -> list[IntensityReading] | None:
        """The readings stored under the key if younger than the TTL, else None."""
        if not self.path.exists():
            return None
        with closing(self._connect()) as connection:
            row = connection.execute(
                "SELECT stored_at, readings_json FROM readings "
                "WHERE provider = ? AND zone = ? AND kind = ?",
                (provider, zone, kind),
            ).fetchone()
        if row is None or time.time() - float(row[0]) > self.ttl_s:
            return None
        try:
            return [IntensityReading(**fields) for fields in json.loads(row[1])]
        except (TypeError, ValueError) as exc:
            # A row written by another version of IntensityReading: fetch afresh rather than fail.
            logger.warning(
                "carbon cache: ignoring unreadable entry %s/%s/%s: %s", provider, zone, kind, exc
            )
            return None

    def put(
        self, provider: str, zone: str, kind: ReadingKind, readings: list[IntensityReading]
    ) -> None:
        """Store ``readings`` under the key, replacing what was there."""
        payload = json.dumps([dataclasses.asdict(reading) for reading in readings])
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as connection, connection:
            connection.execute(
                "INSERT OR REPLACE INTO readings VALUES (?, ?, ?, ?, ?)",
                (provider, zone, kind, time.time(), payload),
            )

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path)
        connection.execute(_SCHEMA)
        return connection
