"""From a measured candidate to the objective values the search and the Pareto front compare.

Objectives (see ``core.pareto.DEFAULT_OBJECTIVES``): ``accuracy`` (maximise; the mean of the lm-eval
task metrics, all at the same fidelity), ``latency_ms`` (decode ms/token, median), ``memory_bytes``
(serialized bytes), ``energy_kwh`` and ``co2_kg`` (per 1k generated tokens: what serving costs,
not what the evaluation cost). A failed candidate has no objectives.
"""

from __future__ import annotations

from agentic_compression.core.metrics import CandidateResult

OBJECTIVE_NAMES = ("accuracy", "latency_ms", "memory_bytes", "energy_kwh", "co2_kg")


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
    fidelities = {m.n_examples for m in metrics.accuracy}
    energy = metrics.inference_energy
    return {
        "accuracy": sum(m.value for m in metrics.accuracy) / len(metrics.accuracy),
        "latency_ms": metrics.latency.decode_ms_median,
        "memory_bytes": float(metrics.size.serialized_bytes),
        "energy_kwh": energy.energy_kwh_per_token * 1000,
        "co2_kg": energy.co2_kg_per_1k_tokens,
        "fidelity": float(min(fidelities)),
    }
