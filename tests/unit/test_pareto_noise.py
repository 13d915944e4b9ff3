"""Noise-aware Pareto analysis (issue #12, item 2): differences within measured noise are ties."""

from __future__ import annotations

import pytest

from agentic_compression.compression.recipe import Recipe
from agentic_compression.core.objectives import objective_noise
from agentic_compression.core.pareto import (
    DEFAULT_OBJECTIVES,
    Objective,
    Point,
    dominates,
    non_dominated_sort,
    pareto_front,
)
from agentic_compression.results.analysis import analyse
from workflow_fakes import FakeMetrics, fake_result

OBJS = (Objective("accuracy", "maximize"), Objective("latency_ms", "minimize"))


def _values(accuracy: float, latency: float) -> dict[str, float]:
    return {"accuracy": accuracy, "latency_ms": latency}


def test_a_latency_gap_within_the_measured_spread_is_a_tie() -> None:
    fast = Point("fast", _values(0.50, 10.0), noise={"latency_ms": 0.02})
    near = Point("near", _values(0.50, 10.5), noise={"latency_ms": 0.08})
    far = Point("far", _values(0.50, 11.0), noise={"latency_ms": 0.08})
    assert not dominates(fast, near, OBJS)  # 0.5 ms < 8% of 10.5 ms: a tie
    assert dominates(fast, far, OBJS)  # 1.0 ms > 8% of 11 ms: beyond noise
    assert [p.id for p in pareto_front([fast, near, far], OBJS)] == ["fast", "near"]
    # without noise the same values give the ordinary front
    exact = [Point(p.id, p.values) for p in (fast, near, far)]
    assert [p.id for p in pareto_front(exact, OBJS)] == ["fast"]


def test_a_tie_on_one_objective_still_loses_on_another() -> None:
    better = Point("better", _values(0.60, 10.0), noise={"latency_ms": 0.1})
    worse = Point("worse", _values(0.50, 10.4), noise={"latency_ms": 0.1})
    assert dominates(better, worse, OBJS)  # latency tied, accuracy better (no noise on it)
    assert not dominates(worse, better, OBJS)


def test_every_point_lands_in_some_front_and_noise_must_be_valid() -> None:
    points = [
        Point(str(i), _values(0.5 + 0.01 * (i % 3), 10.0 + i * 0.3), noise={"latency_ms": 0.05})
        for i in range(9)
    ]
    fronts = non_dominated_sort(points, OBJS)
    assert sorted(p.id for front in fronts for p in front) == sorted(p.id for p in points)
    with pytest.raises(ValueError, match="noise must be >= 0"):
        Point("bad", _values(0.5, 1.0), noise={"latency_ms": -0.1})


def test_objective_noise_comes_from_the_latency_repeats() -> None:
    result = fake_result(Recipe.from_steps([]), FakeMetrics(0.5, 10.0, 1e6, 1e-5))
    assert objective_noise(result) == {}  # one repeat: no spread measured
    latency = result.metrics.latency.model_copy(update={"repeats": 5, "repeat_spread": 1.12})
    metrics = result.metrics.model_copy(update={"latency": latency})
    noisy = result.model_copy(update={"metrics": metrics})
    assert objective_noise(noisy) == pytest.approx(
        {"latency_ms": 0.12, "energy_kwh_per_1k_tokens": 0.12, "co2_kg_per_1k_tokens": 0.12}
    )


def test_analysis_names_the_front_members_only_a_tie_keeps() -> None:
    base = {"memory_bytes": 1e6, "energy_kwh_per_1k_tokens": 1e-3, "co2_kg_per_1k_tokens": 4e-4}
    fast = ("fast", {**base, **_values(0.5, 10.0)})
    slow = ("slow", {**base, **_values(0.5, 10.6), "energy_kwh_per_1k_tokens": 1.05e-3})
    quiet = analyse([fast, slow], (), DEFAULT_OBJECTIVES)
    assert quiet.front_ids == ("fast",) and quiet.tied_by_noise == ()
    spread = {name: 0.1 for name in ("latency_ms", "energy_kwh_per_1k_tokens")}
    noisy = analyse([fast, slow], (), DEFAULT_OBJECTIVES, noise={"slow": spread})
    assert noisy.front_ids == ("fast", "slow")
    assert noisy.tied_by_noise == ("slow",)
