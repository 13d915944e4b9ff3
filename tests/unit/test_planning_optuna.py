"""Offline (Optuna) and random planners, driven by an analytic fake of the measurements.

The fake stands in for compress-and-measure (the expensive boundary); it has the shape of the real
trade-offs: fewer bits -> smaller and mostly faster, more sparsity -> less accurate, int8 dynamic fast
but lossy, magnitude pruning worse than Wanda.
"""

from __future__ import annotations

import statistics

import pytest

from agentic_compression.compression.presets import preset
from agentic_compression.core.pareto import DEFAULT_OBJECTIVES, Point, hypervolume
from agentic_compression.planning.base import PlanningGoal, TrialOutcome
from agentic_compression.planning.optuna_planner import OptunaPlanner, goal_constraints
from agentic_compression.planning.random_planner import RandomPlanner
from agentic_compression.planning.space import CPU_QUANTIZATIONS, SearchSpace, SpacePoint

QUANT_LOSS = {"fp32": 0.0, "bf16": 0.002, "int8_weight_only": 0.004, "int8_dynamic": 0.06,
              "bnb_8bit": 0.01, "nf4": 0.04, "fp4": 0.08}  # fmt: skip
DECODE_MS = {"fp32": 37, "bf16": 45, "int8_weight_only": 60, "int8_dynamic": 26, "bnb_8bit": 90,
             "nf4": 32, "fp4": 33}  # fmt: skip
SIZE_MB = {"fp32": 538, "bf16": 270, "int8_weight_only": 249, "int8_dynamic": 249, "bnb_8bit": 250,
           "nf4": 173, "fp4": 173}  # fmt: skip
PRUNE_LOSS = {"none": 0.0, "magnitude": 0.5, "wanda": 0.25, "nm-2:4": 0.35}
REFERENCE = {"accuracy": 0.3, "latency_ms": 100.0, "memory_bytes": 600e6, "energy_kwh_per_1k_tokens": 1e-3,
             "co2_kg_per_1k_tokens": 4e-4}  # fmt: skip
# The unstructured and 2:4 choices and the CPU formats this fake world knows, in registry order.
SPACE = SearchSpace(
    pruning=tuple(PRUNE_LOSS), quantizations=tuple(q for q in CPU_QUANTIZATIONS if q in QUANT_LOSS)
)


def fake_objectives(point: SpacePoint) -> dict[str, float]:
    sparsity = point.effective_sparsity
    latency = DECODE_MS[point.quantization] * (1 - 0.1 * sparsity)
    return {
        "accuracy": 0.55 - QUANT_LOSS[point.quantization] - PRUNE_LOSS[point.pruning] * sparsity**2,
        "latency_ms": latency,
        "memory_bytes": SIZE_MB[point.quantization] * 1e6,
        "energy_kwh_per_1k_tokens": latency * 1e-5,
        "co2_kg_per_1k_tokens": latency * 4e-6,
    }


def outcome(number: int, point: SpacePoint | None) -> TrialOutcome:
    assert point is not None, "the planner proposed a recipe outside the space"
    return TrialOutcome(number, SPACE.to_recipe(point), "ok", fake_objectives(point))


def run(planner: OptunaPlanner | RandomPlanner, trials: int, batch: int = 1) -> list[TrialOutcome]:
    history: list[TrialOutcome] = []
    while len(history) < trials:
        for proposal in planner.propose(history, PlanningGoal(), batch):
            point = SPACE.from_recipe(proposal.recipe)
            assert point is not None
            history.append(outcome(len(history), point))
    return history


def hv(history: list[TrialOutcome]) -> float:
    points = [Point(str(o.number), o.objectives) for o in history]
    return hypervolume(points, DEFAULT_OBJECTIVES, REFERENCE)


def test_seeds_come_first_then_samples() -> None:
    history = run(OptunaPlanner(space=SPACE, seed=0), trials=6)
    seeds = ["fp32", "bf16", "int8", "nf4", "wanda-30+int8"]
    assert [o.recipe.label for o in history[:5]] == seeds
    proposals = OptunaPlanner(space=SPACE, seed=0).propose([], PlanningGoal(), count=6)
    assert "known-good seed 1/5" in proposals[0].reasoning
    assert "random start-up sample" in proposals[5].reasoning
    assert all(p.planner == "offline" for p in proposals)


def test_seeds_already_tried_are_skipped() -> None:
    history = [
        TrialOutcome(0, preset("fp32"), "ok", fake_objectives(SpacePoint("none", 0, "fp32")))
    ]
    labels = [
        p.recipe.label
        for p in OptunaPlanner(space=SPACE, seed=0).propose(history, PlanningGoal(), 2)
    ]
    assert labels == ["bf16", "int8"]


def test_never_repeats_respects_count_and_is_deterministic() -> None:
    first = run(OptunaPlanner(space=SPACE, seed=7), trials=24, batch=3)
    again = run(OptunaPlanner(space=SPACE, seed=7), trials=24, batch=3)
    other = run(OptunaPlanner(space=SPACE, seed=8), trials=24, batch=3)
    hashes = [o.recipe.hash for o in first]
    assert len(hashes) == 24 and len(set(hashes)) == 24
    assert hashes == [o.recipe.hash for o in again]
    assert hashes != [o.recipe.hash for o in other]
    assert OptunaPlanner(space=SPACE, seed=7).propose(first, PlanningGoal(), 0) == []
    assert len(OptunaPlanner(space=SPACE, seed=7).propose(first, PlanningGoal(), 5)) == 5


def test_exhausting_a_small_grid_falls_back_to_nearest_then_stops() -> None:
    space = SearchSpace(pruning=("none",), quantizations=("fp32", "bf16", "nf4"))
    history = [
        outcome(0, SpacePoint("none", 0.0, "fp32")),
        outcome(1, SpacePoint("none", 0.0, "nf4")),
    ]
    routes = []
    for seed in range(10):
        planner = OptunaPlanner(seed=seed, space=space, max_reasks=1, use_seeds=False)
        proposals = planner.propose(history, PlanningGoal(), count=3)
        assert [p.recipe.label for p in proposals] == ["bf16"]  # the one untried point, once
        routes.append("nearest untried grid point" in proposals[0].reasoning)
    assert any(routes) and not all(routes)  # some samples hit tried points and fell back
    history.append(outcome(2, SpacePoint("none", 0.0, "bf16")))
    assert OptunaPlanner(seed=0, space=space).propose(history, PlanningGoal(), count=1) == []


def test_history_from_elsewhere_is_replayed_or_ignored() -> None:
    history = [
        outcome(0, SpacePoint("none", 0.0, "fp32")),
        TrialOutcome(1, SPACE.to_recipe(SpacePoint("none", 0.0, "fp4")), "failed", error="boom"),
        TrialOutcome(2, preset("4of8"), "ok", fake_objectives(SpacePoint("nm-2:4", 0, "fp32"))),
    ]
    proposals = OptunaPlanner(space=SPACE, seed=0).propose(
        history, PlanningGoal(accuracy_threshold=0.5), 5
    )
    assert "fp32" not in [p.recipe.label for p in proposals]
    reasoning = proposals[-1].reasoning
    assert "1 trials replayed" in reasoning and "1 failed" in reasoning
    assert "1 outside the space ignored" in reasoning and "accuracy >= 0.5" in reasoning


def test_goal_constraints_are_relative_violations() -> None:
    goal = PlanningGoal(accuracy_threshold=0.5, max_memory_bytes=200e6, max_latency_ms=40.0)
    values = {"accuracy": 0.45, "memory_bytes": 300e6, "latency_ms": 20.0}
    assert goal_constraints(goal, values, feasible=True) == {
        "accuracy": pytest.approx(0.1),
        "memory_bytes": pytest.approx(0.5),
        "latency_ms": pytest.approx(-0.5),
        "feasible": 0.0,
    }
    assert goal_constraints(PlanningGoal(), values, feasible=False) == {"feasible": 1.0}


def test_constraints_steer_towards_feasible_recipes() -> None:
    # Memory limit 200 MB: only the 4-bit recipes are feasible (173 MB in the fake), 2 of 7
    # precisions; the trials after the seeds and the random start-up are counted.
    limit = 200e6

    def feasible_share(goal: PlanningGoal, seed: int) -> float:
        planner = OptunaPlanner(space=SPACE, seed=seed)
        history: list[TrialOutcome] = []
        while len(history) < 20:
            proposal = planner.propose(history, goal, 1)[0]
            history.append(outcome(len(history), SPACE.from_recipe(proposal.recipe)))
        late = history[planner.n_startup_trials :]
        return sum(o.objectives["memory_bytes"] <= limit for o in late) / len(late)

    chance = sum(SIZE_MB[p.quantization] * 1e6 <= limit for p in SPACE.grid()) / len(SPACE.grid())
    limited = statistics.mean(
        feasible_share(PlanningGoal(max_memory_bytes=limit), s) for s in range(5)
    )
    free = statistics.mean(feasible_share(PlanningGoal(), s) for s in range(5))
    assert limited > free and limited > 1.5 * chance, (limited, free, chance)


def test_moves_toward_better_regions_than_random_search() -> None:
    seeds = range(3)
    optuna_hv = statistics.mean(hv(run(OptunaPlanner(space=SPACE, seed=s), 20)) for s in seeds)
    random_hv = statistics.mean(hv(run(RandomPlanner(space=SPACE, seed=s), 20)) for s in seeds)
    full = hv([outcome(i, p) for i, p in enumerate(SPACE.grid())])
    assert optuna_hv > random_hv
    assert optuna_hv / full > 0.9


def test_random_planner_is_seeded_and_never_repeats() -> None:
    first = run(RandomPlanner(space=SPACE, seed=1), 30, batch=4)
    assert len({o.recipe.hash for o in first}) == 32
    assert [o.recipe.hash for o in first] == [
        o.recipe.hash for o in run(RandomPlanner(space=SPACE, seed=1), 30, 4)
    ]
    space = SearchSpace(pruning=("none",), quantizations=("fp32", "nf4"))
    proposals = RandomPlanner(seed=0, space=space).propose([], PlanningGoal(), count=5)
    assert sorted(p.recipe.label for p in proposals) == ["fp32", "nf4"]
    assert proposals[0].planner == "random" and "uniform random (seed 0)" in proposals[0].reasoning


def test_each_swept_pruning_choice_has_its_own_sparsity_range() -> None:
    space = SearchSpace(pruning=("none", "wanda", "drop-layers"), quantizations=("fp32", "bf16"))
    distributions = OptunaPlanner(space=space, seed=0)._distributions()
    assert (distributions["sparsity"].low, distributions["sparsity"].high) == (0.1, 0.7)
    dropped = distributions["sparsity:drop-layers"]
    assert (dropped.low, dropped.high, dropped.step) == (0.1, 0.3, 0.1)
    planner = OptunaPlanner(space=space, seed=0, use_seeds=False, n_startup_trials=4)
    history: list[TrialOutcome] = []
    while len(history) < 12:
        for proposal in planner.propose(history, PlanningGoal(), 3):
            point = space.from_recipe(proposal.recipe)
            assert point is not None and space.contains(point)
            history.append(TrialOutcome(len(history), proposal.recipe, "ok", {"accuracy": 0.5,
                "latency_ms": 10.0 + len(history), "memory_bytes": 1e8,
                "energy_kwh_per_1k_tokens": 1e-5, "co2_kg_per_1k_tokens": 4e-6}))  # fmt: skip
    levels = {space.from_recipe(o.recipe).sparsity for o in history}  # type: ignore[union-attr]
    assert {0.1, 0.2, 0.3} <= levels


def test_pending_recipes_are_never_proposed_again() -> None:
    """A batch asked while others are in flight (parallel workers) skips them and spreads out."""
    seeds = OptunaPlanner(space=SPACE, seed=0).propose([], PlanningGoal(), count=2)
    in_flight = [p.recipe for p in seeds]
    after = OptunaPlanner(space=SPACE, seed=0).propose([], PlanningGoal(), 4, pending=in_flight)
    assert [p.recipe.label for p in after[:3]] == ["int8", "nf4", "wanda-30+int8"]
    assert not {p.recipe.hash for p in after} & {r.hash for r in in_flight}
    history = run(OptunaPlanner(space=SPACE, seed=1), trials=8)
    flying = [
        p.recipe for p in OptunaPlanner(space=SPACE, seed=1).propose(history, PlanningGoal(), 3)
    ]
    batch = OptunaPlanner(space=SPACE, seed=1).propose(history, PlanningGoal(), 3, pending=flying)
    assert len(batch) == 3
    tried = {o.recipe.hash for o in history} | {r.hash for r in flying}
    assert not {p.recipe.hash for p in batch} & tried
    random_batch = RandomPlanner(space=SPACE, seed=2).propose(history, PlanningGoal(), 200, flying)
    assert len(random_batch) == len(SPACE.grid()) - len(tried)
    assert not {p.recipe.hash for p in random_batch} & tried
