"""The whole graph with a scripted planner and fake metrics: budgets, failures, crash and resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentic_compression.compression.recipe import Recipe
from agentic_compression.planning.base import PlanningGoal
from agentic_compression.results.records import TrialRecord
from agentic_compression.results.store import ResultsStore, SqliteResultsStore
from agentic_compression.workflow import (
    Budgets,
    RunContext,
    build_workflow,
    initial_state,
    make_checkpointer,
    run_config,
)
from agentic_compression.workflow.evaluator import Evaluator
from agentic_compression.workflow.runner import SearchSettings, create_run
from agentic_compression.workflow.state import total_co2_kg
from workflow_fakes import (
    FakeEvaluator,
    FakeMetrics,
    ReportingPlanner,
    ScriptedPlanner,
    energy_reading,
    recipe,
    table,
)

RECIPES = [recipe(s) for s in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)]
# Accuracy falls as size falls: every point is a trade-off (all on the front) unless stated.
TRADE_OFFS = table(
    [
        (r, FakeMetrics(0.9 - 0.05 * i, 30.0 - i, 500_000_000 - 40_000_000 * i, 4e-4 - 2e-5 * i))
        for i, r in enumerate(RECIPES)
    ]
)


class _Run:
    """One run: a store, a checkpoint file and a context in tmp_path."""

    def __init__(self, tmp_path: Path, budgets: Budgets, goal: PlanningGoal | None = None) -> None:
        self.tmp_path = tmp_path
        self.store = SqliteResultsStore(tmp_path / "results.sqlite")
        self.url = f"sqlite:///{tmp_path / 'checkpoint.sqlite'}"
        self.context = RunContext(
            run_dir=tmp_path / "run", goal=goal or PlanningGoal(), budgets=budgets,
            proposals_per_call=2,
        )  # fmt: skip
        create_run(
            self.store, "r1", SearchSettings(max_trials=budgets.max_trials), "fakeconfig000000"
        )

    def invoke(self, planner: ScriptedPlanner, evaluator: Evaluator, *, fresh: bool = True) -> dict:  # type: ignore[type-arg]
        config = run_config("r1", self.context.budgets.max_trials)
        with make_checkpointer(self.url) as saver:
            workflow = build_workflow(planner, evaluator, self.store, saver)
            start = initial_state("r1") if fresh else None
            return dict(workflow.invoke(start, config, context=self.context, durability="sync"))

    def numbers(self) -> list[int]:
        return [t.number for t in self.store.list_trials("r1")]


def test_trial_budget_stops_and_every_trial_is_stored(tmp_path: Path) -> None:
    run = _Run(tmp_path, Budgets(max_trials=5))
    evaluator = FakeEvaluator(TRADE_OFFS)
    final = run.invoke(ScriptedPlanner(RECIPES), evaluator)
    assert final["stop_reason"] == "trial_budget"
    assert [t["number"] for t in final["trials"]] == [0, 1, 2, 3, 4]
    assert run.numbers() == [0, 1, 2, 3, 4]
    assert len(final["front_ids"]) == 5 and final["hypervolume"] > 0
    record = run.store.get_run("r1")
    assert record is not None and record.status == "finished"
    assert record.stop_reason == "trial_budget"
    assert final["spent"]["trial_co2_kg"] == pytest.approx(5e-4)


def test_carbon_budget_counts_failed_trials_and_planner_reports(tmp_path: Path) -> None:
    # Each trial costs 1e-4 kg, each planner call reports 5e-5 kg and measures 1e-5 kg locally.
    failing = dict.fromkeys(TRADE_OFFS)  # every candidate fails, but still spent energy
    run = _Run(tmp_path, Budgets(max_trials=8, carbon_kg=3.5e-4))
    planner = ReportingPlanner(RECIPES, reported_co2_kg=5e-5)
    final = run.invoke(planner, FakeEvaluator(failing, planning_co2_kg=1e-5))
    assert final["stop_reason"] == "carbon_budget"
    # plan 6e-5, trial 0 1e-4, trial 1 1e-4, plan 6e-5: 3.2e-4 < budget, so trial 2 runs (the
    # budget is checked before each trial); 4.2e-4 >= budget stops the search.
    assert len(final["trials"]) == 3
    spent = final["spent"]
    assert spent["planner_reported_co2_kg"] == pytest.approx(1e-4)
    assert spent["planning_co2_kg"] == pytest.approx(2e-5)
    assert final["front_ids"] == []


def test_time_budget(tmp_path: Path) -> None:
    run = _Run(tmp_path, Budgets(max_trials=8, time_s=0.0))
    final = run.invoke(ScriptedPlanner(RECIPES), FakeEvaluator(TRADE_OFFS))
    assert final["stop_reason"] == "time_budget"
    assert final["trials"] == []


def test_convergence_when_new_trials_are_dominated(tmp_path: Path) -> None:
    best = FakeMetrics(0.9, 10.0, 100_000_000, 1e-4)
    worse = FakeMetrics(0.5, 40.0, 400_000_000, 4e-4)
    rows = [(RECIPES[0], best)] + [(r, worse) for r in RECIPES[1:]]
    run = _Run(tmp_path, Budgets(max_trials=8, patience=3))
    final = run.invoke(ScriptedPlanner(RECIPES), FakeEvaluator(table(rows)))
    assert final["stop_reason"] == "converged"
    assert len(final["trials"]) == 4  # the first improves, three more do not
    assert final["trials_without_improvement"] == 3


def test_planner_with_nothing_new_ends_the_search(tmp_path: Path) -> None:
    run = _Run(tmp_path, Budgets(max_trials=8))
    final = run.invoke(ScriptedPlanner(RECIPES[:3]), FakeEvaluator(TRADE_OFFS))
    assert final["stop_reason"] == "exhausted"
    assert run.numbers() == [0, 1, 2]


def test_failed_trial_is_recorded_not_on_front_and_written_to_knowledge(tmp_path: Path) -> None:
    rows = dict(TRADE_OFFS)
    rows[RECIPES[1].hash] = None
    run = _Run(tmp_path, Budgets(max_trials=3))
    final = run.invoke(ScriptedPlanner(RECIPES), FakeEvaluator(rows))
    failed = run.store.get_trial("r1", 1)
    assert failed is not None and failed.status == "failed" and failed.objectives is None
    assert failed.error == "RuntimeError: boom"
    assert failed.candidate_id not in final["front_ids"]
    assert len(final["front_ids"]) == 2
    notes = list((tmp_path / "run" / "knowledge").iterdir())
    assert [n.name for n in notes] == [f"trial-0001-{RECIPES[1].hash}.md"]
    assert "RuntimeError: boom" in notes[0].read_text()


class _Crash(BaseException):
    """Stands in for SIGKILL: not an Exception, so nothing on the way catches it."""


class _CrashingEvaluator(FakeEvaluator):
    def __init__(self, crash_on: Recipe) -> None:
        super().__init__(TRADE_OFFS)
        self.crash_on = crash_on.hash

    def evaluate(self, recipe: Recipe, progress, on_energy=None, fidelity="full"):  # type: ignore[no-untyped-def]
        if recipe.hash == self.crash_on:
            raise _Crash
        return super().evaluate(recipe, progress, on_energy)


def test_resume_after_a_crash_mid_trial_loses_and_repeats_nothing(tmp_path: Path) -> None:
    run = _Run(tmp_path, Budgets(max_trials=6))
    with pytest.raises(_Crash):
        run.invoke(ScriptedPlanner(RECIPES), _CrashingEvaluator(RECIPES[3]))
    assert run.numbers() == [0, 1, 2]
    evaluator = FakeEvaluator(TRADE_OFFS)
    final = run.invoke(ScriptedPlanner(RECIPES), evaluator, fresh=False)
    assert final["stop_reason"] == "trial_budget"
    assert run.numbers() == [0, 1, 2, 3, 4, 5]
    assert evaluator.calls == [r.hash for r in RECIPES[3:6]]  # resumed at the killed trial
    hashes = [t.recipe_hash for t in run.store.list_trials("r1")]
    assert len(set(hashes)) == 6


class _KilledAfterOnePhase(FakeEvaluator):
    """Meters one phase of ``crash_on`` (its reading reaches the sink), then the process dies."""

    def __init__(self, crash_on: Recipe) -> None:
        super().__init__(TRADE_OFFS)
        self.crash_on = crash_on.hash

    def evaluate(self, recipe: Recipe, progress, on_energy=None, fidelity="full"):  # type: ignore[no-untyped-def]
        if recipe.hash == self.crash_on:
            assert on_energy is not None
            on_energy(energy_reading(0.004, "compression"))
            raise _Crash
        return super().evaluate(recipe, progress, on_energy)


def test_work_a_kill_throws_away_is_counted_once_after_resume(tmp_path: Path) -> None:
    run = _Run(tmp_path, Budgets(max_trials=4))
    with pytest.raises(_Crash):
        run.invoke(ScriptedPlanner(RECIPES), _KilledAfterOnePhase(RECIPES[2]))
    final = run.invoke(ScriptedPlanner(RECIPES), FakeEvaluator(TRADE_OFFS), fresh=False)
    assert final["spent"]["lost_co2_kg"] == pytest.approx(0.004)  # trial 2's first attempt
    measured = sum(t["co2_kg"] for t in final["trials"])
    assert total_co2_kg(final["spent"]) == pytest.approx(measured + 0.004)
    assert run.store.take_unfinished_costs("r1") == (0.0, 0.0)  # nothing left to count twice


class _StoreThatDiesAfterSaving(SqliteResultsStore):
    """Saves trial ``die_after`` and then 'dies' before the step's checkpoint is written."""

    die_after = 2

    def save_trial(self, trial: TrialRecord) -> TrialRecord:
        stored = super().save_trial(trial)
        if trial.number == self.die_after:
            raise _Crash
        return stored


def test_trial_stored_before_the_crash_is_reused_not_measured_again(tmp_path: Path) -> None:
    run = _Run(tmp_path, Budgets(max_trials=4))
    run.store.close()
    dying: ResultsStore = _StoreThatDiesAfterSaving(tmp_path / "results.sqlite")
    run.store = dying  # type: ignore[assignment]
    with pytest.raises(_Crash):
        run.invoke(ScriptedPlanner(RECIPES), FakeEvaluator(TRADE_OFFS))
    assert run.numbers() == [0, 1, 2]  # trial 2 stored, its checkpoint never written
    run.store = SqliteResultsStore(tmp_path / "results.sqlite")
    evaluator = FakeEvaluator(TRADE_OFFS)
    final = run.invoke(ScriptedPlanner(RECIPES), evaluator, fresh=False)
    assert evaluator.calls == [RECIPES[3].hash]  # trial 2 came from the store
    assert [t["number"] for t in final["trials"]] == [0, 1, 2, 3]
    assert final["trials"][2]["recipe_hash"] == RECIPES[2].hash
    assert run.numbers() == [0, 1, 2, 3]


def test_state_holds_no_measurement_records(tmp_path: Path) -> None:
    run = _Run(tmp_path, Budgets(max_trials=2))
    final = run.invoke(ScriptedPlanner(RECIPES), FakeEvaluator(TRADE_OFFS))
    text = json.dumps(final)  # plain JSON: ids, recipes, numbers
    assert "provenance" not in text and "energy" not in json.dumps(final["trials"][0]["recipe"])
