"""Unit tests for agentic_compression.core.pareto."""

from __future__ import annotations

import itertools
import math
import random

import pytest

from agentic_compression.core.pareto import (
    DEFAULT_OBJECTIVES,
    SELECTION_PRESETS,
    Constraint,
    Objective,
    Point,
    Weights,
    default_reference,
    dominates,
    feasible,
    hypervolume,
    knee_point,
    non_dominated_sort,
    normalise,
    pareto_front,
    select,
    violations,
)

MIN_XY = (Objective("x", "minimize"), Objective("y", "minimize"))
ACC_LAT = (Objective("accuracy", "maximize"), Objective("latency_ms", "minimize"))
NAMES = [o.name for o in DEFAULT_OBJECTIVES]


def xy_points(coords: dict[str, tuple[float, float]]) -> list[Point]:
    return [Point(k, {"x": x, "y": y}) for k, (x, y) in coords.items()]


def sel_id(
    points: list[Point],
    objectives: tuple[Objective, ...],
    weights: Weights,
    constraints: tuple[Constraint, ...] = (),
) -> str:
    chosen = select(points, objectives, weights, constraints)
    assert chosen is not None
    return chosen.id


def knee_id(points: list[Point], objectives: tuple[Objective, ...]) -> str:
    chosen = knee_point(points, objectives)
    assert chosen is not None
    return chosen.id


def grid_objectives(d: int) -> tuple[Objective, ...]:
    return tuple(Objective(f"o{i}", "minimize") for i in range(d))


def brute_force_hv(coords: list[tuple[int, ...]], ref: int) -> int:
    """Count unit cells [c, c+1)^d below ``ref`` dominated by an integer point."""
    d = len(coords[0])
    return sum(
        1
        for cell in itertools.product(range(ref), repeat=d)
        if any(all(p[i] <= cell[i] for i in range(d)) for p in coords)
    )


# --- records and validation ---


def test_point_values_are_immutable_copies() -> None:
    raw = {"x": 1.0, "y": 2}
    p = Point("p", raw)
    raw["x"] = 99.0
    assert p.values == {"x": 1.0, "y": 2.0}
    with pytest.raises(TypeError):
        p.values["x"] = 5.0  # type: ignore[index]
    assert hash(p) == hash(Point("p", {"y": 2.0, "x": 1.0}))


def test_nan_value_raises_naming_point_and_objective() -> None:
    with pytest.raises(ValueError, match=r"point 'q4'.*'accuracy'.*NaN"):
        Point("q4", {"accuracy": math.nan, "latency_ms": 3.0})


def test_missing_objective_raises_naming_point_and_objective() -> None:
    a = Point("a", {"accuracy": 0.9, "latency_ms": 10.0})
    b = Point("b", {"accuracy": 0.8})
    for call in (
        lambda: dominates(a, b, ACC_LAT),
        lambda: pareto_front([a, b], ACC_LAT),
        lambda: hypervolume([a, b], ACC_LAT, {"accuracy": 0.0, "latency_ms": 100.0}),
        lambda: normalise([a, b], ACC_LAT),
    ):
        with pytest.raises(ValueError, match=r"point 'b' has no value for 'latency_ms'"):
            call()


def test_other_validation_errors() -> None:
    with pytest.raises(ValueError, match="direction"):
        Objective("x", "up")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="lower > upper"):
        Constraint("x", upper=1.0, lower=2.0)
    with pytest.raises(ValueError, match=">= 0"):
        Weights({"accuracy": -1.0})
    with pytest.raises(ValueError, match="unique"):
        non_dominated_sort(xy_points({"a": (1, 1)}) * 2, MIN_XY)
    with pytest.raises(ValueError, match="duplicate objective"):
        pareto_front(xy_points({"a": (1, 1)}), (MIN_XY[0], MIN_XY[0]))
    with pytest.raises(ValueError, match="reference point has no value"):
        hypervolume(xy_points({"a": (1, 1)}), MIN_XY, {"x": 2.0})
    with pytest.raises(ValueError, match="all be zero"):
        select(xy_points({"a": (1, 1)}), MIN_XY, Weights({"accuracy": 1.0}))


# --- dominance and sorting ---


def test_dominates() -> None:
    a = Point("a", {"accuracy": 0.9, "latency_ms": 10.0})
    b = Point("b", {"accuracy": 0.9, "latency_ms": 12.0})  # same accuracy, slower
    c = Point("c", {"accuracy": 0.95, "latency_ms": 20.0})  # trade-off with a
    twin = Point("twin", {"accuracy": 0.9, "latency_ms": 10.0})
    assert dominates(a, b, ACC_LAT)
    assert not dominates(b, a, ACC_LAT)
    assert not dominates(a, c, ACC_LAT) and not dominates(c, a, ACC_LAT)
    assert not dominates(a, twin, ACC_LAT) and not dominates(twin, a, ACC_LAT)
    assert not dominates(a, a, ACC_LAT)
    # Direction matters: when accuracy is minimised, c no longer trades off.
    flipped = (Objective("accuracy", "minimize"), Objective("latency_ms", "minimize"))
    assert dominates(a, c, flipped)


def test_non_dominated_sort_known_ranks() -> None:
    pts = xy_points(
        {
            "A": (1, 5),
            "B": (2, 2),
            "C": (5, 1),
            "D": (3, 3),  # dominated by B
            "E": (4, 4),  # dominated by B and D
            "F": (2, 6),  # dominated by A
            "B2": (2, 2),  # equal to B: same rank
            "G": (6, 6),  # dominated by E
        }
    )
    fronts = non_dominated_sort(pts, MIN_XY)
    assert [[p.id for p in f] for f in fronts] == [
        ["A", "B", "C", "B2"],
        ["D", "F"],
        ["E"],
        ["G"],
    ]
    assert non_dominated_sort([], MIN_XY) == []


# --- constraints ---


def test_constraints_filter_and_describe() -> None:
    objs = (Objective("accuracy", "maximize"), Objective("memory_bytes", "minimize"))
    pts = [
        Point("fp16", {"accuracy": 0.80, "memory_bytes": 8e9}),
        Point("int8", {"accuracy": 0.78, "memory_bytes": 5.1e9}),
        Point("int4", {"accuracy": 0.72, "memory_bytes": 3e9}),
        Point("int2", {"accuracy": 0.62, "memory_bytes": 1e9}),
    ]
    cons = [Constraint("memory_bytes", upper=4e9), Constraint("accuracy", lower=0.7)]
    assert [p.id for p in pareto_front(pts, objs)] == ["fp16", "int8", "int4", "int2"]
    assert [p.id for p in pareto_front(pts, objs, cons)] == ["int4"]
    assert violations(pts[1], cons) == ["memory_bytes 5.1e9 > limit 4e9"]
    assert violations(pts[3], cons) == ["accuracy 0.62 < minimum 0.7"]
    assert violations(pts[2], cons) == []
    assert feasible(Point("edge", {"memory_bytes": 4e9, "accuracy": 0.7}), cons)  # inclusive
    impossible = [Constraint("memory_bytes", upper=1.0)]
    assert pareto_front(pts, objs, impossible) == []
    assert select(pts, objs, SELECTION_PRESETS["balanced"], impossible) is None
    assert knee_point(pts, objs, impossible) is None


# --- hypervolume ---


def test_hypervolume_1d() -> None:
    x = (Objective("x", "minimize"),)
    assert hypervolume([Point("a", {"x": 1.0}), Point("b", {"x": 2.0})], x, {"x": 5.0}) == 4.0
    acc = (Objective("accuracy", "maximize"),)
    pts = [Point("a", {"accuracy": 0.9}), Point("b", {"accuracy": 0.8})]
    assert hypervolume(pts, acc, {"accuracy": 0.5}) == pytest.approx(0.4)
    assert hypervolume([], x, {"x": 5.0}) == 0.0


def test_hypervolume_2d_hand_computed() -> None:
    pts = xy_points({"a": (1, 3), "b": (2, 2), "c": (3, 1)})
    assert hypervolume(pts, MIN_XY, {"x": 4, "y": 4}) == 6.0
    # Dominated, duplicate, outside-reference and on-reference points change nothing.
    extra = xy_points({"dom": (3, 3), "dup": (2, 2), "out": (0, 5), "edge": (0, 4)})
    assert hypervolume(pts + extra, MIN_XY, {"x": 4, "y": 4}) == 6.0


def test_hypervolume_with_maximised_objective() -> None:
    pts = [
        Point("big", {"accuracy": 0.9, "latency_ms": 30.0}),
        Point("small", {"accuracy": 0.8, "latency_ms": 10.0}),
    ]
    # Boxes 0.4 x 20 and 0.3 x 40, overlapping in 0.3 x 20: 8 + 12 - 6 = 14.
    ref = {"accuracy": 0.5, "latency_ms": 50.0}
    assert hypervolume(pts, ACC_LAT, ref) == pytest.approx(14.0)
    worse = Point("worse", {"accuracy": 0.4, "latency_ms": 1.0})  # below accuracy ref
    assert hypervolume([*pts, worse], ACC_LAT, ref) == pytest.approx(14.0)


@pytest.mark.parametrize(("d", "side", "seed"), [(3, 8, 0), (3, 8, 1), (4, 6, 2), (5, 5, 3)])
def test_hypervolume_matches_grid_count(d: int, side: int, seed: int) -> None:
    rng = random.Random(seed)
    coords = [tuple(rng.randrange(side) for _ in range(d)) for _ in range(25)]
    objs = grid_objectives(d)
    pts = [Point(str(i), {f"o{j}": v for j, v in enumerate(c)}) for i, c in enumerate(coords)]
    expected = brute_force_hv(coords, side)
    ref = {o.name: float(side) for o in objs}
    assert hypervolume(pts, objs, ref) == pytest.approx(expected, abs=1e-9)
    # Objective order is irrelevant.
    assert hypervolume(pts, objs[::-1], ref) == pytest.approx(expected, abs=1e-9)


def test_hypervolume_3d_hand_computed() -> None:
    objs = grid_objectives(3)
    pts = [
        Point("a", {"o0": 0, "o1": 1, "o2": 1}),
        Point("b", {"o0": 1, "o1": 0, "o2": 1}),
        Point("c", {"o0": 1, "o1": 1, "o2": 0}),
    ]
    # Three 2x1x1 boxes; each pair and the triple meet in the unit cube at (1, 1, 1):
    # inclusion-exclusion gives 3 * 2 - 3 * 1 + 1 = 4.
    assert hypervolume(pts, objs, {"o0": 2, "o1": 2, "o2": 2}) == 4.0
    # One more point at the origin fills the whole 2^3 cube.
    origin = Point("o", {"o0": 0, "o1": 0, "o2": 0})
    assert hypervolume([*pts, origin], objs, {"o0": 2, "o1": 2, "o2": 2}) == 8.0


def test_hypervolume_five_objectives_200_points() -> None:
    rng = random.Random(7)
    objs = grid_objectives(5)
    pts = []
    for i in range(200):  # all mutually non-dominated: points on a sphere
        v = [abs(rng.gauss(0, 1)) + 1e-9 for _ in range(5)]
        norm = math.sqrt(sum(x * x for x in v))
        pts.append(Point(str(i), {f"o{j}": x / norm for j, x in enumerate(v)}))
    assert len(pareto_front(pts, objs)) == 200
    hv = hypervolume(pts, objs, {o.name: 1.1 for o in objs})
    assert 0.0 < hv < 1.1**5


def test_default_reference() -> None:
    pts = [
        Point("a", {"accuracy": 0.9, "latency_ms": 10.0}),
        Point("b", {"accuracy": 0.5, "latency_ms": 30.0}),
    ]
    ref = default_reference(pts, ACC_LAT)
    assert ref == pytest.approx({"accuracy": 0.46, "latency_ms": 32.0})
    assert default_reference(pts, ACC_LAT, margin=0.5) == pytest.approx(
        {"accuracy": 0.3, "latency_ms": 40.0}
    )
    # b's box (0.04 x 2) lies inside a's (0.44 x 22).
    assert hypervolume(pts, ACC_LAT, ref) == pytest.approx(0.44 * 22)
    const = [Point("c", {"x": 2.0, "y": 0.0})]
    assert default_reference(const, MIN_XY) == pytest.approx({"x": 2.2, "y": 0.1})
    with pytest.raises(ValueError):
        default_reference([], ACC_LAT)


# --- normalisation and selection ---


def test_normalise_folds_direction_in() -> None:
    pts = [
        Point("a", {"accuracy": 0.9, "latency_ms": 30.0, "x": 5.0}),
        Point("b", {"accuracy": 0.7, "latency_ms": 10.0, "x": 5.0}),
        Point("c", {"accuracy": 0.8, "latency_ms": 15.0, "x": 5.0}),
    ]
    objs = (*ACC_LAT, Objective("x", "minimize"))
    n = normalise(pts, objs)
    assert n["a"] == pytest.approx({"accuracy": 1.0, "latency_ms": 0.0, "x": 1.0})
    assert n["b"] == pytest.approx({"accuracy": 0.0, "latency_ms": 1.0, "x": 1.0})
    assert n["c"] == pytest.approx({"accuracy": 0.5, "latency_ms": 0.75, "x": 1.0})
    fixed = normalise(pts, ACC_LAT, bounds={"accuracy": (0.0, 1.0), "latency_ms": (0.0, 20.0)})
    assert fixed["a"] == pytest.approx({"accuracy": 0.9, "latency_ms": 0.0})  # clipped
    assert fixed["c"] == pytest.approx({"accuracy": 0.8, "latency_ms": 0.25})
    assert normalise([], ACC_LAT) == {}


RQ3_FRONT = {
    # id: accuracy, latency_ms, memory_bytes, energy_kwh, co2_kg
    "fp16": (0.80, 120.0, 8.0e9, 0.050, 0.020),
    "int8": (0.70, 60.0, 4.0e9, 0.028, 0.010),
    "green": (0.66, 100.0, 6.0e9, 0.010, 0.003),
    "int4": (0.62, 40.0, 2.0e9, 0.035, 0.015),
}


def rq3_points(memory_scale: float = 1.0) -> list[Point]:
    return [
        Point(k, dict(zip(NAMES, (a, lat, mem * memory_scale, e, c), strict=True)))
        for k, (a, lat, mem, e, c) in RQ3_FRONT.items()
    ]


def test_presets_select_different_points_after_normalisation() -> None:
    pts = rq3_points()
    assert len(pareto_front(pts, DEFAULT_OBJECTIVES)) == 4
    chosen = {k: sel_id(pts, DEFAULT_OBJECTIVES, w) for k, w in SELECTION_PRESETS.items()}
    assert chosen == {
        "accuracy": "fp16",
        "carbon": "green",
        "balanced": "int8",
        "efficiency": "int4",
    }
    # Units do not matter any more: memory in GB instead of bytes, same choices.
    gb = rq3_points(memory_scale=1e-9)
    assert {k: sel_id(gb, DEFAULT_OBJECTIVES, w) for k, w in SELECTION_PRESETS.items()} == chosen


def test_raw_inverse_sum_ignores_weights() -> None:
    """The original bug: summing raw 1/x terms lets co2 swamp the rest, whatever the weights."""

    def raw_choice(w: Weights) -> str:
        def score(p: Point) -> float:
            inv = sum(w.weight(n) / p.values[n] for n in NAMES[1:])
            return w.weight("accuracy") * p.values["accuracy"] + inv

        return max(rq3_points(), key=score).id

    assert {raw_choice(w) for w in SELECTION_PRESETS.values()} == {"green"}


def test_preset_weights_match_paper() -> None:
    as_tuple = {k: tuple(w.weight(n) for n in NAMES) for k, w in SELECTION_PRESETS.items()}
    assert as_tuple == {
        "accuracy": (2.0, 0.3, 0.3, 0.3, 0.3),
        "carbon": (0.5, 0.5, 0.5, 1.0, 2.0),
        "balanced": (1.0, 0.7, 0.6, 0.6, 0.8),
        "efficiency": (0.7, 1.5, 1.5, 0.5, 0.5),
    }


def test_select_ties_by_id_and_ignores_dominated_and_infeasible() -> None:
    pts = xy_points({"b": (0, 1), "a": (1, 0), "dom": (2, 2)})
    assert sel_id(pts, MIN_XY, Weights({"x": 1.0, "y": 1.0})) == "a"
    assert sel_id(pts, MIN_XY, Weights({"x": 1.0})) == "b"
    cons = (Constraint("x", upper=0.5),)
    assert sel_id(pts, MIN_XY, Weights({"y": 1.0}), cons) == "b"


def test_knee_point_on_convex_front() -> None:
    pts = xy_points(
        {"p0": (0, 10), "p1": (1, 5), "p2": (2, 2), "p3": (5, 1), "p4": (10, 0), "d": (6, 6)}
    )
    assert knee_id(pts, MIN_XY) == "p2"
    # Shift the bulge: (3, 1.5) is now farther from x + y = 1 in normalised space.
    pts2 = xy_points({"p0": (0, 10), "p2": (2, 3), "p3": (3, 1.5), "p4": (10, 0)})
    assert knee_id(pts2, MIN_XY) == "p3"
    assert knee_id(xy_points({"only": (1, 1)}), MIN_XY) == "only"


def test_knee_point_three_objectives_uses_distance_to_ideal() -> None:
    objs = grid_objectives(3)
    coords = {"a": (0, 10, 10), "b": (10, 0, 10), "c": (10, 10, 0), "mid": (3, 3, 3)}
    pts = [Point(k, {f"o{i}": v for i, v in enumerate(c)}) for k, c in coords.items()]
    assert knee_id(pts, objs) == "mid"
