"""Weighted scores on objectives normalised against the uncompressed baseline (RQ2's picks, RQ3).

Each objective becomes log2 of its ratio to the measured uncompressed baseline, oriented so that
larger is better: halving a cost scores +1, halving the accuracy -1. The score is the weights' mean
of those terms. Unlike min-max scaling over a front, a difference of 2% stays small however narrow
the front is, and no term swamps the others the way the older code's raw 1/x sums did.

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


def weighted_score(
    objectives: Mapping[str, float], base: Mapping[str, float], scheme: str
) -> float:
    """The weights of ``scheme`` (``core.pareto.SELECTION_PRESETS``) over log2 ratios to ``base``."""
    weights = SELECTION_PRESETS[scheme]
    total = 0.0
    for o in DEFAULT_OBJECTIVES:
        value, reference = objectives[o.name], base[o.name]
        if value <= 0 or reference <= 0:
            raise ValueError(f"{o.name} must be positive to be scored, got {value} / {reference}")
        ratio = value / reference if o.direction == "maximize" else reference / value
        total += weights.weight(o.name) * math.log2(ratio)
    return total / sum(weights.weight(o.name) for o in DEFAULT_OBJECTIVES)
