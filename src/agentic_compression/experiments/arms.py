"""Arms of an experiment: a planner proposing from the measured history, or a fixed recipe list.

:func:`run_arm` is the search loop without its checkpointing: ask the planner for one candidate
given every measured trial so far, measure it (:class:`~.measurements.MeasurementLog`), repeat until
the trial budget is spent or the planner has nothing new. :func:`arm_statistics` turns an arm's
trials into the figures the RQ tables report; it works on the JSON form of trials, so
``report`` recomputes it from the files alone.

Example:
    >>> trials = run_arm(OptunaPlanner(seed=1), log, PlanningGoal(), max_trials=8)  # doctest: +SKIP
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from agentic_compression.compression.recipe import Recipe
from agentic_compression.core.pareto import (
    DEFAULT_OBJECTIVES,
    Objective,
    Point,
    default_reference,
    hypervolume,
    pareto_front,
)
from agentic_compression.experiments.measurements import Measured, MeasurementLog
from agentic_compression.planning.base import Planner, PlanningGoal, TrialOutcome
from agentic_compression.results.analysis import constraints_for, is_feasible

#: Extra objective values a planner should see for a measured candidate (RQ3's weighted score).
ExtraObjectives = Callable[[Measured], Mapping[str, float]]


def outcome(
    number: int, measured: Measured, goal: PlanningGoal, extra: ExtraObjectives | None = None
) -> TrialOutcome:
    """A measured candidate as a planner sees it."""
    recipe = Recipe.from_dict(measured.recipe)
    if not measured.ok:
        return TrialOutcome(number, recipe, "failed", error=measured.error, feasible=False)
    feasible = is_feasible(measured.objectives, constraints_for(goal))
    values = {**measured.objectives, **(extra(measured) if extra is not None else {})}
    return TrialOutcome(number, recipe, "ok", values, feasible, fidelity=measured.fidelity)


def run_arm(
    planner: Planner,
    log: MeasurementLog,
    goal: PlanningGoal,
    max_trials: int,
    extra: ExtraObjectives | None = None,
) -> list[Measured]:
    """Trials of a planner-driven arm, in the order the planner asked for them; ``extra`` adds
    objective values the planner steers by (computed from the measurements)."""
    trials: list[Measured] = []
    history: list[TrialOutcome] = []
    while len(trials) < max_trials:
        proposals = planner.propose(history, goal, 1)
        if not proposals:
            break  # the planner has nothing new (the RQ1 dynamic rule stops this way)
        measured = log.measure(proposals[0].recipe)
        trials.append(measured)
        history.append(outcome(len(history), measured, goal, extra))
    return trials


def fixed_arm(recipes: Sequence[Recipe], log: MeasurementLog) -> list[Measured]:
    """Trials of a fixed recipe list (the static arm, a grid, a baseline rule's pick)."""
    return [log.measure(recipe) for recipe in recipes]


def points(trials: Sequence[Mapping[str, Any]]) -> list[Point]:
    """Measured trials (JSON form) as Pareto points, one per distinct recipe (first kept)."""
    seen: dict[str, Point] = {}
    for t in trials:
        if t["status"] == "ok" and t["objectives"] and t["recipe_hash"] not in seen:
            seen[t["recipe_hash"]] = Point(t["recipe_hash"], t["objectives"])
    return list(seen.values())


def common_reference(
    arms: Sequence[Sequence[Mapping[str, Any]]],
    objectives: Sequence[Objective] = DEFAULT_OBJECTIVES,
) -> dict[str, float] | None:
    """One hypervolume reference point for several arms (over all their measured points)."""
    everything = points([t for arm in arms for t in arm])
    return default_reference(everything, objectives) if everything else None


def arm_statistics(
    trials: Sequence[Mapping[str, Any]],
    threshold: float | None,
    reference: Mapping[str, float] | None,
    objectives: Sequence[Objective] = DEFAULT_OBJECTIVES,
    smaller_than: float | None = None,
) -> dict[str, Any]:
    """Best/mean accuracy and CO2 per 1k tokens, trials, trials and evaluation energy to the first
    trial reaching ``threshold`` (and, with ``smaller_than``, a serialized size below it: a
    compressed candidate, not the baseline itself), and the hypervolume of the arm's front under
    ``reference``."""
    ok = [t for t in trials if t["status"] == "ok" and t["objectives"]]
    accuracy = [t["objectives"]["accuracy"] for t in ok]
    co2 = [t["objectives"]["co2_kg_per_1k_tokens"] for t in ok]
    reach = next(
        (
            i
            for i, t in enumerate(trials, start=1)
            if threshold is not None
            and t["status"] == "ok"
            and t["objectives"]
            and t["objectives"]["accuracy"] >= threshold
            and (smaller_than is None or t["objectives"]["memory_bytes"] < smaller_than)
        ),
        None,
    )
    spent = trials[:reach] if reach is not None else []
    arm_points = points(trials)
    volume = None
    if reference is not None and arm_points:
        volume = hypervolume(pareto_front(arm_points, objectives), objectives, reference)
    return {
        "trials": len(trials),
        "failed": len(trials) - len(ok),
        "best_accuracy": max(accuracy) if accuracy else None,
        "mean_accuracy": statistics.fmean(accuracy) if accuracy else None,
        "best_co2_kg_per_1k_tokens": min(co2) if co2 else None,
        "mean_co2_kg_per_1k_tokens": statistics.fmean(co2) if co2 else None,
        "trials_to_threshold": reach,
        "energy_kwh_to_threshold": sum(t["energy_kwh"] for t in spent) if reach else None,
        "co2_kg_to_threshold": sum(t["co2_kg"] for t in spent) if reach else None,
        "evaluation_energy_kwh": sum(t["energy_kwh"] for t in trials),
        "evaluation_co2_kg": sum(t["co2_kg"] for t in trials),
        "hypervolume": volume,
    }


def mean_and_spread(values: Sequence[float | None]) -> tuple[float | None, float | None, int]:
    """Mean and sample standard deviation of the known values, and how many there were."""
    known = [v for v in values if v is not None and not math.isnan(v)]
    if not known:
        return None, None, 0
    spread = statistics.stdev(known) if len(known) > 1 else 0.0
    return statistics.fmean(known), spread, len(known)
