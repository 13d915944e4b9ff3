"""Pareto analysis of compression-recipe results: the project's one implementation.

Pure functions over immutable records, with optimisation directions declared per
objective (Optuna style). Constraints (accuracy threshold, memory or latency limits)
are kept apart from objectives. Weighted selection works on min-max normalised scores,
so no single objective swamps the others because of its units. Hypervolume is exact.

Measured noise: a point may carry a relative noise per objective (``Point.noise``: for a
latency, the spread of its repeats). Two values whose difference is within the larger of
the two points' noise (relative to the larger magnitude) are a tie, so a point dominates
another only where it is no worse beyond noise on every objective and better beyond noise
on one. Without noise this is ordinary Pareto dominance.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

Direction = Literal["maximize", "minimize"]
_Vec = tuple[float, ...]


def _frozen(values: Mapping[str, float], owner: str) -> Mapping[str, float]:
    """Copy ``values`` into a read-only mapping of floats, rejecting NaN."""
    out: dict[str, float] = {}
    for name, value in values.items():
        v = float(value)
        if math.isnan(v):
            raise ValueError(f"{owner}: value for {name!r} is NaN")
        out[name] = v
    return MappingProxyType(out)


@dataclass(frozen=True)
class Objective:
    """An objective name with its optimisation direction."""

    name: str
    direction: Direction

    def __post_init__(self) -> None:
        if self.direction not in ("maximize", "minimize"):
            raise ValueError(f"objective {self.name!r}: bad direction")


DEFAULT_OBJECTIVES: tuple[Objective, ...] = (
    Objective("accuracy", "maximize"),
    Objective("latency_ms", "minimize"),
    Objective("memory_bytes", "minimize"),
    Objective("energy_kwh_per_1k_tokens", "minimize"),
    Objective("co2_kg_per_1k_tokens", "minimize"),
)


@dataclass(frozen=True)
class Point:
    """A candidate (e.g. a compression recipe) and its measured values by name."""

    id: str
    values: Mapping[str, float]
    #: Relative measurement noise per objective (0.05: values within 5% of this one tie).
    noise: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "values", _frozen(self.values, f"point {self.id!r}"))
        noise = _frozen(self.noise, f"noise of point {self.id!r}")
        if any(v < 0 for v in noise.values()):
            raise ValueError(f"point {self.id!r}: noise must be >= 0")
        object.__setattr__(self, "noise", noise)

    def __hash__(self) -> int:
        return hash((self.id, frozenset(self.values.items())))

    def value(self, name: str) -> float:
        """Value of ``name``; ValueError naming the point and objective if absent."""
        try:
            return self.values[name]
        except KeyError:
            raise ValueError(f"point {self.id!r} has no value for {name!r}") from None


@dataclass(frozen=True)
class Constraint:
    """A feasibility bound on a measured value: ``lower <= value <= upper``."""

    name: str
    upper: float | None = None
    lower: float | None = None

    def __post_init__(self) -> None:
        for bound in (self.upper, self.lower):
            if bound is not None and math.isnan(bound):
                raise ValueError(f"constraint {self.name!r}: NaN bound")
        lo, hi = self.lower, self.upper
        if lo is not None and hi is not None and lo > hi:
            raise ValueError(f"constraint {self.name!r}: lower > upper")


@dataclass(frozen=True)
class Weights:
    """Non-negative importance per objective name; names not listed weigh 0."""

    values: Mapping[str, float]

    def __post_init__(self) -> None:
        frozen = _frozen(self.values, "weights")
        for name, w in frozen.items():
            if w < 0 or math.isinf(w):
                raise ValueError(f"weight for {name!r} must be finite, >= 0: {w}")
        object.__setattr__(self, "values", frozen)

    def __hash__(self) -> int:
        return hash(frozenset(self.values.items()))

    def weight(self, name: str) -> float:
        return self.values.get(name, 0.0)


def _preset(acc: float, lat: float, mem: float, energy: float, co2: float) -> Weights:
    names = [o.name for o in DEFAULT_OBJECTIVES]
    return Weights(dict(zip(names, (acc, lat, mem, energy, co2), strict=True)))


#: Weighting schemes of the paper's RQ3 (accuracy, latency, memory, energy, co2).
SELECTION_PRESETS: Mapping[str, Weights] = MappingProxyType(
    {
        "accuracy": _preset(2.0, 0.3, 0.3, 0.3, 0.3),
        "carbon": _preset(0.5, 0.5, 0.5, 1.0, 2.0),
        "balanced": _preset(1.0, 0.7, 0.6, 0.6, 0.8),
        "efficiency": _preset(0.7, 1.5, 1.5, 0.5, 0.5),
    }
)


def _fmt(x: float) -> str:
    mantissa, _, exponent = f"{x:.6g}".partition("e")
    return f"{mantissa}e{int(exponent)}" if exponent else mantissa


def violations(point: Point, constraints: Iterable[Constraint]) -> list[str]:
    """Readable description of each constraint ``point`` breaks (empty if feasible).

    >>> violations(Point("q4", {"memory_bytes": 5.1e9}), [Constraint("memory_bytes", 4e9)])
    ['memory_bytes 5.1e9 > limit 4e9']
    """
    out: list[str] = []
    for c in constraints:
        v = point.value(c.name)
        if c.upper is not None and v > c.upper:
            out.append(f"{c.name} {_fmt(v)} > limit {_fmt(c.upper)}")
        if c.lower is not None and v < c.lower:
            out.append(f"{c.name} {_fmt(v)} < minimum {_fmt(c.lower)}")
    return out


def feasible(point: Point, constraints: Iterable[Constraint]) -> bool:
    """Whether ``point`` satisfies every constraint (bounds are inclusive).

    >>> feasible(Point("p", {"accuracy": 0.8}), [Constraint("accuracy", lower=0.75)])
    True
    """
    return not violations(point, constraints)


def _check_objectives(objectives: Sequence[Objective]) -> None:
    if not objectives:
        raise ValueError("at least one objective is required")
    names = [o.name for o in objectives]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate objective names in {names}")


def _loss(point: Point, objectives: Sequence[Objective]) -> _Vec:
    """Objective vector in minimisation form (maximised objectives negated)."""
    return tuple(
        -point.value(o.name) if o.direction == "maximize" else point.value(o.name)
        for o in objectives
    )


def _losses(points: Sequence[Point], objectives: Sequence[Objective]) -> list[_Vec]:
    _check_objectives(objectives)
    ids = [p.id for p in points]
    if len(set(ids)) != len(ids):
        raise ValueError("point ids must be unique")
    return [_loss(p, objectives) for p in points]


def _tolerances(a: Point, b: Point, objectives: Sequence[Objective]) -> _Vec:
    return tuple(
        max(a.noise.get(o.name, 0.0), b.noise.get(o.name, 0.0))
        * max(abs(a.value(o.name)), abs(b.value(o.name)))
        for o in objectives
    )


def _dom_beyond(a: _Vec, b: _Vec, tolerance: _Vec) -> bool:
    """``a`` dominates ``b`` with differences within ``tolerance`` counted as ties."""
    better = False
    for x, y, t in zip(a, b, tolerance, strict=True):
        if x > y + t:
            return False
        better = better or x < y - t
    return better


def dominates(a: Point, b: Point, objectives: Sequence[Objective]) -> bool:
    """True if ``a`` is no worse than ``b`` everywhere and better somewhere, beyond the points'
    measured noise (see the module docstring).

    >>> objs = (Objective("accuracy", "maximize"), Objective("latency_ms", "minimize"))
    >>> a = Point("a", {"accuracy": 0.9, "latency_ms": 10.0})
    >>> b = Point("b", {"accuracy": 0.9, "latency_ms": 12.0})
    >>> dominates(a, b, objs), dominates(b, a, objs), dominates(a, a, objs)
    (True, False, False)
    >>> noisy = Point("b", {"accuracy": 0.9, "latency_ms": 12.0}, noise={"latency_ms": 0.25})
    >>> dominates(a, noisy, objs)  # 10 vs 12 ms is within 25% of 12: a tie
    False
    """
    _check_objectives(objectives)
    return _dom_beyond(_loss(a, objectives), _loss(b, objectives), _tolerances(a, b, objectives))


def non_dominated_sort(
    points: Sequence[Point], objectives: Sequence[Objective]
) -> list[list[Point]]:
    """Split ``points`` into fronts, rank 0 (non-dominated) first, input order within.

    >>> pts, objs = [Point("a", {"x": 2}), Point("b", {"x": 1})], [Objective("x", "minimize")]
    >>> [[p.id for p in front] for front in non_dominated_sort(pts, objs)]
    [['b'], ['a']]
    """
    vecs = _losses(points, objectives)
    n = len(vecs)
    dominated_by: list[list[int]] = [[] for _ in range(n)]
    count = [0] * n  # how many points dominate each point
    for i in range(n):
        for j in range(i + 1, n):
            tolerance = _tolerances(points[i], points[j], objectives)
            if _dom_beyond(vecs[i], vecs[j], tolerance):
                dominated_by[i].append(j)
                count[j] += 1
            elif _dom_beyond(vecs[j], vecs[i], tolerance):
                dominated_by[j].append(i)
                count[i] += 1
    fronts: list[list[Point]] = []
    current = [i for i in range(n) if count[i] == 0]
    while current:
        fronts.append([points[i] for i in current])
        nxt: list[int] = []
        for i in current:
            for j in dominated_by[i]:
                count[j] -= 1
                if count[j] == 0:
                    nxt.append(j)
        current = sorted(nxt)
    placed = {id(p) for front in fronts for p in front}
    rest = [p for p in points if id(p) not in placed]  # a dominance cycle among noisy ties
    return [*fronts, rest] if rest else fronts


def pareto_front(
    points: Sequence[Point],
    objectives: Sequence[Objective],
    constraints: Iterable[Constraint] = (),
) -> list[Point]:
    """Non-dominated members among the feasible points (empty if none is feasible).

    >>> objs = (Objective("accuracy", "maximize"), Objective("memory_bytes", "minimize"))
    >>> pts = [Point("fp16", {"accuracy": 0.9, "memory_bytes": 8e9}),
    ...        Point("q4", {"accuracy": 0.8, "memory_bytes": 3e9})]
    >>> [p.id for p in pareto_front(pts, objs, [Constraint("memory_bytes", 4e9)])]
    ['q4']
    """
    cons = tuple(constraints)
    fronts = non_dominated_sort([p for p in points if feasible(p, cons)], objectives)
    return fronts[0] if fronts else []


# --- hypervolume (exact, minimisation form) ---


def _nondominated(vecs: Iterable[_Vec]) -> list[_Vec]:
    """Lexicographically sorted, de-duplicated, non-dominated subset (minimisation)."""
    kept: list[_Vec] = []
    for v in sorted(set(vecs)):
        # Lexicographic order: only earlier vectors can weakly dominate later ones.
        if not any(all(a <= b for a, b in zip(k, v, strict=True)) for k in kept):
            kept.append(v)
    return kept


def _hv2(pts: list[_Vec], ref: _Vec) -> float:
    """2-D sweep; ``pts`` non-dominated and sorted by x ascending (so y descending)."""
    total, prev_y = 0.0, ref[1]
    for x, y in pts:
        total += (ref[0] - x) * (prev_y - y)
        prev_y = y
    return total


def _hv3(pts: list[_Vec], ref: _Vec) -> float:
    """3-D sweep along z, maintaining the 2-D front of the slice: O(n^2)."""
    ordered = sorted(pts, key=lambda p: p[2])
    front: list[_Vec] = []
    total = 0.0
    for k, p in enumerate(ordered):
        xy = (p[0], p[1])
        if not any(q[0] <= xy[0] and q[1] <= xy[1] for q in front):
            front = sorted([q for q in front if not (xy[0] <= q[0] and xy[1] <= q[1])] + [xy])
        z_next = ordered[k + 1][2] if k + 1 < len(ordered) else ref[2]
        if z_next > p[2]:
            total += _hv2(front, ref) * (z_next - p[2])
    return total


def _hv(pts: list[_Vec], ref: _Vec) -> float:
    """Exact hypervolume of non-dominated ``pts`` (all strictly inside ``ref``).

    Sweeps for d <= 3; above, a WFG-style sum of exclusive contributions (While et
    al. 2012) with points ordered worst-first in objective 0, so each limit set shares
    that coordinate and drops one dimension.
    """
    if not pts or len(ref) == 1:
        return ref[0] - min(p[0] for p in pts) if pts else 0.0
    if len(ref) <= 3:
        return _hv2(pts, ref) if len(ref) == 2 else _hv3(pts, ref)
    order = sorted(pts, key=lambda p: p[0], reverse=True)
    sub, total = ref[1:], 0.0
    for i, p in enumerate(order):
        tail = p[1:]
        inclusive = math.prod(r - v for r, v in zip(sub, tail, strict=True))
        limited = _nondominated(tuple(map(max, tail, q[1:])) for q in order[i + 1 :])
        total += (ref[0] - p[0]) * (inclusive - _hv(limited, sub))
    return total


def hypervolume(
    points: Sequence[Point],
    objectives: Sequence[Objective],
    reference: Mapping[str, float],
) -> float:
    """Exact hypervolume dominated by ``points`` and bounded by the ``reference`` point.

    Maximised objectives are negated internally. Points not strictly better than the
    reference in every objective contribute nothing. Sweeps for up to 3 objectives,
    a WFG-style recursion above that (5 objectives x 200 points: well under 1 s).

    >>> objs = (Objective("x", "minimize"), Objective("y", "minimize"))
    >>> xy = [(1, 3), (2, 2), (3, 1)]
    >>> pts = [Point(str(i), {"x": x, "y": y}) for i, (x, y) in enumerate(xy)]
    >>> hypervolume(pts, objs, {"x": 4, "y": 4})
    6.0
    """
    vecs = _losses(points, objectives)
    missing = [o.name for o in objectives if o.name not in reference]
    if missing:
        raise ValueError(f"reference point has no value for {missing}")
    ref = _loss(Point("reference", {o.name: reference[o.name] for o in objectives}), objectives)
    if not all(math.isfinite(r) for r in ref):
        raise ValueError("reference point must be finite")
    inside = [v for v in vecs if all(a < r for a, r in zip(v, ref, strict=True))]
    return float(_hv(_nondominated(inside), ref))


def default_reference(
    points: Sequence[Point], objectives: Sequence[Objective], margin: float = 0.1
) -> dict[str, float]:
    """Reference point: per objective, the worst observed value moved a further
    ``margin * (max - min)`` in the worse direction. For a constant objective the range
    used is ``|worst|`` (1.0 if that is 0), so every point contributes when margin > 0.

    >>> objs = (Objective("accuracy", "maximize"), Objective("latency_ms", "minimize"))
    >>> pts = [Point("a", {"accuracy": 0.9, "latency_ms": 10}),
    ...        Point("b", {"accuracy": 0.5, "latency_ms": 30})]
    >>> {k: round(v, 6) for k, v in default_reference(pts, objs).items()}
    {'accuracy': 0.46, 'latency_ms': 32.0}
    """
    if not points:
        raise ValueError("cannot derive a reference point from no points")
    if margin < 0:
        raise ValueError("margin must be >= 0")
    vecs = _losses(points, objectives)
    ref: dict[str, float] = {}
    for j, o in enumerate(objectives):
        col = [v[j] for v in vecs]
        worst, span = max(col), max(col) - min(col)
        if span == 0:
            span = abs(worst) or 1.0
        r = worst + margin * span
        ref[o.name] = -r if o.direction == "maximize" else r
    return ref


# --- normalisation and selection ---


def _span(col: list[float]) -> tuple[float, float]:
    return (min(col), max(col)) if col else (0.0, 0.0)


def normalise(
    points: Sequence[Point],
    objectives: Sequence[Objective],
    bounds: Mapping[str, tuple[float, float]] | None = None,
) -> dict[str, dict[str, float]]:
    """Min-max scores in [0, 1], 1 = best for every objective (direction folded in).

    ``bounds`` optionally fixes ``(low, high)`` raw values per objective (values outside
    are clipped); otherwise the observed range is used. Constant objectives score 1.0.

    >>> objs = (Objective("accuracy", "maximize"), Objective("latency_ms", "minimize"))
    >>> pts = [Point("a", {"accuracy": 0.9, "latency_ms": 30}),
    ...        Point("b", {"accuracy": 0.7, "latency_ms": 10})]
    >>> normalise(pts, objs)["b"]
    {'accuracy': 0.0, 'latency_ms': 1.0}
    """
    _losses(points, objectives)  # validates ids and values
    bounds = bounds or {}
    out: dict[str, dict[str, float]] = {p.id: {} for p in points}
    for o in objectives:
        col = [p.value(o.name) for p in points]
        lo, hi = (float(b) for b in bounds[o.name]) if o.name in bounds else _span(col)
        if not lo <= hi:
            raise ValueError(f"bounds for {o.name!r}: low must be <= high")
        for p, v in zip(points, col, strict=True):
            frac = 1.0 if hi == lo else (v - lo) / (hi - lo)
            score = frac if o.direction == "maximize" or hi == lo else 1.0 - frac
            out[p.id][o.name] = min(1.0, max(0.0, score))
    return out


def _best(scored: Iterable[tuple[float, Point]]) -> Point | None:
    # Round so mathematically equal scores tie exactly; ties go to the smallest id.
    ranked = sorted(scored, key=lambda sp: (-round(sp[0], 12), sp[1].id))
    return ranked[0][1] if ranked else None


def select(
    points: Sequence[Point],
    objectives: Sequence[Objective],
    weights: Weights,
    constraints: Iterable[Constraint] = (),
) -> Point | None:
    """Feasible Pareto-front member maximising the weighted mean of normalised scores.

    Scores are normalised over the front, so weights act on comparable [0, 1] scales.
    Weights for names outside ``objectives`` are ignored (presets work with any subset
    of the default objectives). Ties go to the smallest id. None if nothing feasible.

    >>> objs = (Objective("accuracy", "maximize"), Objective("co2_kg_per_1k_tokens", "minimize"))
    >>> pts = [Point("big", {"accuracy": 0.9, "co2_kg_per_1k_tokens": 5.0}),
    ...        Point("small", {"accuracy": 0.8, "co2_kg_per_1k_tokens": 1.0})]
    >>> [select(pts, objs, SELECTION_PRESETS[k]).id for k in ("accuracy", "carbon")]
    ['big', 'small']
    """
    total = sum(weights.weight(o.name) for o in objectives)
    if total <= 0:
        raise ValueError("weights of the selected objectives must not all be zero")
    front = pareto_front(points, objectives, constraints)
    norm = normalise(front, objectives)
    score = {
        p.id: sum(weights.weight(o.name) * norm[p.id][o.name] for o in objectives) for p in front
    }
    return _best((score[p.id] / total, p) for p in front)


def knee_point(
    points: Sequence[Point],
    objectives: Sequence[Objective],
    constraints: Iterable[Constraint] = (),
) -> Point | None:
    """The feasible front member with the best trade-off, in scores normalised over it.

    Two objectives: the member farthest from the line joining the two extremes, on the
    side of the ideal point (the classic knee); the extremes normalise to (1, 0) and
    (0, 1), so that line is ``x + y = 1``. One or three+ objectives: the member with
    the smallest Euclidean distance to the ideal point (1, ..., 1). Ties: smallest id.

    >>> objs = (Objective("x", "minimize"), Objective("y", "minimize"))
    >>> xy = {"a": (0, 10), "b": (1, 1), "c": (10, 0), "d": (5, 4)}
    >>> knee_point([Point(k, {"x": x, "y": y}) for k, (x, y) in xy.items()], objs).id
    'b'
    """
    front = pareto_front(points, objectives, constraints)
    norm = normalise(front, objectives)
    if len(objectives) == 2:
        a, b = (o.name for o in objectives)
        return _best(((norm[p.id][a] + norm[p.id][b] - 1.0) / math.sqrt(2.0), p) for p in front)
    ideal = [1.0] * len(objectives)
    return _best((-math.dist([norm[p.id][o.name] for o in objectives], ideal), p) for p in front)
