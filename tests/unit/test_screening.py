"""Multi-fidelity search (issue #12, item 1): screen cheaply, promote the promising, front in full."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentic_compression.evaluation.accuracy import AccuracyConfig, TaskSpec
from agentic_compression.evaluation.candidate import MeasureConfig
from agentic_compression.evaluation.latency import LatencyConfig
from agentic_compression.evaluation.perplexity import PerplexityConfig
from agentic_compression.evaluation.screening import FidelitySchedule, screening_config
from agentic_compression.planning.base import PlanningGoal
from agentic_compression.results.export import write_run_outputs
from agentic_compression.results.store import SqliteResultsStore
from agentic_compression.workflow import (
    Budgets,
    RunContext,
    build_workflow,
    initial_state,
    make_checkpointer,
    run_config,
)
from agentic_compression.workflow.runner import SearchSettings, create_run
from workflow_fakes import (
    FakeEvaluator,
    FakeMetrics,
    ScriptedPlanner,
    energy_reading,
    recipe,
    table,
)

RECIPES = [recipe(s) for s in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6)]
#: Full fidelity: a trade-off curve. Screening sees the same shape, a little off.
FULL = table(
    [
        (r, FakeMetrics(0.9 - 0.05 * i, 30.0 - i, 500_000_000 - 40_000_000 * i, 4e-4 - 2e-5 * i))
        for i, r in enumerate(RECIPES)
    ]
)
#: At screening, odd-numbered recipes look dominated (worse accuracy, slower, larger).
SCREEN = table(
    [
        (
            r,
            FakeMetrics(
                0.88 - 0.05 * i - (0.2 if i % 2 else 0.0),
                30.0 - i + (5 if i % 2 else 0),
                500_000_000 - 40_000_000 * i + (10**8 if i % 2 else 0),
                4e-4 - 2e-5 * i,
            ),
        )
        for i, r in enumerate(RECIPES)
    ]
)


def test_screening_config_measures_a_quarter_with_one_repeat() -> None:
    full = MeasureConfig(
        latency=LatencyConfig(repeats=5),
        perplexity=PerplexityConfig(windows=16),
        accuracy=AccuracyConfig(tasks=(TaskSpec("arc_easy"), TaskSpec("hellaswag", limit=200))),
    )
    full = MeasureConfig(
        latency=full.latency,
        perplexity=full.perplexity,
        accuracy=AccuracyConfig(tasks=full.accuracy.tasks, limit=100),  # type: ignore[union-attr]
    )
    screen = screening_config(full)
    assert screen.latency is not None and screen.latency.repeats == 1
    assert screen.perplexity is not None and screen.perplexity.windows == 4
    assert screen.accuracy is not None and screen.accuracy.limit == 25
    assert [t.limit for t in screen.accuracy.tasks] == [None, 50]
    whole = MeasureConfig(accuracy=AccuracyConfig(tasks=(TaskSpec("arc_easy"),)))
    assert screening_config(whole).accuracy.limit == 50  # type: ignore[union-attr]


def test_promotions_prefer_feasible_then_rank_then_accuracy() -> None:
    points = [
        ("fast", {"accuracy": 0.40, "latency_ms": 5.0}),
        ("good", {"accuracy": 0.70, "latency_ms": 10.0}),
        ("bad", {"accuracy": 0.30, "latency_ms": 12.0}),  # dominated by both
        ("slow", {"accuracy": 0.80, "latency_ms": 30.0}),
    ]
    schedule = FidelitySchedule("halving", rung=4, keep=0.5)
    assert schedule.promotions(points, feasible={"fast", "good", "bad", "slow"}) == ["good", "slow"]
    assert schedule.promotions(points, feasible={"bad", "fast"}) == ["fast", "bad"]
    with pytest.raises(ValueError, match="rung must be >= 1"):
        FidelitySchedule("halving", rung=0)
    with pytest.raises(ValueError, match="halving or full"):
        FidelitySchedule("sometimes")  # type: ignore[arg-type]


def _search(tmp_path: Path, max_trials: int, schedule: FidelitySchedule) -> tuple:  # type: ignore[type-arg]
    store = SqliteResultsStore(tmp_path / "results.sqlite")
    budgets = Budgets(max_trials=max_trials)
    context = RunContext(
        run_dir=tmp_path / "run", goal=PlanningGoal(), budgets=budgets, proposals_per_call=2,
        schedule=schedule,
    )  # fmt: skip
    create_run(store, "r1", SearchSettings(max_trials=max_trials), "fakeconfig000000")
    evaluator = FakeEvaluator(FULL, screen_table=SCREEN)
    with make_checkpointer(f"sqlite:///{tmp_path / 'checkpoint.sqlite'}") as saver:
        workflow = build_workflow(ScriptedPlanner(RECIPES), evaluator, store, saver)
        final = workflow.invoke(
            initial_state("r1"), run_config("r1", max_trials), context=context, durability="sync"
        )
    return dict(final), store, evaluator


def test_halving_screens_every_candidate_and_fronts_only_full_measurements(tmp_path: Path) -> None:
    final, store, evaluator = _search(tmp_path, 6, FidelitySchedule("halving", rung=2, keep=0.5))
    # 6 screened, 3 promoted (one of each rung of 2: the even ones look better when screened)
    assert evaluator.fidelities == ["screen"] * 2 + ["full"] + ["screen"] * 2 + ["full"] + [
        "screen"
    ] * 2 + ["full"]
    assert final["stop_reason"] == "trial_budget"
    assert sorted(final["judged"]) == [0, 1, 2, 3, 4, 5]
    trials = store.list_trials("r1")
    assert [t.provenance.fidelity for t in trials] == ["full", "screen"] * 3
    promoted = trials[0]
    assert promoted.provenance.screening is not None
    assert promoted.provenance.screening["objectives"]["accuracy"] == pytest.approx(0.88)
    assert promoted.objectives is not None and promoted.objectives["accuracy"] == pytest.approx(0.9)
    full_ids = {t.candidate_id for t in trials if t.provenance.fidelity == "full"}
    assert set(final["front_ids"]) == full_ids and len(full_ids) == 3
    # every candidate is one trial (a promotion replaces its screening, kept in provenance)
    assert [t["number"] for t in final["trials"]] == [0, 1, 2, 3, 4, 5]

    outputs = write_run_outputs(
        tmp_path / "out", store.get_run("r1"), trials, {}, PlanningGoal(), "balanced", plots=False
    )
    payload = json.loads(outputs.results_json.read_text())
    assert set(payload["pareto"]["front_ids"]) == full_ids
    assert "fidelity" in outputs.trials_csv.read_text().splitlines()[0]


def test_the_last_screened_candidates_are_judged_before_the_trial_budget_stops(
    tmp_path: Path,
) -> None:
    final, store, evaluator = _search(tmp_path, 3, FidelitySchedule("halving", rung=4, keep=0.5))
    # the rung never fills (3 < 4): the budget waits, the 3 screened are judged, 2 promoted
    assert evaluator.fidelities == ["screen"] * 3 + ["full"] * 2
    assert final["stop_reason"] == "trial_budget"
    assert [t.provenance.fidelity for t in store.list_trials("r1")] == ["full", "screen", "full"]


def test_full_mode_measures_everything_once_in_full(tmp_path: Path) -> None:
    final, _, evaluator = _search(tmp_path, 4, FidelitySchedule("full"))
    assert evaluator.fidelities == ["full"] * 4
    assert len(final["front_ids"]) == 4


class _Crash(BaseException):
    """Stands in for SIGKILL."""


class _KilledDuringPromotion(FakeEvaluator):
    """Meters one phase of the first full-fidelity measurement, then the process dies."""

    def evaluate(self, recipe, progress, on_energy=None, fidelity="full"):  # type: ignore[no-untyped-def]
        if fidelity == "full":
            assert on_energy is not None
            on_energy(energy_reading(0.004, "compression"))
            raise _Crash
        return super().evaluate(recipe, progress, on_energy, fidelity)


def test_a_kill_during_a_promotion_resumes_it_and_charges_the_lost_work(tmp_path: Path) -> None:
    store = SqliteResultsStore(tmp_path / "results.sqlite")
    context = RunContext(
        run_dir=tmp_path / "run", goal=PlanningGoal(), budgets=Budgets(max_trials=2),
        proposals_per_call=2, schedule=FidelitySchedule("halving", rung=2, keep=0.5),
    )  # fmt: skip
    create_run(store, "r1", SearchSettings(max_trials=2), "fakeconfig000000")
    url = f"sqlite:///{tmp_path / 'checkpoint.sqlite'}"

    def invoke(evaluator: FakeEvaluator, fresh: bool) -> dict:  # type: ignore[type-arg]
        with make_checkpointer(url) as saver:
            workflow = build_workflow(ScriptedPlanner(RECIPES), evaluator, store, saver)
            start = initial_state("r1") if fresh else None
            return dict(
                workflow.invoke(start, run_config("r1", 2), context=context, durability="sync")
            )

    with pytest.raises(_Crash):
        invoke(_KilledDuringPromotion(FULL, screen_table=SCREEN), fresh=True)
    assert [t.provenance.fidelity for t in store.list_trials("r1")] == ["screen", "screen"]
    evaluator = FakeEvaluator(FULL, screen_table=SCREEN)
    final = invoke(evaluator, fresh=False)
    assert evaluator.fidelities == ["full"]  # the promotion again, nothing screened twice
    assert [t.provenance.fidelity for t in store.list_trials("r1")] == ["full", "screen"]
    assert final["spent"]["lost_co2_kg"] == pytest.approx(0.004)
    assert store.take_unfinished_costs("r1") == (0.0, 0.0)
