"""The behaviour every ResultsStore backend must show (used by the SQLite and Postgres tests)."""

from __future__ import annotations

import pytest

from agentic_compression.errors import UserInputError
from agentic_compression.results.records import RunRecord, TrialProvenance, TrialRecord
from agentic_compression.results.store import ResultsStore, TrialConflictError
from workflow_fakes import FakeMetrics, fake_result, recipe


def run_record(run_id: str, created_at: str = "2025-01-01T00:00:00+00:00") -> RunRecord:
    return RunRecord(
        run_id=run_id, model="tiny", config={"max_trials": 3, "tasks": "arc_easy"},
        status="running", pid=123, host="here", created_at=created_at, updated_at=created_at,
    )  # fmt: skip


def trial_record(run_id: str, number: int, sparsity: float, ok: bool = True) -> TrialRecord:
    r = recipe(sparsity)
    result = fake_result(r, FakeMetrics(0.7, 20.0, 10_000_000, 1e-4) if ok else None)
    return TrialRecord(
        run_id=run_id, number=number, recipe=r.to_dict(), recipe_hash=r.hash,
        candidate_id=result.candidate_id, status=result.status, error=result.error,
        objectives={"accuracy": 0.7, "latency_ms": 20.0} if ok else None, seconds=1.5,
        provenance=TrialProvenance(
            planner="llm (test)", reasoning="because", tool_calls=("list_methods()",),
            evaluation_config_hash="cfg", recipe_hash=r.hash,
        ),
        result=result, created_at="2025-01-01T00:00:05+00:00",
    )  # fmt: skip


def exercise_store(store: ResultsStore, prefix: str) -> None:
    """Round trip of runs and trials, idempotent saves, conflicts, progress, listing, deletion."""
    first, second = f"{prefix}-a", f"{prefix}-b"
    store.create_run(run_record(first))
    store.create_run(run_record(second, "2025-01-02T00:00:00+00:00"))
    with pytest.raises(UserInputError, match="already exists"):
        store.create_run(run_record(first))
    assert store.get_run(first) == run_record(first)
    assert [r.run_id for r in store.list_runs() if r.run_id.startswith(prefix)] == [second, first]

    ok, failed = trial_record(first, 0, 0.1), trial_record(first, 1, 0.2, ok=False)
    assert store.save_trial(ok) == ok
    assert store.save_trial(failed) == failed
    assert store.save_trial(ok) == ok  # saving again is a no-op
    assert store.get_trial(first, 0) == ok
    assert store.get_trial(first, 5) is None
    assert store.list_trials(first) == [ok, failed]
    assert store.count_trials(first) == 2 and store.count_trials(second) == 0
    stored = store.get_trial(first, 1)
    assert stored is not None and stored.status == "failed" and stored.error == "RuntimeError: boom"
    assert stored.result.energy[0].co2_kg == 1e-4 and stored.provenance.tool_calls == (
        "list_methods()",
    )

    with pytest.raises(TrialConflictError, match="stored with recipe"):
        store.save_trial(trial_record(first, 0, 0.3))  # another recipe under number 0
    with pytest.raises(TrialConflictError, match="already stored as another trial"):
        store.save_trial(trial_record(first, 2, 0.1))  # the same recipe under another number
    assert store.count_trials(first) == 2

    # a screened trial replaced by its full-fidelity measurement (same number and recipe)
    screened = trial_record(first, 1, 0.2).model_copy(
        update={"provenance": ok.provenance.model_copy(update={"fidelity": "screen"})}
    )
    store.delete_run(first)
    store.create_run(run_record(first))
    store.save_trial(screened)
    full = trial_record(first, 1, 0.2).model_copy(
        update={
            "seconds": 9.0,
            "created_at": "2025-01-01T00:01:00+00:00",
            "provenance": ok.provenance.model_copy(
                update={"recipe_hash": screened.recipe_hash, "screening": {"seconds": 1.5}}
            ),
        }
    )
    assert store.replace_trial(full) == full and store.list_trials(first) == [full]
    with pytest.raises(TrialConflictError, match="no trial 2"):
        store.replace_trial(full.model_copy(update={"number": 2}))
    store.record_phase_cost(first, -2, "compression", 0.5, 0.2)
    store.record_phase_cost(first, -3, "compression", 0.25, 0.1)
    store.discard_phase_costs(first, -2)
    assert store.take_unfinished_costs(first) == (0.25, 0.1)

    store.set_progress(first, "trial 2: measuring")
    run = store.get_run(first)
    assert run is not None and run.progress == "trial 2: measuring"
    store.mark_running(first, 456, "there")
    store.end_run(first, "finished", stop_reason="trial_budget")
    run = store.get_run(first)
    assert run is not None
    assert (run.status, run.stop_reason, run.progress, run.pid) == (
        "finished",
        "trial_budget",
        None,
        456,
    )

    store.delete_run(first)
    store.delete_run(second)
    assert store.get_run(first) is None and store.list_trials(first) == []
