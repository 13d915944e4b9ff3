"""Uniform random search over the :mod:`.space` grid: the baseline every planner must beat.

Each call draws from the untried grid points with a generator seeded by ``seed`` and the history
length, so runs are reproducible and a resumed run proposes what the uninterrupted one would have.
Uniform over grid points (not over parameters) so that each untried recipe is equally likely.

Example:
    >>> planner = RandomPlanner(seed=0)
    >>> len(planner.propose([], PlanningGoal(), count=3))
    3
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from agentic_compression.compression.recipe import Recipe
from agentic_compression.planning.base import Planner, PlanningGoal, Proposal, TrialOutcome
from agentic_compression.planning.space import SearchSpace


class RandomPlanner(Planner):
    """Proposes untried grid points uniformly at random (seeded).

    Example:
        >>> a = RandomPlanner(seed=3).propose([], PlanningGoal(), count=2)
        >>> b = RandomPlanner(seed=3).propose([], PlanningGoal(), count=2)
        >>> [p.recipe.hash for p in a] == [p.recipe.hash for p in b]
        True
    """

    def __init__(
        self, *, seed: int = 0, space: SearchSpace | None = None, name: str = "random"
    ) -> None:
        self.seed = seed
        self.space = space if space is not None else SearchSpace()
        self.name = name

    def propose(
        self,
        history: Sequence[TrialOutcome],
        goal: PlanningGoal,
        count: int,
        pending: Sequence[Recipe] = (),
    ) -> list[Proposal]:
        tried = {self.space.from_recipe(o.recipe) for o in history}
        tried |= {self.space.from_recipe(r) for r in pending}
        untried = [p for p in self.space.grid() if p not in tried]
        rng = random.Random(self.seed * 100_003 + len(history))
        chosen = rng.sample(untried, min(max(count, 0), len(untried)))
        reasoning = (
            f"uniform random (seed {self.seed}) among {len(untried)} untried of "
            f"{len(self.space.grid())} grid points"
        )
        return [
            Proposal(self.space.to_recipe(p), self.name, f"{reasoning} -> {p.label}")
            for p in chosen
        ]
