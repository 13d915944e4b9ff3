"""The frontier of a set of trials: feasibility, Pareto front, hypervolume, knee and selections.

Thin glue over :mod:`agentic_compression.core.pareto` (the one Pareto implementation): it turns
trials' objective values into points, the planning goal into constraints, and answers with one
:class:`FrontierAnalysis`. The workflow's Pareto step and the exports both call :func:`analyse`, so
the front a run reports is the front the run steered by.

Measured noise (``noise``: point id -> relative noise per objective, from
``core.objectives.objective_noise``) makes differences within it ties (``core.pareto``); the
analysis names the front members that are there only because of such a tie (``tied_by_noise``).

The hypervolume's reference point is ``core.pareto.default_reference`` over the feasible points
(each objective's worst value pushed 10% of its range further); it is reported with the value.

Example:
    >>> a = ("a", {"accuracy": 0.6, "latency_ms": 30.0, "memory_bytes": 5e8,
    ...            "energy_kwh_per_1k_tokens": 1e-3, "co2_kg_per_1k_tokens": 4e-4})
    >>> b = ("b", {"accuracy": 0.5, "latency_ms": 20.0, "memory_bytes": 2e8,
    ...            "energy_kwh_per_1k_tokens": 8e-4, "co2_kg_per_1k_tokens": 3e-4})
    >>> analyse([a, b], ()).front_ids
    ('a', 'b')
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from agentic_compression.core.pareto import (
    DEFAULT_OBJECTIVES,
    SELECTION_PRESETS,
    Constraint,
    Objective,
    Point,
    default_reference,
    feasible,
    hypervolume,
    knee_point,
    pareto_front,
    select,
    violations,
)
from agentic_compression.planning.base import PlanningGoal

#: A hypervolume counts as improved when it grows by more than this fraction (float noise guard).
IMPROVEMENT_TOLERANCE = 1e-9


@dataclass(frozen=True)
class FrontierAnalysis:
    """The frontier of the feasible points, with the reference point its hypervolume used."""

    objectives: tuple[Objective, ...]
    constraints: tuple[Constraint, ...]
    feasible_ids: tuple[str, ...]
    front_ids: tuple[str, ...]
    hypervolume: float | None
    reference_point: dict[str, float] | None
    knee_id: str | None
    #: Selection preset name (core.pareto.SELECTION_PRESETS) -> chosen point id (None: no feasible).
    selections: dict[str, str | None] = field(default_factory=dict)
    #: Point id -> readable constraint violations (only for infeasible points).
    violations: dict[str, list[str]] = field(default_factory=dict)
    #: Front members that exact comparison would drop: a point beats them only within its noise.
    tied_by_noise: tuple[str, ...] = ()


def constraints_for(goal: PlanningGoal) -> tuple[Constraint, ...]:
    """The goal's limits as constraints on objective values.

    >>> constraints_for(PlanningGoal(accuracy_threshold=0.4))
    (Constraint(name='accuracy', upper=None, lower=0.4),)
    """
    out: list[Constraint] = []
    if goal.accuracy_threshold is not None:
        out.append(Constraint("accuracy", lower=goal.accuracy_threshold))
    if goal.max_memory_bytes is not None:
        out.append(Constraint("memory_bytes", upper=goal.max_memory_bytes))
    if goal.max_latency_ms is not None:
        out.append(Constraint("latency_ms", upper=goal.max_latency_ms))
    return tuple(out)


def is_feasible(objectives: Mapping[str, float], constraints: Sequence[Constraint]) -> bool:
    """Whether measured objective values meet every constraint."""
    return feasible(Point("candidate", objectives), constraints)


def analyse(
    trials: Sequence[tuple[str, Mapping[str, float]]],
    constraints: Sequence[Constraint],
    objectives: Sequence[Objective] = DEFAULT_OBJECTIVES,
    noise: Mapping[str, Mapping[str, float]] | None = None,
) -> FrontierAnalysis:
    """Front, hypervolume, knee and preset selections of ``(id, objective values)`` pairs.

    Only measured (``ok``) trials belong in ``trials``: a failed trial has no objective values.
    """
    objs, cons = tuple(objectives), tuple(constraints)
    noise = noise or {}
    points = [Point(i, values, noise.get(i, {})) for i, values in trials]
    broken = {p.id: violations(p, cons) for p in points}
    ok = [p for p in points if not broken[p.id]]
    front = pareto_front(ok, objs)
    exact = {p.id for p in pareto_front([Point(p.id, p.values) for p in ok], objs)}
    reference = default_reference(ok, objs) if ok else None
    volume = hypervolume(front, objs, reference) if reference is not None else None
    knee = knee_point(ok, objs)
    selections = {
        name: (chosen.id if (chosen := select(ok, objs, weights)) is not None else None)
        for name, weights in SELECTION_PRESETS.items()
    }
    return FrontierAnalysis(
        objectives=objs,
        constraints=cons,
        feasible_ids=tuple(p.id for p in ok),
        front_ids=tuple(p.id for p in front),
        hypervolume=volume,
        reference_point=reference,
        knee_id=knee.id if knee is not None else None,
        selections=selections,
        violations={k: v for k, v in broken.items() if v},
        tied_by_noise=tuple(p.id for p in front if p.id not in exact),
    )


def hypervolume_improved(
    before: Sequence[tuple[str, Mapping[str, float]]],
    after: Sequence[tuple[str, Mapping[str, float]]],
    constraints: Sequence[Constraint],
    objectives: Sequence[Objective] = DEFAULT_OBJECTIVES,
) -> bool:
    """Whether the feasible front of ``after`` has a larger hypervolume than that of ``before``.

    Both are measured against one reference point, derived from ``after`` (a reference derived
    separately for each set would move, and the comparison would mean nothing).

    >>> lo = ("lo", {"x": 2.0, "y": 2.0})
    >>> objs = (Objective("x", "minimize"), Objective("y", "minimize"))
    >>> hypervolume_improved([lo], [lo, ("hi", {"x": 1.0, "y": 3.0})], (), objs)
    True
    >>> hypervolume_improved([lo], [lo, ("worse", {"x": 3.0, "y": 3.0})], (), objs)
    False
    """
    objs, cons = tuple(objectives), tuple(constraints)

    def feasible_points(pairs: Sequence[tuple[str, Mapping[str, float]]]) -> list[Point]:
        return [p for p in (Point(i, v) for i, v in pairs) if feasible(p, cons)]

    now_points = feasible_points(after)
    if not now_points:
        return False
    previous = feasible_points(before)
    if not previous:
        return True
    reference = default_reference(now_points, objs)
    gained = hypervolume(now_points, objs, reference)
    had = hypervolume(previous, objs, reference)
    return gained > had * (1 + IMPROVEMENT_TOLERANCE)
