"""The offline planner: multi-objective TPE (Optuna) over the :mod:`.space` grid; needs nothing.

Why TPE and not NSGA-II: a trial here costs minutes (compress, then measure for real), so a search
has 10-100 trials. NSGA-II works in generations of a population (50 by default); at that budget it
barely finishes one or two and is little better than random sampling. Multivariate TPE (MOTPE) models
the good and bad regions from the first few trials on, handles categorical and conditional
parameters (sparsity only exists for unstructured pruning) natively, uses constraints, and costs
milliseconds per proposal. ``multivariate=True, group=True`` lets it learn which pruning/precision
combinations go together instead of treating them independently.

Stateless: each :meth:`OptunaPlanner.propose` builds a fresh in-memory study, replays ``history``
into it with :func:`optuna.trial.create_trial` (objective values with the directions of
``core.pareto.DEFAULT_OBJECTIVES``; failed trials as ``FAIL``; constraints from the
:class:`PlanningGoal` as per-trial constraint values, which Optuna 5 prefers to the deprecated
``constraints_func``), and asks. The known-good seed points come first (enqueued), then TPE. A
sample that repeats a tried point is left pending (TPE's constant liar then steers away from it) and
re-asked up to ``max_reasks`` times; after that the nearest untried grid point is proposed. The
sampler seed is derived from ``seed`` and the history length, so a resumed run proposes exactly what
the uninterrupted one would have.

Example:
    >>> planner = OptunaPlanner(seed=0)
    >>> [p.recipe.label for p in planner.propose([], PlanningGoal(), count=2)]
    ['fp32', 'bf16']
"""

from __future__ import annotations

import itertools
import logging
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from agentic_compression.compression.recipe import Recipe
from agentic_compression.core.pareto import DEFAULT_OBJECTIVES, Objective
from agentic_compression.planning.base import Planner, PlanningGoal, Proposal, TrialOutcome
from agentic_compression.planning.space import UNSTRUCTURED, SearchSpace, SpacePoint


def _sparsity_param(pruning: str) -> str:
    """The Optuna parameter holding a swept pruning choice's sparsity ("sparsity" for Wanda and
    magnitude, as before structured pruning existed; "sparsity:<choice>" for the others)."""
    return "sparsity" if pruning in ("wanda", "magnitude") else f"sparsity:{pruning}"


@dataclass(frozen=True)
class _Replay:
    """What replaying the history found, for the reasoning text."""

    replayed: int
    failed: int
    infeasible: int
    outside_space: int
    objectives: tuple[Objective, ...]


def goal_constraints(
    goal: PlanningGoal, objectives: Mapping[str, float], feasible: bool
) -> dict[str, float]:
    """Constraint values (<= 0 is feasible) of one measured trial, relative to each limit.

    Relative violations (``(memory - limit) / limit``) keep bytes and milliseconds comparable when
    TPE ranks infeasible trials by their total violation. ``feasible=False`` (decided elsewhere,
    e.g. a deployment profile) adds a violation of 1.

    >>> goal_constraints(PlanningGoal(accuracy_threshold=0.5), {"accuracy": 0.4}, True)
    {'accuracy': 0.2, 'feasible': 0.0}
    """
    values: dict[str, float] = {}
    if goal.accuracy_threshold is not None and "accuracy" in objectives:
        threshold = goal.accuracy_threshold
        values["accuracy"] = (threshold - objectives["accuracy"]) / max(abs(threshold), 1e-12)
    if goal.max_memory_bytes is not None and "memory_bytes" in objectives:
        values["memory_bytes"] = objectives["memory_bytes"] / goal.max_memory_bytes - 1.0
    if goal.max_latency_ms is not None and "latency_ms" in objectives:
        values["latency_ms"] = objectives["latency_ms"] / goal.max_latency_ms - 1.0
    values["feasible"] = 0.0 if feasible else 1.0
    return {k: round(v, 12) for k, v in values.items()}


@contextmanager
def _quiet_optuna() -> Iterator[None]:
    """Optuna logs every told trial and warns that multivariate/group TPE is experimental."""
    import optuna

    previous = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            yield
    finally:
        optuna.logging.set_verbosity(previous)


class OptunaPlanner(Planner):
    """Multi-objective TPE over a :class:`SearchSpace`, seeded with known-good recipes.

    ``n_startup_trials`` counts the seeds: with the default 5 seeds and 6, one random point follows
    the seeds before TPE models the results.

    Example:
        >>> planner = OptunaPlanner(seed=1, space=SearchSpace(pruning=("none",)))
        >>> proposal = planner.propose([], PlanningGoal(), count=1)[0]
        >>> proposal.recipe.label, proposal.planner
        ('fp32', 'offline')
    """

    def __init__(
        self,
        *,
        seed: int = 0,
        space: SearchSpace | None = None,
        objectives: Sequence[Objective] = DEFAULT_OBJECTIVES,
        n_startup_trials: int = 6,
        max_reasks: int = 16,
        use_seeds: bool = True,
        name: str = "offline",
    ) -> None:
        if max_reasks < 1 or n_startup_trials < 0:
            raise ValueError("max_reasks must be >= 1 and n_startup_trials >= 0")
        self.seed = seed
        self.space = space if space is not None else SearchSpace()
        self.objectives = tuple(objectives)
        self.n_startup_trials = n_startup_trials
        self.max_reasks = max_reasks
        self.use_seeds = use_seeds
        self.name = name

    # ------------------------------------------------------------------ parameters

    def _distributions(self) -> dict[str, Any]:
        """Pruning and quantization choices, and one sparsity parameter per swept pruning choice
        over that choice's own levels (a conditional space: no snapping of out-of-range draws)."""
        from optuna.distributions import CategoricalDistribution, FloatDistribution

        distributions: dict[str, Any] = {
            "pruning": CategoricalDistribution(self.space.pruning),
            "quantization": CategoricalDistribution(self.space.quantizations),
        }
        for pruning in self.space.pruning:
            if pruning not in UNSTRUCTURED:
                continue
            levels = self.space.levels_for(pruning)
            steps = {round(b - a, 6) for a, b in itertools.pairwise(levels)}
            if len(steps) <= 1:
                # Evenly spaced levels: a stepped float keeps their order, which TPE can exploit.
                step = steps.pop() if steps else None
                low, high = levels[0], levels[-1]
                distributions[_sparsity_param(pruning)] = (
                    FloatDistribution(low, high, step=step)
                    if high > low
                    else CategoricalDistribution(levels)
                )
            else:
                distributions[_sparsity_param(pruning)] = CategoricalDistribution(levels)
        return distributions

    @staticmethod
    def _params(point: SpacePoint) -> dict[str, Any]:
        params: dict[str, Any] = {"pruning": point.pruning, "quantization": point.quantization}
        if point.pruning in UNSTRUCTURED:
            params[_sparsity_param(point.pruning)] = point.sparsity
        return params

    def _suggest(self, trial: Any, distributions: Mapping[str, Any]) -> SpacePoint:
        from optuna.distributions import FloatDistribution

        pruning = trial.suggest_categorical("pruning", distributions["pruning"].choices)
        sparsity = 0.0
        if pruning in UNSTRUCTURED:
            name = _sparsity_param(pruning)
            dist = distributions[name]
            if isinstance(dist, FloatDistribution):
                raw = trial.suggest_float(name, dist.low, dist.high, step=dist.step)
            else:
                raw = trial.suggest_categorical(name, dist.choices)
            # Snap float rounding (0.30000000000000004) onto the level it stands for.
            sparsity = min(self.space.levels_for(pruning), key=lambda level: abs(level - raw))
        quantization = trial.suggest_categorical(
            "quantization", distributions["quantization"].choices
        )
        return SpacePoint(str(pruning), float(sparsity), str(quantization))

    # ------------------------------------------------------------------ the study

    def _objectives_for(self, history: Sequence[TrialOutcome]) -> tuple[Objective, ...]:
        """The configured objectives every ok trial measured (all of them if none is ok)."""
        ok = [o for o in history if o.status == "ok"]
        shared = tuple(o for o in self.objectives if all(o.name in t.objectives for t in ok))
        return shared or self.objectives

    def _study(self, history: Sequence[TrialOutcome], goal: PlanningGoal) -> tuple[Any, _Replay]:
        import optuna
        from optuna.trial import TrialState, create_trial

        objectives = self._objectives_for(history)
        sampler = optuna.samplers.TPESampler(
            seed=(self.seed * 100_003 + len(history)) % 2**32,
            n_startup_trials=self.n_startup_trials,
            multivariate=True,
            group=True,
            constant_liar=True,
        )
        study = optuna.create_study(directions=[o.direction for o in objectives], sampler=sampler)
        distributions = self._distributions()
        replayed = failed = infeasible = outside = 0
        for outcome in history:
            point = self.space.from_recipe(outcome.recipe)
            if point is None:
                outside += 1
                continue
            params = self._params(point)
            dists = {name: distributions[name] for name in params}
            if outcome.status != "ok" or any(o.name not in outcome.objectives for o in objectives):
                study.add_trial(
                    create_trial(state=TrialState.FAIL, params=params, distributions=dists)
                )
                failed += 1
                continue
            constraints = goal_constraints(goal, outcome.objectives, outcome.feasible)
            infeasible += any(v > 0 for v in constraints.values())
            study.add_trial(
                create_trial(
                    values=[float(outcome.objectives[o.name]) for o in objectives],
                    params=params,
                    distributions=dists,
                    constraints=constraints,
                )
            )
            replayed += 1
        return study, _Replay(replayed, failed, infeasible, outside, objectives)

    # ------------------------------------------------------------------ proposing

    def propose(
        self,
        history: Sequence[TrialOutcome],
        goal: PlanningGoal,
        count: int,
        pending: Sequence[Recipe] = (),
    ) -> list[Proposal]:
        if count <= 0:
            return []
        tried = {p for p in (self.space.from_recipe(o.recipe) for o in history) if p is not None}
        in_flight = [p for p in (self.space.from_recipe(r) for r in pending) if p is not None]
        with _quiet_optuna():
            study, replay = self._study(history, goal)
            distributions = self._distributions()
            proposals: list[Proposal] = []
            taken = set(tried)
            for flying in dict.fromkeys(in_flight):
                # Asked and left RUNNING: constant liar counts the in-flight point as bad, so the
                # rest of the batch spreads away from it (and it is never proposed twice).
                if flying not in taken:
                    study.enqueue_trial(self._params(flying))
                    self._suggest(study.ask(), distributions)
                    taken.add(flying)

            def add(point: SpacePoint, why: str) -> None:
                taken.add(point)
                recipe = self.space.to_recipe(point)
                proposals.append(Proposal(recipe, self.name, f"{why} -> {recipe.label}"))

            seeds = [p for p in self.space.seeds() if p not in taken] if self.use_seeds else []
            all_seeds = self.space.seeds()
            for seed_point in seeds[:count]:
                # Enqueued and asked, so TPE sees the pending seed when it samples the rest.
                study.enqueue_trial(self._params(seed_point))
                self._suggest(study.ask(), distributions)
                position = f"{all_seeds.index(seed_point) + 1}/{len(all_seeds)}"
                add(seed_point, f"known-good seed {position} (seeds come before TPE samples)")
            while len(proposals) < count:
                point, why = self._ask_new(study, distributions, taken, replay, goal)
                if point is None:
                    break  # every grid point has been tried
                add(point, why)
        return proposals

    def _ask_new(
        self,
        study: Any,
        distributions: Mapping[str, Any],
        taken: set[SpacePoint],
        replay: _Replay,
        goal: PlanningGoal,
    ) -> tuple[SpacePoint | None, str]:
        context = self._context(replay, goal)
        last: SpacePoint | None = None
        for attempt in range(1, self.max_reasks + 1):
            # A repeat stays RUNNING: with constant_liar, TPE counts it as bad and moves away.
            last = self._suggest(study.ask(), distributions)
            if last not in taken:
                mode = "random start-up" if replay.replayed < self.n_startup_trials else "TPE"
                retry = f" (after {attempt - 1} repeat(s) re-asked)" if attempt > 1 else ""
                return last, f"{mode} sample{retry}; {context}"
        assert last is not None
        nearest = self.space.nearest(last, taken)
        why = (
            f"TPE repeated tried points {self.max_reasks} times (last {last.label}); "
            f"nearest untried grid point instead; {context}"
        )
        return nearest, why

    def _context(self, replay: _Replay, goal: PlanningGoal) -> str:
        names = ", ".join(f"{o.name} {o.direction[:3]}" for o in replay.objectives)
        limits = [
            f"{label} {value:g}"
            for label, value in (
                ("accuracy >=", goal.accuracy_threshold),
                ("memory_bytes <=", goal.max_memory_bytes),
                ("latency_ms <=", goal.max_latency_ms),
            )
            if value is not None
        ]
        text = (
            f"multivariate MOTPE (seed {self.seed}) over {len(self.space.grid())} grid points; "
            f"objectives: {names}; {replay.replayed} trials replayed"
            f" ({replay.infeasible} infeasible), {replay.failed} failed"
        )
        if replay.outside_space:
            text += f", {replay.outside_space} outside the space ignored"
        return text + (f"; constraints: {', '.join(limits)}" if limits else "")
