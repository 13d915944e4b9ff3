"""The results store and the checkpointer on the local PostgreSQL: contract, resume, SIGKILL + resume.

Each test works in its own schema (``?options=-csearch_path=...`` in the URL) and drops it after,
so tests never collide with each other or with other users of the database.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from agentic_compression.planning.base import PlanningGoal
from agentic_compression.results.store import PostgresResultsStore, make_results_store
from agentic_compression.workflow import (
    Budgets,
    RunContext,
    build_workflow,
    initial_state,
    make_checkpointer,
    run_config,
)
from agentic_compression.workflow.runner import SearchSettings, create_run
from conftest import SERVER
from crash_harness import crash_and_resume, save_tiny_llama
from store_contract import exercise_store
from workflow_fakes import FakeEvaluator, FakeMetrics, ScriptedPlanner, recipe, table

pytestmark = pytest.mark.integration


def _tables(schema: str) -> set[str]:
    import psycopg

    with psycopg.connect(SERVER) as conn:
        rows = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (schema,)
        ).fetchall()
    return {row[0] for row in rows}


def test_postgres_store_contract(schema_url: tuple[str, str]) -> None:
    url, schema = schema_url
    with make_results_store(url) as store:
        assert isinstance(store, PostgresResultsStore)
        exercise_store(store, "pg")
    assert {"ac_runs", "ac_trials"} <= _tables(schema)


class _Crash(BaseException):
    pass


class _Crashing(FakeEvaluator):
    def evaluate(self, recipe, progress, on_energy=None, fidelity="full"):  # type: ignore[no-untyped-def]
        if len(self.calls) == 2:
            raise _Crash
        return super().evaluate(recipe, progress, on_energy)


def test_postgres_checkpointer_and_store_resume_a_crashed_graph(
    schema_url: tuple[str, str], tmp_path: Path
) -> None:
    url, schema = schema_url
    recipes = [recipe(s) for s in (0.1, 0.2, 0.3, 0.4, 0.5)]
    rows = table(
        [
            (r, FakeMetrics(0.9 - 0.1 * i, 30.0 - i, 10**8 - i * 10**7, 1e-4))
            for i, r in enumerate(recipes)
        ]
    )
    context = RunContext(
        run_dir=tmp_path / "run", goal=PlanningGoal(), budgets=Budgets(max_trials=5)
    )
    config = run_config("pg-run", 5)
    with make_results_store(url) as store:
        create_run(store, "pg-run", SearchSettings(max_trials=5), "fakeconfig000000")
        with make_checkpointer(url) as saver:
            workflow = build_workflow(ScriptedPlanner(recipes), _Crashing(rows), store, saver)
            with pytest.raises(_Crash):
                workflow.invoke(initial_state("pg-run"), config, context=context, durability="sync")
        assert [t.number for t in store.list_trials("pg-run")] == [0, 1]
        evaluator = FakeEvaluator(rows)
        with make_checkpointer(url) as saver:  # a new connection, as after a restart
            workflow = build_workflow(ScriptedPlanner(recipes), evaluator, store, saver)
            final = workflow.invoke(None, config, context=context, durability="sync")
        assert final["stop_reason"] == "trial_budget"
        assert evaluator.calls == [r.hash for r in recipes[2:]]
        assert [t.number for t in store.list_trials("pg-run")] == [0, 1, 2, 3, 4]
    assert {"checkpoints", "checkpoint_writes"} <= _tables(schema)


def test_sigkill_mid_trial_then_resume_postgres(
    schema_url: tuple[str, str],
    tmp_path: Path,
    embedded_tokenizer,
    benchmarks_dir,  # type: ignore[no-untyped-def]
) -> None:
    url, schema = schema_url
    model = save_tiny_llama(tmp_path / "tiny-llama", embedded_tokenizer)
    extra = ["--planner", "random", "--checkpoint-url", url]
    crash_and_resume(tmp_path, model, url, "crash-postgres", extra, max_trials=2)
    assert not (tmp_path / "runs" / "crash-postgres" / "checkpoint.sqlite").exists()
    assert {"checkpoints", "ac_trials"} <= _tables(schema)
