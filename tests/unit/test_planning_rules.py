"""The older codebase's rules, exactly as PRODUCT.md states them: keyword seeds, refine, RQ1 arm."""

from __future__ import annotations

import pytest

from agentic_compression.compression.presets import preset
from agentic_compression.compression.recipe import Recipe
from agentic_compression.errors import UserInputError
from agentic_compression.planning.base import PlanningGoal, TrialOutcome
from agentic_compression.planning.rules import (
    DynamicArmPlanner,
    RulesPlanner,
    dynamic_arm_next,
    keyword_seeds,
    refine_variants,
)
from agentic_compression.planning.space import SearchSpace, from_bits_sparsity, to_bits_sparsity

SPACE = SearchSpace()


def bits_sparsity(recipe: Recipe) -> tuple[int, float]:
    point = SPACE.from_recipe(recipe)
    assert point is not None, recipe
    return to_bits_sparsity(point)


@pytest.mark.parametrize(
    ("objective", "seeds"),
    [
        ("edge deployment", [(4, 0.7), (4, 0.5), (8, 0.5)]),
        ("Mobile phones", [(4, 0.7), (4, 0.5), (8, 0.5)]),
        ("low carbon serving", [(4, 0.6), (8, 0.4), (8, 0.3)]),
        ("green AI", [(4, 0.6), (8, 0.4), (8, 0.3)]),
        ("keep accuracy", [(16, 0.1), (8, 0.2), (8, 0.3)]),
        ("balanced accuracy and carbon", [(4, 0.6), (8, 0.4), (8, 0.3)]),  # carbon checked first
        ("edge, but carbon-aware", [(4, 0.7), (4, 0.5), (8, 0.5)]),  # edge checked first
        ("whatever works", [(8, 0.3), (4, 0.5), (16, 0.1)]),
    ],
)
def test_keyword_seeds(objective: str, seeds: list[tuple[int, float]]) -> None:
    assert keyword_seeds(objective) == seeds


def test_refine_rule() -> None:
    # Halve bits if above 4; +0.1 sparsity if below 0.6 (cap 0.7); first two members only.
    assert refine_variants([(16, 0.1), (8, 0.5), (4, 0.0)]) == [
        (8, 0.1),
        (16, 0.2),
        (4, 0.5),
        (8, 0.6),
    ]
    assert refine_variants([(4, 0.6), (4, 0.7)]) == []
    assert refine_variants([(32, 0.55)]) == [(16, 0.55), (32, 0.65)]
    assert refine_variants([(8, 0.2 + 0.1)]) == [(4, 0.3), (8, 0.4)]


def _ok(number: int, bits: int, sparsity: float, **objectives: float) -> TrialOutcome:
    recipe = SPACE.to_recipe(from_bits_sparsity(bits, sparsity))
    return TrialOutcome(number, recipe, "ok", objectives)


def test_rules_planner_seeds_then_refines_the_first_two_frontier_members() -> None:
    planner = RulesPlanner()
    goal = PlanningGoal("edge deployment")
    seeds = planner.propose([], goal, count=3)
    assert [bits_sparsity(p.recipe) for p in seeds] == [
        (4, 0.7),
        (4, 0.5),
        (8, 0.5),
    ]
    assert [p.recipe.label for p in seeds] == ["wanda-70+nf4", "wanda-50+nf4", "wanda-50+int8"]
    assert seeds[0].planner == "rules" and "keyword seed" in seeds[0].reasoning
    history = [
        _ok(0, 4, 0.7, accuracy=0.30, memory_bytes=1.0),  # dominated by trial 1
        _ok(1, 4, 0.5, accuracy=0.40, memory_bytes=1.0),
        _ok(2, 8, 0.5, accuracy=0.45, memory_bytes=2.0),
        TrialOutcome(3, preset("fp4"), "failed", error="boom"),
    ]
    refined = planner.propose(history, goal, count=10)
    configs = [bits_sparsity(p.recipe) for p in refined]
    # Front in history order: (4, 0.5), (8, 0.5). Variants: (4, 0.6); (4, 0.5) is tried; (8, 0.6).
    assert configs == [(4, 0.6), (8, 0.6)]
    assert "refined from frontier members [(4, 0.5), (8, 0.5)]" in refined[0].reasoning


def test_rules_planner_respects_count_and_stalls_without_repeating() -> None:
    planner = RulesPlanner()
    goal = PlanningGoal("keep accuracy")
    assert len(planner.propose([], goal, count=2)) == 2
    assert planner.propose([], goal, count=0) == []
    history = [
        _ok(0, 16, 0.1, accuracy=0.5),
        _ok(1, 8, 0.2, accuracy=0.4),
        _ok(2, 8, 0.3, accuracy=0.3),
        _ok(3, 16, 0.2, accuracy=0.45),
        _ok(4, 8, 0.1, accuracy=0.45),
    ]
    # Front = (16, 0.1) alone; its variants (8, 0.1) and (16, 0.2) are tried: nothing new.
    assert planner.propose(history, goal, count=3) == []


def test_dynamic_arm_rule_branches() -> None:
    threshold = 0.5
    assert dynamic_arm_next(16, 0.0, 0.53, threshold) == (8, 0.2)  # headroom: compress more
    assert dynamic_arm_next(4, 0.6, 0.60, threshold) == (4, 0.7)  # bits floor 4, sparsity cap
    assert dynamic_arm_next(8, 0.3, 0.47, threshold) == (16, 0.2)  # too low: back off
    assert dynamic_arm_next(32, 0.0, 0.10, threshold) == (32, 0.0)  # bits cap 32, floor 0
    assert dynamic_arm_next(16, 0.1, 0.49, threshold) == (8, 0.2)  # near: 16 -> 8
    assert dynamic_arm_next(8, 0.2, 0.51, threshold) == (4, 0.3)  # near: 8 -> 4
    assert dynamic_arm_next(4, 0.65, 0.52, threshold) == (4, 0.7)  # near: 4 stays, cap 0.7


def test_dynamic_arm_on_a_scripted_accuracy_sequence() -> None:
    arm = DynamicArmPlanner()
    goal = PlanningGoal(accuracy_threshold=0.5)
    accuracies = [0.40, 0.49, 0.485, 0.49, 0.55]
    expected = [(8, 0.0), (16, 0.0), (8, 0.1), (4, 0.2), (4, 0.3)]
    history: list[TrialOutcome] = []
    for accuracy in accuracies:
        (proposal,) = arm.propose(history, goal, count=3)
        assert proposal.planner == "rq1-dynamic"
        point = SPACE.from_recipe(proposal.recipe)
        assert point is not None
        history.append(TrialOutcome(len(history), proposal.recipe, "ok", {"accuracy": accuracy}))
    configs = [bits_sparsity(o.recipe) for o in history]
    assert configs == expected
    assert arm.propose(history, goal, count=1) == []  # the last trial met the threshold: stop


def test_dynamic_arm_walks_through_measured_configs_and_stops_on_a_cycle() -> None:
    arm = DynamicArmPlanner()
    goal = PlanningGoal(accuracy_threshold=0.5)
    history = [
        TrialOutcome(0, SPACE.to_recipe(from_bits_sparsity(8, 0.0)), "ok", {"accuracy": 0.40}),
        TrialOutcome(1, SPACE.to_recipe(from_bits_sparsity(16, 0.0)), "ok", {"accuracy": 0.49}),
        TrialOutcome(2, SPACE.to_recipe(from_bits_sparsity(8, 0.1)), "ok", {"accuracy": 0.40}),
    ]
    # (8, 0.1) too low -> (16, 0.0), measured 0.49 -> (8, 0.1): a cycle, so the arm stops.
    assert arm.propose(history, goal, count=1) == []
    failed = [TrialOutcome(0, SPACE.to_recipe(from_bits_sparsity(8, 0.0)), "failed", error="x")]
    (proposal,) = arm.propose(failed, goal, count=1)  # a failure backs off like low accuracy
    assert bits_sparsity(proposal.recipe) == (16, 0.0)
    with pytest.raises(UserInputError, match="accuracy threshold"):
        arm.propose([], PlanningGoal(), count=1)


def test_rules_skip_pending_and_the_dynamic_arm_waits_for_its_trial() -> None:
    goal = PlanningGoal("green AI", accuracy_threshold=0.5)
    first = RulesPlanner().propose([], goal, 1)
    rest = RulesPlanner().propose([], goal, 3, pending=[first[0].recipe])
    assert [p.recipe.label for p in rest] == ["wanda-40+int8", "wanda-30+int8"]
    start = DynamicArmPlanner().propose([], goal, 1)
    assert DynamicArmPlanner().propose([], goal, 1, pending=[start[0].recipe]) == []
