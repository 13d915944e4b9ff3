"""The older codebase's rule-based planners, kept as baselines (PRODUCT.md, "rule-based planner").

They speak the older ``(bits, sparsity)`` vocabulary, mapped onto recipes by
:func:`.space.from_bits_sparsity` (32 fp32, 16 bf16, 8 int8 weight-only, 4 NF4; sparsity is Wanda).

:class:`RulesPlanner` (the old LangGraph workflow):

- seeds by keywords in the objective text (lower-cased, first match wins, in this order):
  "edge"/"mobile" -> (4, 0.7), (4, 0.5), (8, 0.5); "carbon"/"green" -> (4, 0.6), (8, 0.4), (8, 0.3);
  "accuracy" -> (16, 0.1), (8, 0.2), (8, 0.3); otherwise (8, 0.3), (4, 0.5), (16, 0.1);
- refine: for each of the first two Pareto-front members (history order), a variant with the bits
  halved if above 4, and a variant with 0.1 more sparsity if below 0.6 (capped at 0.7).

:class:`DynamicArmPlanner` (RQ1's dynamic arm): start at (8, 0); after each evaluation, accuracy
above threshold + 0.02 -> bits = max(bits / 2, 4), sparsity + 0.2 (cap 0.7); below threshold - 0.02
-> bits = min(bits * 2, 32), sparsity - 0.1 (floor 0); otherwise bits above 8 -> 8, 8 -> 4, and
sparsity + 0.1 (cap 0.7). It stops at the first trial meeting the threshold.

Neither may repeat a tried recipe. The rules planner drops variants already tried (it may then
propose fewer than asked, or nothing: it has stalled). The dynamic arm, when the rule leads to a
tried configuration, applies the rule again to that trial's measured accuracy (re-running it would
measure the same) and stops if that walk comes back on itself.

Example:
    >>> keyword_seeds("deploy on an edge device")
    [(4, 0.7), (4, 0.5), (8, 0.5)]
    >>> refine_variants([(8, 0.3), (4, 0.6)])
    [(4, 0.3), (8, 0.4)]
"""

from __future__ import annotations

from collections.abc import Sequence

from agentic_compression.compression.recipe import Recipe
from agentic_compression.core.pareto import DEFAULT_OBJECTIVES, Point, pareto_front
from agentic_compression.errors import UserInputError
from agentic_compression.planning.base import Planner, PlanningGoal, Proposal, TrialOutcome
from agentic_compression.planning.space import (
    QUANTIZATION_STEPS,
    SearchSpace,
    SpacePoint,
    from_bits_sparsity,
    to_bits_sparsity,
)

BitsSparsity = tuple[int, float]

#: (keywords, seeds), checked in this order; the first whose keyword occurs in the objective wins.
KEYWORD_SEEDS: tuple[tuple[tuple[str, ...], tuple[BitsSparsity, ...]], ...] = (
    (("edge", "mobile"), ((4, 0.7), (4, 0.5), (8, 0.5))),
    (("carbon", "green"), ((4, 0.6), (8, 0.4), (8, 0.3))),
    (("accuracy",), ((16, 0.1), (8, 0.2), (8, 0.3))),
)
DEFAULT_SEEDS: tuple[BitsSparsity, ...] = ((8, 0.3), (4, 0.5), (16, 0.1))
DYNAMIC_START: BitsSparsity = (8, 0.0)
#: Reads any recipe of the older vocabulary's space (unstructured and 2:4 pruning, every precision,
#: int4 included) into (bits, sparsity); structured pruning has no (bits, sparsity) reading.
_VOCABULARY = SearchSpace(
    pruning=("none", "magnitude", "wanda", "nm-2:4"), quantizations=tuple(QUANTIZATION_STEPS)
)


def _sparsity(value: float) -> float:
    return round(value, 2)  # 0.2 + 0.1 is 0.3 here, not 0.30000000000000004


def keyword_seeds(objective: str) -> list[BitsSparsity]:
    """The seeds the objective text selects (see the module docstring)."""
    text = objective.lower()
    for keywords, seeds in KEYWORD_SEEDS:
        if any(word in text for word in keywords):
            return list(seeds)
    return list(DEFAULT_SEEDS)


def refine_variants(frontier: Sequence[BitsSparsity]) -> list[BitsSparsity]:
    """Variants of the first two frontier members: halved bits (if > 4), +0.1 sparsity (if < 0.6)."""
    variants: list[BitsSparsity] = []
    for bits, sparsity in frontier[:2]:
        if bits > 4:
            variants.append((bits // 2, _sparsity(sparsity)))
        if sparsity < 0.6:
            variants.append((bits, _sparsity(min(sparsity + 0.1, 0.7))))
    return variants


def dynamic_arm_next(bits: int, sparsity: float, accuracy: float, threshold: float) -> BitsSparsity:
    """RQ1's dynamic-arm step from one measured configuration to the next.

    >>> dynamic_arm_next(8, 0.0, accuracy=0.40, threshold=0.5)
    (16, 0.0)
    """
    if accuracy > threshold + 0.02:
        return max(bits // 2, 4), _sparsity(min(sparsity + 0.2, 0.7))
    if accuracy < threshold - 0.02:
        return min(bits * 2, 32), _sparsity(max(sparsity - 0.1, 0.0))
    stepped = 8 if bits > 8 else 4 if bits == 8 else bits
    return stepped, _sparsity(min(sparsity + 0.1, 0.7))


def _bits_sparsity(recipe_point: SpacePoint | None) -> BitsSparsity | None:
    return None if recipe_point is None else to_bits_sparsity(recipe_point)


def _proposal(config: BitsSparsity, planner: str, why: str) -> Proposal:
    point = from_bits_sparsity(*config)
    recipe = _VOCABULARY.to_recipe(point)
    return Proposal(
        recipe, planner, f"{why} -> (bits {config[0]}, sparsity {config[1]:g}) = {recipe.label}"
    )


class RulesPlanner(Planner):
    """Keyword seeds, then variants of the first two Pareto-front members (the older planner).

    Example:
        >>> [p.recipe.label for p in RulesPlanner().propose([], PlanningGoal("green AI"), 3)]
        ['wanda-60+nf4', 'wanda-40+int8', 'wanda-30+int8']
    """

    name = "rules"

    def propose(
        self,
        history: Sequence[TrialOutcome],
        goal: PlanningGoal,
        count: int,
        pending: Sequence[Recipe] = (),
    ) -> list[Proposal]:
        tried = {_VOCABULARY.key(o.recipe) for o in history}
        tried |= {_VOCABULARY.key(r) for r in pending}
        seeds = keyword_seeds(goal.objective)
        candidates = [(c, f"keyword seed for {goal.objective!r}") for c in seeds]
        frontier = self._frontier(history)
        if frontier:
            why = f"refined from frontier members {frontier[:2]}"
            candidates += [(c, why) for c in refine_variants(frontier)]
        proposals: list[Proposal] = []
        for config, why in candidates:
            proposal = _proposal(config, self.name, why)
            key = _VOCABULARY.key(proposal.recipe)
            if key not in tried and len(proposals) < max(count, 0):
                tried.add(key)
                proposals.append(proposal)
        return proposals

    @staticmethod
    def _frontier(history: Sequence[TrialOutcome]) -> list[BitsSparsity]:
        """(bits, sparsity) of the Pareto-front members, in history order, that have one."""
        ok = [o for o in history if o.status == "ok"]
        objectives = [o for o in DEFAULT_OBJECTIVES if all(o.name in t.objectives for t in ok)]
        if not ok or not objectives:
            return []
        points = [Point(str(i), dict(o.objectives)) for i, o in enumerate(ok)]
        front = pareto_front(points, objectives)
        configs = (_bits_sparsity(_VOCABULARY.from_recipe(ok[int(p.id)].recipe)) for p in front)
        return [c for c in configs if c is not None]


class DynamicArmPlanner(Planner):
    """RQ1's dynamic arm: one configuration at a time, steered by the last accuracy.

    Example:
        >>> arm = DynamicArmPlanner()
        >>> [p.recipe.label for p in arm.propose([], PlanningGoal(accuracy_threshold=0.5), 1)]
        ['int8']
    """

    name = "rq1-dynamic"

    def propose(
        self,
        history: Sequence[TrialOutcome],
        goal: PlanningGoal,
        count: int,
        pending: Sequence[Recipe] = (),
    ) -> list[Proposal]:
        threshold = goal.accuracy_threshold
        if threshold is None:
            raise UserInputError(
                "the RQ1 dynamic arm needs an accuracy threshold (--accuracy-threshold)"
            )
        if count <= 0 or pending:
            return []  # one configuration at a time: the next depends on the one in flight
        if not history:
            return [_proposal(DYNAMIC_START, self.name, "dynamic arm starts at (8, 0)")]
        accuracy: dict[BitsSparsity, float | None] = {}
        for outcome in history:
            config = _bits_sparsity(_VOCABULARY.from_recipe(outcome.recipe))
            if config is not None:
                ok = outcome.status == "ok" and "accuracy" in outcome.objectives
                accuracy[config] = outcome.objectives["accuracy"] if ok else None
        met = [a for a in accuracy.values() if a is not None and a >= threshold]
        if met:
            return []  # the arm stops at the first trial that meets the threshold
        last = _bits_sparsity(_VOCABULARY.from_recipe(history[-1].recipe))
        if last is None:
            raise ValueError("the last trial is not a (bits, sparsity) configuration of this arm")
        walk = [last]
        while walk[-1] in accuracy:
            measured = accuracy[walk[-1]]
            # A failed trial backs off like one far below the threshold.
            value = measured if measured is not None else float("-inf")
            nxt = dynamic_arm_next(*walk[-1], accuracy=value, threshold=threshold)
            if nxt in walk:
                return []  # the rule cycles through configurations already measured: stop
            walk.append(nxt)
        steps = " -> ".join(f"({b}, {s:g})" for b, s in walk)
        return [_proposal(walk[-1], self.name, f"dynamic rule, threshold {threshold:g}: {steps}")]
