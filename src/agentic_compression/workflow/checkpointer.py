"""Durable LangGraph checkpointers chosen by URL: ``sqlite:///path`` or ``postgresql://...``.

The checkpointer records where the loop is (the graph state after every step); the results store
records what was measured. By default each run keeps its checkpoints in
``<runs-dir>/<run_id>/checkpoint.sqlite``; a PostgreSQL URL shares them between machines (the
``[postgres]`` extra; tables are created on first use). Invoke the graph with ``durability="sync"``:
with LangGraph's default ("async") a hard kill can lose the last finished step.

A checkpoint is untrusted input: LangGraph's default decoder rebuilds whatever type a checkpoint
names (a crafted database could make loading call a function). The state is plain data, so both
savers decode with :func:`strict_serializer`, which rebuilds only LangGraph's own safe types.

Example:
    >>> import tempfile
    >>> with make_checkpointer(f"sqlite:///{tempfile.mkdtemp()}/c.sqlite") as saver:
    ...     type(saver).__name__
    'SqliteSaver'
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver

from agentic_compression.errors import UserInputError
from agentic_compression.results.store import connection_error, parse_storage_url


def strict_serializer() -> Any:
    """LangGraph's serializer restricted to its allowlist of safe types, with no pickle."""
    from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

    return JsonPlusSerializer(
        pickle_fallback=False, allowed_json_modules=None, allowed_msgpack_modules=None
    )


@contextmanager
def make_checkpointer(url: str) -> Iterator[BaseCheckpointSaver[Any]]:
    """Open the checkpointer at ``url``, set up its tables, and close it on exit."""
    parsed = parse_storage_url(url)
    if parsed.kind == "sqlite":
        from langgraph.checkpoint.sqlite import SqliteSaver

        path = Path(parsed.target).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, check_same_thread=False, timeout=30)
        try:
            saver = SqliteSaver(conn, serde=strict_serializer())
            try:
                saver.setup()
                conn.execute("SELECT count(*) FROM checkpoints").fetchone()
            except sqlite3.DatabaseError as error:
                raise UserInputError(
                    f"checkpoint file {str(path)!r} is damaged or not SQLite ({error}); the "
                    "results store and results.json are intact (see `agentic-compress runs`): "
                    "move the file away to re-export, or start a new run"
                ) from None
            yield saver
        finally:
            conn.close()
        return
    try:
        import psycopg
        from langgraph.checkpoint.postgres import PostgresSaver
        from psycopg.rows import dict_row
    except ImportError:
        raise UserInputError(
            "a postgresql:// checkpointer needs langgraph-checkpoint-postgres and psycopg: "
            "pip install 'agentic-compression[postgres]'"
        ) from None
    try:
        connection = psycopg.connect(
            parsed.target, autocommit=True, prepare_threshold=0, row_factory=dict_row
        )
    except psycopg.Error as error:
        raise connection_error(parsed.target, error) from None
    with connection:
        postgres_saver = PostgresSaver(connection, serde=strict_serializer())
        postgres_saver.setup()
        yield postgres_saver
