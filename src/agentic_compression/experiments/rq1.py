"""RQ1, dynamic vs static: the agentic search against the paper's static recipes and the older
codebase's dynamic rule.

Arms (every trial measured for real, shared measurements charged to each arm that asks):

- ``agentic``: the product's planner (``--planner``, offline TPE by default) over the joint
  (recipe x runtime) space of ``--runtimes``, ``trials`` candidates, once per seed;
- ``static``: fp32, bf16, int8, int8 + 30% and 50% Wanda, NF4 + 30% and 50% Wanda (PyTorch), as the
  paper lists them;
- ``dynamic``: the older codebase's rule (start at (8 bits, 0); step by the last accuracy against
  the threshold; stop at the first trial meeting it), ``planning.rules.DynamicArmPlanner``.

Reported per arm: best and mean accuracy and CO2 per 1k generated tokens, trials used, trials and
evaluation energy to first reach the accuracy threshold, and the hypervolume of the arm's front (one
reference point for all arms). The agentic arm's figures are mean +/- sample standard deviation over
the seeds; the static and dynamic arms are deterministic given the measurements (one value).
"""

from __future__ import annotations

from typing import Any

from agentic_compression.experiments.arms import (
    arm_statistics,
    common_reference,
    fixed_arm,
    mean_and_spread,
    run_arm,
)
from agentic_compression.experiments.session import Experiment, grid_recipe
from agentic_compression.planning.base import PlanningGoal
from agentic_compression.planning.rules import DynamicArmPlanner

#: The paper's static recipe set, as (bits, sparsity) in PyTorch.
STATIC_SET = ((32, 0.0), (16, 0.0), (8, 0.0), (8, 0.3), (8, 0.5), (4, 0.3), (4, 0.5))

ARM_ORDER = ("agentic", "static", "dynamic")


def run(experiment: Experiment) -> dict[str, Any]:
    """Measure the three arms; the JSON-ready result (raw trials per arm and seed)."""
    threshold, how = experiment.threshold()
    baseline = experiment.measured_baseline()
    goal = PlanningGoal(objective="balanced accuracy and carbon", accuracy_threshold=threshold)
    log = experiment.log
    static = [r for r in (grid_recipe(b, s) for b, s in STATIC_SET) if r is not None]
    arms: dict[str, dict[str, Any]] = {
        "static": {"trials": [m.to_dict() for m in fixed_arm(static, log)]},
        "dynamic": {
            "trials": [
                m.to_dict()
                for m in run_arm(DynamicArmPlanner(), log, goal, experiment.options.search_trials)
            ]
        },
        "agentic": {"by_seed": {}},
    }
    for seed in experiment.options.seeds:
        planner = experiment.make_planner(seed, experiment.space)
        trials = run_arm(planner, log, goal, experiment.options.search_trials)
        arms["agentic"]["by_seed"][str(seed)] = [m.to_dict() for m in trials]
    arms["agentic"]["planner"] = experiment.options.planner
    return {
        "rq": "rq1",
        "title": "RQ1: dynamic (agentic) vs static compression",
        "options": experiment.options.to_dict(),
        "provenance": experiment.provenance,
        "accuracy_threshold": threshold,
        "threshold_rule": how,
        "baseline": baseline.to_dict(),
        "planner_name": experiment.make_planner(experiment.options.seeds[0], experiment.space).name,
        "arms": arms,
    }


def summary(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per arm: statistics (agentic: mean, spread and count over seeds of each figure)."""
    arms = data["arms"]
    threshold = data["accuracy_threshold"]
    runs = {
        "static": [arms["static"]["trials"]],
        "dynamic": [arms["dynamic"]["trials"]],
        "agentic": list(arms["agentic"]["by_seed"].values()),
    }
    reference = common_reference([t for trials in runs.values() for t in trials])
    base = data["baseline"]["objectives"] or {}
    smaller = base.get("memory_bytes")
    out: dict[str, dict[str, Any]] = {}
    for name in ARM_ORDER:
        per_run = [
            arm_statistics(t, threshold, reference, smaller_than=smaller) for t in runs[name]
        ]
        keys = per_run[0].keys() if per_run else ()
        out[name] = {
            "runs": len(per_run),
            **{k: mean_and_spread([r[k] for r in per_run]) for k in keys},
            "reached": sum(r["trials_to_threshold"] is not None for r in per_run),
        }
    out["_reference"] = {"reference_point": reference}
    return out


def _cell(stat: tuple[float | None, float | None, int], fmt: str, runs: int) -> str:
    mean, spread, n = stat
    if mean is None:
        return "-"
    text = format(mean, fmt)
    if runs > 1:
        text += f" ± {format(spread or 0.0, fmt)}"
        if n < runs:
            text += f" ({n}/{runs})"
    return text


def render(data: dict[str, Any]) -> str:
    """The markdown table of RQ1, from its JSON alone."""
    stats = summary(data)
    seeds = ", ".join(str(s) for s in data["options"]["seeds"])
    lines = [
        f"# {data['title']}",
        "",
        f"Model {data['options']['model']}, runtimes {', '.join(data['options']['runtimes'])}, "
        f"fidelity {data['options']['fidelity']}; accuracy threshold "
        f"{data['accuracy_threshold']:.4f} ({data['threshold_rule']}); agentic arm: planner "
        f"{data.get('planner_name', data['arms']['agentic']['planner'])}, "
        f"{data['options']['search_trials']} trials, "
        f"seeds {seeds} (mean ± sample sd over seeds); static and dynamic arms are deterministic "
        "given the measurements.",
        "",
        "| arm | runs | trials | best accuracy | mean accuracy | best CO2 g/1k tok | "
        "mean CO2 g/1k tok | trials to threshold* | eval energy to threshold* (Wh) | "
        "eval energy (Wh) | hypervolume |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name in ARM_ORDER:
        s = stats[name]
        runs = s["runs"]
        g = _scaled(s["best_co2_kg_per_1k_tokens"], 1000)
        mg = _scaled(s["mean_co2_kg_per_1k_tokens"], 1000)
        wh_reach = _scaled(s["energy_kwh_to_threshold"], 1000)
        wh = _scaled(s["evaluation_energy_kwh"], 1000)
        lines.append(
            f"| {name} | {runs} | {_cell(s['trials'], '.1f', runs)} | "
            f"{_cell(s['best_accuracy'], '.4f', runs)} | {_cell(s['mean_accuracy'], '.4f', runs)} | "
            f"{_cell(g, '.4g', runs)} | {_cell(mg, '.4g', runs)} | "
            f"{_cell(s['trials_to_threshold'], '.1f', runs)} ({s['reached']}/{runs} reached) | "
            f"{_cell(wh_reach, '.4g', runs)} | {_cell(wh, '.4g', runs)} | "
            f"{_cell(s['hypervolume'], '.4g', runs)} |"
        )
    reference = stats["_reference"]["reference_point"]
    lines += [
        "",
        "*The first trial that meets the accuracy threshold with a compressed candidate (serialized "
        "size below the uncompressed model's); evaluation energy of the arm's trials up to it.",
        "",
        "Hypervolume: 5 objectives (accuracy max; latency, size, energy and CO2 per 1k tokens min), "
        f"one reference point for all arms: {_reference_text(reference)}.",
        "",
    ]
    return "\n".join(lines)


def _scaled(
    stat: tuple[float | None, float | None, int], factor: float
) -> tuple[float | None, float | None, int]:
    mean, spread, n = stat
    return (
        mean * factor if mean is not None else None,
        spread * factor if spread is not None else None,
        n,
    )


def _reference_text(reference: dict[str, float] | None) -> str:
    if not reference:
        return "none (no measured point)"
    return ", ".join(f"{k} {v:.4g}" for k, v in reference.items())
