"""From a measured candidate to the objective values the search and the Pareto front compare.

Objectives (see ``core.pareto.DEFAULT_OBJECTIVES``), each named with its unit: ``accuracy`` (maximise;
the mean of the lm-eval task metrics, all at the same fidelity), ``latency_ms`` (decode milliseconds
per token, median), ``memory_bytes`` (serialized bytes), ``energy_kwh_per_1k_tokens`` and
``co2_kg_per_1k_tokens`` (what serving 1k generated tokens costs, not what the evaluation cost). A
failed candidate has no objectives. How many examples the accuracy rests on is not an objective:
:func:`accuracy_fidelity` says it.
"""

from __future__ import annotations

from agentic_compression.core.metrics import CandidateResult, LatencyStats

OBJECTIVE_NAMES = (
    "accuracy",
    "latency_ms",
    "memory_bytes",
    "energy_kwh_per_1k_tokens",
    "co2_kg_per_1k_tokens",
)
#: Names stored by runs before the objectives carried their units, and what they are now.
_RENAMED = {"energy_kwh": "energy_kwh_per_1k_tokens", "co2_kg": "co2_kg_per_1k_tokens"}


class MissingObjectiveError(ValueError):
    """A measurement the objectives need was not taken (for example no accuracy tasks)."""


def objective_values(result: CandidateResult) -> dict[str, float]:
    """The five objective values of an ``ok`` candidate; raises if one was not measured."""
    if result.status != "ok" or result.metrics is None:
        raise MissingObjectiveError(f"candidate {result.candidate_id} failed: it has no objectives")
    metrics = result.metrics
    if not metrics.accuracy:
        raise MissingObjectiveError("no accuracy tasks were evaluated; configure at least one task")
    if metrics.latency is None or metrics.inference_energy is None:
        raise MissingObjectiveError("latency was not measured; it is needed for the objectives")
    energy = metrics.inference_energy
    return {
        "accuracy": sum(m.value for m in metrics.accuracy) / len(metrics.accuracy),
        "latency_ms": metrics.latency.decode_ms_median,
        "memory_bytes": float(metrics.size.serialized_bytes),
        "energy_kwh_per_1k_tokens": energy.energy_kwh_per_token * 1000,
        "co2_kg_per_1k_tokens": energy.co2_kg_per_1k_tokens,
    }


#: The objectives that come from timing the decode loop (energy and CO2 per token are metered
#: over it), so they carry its measured noise.
TIMED_OBJECTIVES = ("latency_ms", "energy_kwh_per_1k_tokens", "co2_kg_per_1k_tokens")


def objective_noise(result: CandidateResult) -> dict[str, float]:
    """Relative measurement noise of the timed objectives of ``result``: the spread of its latency
    repeats (the slowest repeat's median decode time / the fastest's, minus 1; 0 with one repeat).
    The Pareto front counts differences within it as ties (``core.pareto``). Accuracy and size are
    not timing: they carry none.
    """
    if result.metrics is None or result.metrics.latency is None:
        return {}
    spread = latency_noise(result.metrics.latency)
    return {name: spread for name in TIMED_OBJECTIVES} if spread > 0 else {}


def latency_noise(stats: LatencyStats) -> float:
    """``repeat_spread - 1`` of a latency measurement (0 when unknown or a single repeat).

    >>> stats = LatencyStats(prompt_tokens=8, new_tokens=8, warmup=0, repeats=3,
    ...     prefill_ms_median=1, prefill_ms_p90=1, decode_ms_median=10, decode_ms_p90=11,
    ...     decode_tokens_per_s=100, threads=2, device="cpu", repeat_spread=1.08)
    >>> round(latency_noise(stats), 3)
    0.08
    """
    if stats.repeat_spread is None or stats.repeats < 2:
        return 0.0
    return max(0.0, float(stats.repeat_spread) - 1.0)


def accuracy_fidelity(result: CandidateResult) -> int | None:
    """The fewest examples any accuracy task of ``result`` was measured on (None: no accuracy)."""
    if result.metrics is None or not result.metrics.accuracy:
        return None
    return min(m.n_examples for m in result.metrics.accuracy)


def upgrade_objectives(values: dict[str, float] | None) -> dict[str, float] | None:
    """Objective values as stored by any version, under today's names (older runs wrote
    ``energy_kwh``/``co2_kg`` for the per-1k-token values and kept ``fidelity`` among them).

    >>> upgrade_objectives({"accuracy": 0.5, "co2_kg": 1e-4, "fidelity": 200.0})
    {'accuracy': 0.5, 'co2_kg_per_1k_tokens': 0.0001}
    """
    if values is None:
        return None
    return {_RENAMED.get(k, k): v for k, v in values.items() if k != "fidelity"}
