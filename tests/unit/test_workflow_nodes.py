"""Each workflow node and route on its own, with fake metrics built from the real records."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agentic_compression.compression.recipe import Recipe
from agentic_compression.planning.base import PlanningGoal
from agentic_compression.results.store import SqliteResultsStore
from agentic_compression.workflow import nodes, routing
from agentic_compression.workflow.runner import SearchSettings, create_run
from agentic_compression.workflow.state import (
    Budgets,
    PendingProposal,
    RunContext,
    SearchCost,
    SearchState,
    TrialSummary,
    add_costs,
    initial_state,
    merge_trials,
    total_co2_kg,
)
from workflow_fakes import (
    FakeEvaluator,
    FakeMetrics,
    ReportingPlanner,
    ScriptedPlanner,
    fake_result,
    recipe,
    table,
)

R = [recipe(s) for s in (0.1, 0.2, 0.3, 0.4)]
GOOD = FakeMetrics(0.8, 20.0, 200_000_000, 2e-4)
SMALL = FakeMetrics(0.6, 15.0, 100_000_000, 1e-4)
BAD = FakeMetrics(0.5, 30.0, 300_000_000, 3e-4)  # dominated by GOOD


def context(tmp_path: Path, goal: PlanningGoal | None = None, **budgets: Any) -> RunContext:
    return RunContext(
        run_dir=tmp_path / "run",
        goal=goal or PlanningGoal(),
        budgets=Budgets(**{"max_trials": 10, **budgets}),
        proposals_per_call=2,
    )


@pytest.fixture()
def store(tmp_path: Path) -> SqliteResultsStore:
    s = SqliteResultsStore(tmp_path / "results.sqlite")
    create_run(s, "r1", SearchSettings(), "fakeconfig000000")
    return s


def pending(r: Recipe) -> PendingProposal:
    return PendingProposal(
        recipe=r.to_dict(), recipe_hash=r.hash, planner="scripted", reasoning="why", tool_calls=[]
    )


def summary(number: int, r: Recipe, metrics: FakeMetrics | None) -> TrialSummary:
    objectives = None
    if metrics is not None:
        objectives = {
            "accuracy": metrics.accuracy,
            "latency_ms": metrics.latency_ms,
            "memory_bytes": float(metrics.size_bytes),
            "energy_kwh_per_1k_tokens": metrics.co2_kg_per_1k_tokens * 2.5,
            "co2_kg_per_1k_tokens": metrics.co2_kg_per_1k_tokens,
        }
    return TrialSummary(
        number=number, recipe=r.to_dict(), label=r.label, recipe_hash=r.hash, candidate_id=f"c-{r.hash}",
        status="ok" if metrics else "failed", objectives=objectives, feasible=metrics is not None,
        error=None if metrics else "boom", planner="scripted", reasoning="", co2_kg=1e-4,
        energy_kwh=2.5e-4, seconds=1.0,
    )  # fmt: skip


def state(*trials: TrialSummary, **extra: Any) -> SearchState:
    s = initial_state("r1")
    s["trials"] = list(trials)
    s.update(extra)  # type: ignore[typeddict-item]
    return s


# --- plan ---


def test_plan_asks_for_proposals_per_call_and_records_reasoning(tmp_path: Path) -> None:
    update = nodes.plan(state(), context(tmp_path), ScriptedPlanner(R), FakeEvaluator({}))
    assert [p["recipe_hash"] for p in update["pending"]] == [R[0].hash, R[1].hash]
    assert update["pending"][0]["reasoning"] == "next in script: mag-10"
    assert update["pending"][0]["tool_calls"] == ["script.next()"]
    assert "stop_reason" not in update


def test_plan_never_asks_beyond_the_trial_budget(tmp_path: Path) -> None:
    done = state(summary(0, R[0], GOOD))
    update = nodes.plan(
        done, context(tmp_path, max_trials=2), ScriptedPlanner(R), FakeEvaluator({})
    )
    assert [p["recipe_hash"] for p in update["pending"]] == [R[1].hash]


def test_plan_drops_recipes_already_tried(tmp_path: Path) -> None:
    class Repeating(ScriptedPlanner):
        def propose(self, history, goal, count):  # type: ignore[no-untyped-def]
            return super().propose([], goal, count)  # ignores history: proposes R[0] again

    done = state(summary(0, R[0], GOOD))
    update = nodes.plan(done, context(tmp_path), Repeating(R), FakeEvaluator({}))
    assert [p["recipe_hash"] for p in update["pending"]] == [R[1].hash]


def test_plan_with_nothing_to_propose_stops(tmp_path: Path) -> None:
    update = nodes.plan(state(), context(tmp_path), ScriptedPlanner([]), FakeEvaluator({}))
    assert update["pending"] == [] and update["stop_reason"] == "exhausted"


def test_plan_charges_measured_and_reported_planning_carbon(tmp_path: Path) -> None:
    planner = ReportingPlanner(R, reported_co2_kg=2e-3)
    update = nodes.plan(
        state(), context(tmp_path), planner, FakeEvaluator({}, planning_co2_kg=3e-5)
    )
    cost = update["spent"]
    assert cost["planner_reported_co2_kg"] == 2e-3
    assert cost["planning_co2_kg"] == 3e-5
    assert cost["seconds"] >= 0
    assert nodes.planner_reported_co2_kg(ScriptedPlanner(R)) == 0.0


# --- evaluate ---


def test_evaluate_measures_the_next_trial_and_stores_it(
    tmp_path: Path, store: SqliteResultsStore
) -> None:
    evaluator = FakeEvaluator(table([(R[0], GOOD)]))
    s = state(pending=[pending(R[0]), pending(R[1])])
    update = nodes.evaluate(s, context(tmp_path), evaluator, store)
    trial = update["trials"][0]
    assert trial["number"] == 0 and trial["status"] == "ok" and trial["feasible"]
    assert trial["objectives"]["accuracy"] == 0.8
    assert trial["co2_kg"] == 1e-4
    assert [p["recipe_hash"] for p in update["pending"]] == [R[1].hash]
    assert update["spent"]["trial_co2_kg"] == 1e-4
    stored = store.get_trial("r1", 0)
    assert stored is not None and stored.provenance.reasoning == "why"
    assert stored.provenance.evaluation_config_hash == "fakeconfig000000"
    assert stored.provenance.recipe_hash == R[0].hash
    run = store.get_run("r1")
    assert run is not None and run.progress == "trial 0 (mag-10): measuring (fake)"


def test_evaluate_reuses_a_stored_trial(tmp_path: Path, store: SqliteResultsStore) -> None:
    nodes.evaluate(
        state(pending=[pending(R[0])]),
        context(tmp_path),
        FakeEvaluator(table([(R[0], GOOD)])),
        store,
    )
    evaluator = FakeEvaluator({})  # would raise KeyError if asked
    update = nodes.evaluate(state(pending=[pending(R[0])]), context(tmp_path), evaluator, store)
    assert evaluator.calls == []
    assert update["trials"][0]["objectives"]["accuracy"] == 0.8


def test_evaluate_refuses_a_store_that_disagrees_with_the_checkpoint(
    tmp_path: Path, store: SqliteResultsStore
) -> None:
    nodes.evaluate(
        state(pending=[pending(R[0])]),
        context(tmp_path),
        FakeEvaluator(table([(R[0], GOOD)])),
        store,
    )
    with pytest.raises(nodes.WorkflowStateError, match="do not match"):
        nodes.evaluate(state(pending=[pending(R[1])]), context(tmp_path), FakeEvaluator({}), store)


def test_failed_candidate_is_a_failed_trial_with_a_knowledge_note(
    tmp_path: Path, store: SqliteResultsStore
) -> None:
    update = nodes.evaluate(
        state(pending=[pending(R[0])]), context(tmp_path), FakeEvaluator({R[0].hash: None}), store
    )
    trial = update["trials"][0]
    assert trial["status"] == "failed" and trial["objectives"] is None and not trial["feasible"]
    assert update["spent"]["trial_co2_kg"] == 1e-4  # the energy was spent all the same
    note = tmp_path / "run" / "knowledge" / f"trial-0000-{R[0].hash}.md"
    assert "failed phase: compression" in note.read_text()


def test_result_without_accuracy_is_a_failed_trial(
    tmp_path: Path, store: SqliteResultsStore
) -> None:
    class NoAccuracy(FakeEvaluator):
        def evaluate(self, recipe, progress, on_energy=None, fidelity="full"):  # type: ignore[no-untyped-def]
            result = fake_result(recipe, GOOD)
            metrics = result.metrics.model_copy(update={"accuracy": ()})  # type: ignore[union-attr]
            return result.model_copy(update={"metrics": metrics})

    update = nodes.evaluate(
        state(pending=[pending(R[0])]), context(tmp_path), NoAccuracy({}), store
    )
    assert update["trials"][0]["status"] == "failed"
    assert "missing objective" in (update["trials"][0]["error"] or "")


def test_infeasible_trial_is_marked(tmp_path: Path, store: SqliteResultsStore) -> None:
    goal = PlanningGoal(accuracy_threshold=0.9)
    update = nodes.evaluate(
        state(pending=[pending(R[0])]),
        context(tmp_path, goal),
        FakeEvaluator(table([(R[0], GOOD)])),
        store,
    )
    assert update["trials"][0]["status"] == "ok" and not update["trials"][0]["feasible"]


# --- update_pareto ---


def test_update_pareto_front_and_improvement_counter(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    first = nodes.update_pareto(state(summary(0, R[0], GOOD)), ctx)
    assert first["front_ids"] == [f"c-{R[0].hash}"] and first["trials_without_improvement"] == 0
    assert first["hypervolume"] > 0 and set(first["reference_point"]) >= {
        "accuracy",
        "co2_kg_per_1k_tokens",
    }

    dominated = state(summary(0, R[0], GOOD), summary(1, R[1], BAD), trials_without_improvement=0)
    second = nodes.update_pareto(dominated, ctx)
    assert second["front_ids"] == [f"c-{R[0].hash}"] and second["trials_without_improvement"] == 1

    failed = state(summary(0, R[0], GOOD), summary(1, R[1], BAD), summary(2, R[2], None),
                   trials_without_improvement=1)  # fmt: skip
    third = nodes.update_pareto(failed, ctx)
    assert f"c-{R[2].hash}" not in third["front_ids"] and third["trials_without_improvement"] == 2

    trade_off = state(summary(0, R[0], GOOD), summary(1, R[1], BAD), summary(2, R[2], None),
                      summary(3, R[3], SMALL), trials_without_improvement=2)  # fmt: skip
    fourth = nodes.update_pareto(trade_off, ctx)
    assert fourth["front_ids"] == [f"c-{R[0].hash}", f"c-{R[3].hash}"]
    assert fourth["trials_without_improvement"] == 0


def test_infeasible_points_never_join_the_front(tmp_path: Path) -> None:
    ctx = context(tmp_path, PlanningGoal(max_memory_bytes=150_000_000))
    update = nodes.update_pareto(state(summary(0, R[0], GOOD), summary(1, R[1], SMALL)), ctx)
    assert update["front_ids"] == [f"c-{R[1].hash}"]


# --- refine_or_stop and routes ---


@pytest.mark.parametrize(
    ("budgets", "extra", "reason"),
    [
        (
            {"carbon_kg": 1e-3},
            {"spent": SearchCost(trial_co2_kg=8e-4, planner_reported_co2_kg=2e-4)},
            "carbon_budget",
        ),
        ({"max_trials": 2}, {}, "trial_budget"),
        ({"time_s": 60.0}, {"spent": SearchCost(seconds=61.0)}, "time_budget"),
        ({"patience": 3}, {"trials_without_improvement": 3, "front_ids": ["c"]}, "converged"),
        ({"patience": 3}, {"trials_without_improvement": 3, "front_ids": []}, None),
        ({"carbon_kg": 1e-3, "patience": 3}, {"spent": SearchCost(trial_co2_kg=5e-4)}, None),
    ],
)
def test_budget_reasons(
    tmp_path: Path, budgets: dict[str, Any], extra: dict[str, Any], reason: str | None
) -> None:
    s = state(summary(0, R[0], GOOD), summary(1, R[1], BAD), **extra)
    update = nodes.refine_or_stop(s, context(tmp_path, **budgets))
    assert update.get("stop_reason") == reason


def test_first_budget_reached_wins(tmp_path: Path) -> None:
    s = state(summary(0, R[0], GOOD), spent=SearchCost(trial_co2_kg=1.0, seconds=1e6))
    update = nodes.refine_or_stop(s, context(tmp_path, max_trials=1, carbon_kg=0.5, time_s=1.0))
    assert update["stop_reason"] == "carbon_budget"


def test_routes() -> None:
    assert routing.after_decision(state()) == "plan"
    assert routing.after_decision(state(pending=[pending(R[0])])) == "evaluate"
    assert (
        routing.after_decision(state(pending=[pending(R[0])], stop_reason="trial_budget"))
        == "finish"
    )
    assert routing.after_plan(state(pending=[pending(R[0])])) == "evaluate"
    assert routing.after_plan(state(stop_reason="exhausted")) == "finish"


def test_finish_marks_the_run(store: SqliteResultsStore) -> None:
    assert nodes.finish(state(stop_reason="converged"), store) == {}
    run = store.get_run("r1")
    assert run is not None and run.status == "finished" and run.stop_reason == "converged"


def test_reducers() -> None:
    a, b = summary(0, R[0], GOOD), summary(1, R[1], BAD)
    assert merge_trials([a], [b, a]) == [a, b]
    cost = add_costs(
        SearchCost(trial_co2_kg=1.0), SearchCost(trial_co2_kg=2.0, planning_co2_kg=0.5)
    )
    assert cost == {"trial_co2_kg": 3.0, "planning_co2_kg": 0.5}
    assert (
        total_co2_kg(
            SearchCost(trial_co2_kg=1.0, planning_co2_kg=0.5, planner_reported_co2_kg=0.25)
        )
        == 1.75
    )
