"""RQ2, pruning and quantization vs energy and carbon: what the candidates save per 1k generated
tokens against the uncompressed baseline, at each accuracy retention, in each runtime.

Candidates: the older codebase's grid, bits {4, 8, 16} x Wanda sparsity {0, 0.3, 0.5, 0.7} ({0, 0.5}
with ``--quick``), in each runtime of ``--runtimes`` (its own format of that width; a width the
runtime lacks is left out and listed), plus the agentic search (first seed) over the joint space.
The baseline is the uncompressed model in PyTorch at fp32. Savings are measured energy (CO2) per
1k tokens of the baseline minus the candidate's, as a share of the baseline's; retention is the
candidate's accuracy / the baseline's.

Reported: per runtime and retention level, the largest energy saving among candidates that keep at
least that retention; the 5-objective Pareto frontier with each member's savings; and the carbon,
accuracy and balanced picks among the frontier: the best score of the scheme's weights
(``core.pareto.SELECTION_PRESETS``) on log2 ratios to the baseline (:mod:`.scoring`, as RQ3).
"""

from __future__ import annotations

from typing import Any

from agentic_compression.core.pareto import (
    DEFAULT_OBJECTIVES,
    pareto_front,
)
from agentic_compression.experiments.arms import fixed_arm, points, run_arm
from agentic_compression.experiments.scoring import weighted_score
from agentic_compression.experiments.session import Experiment, baseline_recipe, grid_recipe
from agentic_compression.planning.base import PlanningGoal

BITS = (16, 8, 4)
SPARSITY = (0.0, 0.3, 0.5, 0.7)
QUICK_SPARSITY = (0.0, 0.5)
RETENTION_LEVELS = (1.0, 0.99, 0.95, 0.9, 0.8)
PICKS = ("carbon", "accuracy", "balanced")


def run(experiment: Experiment) -> dict[str, Any]:
    log = experiment.log
    options = experiment.options
    sparsity = QUICK_SPARSITY if options.quick else SPARSITY
    baseline = log.measure(baseline_recipe())
    grids: dict[str, list[dict[str, Any]]] = {}
    missing: list[str] = []
    for runtime in options.runtimes:
        recipes = []
        for bits in BITS:
            for s in sparsity:
                recipe = grid_recipe(bits, s, runtime)
                if recipe is None:
                    missing.append(f"{runtime} has no {bits}-bit format here")
                    break
                recipes.append(recipe)
        grids[runtime] = [m.to_dict() for m in fixed_arm(recipes, log)]
    seed = options.seeds[0]
    goal = PlanningGoal(objective="energy and carbon per token")
    searched = run_arm(
        experiment.make_planner(seed, experiment.space), log, goal, options.search_trials
    )
    return {
        "rq": "rq2",
        "title": "RQ2: energy and CO2 per 1k tokens saved against the uncompressed baseline",
        "options": options.to_dict(),
        "provenance": experiment.provenance,
        "baseline": baseline.to_dict(),
        "grid": {"bits": list(BITS), "sparsity": list(sparsity), "by_runtime": grids},
        "not_served": sorted(set(missing)),
        "agentic": {"seed": seed, "trials": [m.to_dict() for m in searched]},
    }


def _candidates(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Every measured candidate once (baseline, grid, search), in that order."""
    seen: dict[str, dict[str, Any]] = {}
    everything = [data["baseline"], *(t for g in data["grid"]["by_runtime"].values() for t in g)]
    for trial in [*everything, *data["agentic"]["trials"]]:
        if trial["status"] == "ok" and trial["objectives"]:
            seen.setdefault(trial["recipe_hash"], trial)
    return list(seen.values())


def _savings(trial: dict[str, Any], base: dict[str, float]) -> dict[str, float]:
    o = trial["objectives"]
    return {
        "retention": o["accuracy"] / base["accuracy"],
        "energy_saving": 1 - o["energy_kwh_per_1k_tokens"] / base["energy_kwh_per_1k_tokens"],
        "co2_saving": 1 - o["co2_kg_per_1k_tokens"] / base["co2_kg_per_1k_tokens"],
        "co2_g_saved_per_1k": (base["co2_kg_per_1k_tokens"] - o["co2_kg_per_1k_tokens"]) * 1000,
    }


def summary(data: dict[str, Any]) -> dict[str, Any]:
    if data["baseline"]["status"] != "ok":
        return {"error": f"the baseline failed: {data['baseline'].get('error')}"}
    base = data["baseline"]["objectives"]
    if base["accuracy"] <= 0:
        return {"error": "the baseline answered no example right: retention cannot be computed "
                "(choose tasks the model answers, or more examples)"}  # fmt: skip
    candidates = _candidates(data)
    by_hash = {c["recipe_hash"]: c for c in candidates}
    savings = {c["recipe_hash"]: _savings(c, base) for c in candidates}
    runtimes = data["options"]["runtimes"]
    levels: dict[str, dict[str, Any]] = {}
    for level in RETENTION_LEVELS:
        row: dict[str, Any] = {}
        for runtime in runtimes:
            keeping = [
                (c, savings[c["recipe_hash"]])
                for c in candidates
                if c["runtime"] == runtime
                and savings[c["recipe_hash"]]["retention"] >= level - 1e-9
            ]
            best = max(
                keeping, key=lambda cs: (cs[1]["energy_saving"], cs[0]["label"]), default=None
            )
            row[runtime] = None if best is None else {"label": best[0]["label"], **best[1]}
        levels[f"{level:g}"] = row
    pts = points(candidates)
    front = [by_hash[p.id] for p in pareto_front(pts, DEFAULT_OBJECTIVES)]

    def best_for(scheme: str) -> dict[str, Any] | None:
        scored = [
            (round(weighted_score(c["objectives"], base, scheme), 12), c["label"], c) for c in front
        ]
        return max(scored, key=lambda item: item[:2])[2] if scored else None

    picks = {name: best_for(name) for name in PICKS}
    return {
        "levels": levels,
        "front": [{**c, **savings[c["recipe_hash"]]} for c in front],
        "picks": {
            k: (None if v is None else {**v, **savings[v["recipe_hash"]]}) for k, v in picks.items()
        },
        "candidates": len(candidates),
    }


def render(data: dict[str, Any]) -> str:
    stats = summary(data)
    options = data["options"]
    lines = [f"# {data['title']}", ""]
    if "error" in stats:
        return "\n".join([*lines, stats["error"], ""])
    base = data["baseline"]["objectives"]
    lines += [
        f"Model {options['model']}, fidelity {options['fidelity']}. Baseline (uncompressed, PyTorch "
        f"fp32): accuracy {base['accuracy']:.4f}, {base['energy_kwh_per_1k_tokens'] * 1000:.4g} Wh "
        f"and {base['co2_kg_per_1k_tokens'] * 1000:.4g} g CO2 per 1k tokens. Grid: bits "
        f"{data['grid']['bits']} x Wanda sparsity {data['grid']['sparsity']} per runtime, plus "
        f"the agentic search (seed {data['agentic']['seed']}, {len(data['agentic']['trials'])} "
        f"trials); {stats['candidates']} measured candidates.",
        "",
        "## Largest energy saving per 1k tokens at each accuracy retention",
        "",
        "| retention >= | " + " | ".join(options["runtimes"]) + " |",
        "|---|" + "---|" * len(options["runtimes"]),
    ]
    for level, row in stats["levels"].items():
        cells = [
            "-" if cell is None else
            f"{cell['energy_saving'] * 100:.1f}% energy, {cell['co2_saving'] * 100:.1f}% CO2 "
            f"({cell['label']})"
            for cell in (row[r] for r in options["runtimes"])
        ]  # fmt: skip
        lines.append(f"| {float(level) * 100:g}% | " + " | ".join(cells) + " |")
    lines += [
        "",
        "## Pareto frontier (5 objectives)",
        "",
        "| candidate | runtime | accuracy | retention | Wh/1k tok | energy saved | g CO2/1k tok | "
        "g CO2 saved/1k tok | ms/token | MB |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in stats["front"]:
        lines.append(_row(c))
    lines += ["", "## Picks (scheme weights on log2 ratios to the baseline, among the frontier)", "",
              "| pick | candidate | runtime | accuracy | retention | "
              "energy saved | CO2 saved |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    for name, c in stats["picks"].items():
        if c is None:
            lines.append(f"| {name} | - | - | - | - | - | - |")
            continue
        lines.append(
            f"| {name} | {c['label']} | {c['runtime']} | {c['objectives']['accuracy']:.4f} | "
            f"{c['retention'] * 100:.1f}% | {c['energy_saving'] * 100:.1f}% | "
            f"{c['co2_saving'] * 100:.1f}% |"
        )
    if data["not_served"]:
        lines += ["", "Not served: " + "; ".join(data["not_served"]) + "."]
    return "\n".join([*lines, ""])


def _row(c: dict[str, Any]) -> str:
    o = c["objectives"]
    return (
        f"| {c['label']} | {c['runtime']} | {o['accuracy']:.4f} | {c['retention'] * 100:.1f}% | "
        f"{o['energy_kwh_per_1k_tokens'] * 1000:.4g} | {c['energy_saving'] * 100:.1f}% | "
        f"{o['co2_kg_per_1k_tokens'] * 1000:.4g} | {c['co2_g_saved_per_1k']:.4g} | "
        f"{o['latency_ms']:.1f} | {o['memory_bytes'] / 1e6:.1f} |"
    )
