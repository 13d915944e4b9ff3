"""Multi-fidelity evaluation: successive halving, fidelity-safe comparison, accuracy retention.

A score's *fidelity* is how it was measured: the number of examples scored and the few-shot count
(both recorded on every :class:`AccuracyMetric`). A 50-example accuracy has a standard error several
times that of a 1000-example one, so scores of different fidelity are never compared as if equal:
:func:`require_same_fidelity` raises, :func:`group_by_fidelity` splits candidates into groups that
can be compared, and :func:`accuracy_retention` refuses mismatched inputs.

Everything here is pure Python over immutable records; nothing imports torch or lm-eval.

Example:
    >>> scores = {"a": [0.3, 0.31, 0.30], "b": [0.6, 0.62, 0.61], "c": [0.5, 0.4, 0.45]}
    >>> result = successive_halving(
    ...     ["a", "b", "c"], lambda c, limit: scores[c][[50, 200, 1000].index(limit)],
    ...     limits=(50, 200, 1000),
    ... )
    >>> result.best, [r.promoted for r in result.rungs]
    ('b', [('b', 'c'), ('b',), ('b',)])
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from agentic_compression.core.metrics import AccuracyMetric
from agentic_compression.errors import AgenticCompressionError

C = TypeVar("C")


class FidelityMismatchError(AgenticCompressionError, ValueError):
    """Two sets of metrics were measured differently (tasks, metrics, examples or few-shot)."""


@dataclass(frozen=True, order=True)
class Fidelity:
    """How a metric was measured: examples scored and few-shot count."""

    n_examples: int
    num_fewshot: int


def fidelity_of(metric: AccuracyMetric) -> Fidelity:
    """The fidelity recorded on ``metric``."""
    return Fidelity(metric.n_examples, metric.num_fewshot)


#: What identifies one comparable measurement: (task, metric, filter, examples, few-shot).
MetricSignature = tuple[str, str, str, int, int]


def signature(metrics: Iterable[AccuracyMetric]) -> tuple[MetricSignature, ...]:
    """The sorted signatures of a candidate's metrics: equal signatures are comparable."""
    return tuple(sorted((m.task, m.metric, m.filter, m.n_examples, m.num_fewshot) for m in metrics))


def _index(metrics: Iterable[AccuracyMetric]) -> dict[tuple[str, str, str], AccuracyMetric]:
    index: dict[tuple[str, str, str], AccuracyMetric] = {}
    for m in metrics:
        key = (m.task, m.metric, m.filter)
        if key in index:
            raise FidelityMismatchError(f"metric {m.task}/{m.metric}/{m.filter} appears twice")
        index[key] = m
    return index


def require_same_fidelity(
    first: Sequence[AccuracyMetric], second: Sequence[AccuracyMetric]
) -> None:
    """Raise :class:`FidelityMismatchError` unless both cover the same metrics at the same fidelity.

    Example:
        >>> m = AccuracyMetric(task="arc_easy", metric="acc", value=0.5, stderr=0.07,
        ...                    higher_is_better=True, n_examples=50, num_fewshot=0)
        >>> require_same_fidelity([m], [m.model_copy(update={"n_examples": 1000})])
        Traceback (most recent call last):
        ...
        agentic_compression.evaluation.fidelity.FidelityMismatchError: arc_easy/acc/none: 50 examples, 0-shot vs 1000 examples, 0-shot
    """
    a, b = _index(first), _index(second)
    if a.keys() != b.keys():
        only_a = sorted("/".join(k) for k in a.keys() - b.keys())
        only_b = sorted("/".join(k) for k in b.keys() - a.keys())
        raise FidelityMismatchError(
            f"different metrics: only in first {only_a}, only in second {only_b}"
        )
    for key in sorted(a):
        fa, fb = fidelity_of(a[key]), fidelity_of(b[key])
        if fa != fb:
            raise FidelityMismatchError(
                f"{'/'.join(key)}: {fa.n_examples} examples, {fa.num_fewshot}-shot vs "
                f"{fb.n_examples} examples, {fb.num_fewshot}-shot"
            )


def group_by_fidelity(
    candidates: Mapping[str, Sequence[AccuracyMetric]],
) -> dict[tuple[MetricSignature, ...], tuple[str, ...]]:
    """Candidate ids grouped by metric signature; only candidates within one group are comparable.

    Example:
        >>> m = AccuracyMetric(task="arc_easy", metric="acc", value=0.5, stderr=0.07,
        ...                    higher_is_better=True, n_examples=50, num_fewshot=0)
        >>> groups = group_by_fidelity({"x": [m], "y": [m], "z": [m.model_copy(update={"n_examples": 200})]})
        >>> sorted(groups.values())
        [('x', 'y'), ('z',)]
    """
    groups: dict[tuple[MetricSignature, ...], list[str]] = {}
    for candidate_id, metrics in candidates.items():
        groups.setdefault(signature(metrics), []).append(candidate_id)
    return {sig: tuple(ids) for sig, ids in groups.items()}


# ---------------------------------------------------------------------------------------------------
# Successive halving


@dataclass(frozen=True)
class Rung(Generic[C]):
    """One fidelity level: every candidate evaluated at ``limit`` and those promoted from it."""

    limit: int
    scores: tuple[tuple[C, float], ...]
    promoted: tuple[C, ...]


@dataclass(frozen=True)
class HalvingResult(Generic[C]):
    rungs: tuple[Rung[C], ...]

    @property
    def best(self) -> C:
        """The top candidate of the highest-fidelity rung."""
        return self.rungs[-1].promoted[0]

    @property
    def final_scores(self) -> tuple[tuple[C, float], ...]:
        """Scores at the highest fidelity reached, all measured at one limit."""
        return self.rungs[-1].scores

    @property
    def evaluations(self) -> int:
        return sum(len(r.scores) for r in self.rungs)


def successive_halving(
    candidates: Sequence[C],
    evaluate_fn: Callable[[C, int], float],
    *,
    limits: Sequence[int] = (50, 200, 1000),
    keep_fraction: float = 0.5,
    higher_is_better: bool = True,
    min_keep: int = 1,
) -> HalvingResult[C]:
    """Evaluate all candidates cheaply, then promote the best ``keep_fraction`` to each larger limit.

    ``evaluate_fn(candidate, limit)`` returns one score measured on ``limit`` examples (for example the
    primary metric of :func:`evaluate_accuracy` with ``AccuracyConfig(limit=limit)``). Rung ``i``
    keeps ``max(min_keep, ceil(keep_fraction * n))`` candidates; ties keep the earlier candidate. Scores
    are only ever ranked against scores of the same rung, i.e. the same fidelity. The last rung ranks
    its candidates and promotes them all, in order.

    Example:
        >>> result = successive_halving([3, 1, 2], lambda c, limit: float(c), limits=(10, 20))
        >>> result.best, result.evaluations
        (3, 5)
    """
    if not candidates:
        raise ValueError("successive_halving needs at least one candidate")
    if not limits or any(b <= a for a, b in itertools.pairwise(limits)) or limits[0] < 1:
        raise ValueError(f"limits must be positive and strictly increasing, got {list(limits)}")
    if not 0.0 < keep_fraction <= 1.0 or min_keep < 1:
        raise ValueError("keep_fraction must be in (0, 1] and min_keep >= 1")

    alive = list(range(len(candidates)))
    rungs: list[Rung[C]] = []
    for rung_index, limit in enumerate(limits):
        scored: list[tuple[int, float]] = []
        for i in alive:
            score = float(evaluate_fn(candidates[i], limit))
            if math.isnan(score):
                raise ValueError(f"evaluate_fn returned NaN for candidate {i} at limit {limit}")
            scored.append((i, score))
        ranked = sorted(
            scored, key=lambda item: (-item[1] if higher_is_better else item[1], item[0])
        )
        last = rung_index == len(limits) - 1
        keep = len(ranked) if last else max(min_keep, math.ceil(keep_fraction * len(ranked)))
        alive = [i for i, _ in ranked[:keep]]
        rungs.append(
            Rung(
                limit=limit,
                scores=tuple((candidates[i], s) for i, s in scored),
                promoted=tuple(candidates[i] for i in alive),
            )
        )
    return HalvingResult(tuple(rungs))


# ---------------------------------------------------------------------------------------------------
# Retention


@dataclass(frozen=True)
class TaskRetention:
    """One metric of a candidate relative to the uncompressed baseline (1.0 = unchanged)."""

    task: str
    metric: str
    filter: str
    baseline: float
    candidate: float
    retention: float
    fidelity: Fidelity


@dataclass(frozen=True)
class RetentionReport:
    per_task: tuple[TaskRetention, ...]
    #: Unweighted mean of the per-metric retentions.
    mean: float


def accuracy_retention(
    baseline: Sequence[AccuracyMetric], candidate: Sequence[AccuracyMetric]
) -> RetentionReport:
    """Candidate accuracy relative to the baseline, per metric and averaged.

    Retention is ``candidate / baseline`` for higher-is-better metrics and ``baseline / candidate``
    otherwise. Mismatched tasks, metrics or fidelity raise :class:`FidelityMismatchError`; a zero
    baseline (retention undefined) raises ``ValueError``.

    Example:
        >>> base = AccuracyMetric(task="arc_easy", metric="acc", value=0.60, stderr=0.02,
        ...                       higher_is_better=True, n_examples=500, num_fewshot=0)
        >>> accuracy_retention([base], [base.model_copy(update={"value": 0.54})]).mean
        0.9
    """
    require_same_fidelity(baseline, candidate)
    base, cand = _index(baseline), _index(candidate)
    rows = []
    for key in sorted(base):
        b, c = base[key], cand[key]
        if b.higher_is_better != c.higher_is_better:
            raise FidelityMismatchError(f"{'/'.join(key)}: metric directions differ")
        numerator, denominator = (c.value, b.value) if b.higher_is_better else (b.value, c.value)
        if denominator == 0:
            raise ValueError(f"retention of {'/'.join(key)} is undefined: division by zero")
        rows.append(
            TaskRetention(
                task=b.task,
                metric=b.metric,
                filter=b.filter,
                baseline=b.value,
                candidate=c.value,
                retention=round(numerator / denominator, 12),
                fidelity=fidelity_of(b),
            )
        )
    if not rows:
        raise ValueError("no metrics to compare")
    mean = round(sum(r.retention for r in rows) / len(rows), 12)
    return RetentionReport(per_task=tuple(rows), mean=mean)
