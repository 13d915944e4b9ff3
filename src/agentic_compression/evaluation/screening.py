"""Multi-fidelity search: screen many candidates cheaply, measure the promising ones in full.

The schedule is successive halving on the multi-objective front, in two rungs:

1. every new candidate is first *screened*: the same compression and export, measured with
   :func:`screening_config` (a quarter of the accuracy examples, a quarter of the perplexity
   windows, one latency repeat);
2. after every ``rung`` screened candidates, the best ``keep`` fraction of them, by
   non-dominated rank among the screened points (all at the same fidelity, never mixed with full
   ones; feasible ones first, ties by accuracy), is measured again at full fidelity.

Only full-fidelity measurements reach the Pareto front, the hypervolume and the selected
candidate; a screened candidate that was not promoted stays in the results, labelled ``screen``.
``mode="full"`` measures every candidate at full fidelity once (no screening).

Example:
    >>> points = [("a", {"accuracy": 0.5, "latency_ms": 10.0}),
    ...           ("b", {"accuracy": 0.4, "latency_ms": 12.0}),
    ...           ("c", {"accuracy": 0.6, "latency_ms": 20.0})]
    >>> FidelitySchedule(keep=0.5).promotions(points, feasible={"a", "b", "c"})
    ['a', 'c']
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from agentic_compression.core.pareto import DEFAULT_OBJECTIVES, Objective, Point, non_dominated_sort

if TYPE_CHECKING:
    from agentic_compression.evaluation.candidate import MeasureConfig

Fidelity = Literal["screen", "full"]
#: The screening measurement takes this share of the full one's examples and windows.
SCREEN_SHARE = 4


@dataclass(frozen=True)
class FidelitySchedule:
    """``mode`` "halving" (screen, then promote ``keep`` of every ``rung`` screened candidates) or
    "full" (every candidate measured once at full fidelity)."""

    mode: Literal["halving", "full"] = "full"
    rung: int = 4
    keep: float = 0.5

    def __post_init__(self) -> None:
        if self.mode not in ("halving", "full"):
            raise ValueError(f"fidelity mode must be halving or full, not {self.mode!r}")
        if self.rung < 1 or not 0 < self.keep <= 1:
            raise ValueError("fidelity rung must be >= 1 and keep in (0, 1]")

    @property
    def first(self) -> Fidelity:
        """The fidelity new candidates are measured at."""
        return "screen" if self.mode == "halving" else "full"

    def promotions(
        self,
        screened: Sequence[tuple[str, Mapping[str, float]]],
        feasible: Collection[str],
        objectives: Sequence[Objective] = DEFAULT_OBJECTIVES,
    ) -> list[str]:
        """The ids among ``screened`` (id, objective values at screening fidelity) to measure in
        full: ``ceil(keep * n)`` of them, by (infeasible last, non-dominated rank, accuracy)."""
        if not screened:
            return []
        wanted = [o for o in objectives if all(o.name in values for _, values in screened)]
        points = [Point(i, values) for i, values in screened]
        rank = {
            p.id: r for r, front in enumerate(non_dominated_sort(points, wanted)) for p in front
        }
        order = sorted(
            screened,
            key=lambda item: (
                item[0] not in feasible,
                rank[item[0]],
                -item[1].get("accuracy", 0.0),
            ),
        )
        count = max(1, math.ceil(self.keep * len(screened)))
        chosen = {i for i, _ in order[:count]}
        return [i for i, _ in screened if i in chosen]


def screening_config(config: MeasureConfig) -> MeasureConfig:
    """``config`` at screening fidelity: a quarter of the accuracy examples (at least 10 per task;
    50 where the full measurement scores a whole task), a quarter of the perplexity windows, and
    one timed latency repeat after the warm-up."""

    def fewer(limit: int | None) -> int:
        return 50 if limit is None else max(10, math.ceil(limit / SCREEN_SHARE))

    accuracy = config.accuracy
    if accuracy is not None:
        tasks = tuple(
            dataclasses.replace(task, limit=fewer(task.limit)) if task.limit else task
            for task in accuracy.tasks
        )
        accuracy = dataclasses.replace(accuracy, tasks=tasks, limit=fewer(accuracy.limit))
    perplexity = config.perplexity
    if perplexity is not None:
        windows = max(1, math.ceil(perplexity.windows / SCREEN_SHARE))
        perplexity = perplexity.model_copy(update={"windows": windows})
    latency = config.latency
    if latency is not None:
        latency = latency.model_copy(update={"repeats": 1})
    return dataclasses.replace(config, accuracy=accuracy, perplexity=perplexity, latency=latency)
