"""The search's own carbon ledger and its break-even against the uncompressed baseline.

What the search cost: the CO2 of compressing, evaluating (latency, perplexity, accuracy), training
(recovery steps, when a recipe trains) and planning (the planner's calls, measured on this machine),
plus what a remote LLM planner reports as an estimate. Every figure keeps its label: a CodeCarbon
power-model figure is an estimate; a remote LLM's cost can only ever be an estimate.

The break-even: serving with the chosen recipe saves ``baseline - chosen`` kg CO2 per generated token
(both measured the same way, over the decode-latency loop). The search repays its own CO2 after
``search CO2 / saving per token`` served tokens. When the search measured no uncompressed baseline, or
the chosen recipe saves nothing per token, the ledger says so instead of inventing a number.

Example:
    >>> ledger = build_ledger(trials, spent, chosen_candidate_id="7de65c06-3f2a...")  # doctest: +SKIP
    >>> ledger.break_even_tokens                                                       # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pydantic import BaseModel, ConfigDict

from agentic_compression.compression.recipe import Recipe
from agentic_compression.results.records import TrialRecord

#: Which phase of a candidate's evaluation each energy reading's phase name belongs to.
_PHASE_GROUPS = {
    "compression": "compression",
    "export": "compression",
    "training": "training",
    "size": "evaluation",
    "latency-warmup": "evaluation",
    "latency": "evaluation",
    "perplexity": "evaluation",
    "accuracy": "evaluation",
}


class SearchLedger(BaseModel):
    """CO2 (kg) and energy (kWh) the search itself cost, by kind of work, and its break-even."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    compression_co2_kg: float
    evaluation_co2_kg: float
    training_co2_kg: float
    planning_co2_kg: float
    planner_reported_co2_kg: float
    #: Measured phases of trials a kill interrupted (thrown away, then redone on resume).
    interrupted_co2_kg: float = 0.0
    total_co2_kg: float
    total_energy_kwh: float
    #: "measured", "estimated", or both, over every reading that went into the totals.
    labels: tuple[str, ...]
    baseline_candidate_id: str | None
    chosen_candidate_id: str | None
    baseline_co2_kg_per_1k_tokens: float | None
    chosen_co2_kg_per_1k_tokens: float | None
    break_even_tokens: float | None
    break_even_note: str


def is_uncompressed(recipe: Recipe) -> bool:
    """True for the base model served by PyTorch: no steps, or only a cast to float32."""
    cast_fp32 = all(s.method == "cast" and s.params()["dtype"] == "float32" for s in recipe.steps)
    return recipe.runtime.is_default and cast_fp32


def build_ledger(
    trials: Sequence[TrialRecord], spent: Mapping[str, float], chosen_candidate_id: str | None
) -> SearchLedger:
    """Sum the search's CO2 by kind from the stored trials and ``spent`` (the workflow's costs)."""
    by_group = {"compression": 0.0, "evaluation": 0.0, "training": 0.0}
    energy_kwh = spent.get("planning_energy_kwh", 0.0) + spent.get("lost_energy_kwh", 0.0)
    labels = set()
    for trial in trials:
        for reading in trial.result.energy:
            by_group[_PHASE_GROUPS.get(reading.phase, "evaluation")] += reading.co2_kg
            energy_kwh += reading.energy_kwh
            labels.add(reading.label)
    planning = spent.get("planning_co2_kg", 0.0)
    reported = spent.get("planner_reported_co2_kg", 0.0)
    if reported:
        labels.add("estimated")
    interrupted = spent.get("lost_co2_kg", 0.0)
    total = sum(by_group.values()) + planning + reported + interrupted
    per_1k = {
        t.candidate_id: t.objectives["co2_kg_per_1k_tokens"]
        for t in trials
        if t.objectives and t.status == "ok"
    }
    baseline = next(
        (t for t in trials if t.status == "ok" and t.objectives and is_uncompressed(t.recipe)),
        None,
    )
    baseline_per_1k = per_1k.get(baseline.candidate_id) if baseline else None
    chosen_per_1k = per_1k.get(chosen_candidate_id) if chosen_candidate_id else None
    break_even, note = _break_even(total, baseline_per_1k, chosen_per_1k, chosen_candidate_id)
    return SearchLedger(
        compression_co2_kg=by_group["compression"],
        evaluation_co2_kg=by_group["evaluation"],
        training_co2_kg=by_group["training"],
        planning_co2_kg=planning,
        planner_reported_co2_kg=reported,
        interrupted_co2_kg=interrupted,
        total_co2_kg=total,
        total_energy_kwh=energy_kwh,
        labels=tuple(sorted(labels)),
        baseline_candidate_id=baseline.candidate_id if baseline else None,
        chosen_candidate_id=chosen_candidate_id,
        baseline_co2_kg_per_1k_tokens=baseline_per_1k,
        chosen_co2_kg_per_1k_tokens=chosen_per_1k,
        break_even_tokens=break_even,
        break_even_note=note,
    )


def _break_even(
    total_kg: float, baseline_per_1k: float | None, chosen_per_1k: float | None, chosen: str | None
) -> tuple[float | None, str]:
    if chosen is None or chosen_per_1k is None:
        return None, "no recipe was chosen, so there is no per-token saving to repay the search"
    if baseline_per_1k is None:
        return None, "the search measured no uncompressed baseline: the per-token saving is unknown"
    saving_per_token = (baseline_per_1k - chosen_per_1k) / 1000
    if saving_per_token <= 0:
        return None, (
            "the chosen recipe emits no less CO2 per generated token than the baseline here: "
            "it never repays the search's CO2 on this hardware"
        )
    tokens = total_kg / saving_per_token
    return tokens, (
        f"after {tokens:,.0f} generated tokens the chosen recipe's per-token saving "
        f"({saving_per_token * 1e9:.3f} µg CO2/token) repays the search's {total_kg * 1000:.3f} g CO2"
    )
