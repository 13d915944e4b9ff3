"""SIGKILL `agentic-compress run` mid-trial, `resume` it: no trial lost or repeated (SQLite stores)."""

from __future__ import annotations

from pathlib import Path

import pytest

from crash_harness import crash_and_resume, save_tiny_llama

pytestmark = pytest.mark.integration


def test_sigkill_mid_trial_then_resume_sqlite(
    tmp_path: Path, embedded_tokenizer, benchmarks_dir
) -> None:  # type: ignore[no-untyped-def]
    model = save_tiny_llama(tmp_path / "tiny-llama", embedded_tokenizer)
    store_url = f"sqlite:///{tmp_path / 'runs' / 'results.sqlite'}"
    crash_and_resume(tmp_path, model, store_url, "crash-sqlite", ["--planner", "offline"])
    checkpoint = tmp_path / "runs" / "crash-sqlite" / "checkpoint.sqlite"
    assert checkpoint.exists()  # the default checkpointer lives in the run folder
