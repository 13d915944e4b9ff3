"""A run's outputs under ``runs/<run_id>/``: results JSON, trials CSV, Pareto plots (HTML and SVG).

Everything is built from the results store's trial records (the measured truth) plus the run's
spent budget from the final graph state. The JSON carries every trial with its full result and
provenance (planner, reasoning, tool calls, evaluation config hash, recipe hash), the feasible
Pareto front, its hypervolume *with the reference point used*, the knee point, and the recipe each
selection preset picks. The CSV is flat, one row per trial; the energy/CO2 of measuring a trial use
CodeCarbon's column names (``duration`` s, ``energy_consumed`` kWh, ``emissions`` kg, ...), the
per-token serving costs our own (``energy_kwh_per_1k_tokens``, ``co2_kg_per_1k_tokens``).

Example:
    >>> paths = write_run_outputs(run_dir, run, trials, spent, goal, "balanced")  # doctest: +SKIP
    >>> paths.results_json.name                                # doctest: +SKIP
    'results.json'
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentic_compression.core.objectives import accuracy_fidelity, objective_noise
from agentic_compression.core.pareto import SELECTION_PRESETS
from agentic_compression.paths import atomic_output
from agentic_compression.planning.base import PlanningGoal
from agentic_compression.results.analysis import FrontierAnalysis, analyse, constraints_for
from agentic_compression.results.ledger import build_ledger
from agentic_compression.results.records import RunRecord, TrialRecord

#: Energy/CO2 columns named as CodeCarbon's emissions.csv names them (units: s, kWh, kg, kg/s).
CODECARBON_COLUMNS = (
    "duration", "emissions", "emissions_rate", "cpu_energy", "gpu_energy", "ram_energy",
    "energy_consumed", "country_iso_code",
)  # fmt: skip

CSV_COLUMNS = (
    "run_id", "trial", "status", "recipe", "runtime", "artefact_format", "recipe_hash",
    "candidate_id", "planner", "feasible",
    "on_front", "accuracy", "decode_ms_per_token", "latency_disturbed", "latency_remeasured",
    "serialized_bytes", "energy_kwh_per_1k_tokens",
    "co2_kg_per_1k_tokens", "fidelity", "fidelity_examples", "perplexity", "prefill_ms", "peak_memory_bytes",
    "linear_weight_sparsity", *CODECARBON_COLUMNS, "energy_label", "meter", "error",
    "evaluation_config_hash",
)  # fmt: skip


@dataclass(frozen=True)
class RunOutputs:
    """Paths of the files written for one run."""

    results_json: Path
    trials_csv: Path
    pareto_html: Path | None
    pareto_svg: Path | None


def frontier_of(trials: Sequence[TrialRecord], goal: PlanningGoal) -> FrontierAnalysis:
    """The frontier of stored trials under ``goal``'s constraints (failed trials and trials
    measured only at screening fidelity never take part)."""
    full = [t for t in trials if t.provenance.fidelity == "full"]  # screenings never compete
    measured = [(t.candidate_id, t.objectives) for t in full if t.objectives is not None]
    noise = {t.candidate_id: objective_noise(t.result) for t in full}
    return analyse(measured, constraints_for(goal), noise=noise)


def _choice(by_id: Mapping[str, TrialRecord], candidate_id: str | None) -> dict[str, Any] | None:
    if candidate_id is None:
        return None
    trial = by_id[candidate_id]
    return {
        "trial": trial.number,
        "candidate_id": candidate_id,
        "label": trial.recipe.label,
        "recipe": trial.recipe.to_dict(),
        "objectives": trial.objectives,
    }


def results_payload(
    run: RunRecord,
    trials: Sequence[TrialRecord],
    spent: Mapping[str, float],
    goal: PlanningGoal,
    preset: str,
) -> dict[str, Any]:
    """The results JSON as a dict (see the module docstring); ``preset`` is the user's pick."""
    frontier = frontier_of(trials, goal)
    by_id = {t.candidate_id: t for t in trials}
    ledger = build_ledger(trials, spent, frontier.selections.get(preset))
    return {
        "run": run.model_dump(mode="json"),
        "stop_reason": run.stop_reason,
        "spent": dict(spent),
        "ledger": ledger.model_dump(mode="json"),
        "objectives": [{"name": o.name, "direction": o.direction} for o in frontier.objectives],
        "constraints": [
            {"name": c.name, "lower": c.lower, "upper": c.upper} for c in frontier.constraints
        ],
        "pareto": {
            "front": [_choice(by_id, cid) for cid in frontier.front_ids],
            "front_ids": list(frontier.front_ids),
            "hypervolume": frontier.hypervolume,
            "reference_point": frontier.reference_point,
            "reference_point_rule": "per objective the worst feasible value moved 10% of its "
            "range further (core.pareto.default_reference, margin 0.1)",
            "knee": _choice(by_id, frontier.knee_id),
            "tied_by_noise": list(frontier.tied_by_noise),
            "noise_rule": "values of a timed objective (latency, energy and CO2 per 1k tokens) "
            "within the larger relative spread of the two candidates' latency repeats are ties "
            "(core.pareto); tied_by_noise lists front members that only such a tie keeps there",
        },
        "selections": {
            name: _choice(by_id, frontier.selections.get(name)) for name in SELECTION_PRESETS
        },
        "selected": {"preset": preset, "choice": _choice(by_id, frontier.selections.get(preset))},
        "infeasible": frontier.violations,
        "trials": [t.model_dump(mode="json") for t in trials],
    }


def csv_row(trial: TrialRecord, on_front: bool, feasible: bool) -> dict[str, Any]:
    """One flat CSV row (columns: :data:`CSV_COLUMNS`)."""
    result, objectives = trial.result, trial.objectives or {}
    metrics = result.metrics
    energy = result.energy
    duration = sum(r.duration_s for r in energy)
    emissions = sum(r.co2_kg for r in energy)
    row: dict[str, Any] = {
        "run_id": trial.run_id,
        "trial": trial.number,
        "status": trial.status,
        "recipe": trial.recipe.label,
        "runtime": trial.recipe.runtime.name,
        "artefact_format": metrics.deployment.format if metrics and metrics.deployment else None,
        "recipe_hash": trial.recipe_hash,
        "candidate_id": trial.candidate_id,
        "planner": trial.provenance.planner,
        "feasible": feasible,
        "on_front": on_front,
        "accuracy": objectives.get("accuracy"),
        "decode_ms_per_token": objectives.get("latency_ms"),
        "latency_disturbed": metrics.latency.disturbed if metrics and metrics.latency else None,
        "latency_remeasured": metrics.latency.remeasured if metrics and metrics.latency else None,
        "serialized_bytes": metrics.size.serialized_bytes if metrics else None,
        "energy_kwh_per_1k_tokens": objectives.get("energy_kwh_per_1k_tokens"),
        "co2_kg_per_1k_tokens": objectives.get("co2_kg_per_1k_tokens"),
        "fidelity": trial.provenance.fidelity,
        "fidelity_examples": accuracy_fidelity(result),
        "perplexity": metrics.perplexity.value if metrics and metrics.perplexity else None,
        "prefill_ms": metrics.latency.prefill_ms_median if metrics and metrics.latency else None,
        "peak_memory_bytes": metrics.memory.peak_bytes if metrics and metrics.memory else None,
        "linear_weight_sparsity": metrics.size.linear_weight_sparsity if metrics else None,
        "duration": duration,
        "emissions": emissions,
        "emissions_rate": emissions / duration if duration else None,
        "cpu_energy": sum(r.cpu_energy_kwh for r in energy),
        "gpu_energy": sum(r.gpu_energy_kwh for r in energy),
        "ram_energy": sum(r.ram_energy_kwh for r in energy),
        "energy_consumed": sum(r.energy_kwh for r in energy),
        "country_iso_code": energy[0].country_iso_code if energy else None,
        "energy_label": ",".join(sorted({r.label for r in energy})) or None,
        "meter": energy[0].meter if energy else None,
        "error": trial.error,
        "evaluation_config_hash": trial.provenance.evaluation_config_hash,
    }
    return row


def write_trials_csv(path: Path, trials: Sequence[TrialRecord], goal: PlanningGoal) -> Path:
    """Write the flat per-trial CSV; returns ``path``."""
    frontier = frontier_of(trials, goal)
    front, ok = set(frontier.front_ids), set(frontier.feasible_ids)
    with atomic_output(path) as staging, staging.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for trial in trials:
            writer.writerow(csv_row(trial, trial.candidate_id in front, trial.candidate_id in ok))
    return path


def _write_json(path: Path, payload: Mapping[str, Any]) -> None:
    with atomic_output(path) as staging:
        staging.write_text(json.dumps(payload, indent=2))


def write_run_outputs(
    run_dir: Path,
    run: RunRecord,
    trials: Sequence[TrialRecord],
    spent: Mapping[str, float],
    goal: PlanningGoal,
    preset: str,
    *,
    plots: bool = True,
) -> RunOutputs:
    """Write ``results.json``, ``trials.csv`` and (with ``plots``) ``pareto.html``/``pareto.svg``."""
    from agentic_compression.results.plots import write_pareto_plots

    run_dir.mkdir(parents=True, exist_ok=True)
    results_json = run_dir / "results.json"
    _write_json(results_json, results_payload(run, trials, spent, goal, preset))
    trials_csv = write_trials_csv(run_dir / "trials.csv", trials, goal)
    html = svg = None
    if plots:
        frontier = frontier_of(trials, goal)
        html, svg = write_pareto_plots(run_dir, run.run_id, trials, frontier)
    return RunOutputs(results_json, trials_csv, html, svg)
