"""RQ3, weighting schemes: how the objective weights change what a search finds and picks.

The paper's four schemes (``core.pareto.SELECTION_PRESETS``: accuracy-focused, carbon-focused,
balanced, efficiency-focused; weights on accuracy, latency, size, energy, CO2) each steer their own
search, once per seed, over the older codebase's RQ3 grid in PyTorch: bits {4, 8, 16, 32} x Wanda
sparsity {0, 0.1, 0.3, 0.5, 0.7} ({0, 0.3, 0.5} with ``--quick``). Each search may measure half the
grid, so the weights have to steer it.

Normalisation before weighting (the older code summed raw 1/x terms, so one term swamped the rest
and every scheme picked the same point): :func:`.scoring.weighted_score`, log2 ratios to the
measured uncompressed baseline (halving a cost scores +1, halving the accuracy -1). The search is the offline
TPE planner with that score as its single objective (no known-good seeds: random start-up, then
TPE).

Reported per scheme: the pick of each seed (best score among the trials it measured), the share of
seeds agreeing with the most common pick (stability), the size of the 5-objective Pareto frontier
of the trials each search measured and its diversity (mean pairwise distance of the frontier
members in objectives min-max normalised over every candidate RQ3 measured), mean and spread over
seeds; and the scheme's best candidate among everything RQ3 measured.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections import Counter
from typing import Any

from agentic_compression.core.pareto import (
    DEFAULT_OBJECTIVES,
    SELECTION_PRESETS,
    Objective,
    Point,
    normalise,
    pareto_front,
)
from agentic_compression.experiments.arms import mean_and_spread, points, run_arm
from agentic_compression.experiments.measurements import Measured
from agentic_compression.experiments.scoring import weighted_score
from agentic_compression.experiments.session import Experiment
from agentic_compression.planning.base import PlanningGoal
from agentic_compression.planning.optuna_planner import OptunaPlanner
from agentic_compression.planning.space import BITS_TO_QUANTIZATION, SearchSpace

SCHEMES = ("balanced", "accuracy", "carbon", "efficiency")
SPARSITY = (0.1, 0.3, 0.5, 0.7)
QUICK_SPARSITY = (0.3, 0.5)
SCORE = Objective("weighted_score", "maximize")


def grid_space(quick: bool) -> SearchSpace:
    return SearchSpace(
        pruning=("none", "wanda"),
        sparsity_levels=QUICK_SPARSITY if quick else SPARSITY,
        quantizations=tuple(BITS_TO_QUANTIZATION[b] for b in (32, 16, 8, 4)),
    )


def run(experiment: Experiment) -> dict[str, Any]:
    log = experiment.log
    options = experiment.options
    space = grid_space(options.quick)
    baseline = experiment.measured_baseline()
    base = baseline.objectives
    trials_per_search = len(space.grid()) // 2
    searches: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for scheme in SCHEMES:

        def score(m: Measured, scheme: str = scheme) -> dict[str, float]:
            return {SCORE.name: weighted_score(m.objectives, base, scheme)}

        searches[scheme] = {}
        for seed in options.seeds:
            planner = OptunaPlanner(
                seed=seed, space=space, objectives=(SCORE,), use_seeds=False,
                n_startup_trials=max(2, trials_per_search // 2), name=f"offline ({scheme})",
            )  # fmt: skip
            trials = run_arm(planner, log, PlanningGoal(scheme), trials_per_search, score)
            searches[scheme][str(seed)] = [m.to_dict() for m in trials]
    return {
        "rq": "rq3",
        "title": "RQ3: weighting schemes, frontiers and picks",
        "options": options.to_dict(),
        "provenance": experiment.provenance,
        "baseline": baseline.to_dict(),
        "grid": [p.label for p in space.grid()],
        "trials_per_search": trials_per_search,
        "weights": {s: dict(SELECTION_PRESETS[s].values) for s in SCHEMES},
        "searches": searches,
    }


def _diversity(front: list[Point], norm: dict[str, dict[str, float]]) -> float:
    if len(front) < 2:
        return 0.0
    names = [o.name for o in DEFAULT_OBJECTIVES]
    vectors = [[norm[p.id][n] for n in names] for p in front]
    return statistics.fmean(math.dist(a, b) for a, b in itertools.combinations(vectors, 2))


def summary(data: dict[str, Any]) -> dict[str, Any]:
    base = data["baseline"]["objectives"]
    everything = points(
        [t for runs in data["searches"].values() for ts in runs.values() for t in ts]
    )
    norm = normalise(everything, DEFAULT_OBJECTIVES) if everything else {}
    labels = {
        t["recipe_hash"]: t["label"]
        for runs in data["searches"].values()
        for ts in runs.values()
        for t in ts
    }
    out: dict[str, Any] = {}
    seeds = [str(s) for s in data["options"]["seeds"]]
    for scheme in [s for s in SCHEMES if s in data["searches"]]:
        runs = data["searches"][scheme]
        picks, sizes, diversity = [], [], []
        for seed in [s for s in seeds if s in runs]:
            pts = points(runs[seed])
            if not pts:
                picks.append(f"seed {seed}: none measured")
                continue
            scored = sorted(
                pts,
                key=lambda p: (-round(weighted_score(p.values, base, scheme), 12), labels[p.id]),
            )
            picks.append(f"{seed}: {labels[scored[0].id]}")
            front = pareto_front(pts, DEFAULT_OBJECTIVES)
            sizes.append(float(len(front)))
            diversity.append(_diversity(front, norm))
        counts = Counter(p.split(": ", 1)[1] for p in picks if "none measured" not in p)
        modal, agree = max(counts.items(), key=lambda kv: (kv[1], kv[0])) if counts else (None, 0)
        best = max(
            everything,
            key=lambda p: (round(weighted_score(p.values, base, scheme), 12), labels[p.id]),
            default=None,
        )
        out[scheme] = {
            "picks": picks,
            "modal_pick": modal,
            "stability": agree / len(picks) if picks else None,
            "front_size": mean_and_spread(sizes),
            "diversity": mean_and_spread(diversity),
            "best_measured": None if best is None else labels[best.id],
            "best_measured_score": (
                None if best is None else weighted_score(best.values, base, scheme)
            ),
        }
    return {"schemes": out, "measured": len(everything)}


def render(data: dict[str, Any]) -> str:
    stats = summary(data)
    options = data["options"]
    lines = [
        f"# {data['title']}",
        "",
        f"Model {options['model']}, fidelity {options['fidelity']}. Each scheme steers its own "
        f"search (offline TPE on the weighted score) over the {len(data['grid'])}-point grid "
        f"({data['trials_per_search']} trials each), seeds "
        f"{', '.join(str(s) for s in options['seeds'])}; objectives as log2 ratios to the "
        f"uncompressed baseline before weighting. {stats['measured']} candidates measured.",
        "",
        "| scheme | weights (acc, lat, size, energy, CO2) | pick per seed | stability | "
        "frontier size | diversity | best of all measured (score) |",
        "|---|---|---|---|---|---|---|",
    ]
    for scheme, s in stats["schemes"].items():
        w = data["weights"][scheme]
        weights = ", ".join(f"{w.get(o.name, 0):g}" for o in DEFAULT_OBJECTIVES)
        stability = "-" if s["stability"] is None else f"{s['stability'] * 100:.0f}%"
        best = (
            "-" if s["best_measured"] is None
            else f"{s['best_measured']} ({s['best_measured_score']:+.3f})"
        )  # fmt: skip
        lines.append(
            f"| {scheme} | {weights} | {', '.join(s['picks']) or '-'} | {stability} | "
            f"{_ms(s['front_size'], '.1f')} | {_ms(s['diversity'], '.3f')} | {best} |"
        )
    return "\n".join([*lines, ""])


def _ms(stat: tuple[float | None, float | None, int] | list[Any], fmt: str) -> str:
    mean, spread, _ = stat
    if mean is None:
        return "-"
    return f"{format(mean, fmt)} ± {format(spread or 0.0, fmt)}"
