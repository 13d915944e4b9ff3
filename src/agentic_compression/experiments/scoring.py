"""Weighted scores on objectives normalised against the uncompressed baseline (RQ2's picks, RQ3).

Each objective becomes log2 of its ratio to the measured uncompressed baseline, oriented so that
larger is better: halving a cost scores +1, halving the accuracy -1. The score is the weights' mean
of those terms. Unlike min-max scaling over a front, a difference of 2% stays small however narrow
the front is, and no term swamps the others the way the older code's raw 1/x sums did. A value of 0 (no example right; a cost of 0 cannot be measured)
scores as 1/1024 of the baseline (log2 ratio floored at -10), so it is worst but finite.

Example:
    >>> base = {"accuracy": 0.5, "latency_ms": 40.0, "memory_bytes": 5e8,
    ...         "energy_kwh_per_1k_tokens": 1e-3, "co2_kg_per_1k_tokens": 4e-4}
    >>> weighted_score({**base, "latency_ms": 20.0}, base, "efficiency") > 0
    True
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from agentic_compression.core.pareto import DEFAULT_OBJECTIVES, SELECTION_PRESETS
from agentic_compression.errors import UserInputError

#: log2 ratios are floored here: a zero accuracy (or an unmeasurably small cost) stays finite.
FLOOR = -10.0


def weighted_score(
    objectives: Mapping[str, float], base: Mapping[str, float], scheme: str
) -> float:
    """The weights of ``scheme`` (``core.pareto.SELECTION_PRESETS``) over log2 ratios to ``base``."""
    weights = SELECTION_PRESETS[scheme]
    total = 0.0
    for o in DEFAULT_OBJECTIVES:
        value, reference = objectives[o.name], base[o.name]
        if reference <= 0:
            raise UserInputError(
                f"the uncompressed baseline's {o.name} is {reference}: nothing can be scored "
                "against it; choose tasks the model answers (--tasks) or more examples (--limit)"
            )
        if value <= 0:
            term = FLOOR if o.direction == "maximize" else -FLOOR
        else:
            ratio = value / reference if o.direction == "maximize" else reference / value
            term = max(FLOOR, math.log2(ratio))
        total += weights.weight(o.name) * term
    return total / sum(weights.weight(o.name) for o in DEFAULT_OBJECTIVES)
