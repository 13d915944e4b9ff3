"""Successive halving, fidelity-safe comparison and accuracy retention (pure Python)."""

from __future__ import annotations

import math
from typing import Any

import pytest

from agentic_compression.core.metrics import AccuracyMetric
from agentic_compression.evaluation.fidelity import (
    Fidelity,
    FidelityMismatchError,
    accuracy_retention,
    fidelity_of,
    group_by_fidelity,
    require_same_fidelity,
    successive_halving,
)


def metric(
    value: float,
    *,
    task: str = "arc_easy",
    name: str = "acc",
    n: int = 200,
    shots: int = 0,
    higher: bool = True,
) -> AccuracyMetric:
    return AccuracyMetric(
        task=task,
        metric=name,
        value=value,
        stderr=math.sqrt(value * (1 - value) / n) if 0 < value < 1 else 0.0,
        higher_is_better=higher,
        n_examples=n,
        num_fewshot=shots,
    )


class CountingEvaluator:
    """A deterministic evaluate_fn: the candidate's true accuracy plus a limit-dependent offset."""

    def __init__(self, truth: dict[str, float]) -> None:
        self.truth = truth
        self.calls: list[tuple[str, int]] = []

    def __call__(self, candidate: str, limit: int) -> float:
        self.calls.append((candidate, limit))
        # Small subsets are noisy: the noise shrinks as 1/sqrt(limit) and flips the close pair.
        noise = (0.05 if candidate == "c" else 0.0) * 50 / limit**0.5 / 7
        return self.truth[candidate] + noise


def test_successive_halving_promotes_and_spends_less() -> None:
    truth = {"a": 0.30, "b": 0.55, "c": 0.52, "d": 0.40, "e": 0.20, "f": 0.50, "g": 0.35, "h": 0.45}
    evaluate = CountingEvaluator(truth)
    result = successive_halving(list(truth), evaluate, limits=(50, 200, 1000), keep_fraction=0.5)
    assert [r.limit for r in result.rungs] == [50, 200, 1000]
    assert [len(r.scores) for r in result.rungs] == [8, 4, 2]
    assert result.evaluations == len(evaluate.calls) == 14
    assert result.best == "b"
    # Examples scored: 8*50 + 4*200 + 2*1000 = 3200, against 8000 for all at full fidelity.
    assert sum(limit for _, limit in evaluate.calls) == 3200
    # Every rung's scores were measured at that rung's limit, on exactly its candidates.
    for rung in result.rungs:
        measured = [cand for cand, limit in evaluate.calls if limit == rung.limit]
        assert measured == [cand for cand, _ in rung.scores]
    assert set(result.rungs[0].promoted) == {"b", "c", "f", "h"}
    assert [c for c, _ in result.final_scores] == ["b", "c"]


def test_lower_is_better_ties_and_min_keep() -> None:
    result = successive_halving(
        ["x", "y", "z"],
        lambda c, limit: {"x": 2.0, "y": 1.0, "z": 1.0}[c],
        limits=(10, 20),
        keep_fraction=0.1,
        higher_is_better=False,
        min_keep=2,
    )
    assert result.rungs[0].promoted == ("y", "z")  # tie: earlier candidate first
    assert result.best == "y"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"limits": ()},
        {"limits": (200, 50)},
        {"limits": (0, 10)},
        {"keep_fraction": 0.0},
        {"keep_fraction": 1.5},
        {"min_keep": 0},
    ],
)
def test_successive_halving_rejects_bad_schedules(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        successive_halving(["a"], lambda c, n: 0.5, **kwargs)


def test_nan_scores_are_refused() -> None:
    with pytest.raises(ValueError, match="NaN"):
        successive_halving(["a", "b"], lambda c, n: float("nan"), limits=(5,))
    with pytest.raises(ValueError, match="at least one"):
        successive_halving([], lambda c, n: 0.0)


def test_different_fidelity_is_never_compared() -> None:
    small, large = metric(0.5, n=50), metric(0.5, n=1000)
    assert fidelity_of(small) == Fidelity(50, 0) < fidelity_of(large)
    require_same_fidelity([small], [metric(0.7, n=50)])
    with pytest.raises(FidelityMismatchError, match="50 examples"):
        require_same_fidelity([small], [large])
    with pytest.raises(FidelityMismatchError, match="5-shot"):
        require_same_fidelity([small], [metric(0.5, n=50, shots=5)])
    with pytest.raises(FidelityMismatchError, match="only in first"):
        require_same_fidelity([small, metric(0.3, task="hellaswag", n=50)], [small])
    with pytest.raises(FidelityMismatchError, match="twice"):
        require_same_fidelity([small, small], [small])


def test_group_by_fidelity() -> None:
    groups = group_by_fidelity(
        {
            "base": [metric(0.6, n=1000), metric(0.4, task="hellaswag", n=1000)],
            "int8": [metric(0.4, task="hellaswag", n=1000), metric(0.58, n=1000)],
            "int4-early": [metric(0.5, n=50), metric(0.3, task="hellaswag", n=50)],
        }
    )
    assert sorted(groups.values()) == [("base", "int8"), ("int4-early",)]


def test_retention_per_task_and_mean() -> None:
    baseline = [
        metric(0.60),
        metric(0.40, task="hellaswag"),
        metric(30.0, name="ppl", higher=False),
    ]
    candidate = [
        metric(0.54),
        metric(0.40, task="hellaswag"),
        metric(40.0, name="ppl", higher=False),
    ]
    report = accuracy_retention(baseline, candidate)
    by_task = {(r.task, r.metric): r.retention for r in report.per_task}
    assert by_task[("arc_easy", "acc")] == pytest.approx(0.9)
    assert by_task[("hellaswag", "acc")] == pytest.approx(1.0)
    assert by_task[("arc_easy", "ppl")] == pytest.approx(0.75)  # lower is better: 30 / 40
    assert report.mean == pytest.approx((0.9 + 1.0 + 0.75) / 3)
    assert all(r.fidelity == Fidelity(200, 0) for r in report.per_task)


def test_retention_refuses_mismatches() -> None:
    with pytest.raises(FidelityMismatchError):
        accuracy_retention([metric(0.6, n=200)], [metric(0.6, n=50)])
    with pytest.raises(FidelityMismatchError):
        accuracy_retention([metric(0.6)], [metric(0.6, task="hellaswag")])
    with pytest.raises(FidelityMismatchError, match="directions"):
        accuracy_retention([metric(0.6)], [metric(0.6, higher=False)])
    with pytest.raises(ValueError, match="undefined"):
        accuracy_retention([metric(0.0)], [metric(0.2)])
    with pytest.raises(ValueError, match="no metrics"):
        accuracy_retention([], [])
