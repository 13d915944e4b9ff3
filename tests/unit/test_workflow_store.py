"""The SQLite results store, storage URLs, and the checkpointer factory."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from agentic_compression.errors import UserInputError
from agentic_compression.results.store import (
    SqliteResultsStore,
    make_results_store,
    parse_storage_url,
    redact_url,
)
from agentic_compression.workflow.checkpointer import make_checkpointer
from store_contract import exercise_store, run_record, trial_record


def test_sqlite_store_contract(tmp_path: Path) -> None:
    with make_results_store(f"sqlite:///{tmp_path}/results.sqlite") as store:
        assert isinstance(store, SqliteResultsStore)
        exercise_store(store, "sqlite")


def test_sqlite_store_survives_reopening_and_enforces_uniqueness_in_sql(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "results.sqlite"
    with SqliteResultsStore(path) as store:
        store.create_run(run_record("r1"))
        store.save_trial(trial_record("r1", 0, 0.1))
    with SqliteResultsStore(path) as store:
        assert [t.number for t in store.list_trials("r1")] == [0]
    with sqlite3.connect(path) as conn, pytest.raises(sqlite3.IntegrityError):
        conn.execute(
            "INSERT INTO ac_trials SELECT run_id, 1, recipe_hash, candidate_id, status, error, "
            "recipe, objectives, seconds, provenance, result, created_at FROM ac_trials"
        )


def test_storage_urls() -> None:
    assert parse_storage_url("sqlite:///runs/r.sqlite").target == "runs/r.sqlite"
    assert parse_storage_url("sqlite:////abs/r.sqlite").target == "/abs/r.sqlite"
    assert parse_storage_url("postgres://u@h:5432/db").kind == "postgresql"
    for bad in ("mysql://u@h/db", "sqlite://", "runs/results.sqlite"):
        with pytest.raises(UserInputError, match="unsupported storage URL"):
            parse_storage_url(bad)
    with pytest.raises(UserInputError) as caught:
        parse_storage_url("mysql://me:secret@h/db")
    assert "secret" not in str(caught.value)
    assert (
        redact_url("postgresql://me:pw@db:5/x?sslmode=require")
        == "postgresql://me@db:5/x?sslmode=require"
    )
    assert redact_url("sqlite:////tmp/x.sqlite") == "sqlite:////tmp/x.sqlite"


def test_sqlite_checkpointer_creates_its_folder_and_tables(tmp_path: Path) -> None:
    target = tmp_path / "run" / "checkpoint.sqlite"
    with make_checkpointer(f"sqlite:///{target}") as saver:
        assert list(saver.list({"configurable": {"thread_id": "nothing"}})) == []
    with sqlite3.connect(target) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    assert {"checkpoints", "writes"} <= tables
