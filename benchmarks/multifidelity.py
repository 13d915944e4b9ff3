"""Multi-fidelity search against full-fidelity search on the same held-out grid, same planners.

Two phases (``.venv/bin/python benchmarks/multifidelity.py [grid|replay|all]``, default all):

1. **grid** (slow, about 40 minutes on 2 CPU cores, alone on the machine): every point of
   ``HELDOUT_SPACE`` (21 (recipe, runtime) candidates: no pruning, Wanda 30%, 30% of MLP channels,
   each in PyTorch fp32 / int8, llama.cpp Q8_0 / Q4_K_M / Q4_0, ONNX Runtime int8 / int4) is
   compressed and measured by the product's own evaluator at both fidelities: ``full`` as
   ``agentic-compress run`` measures by default (ARC-Easy 100 examples, 16 x 512-token perplexity
   windows, 1 warm-up + 3 latency repeats) and ``screen`` (``evaluation.screening``: a quarter of
   that, one latency repeat), each with its wall-clock seconds and metered energy. This grid was measured for this benchmark after the offline
   planner's seed list was frozen (``planning.space.SEED_POINTS`` unchanged since), so it is
   held out: nothing was tuned on it. Cached in ``results/multifidelity_grid.json``.
2. **replay** (minutes): the product's real search graph (``workflow.build_workflow``: planning,
   screening, promotion, Pareto update) runs with an evaluator that answers from the grid, for the
   offline planner (seeded and unseeded) and random search, over ``SEEDS``, once with
   ``--fidelity full`` and once with ``--fidelity halving``. After every measurement the search's
   cost so far (the grid's measured seconds and energy of each measurement it asked for) and the
   hypervolume of its full-fidelity front (fixed reference: ``default_reference`` of all full grid
   points, margin 0.1) are recorded.

Headline keys (``results/multifidelity.json``): ``cost_ratio_at_equal_front``: for the offline
planner, the evaluation seconds the full-fidelity search needs to reach 95% of the grid's
hypervolume / the seconds the multi-fidelity search needs for the same, mean over seeds (a seed
whose search never reaches it counts the whole grid's cost); the same for energy and for random
search. ``heldout``: per planner in full fidelity, ``trials_fraction_to_95pct_hv`` (trials to
reach 95% / grid size, mean and spread over seeds), and ``heldout_unseeded_vs_random``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"
GRID_FILE = RESULTS / "multifidelity_grid.json"
DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "benchmarks"
SEEDS = tuple(range(10))
TARGET = 0.95
FIDELITIES = ("screen", "full")


def heldout_space() -> Any:
    from agentic_compression.planning.space import SearchSpace

    return SearchSpace(
        pruning=("none", "wanda", "mlp-channels"),
        sparsity_levels=(0.3,),
        quantizations=(
            "fp32", "int8_weight_only", "gguf-q8_0", "gguf-q4_k_m", "gguf-q4_0", "onnx-int8",
            "onnx-int4",
        ),
    )  # fmt: skip


def full_config() -> Any:
    from agentic_compression.evaluation.accuracy import AccuracyConfig
    from agentic_compression.evaluation.candidate import MeasureConfig
    from agentic_compression.evaluation.latency import LatencyConfig
    from agentic_compression.evaluation.perplexity import PerplexityConfig

    # A cache of its own, new for each grid: the product's shared cache would answer some
    # accuracies from earlier runs and make those measurements look free.
    cache = Path(tempfile.mkdtemp(prefix="multifidelity-")) / "eval_cache.sqlite"
    accuracy = AccuracyConfig.from_cli("arc_easy", limit=100, data_dir=DATA_DIR)
    return MeasureConfig(
        latency=LatencyConfig(prompt_tokens=128, new_tokens=32, warmup=1, repeats=3),
        perplexity=PerplexityConfig(seq_len=512, windows=16),
        accuracy=dataclasses.replace(accuracy, cache_path=cache),
    )


# ----------------------------------------------------------------------------- phase 1: grid


def _load_grid() -> dict[str, Any]:
    if not GRID_FILE.exists():
        return {"settings": {}, "machine": {}, "rows": {}}
    return dict(json.loads(GRID_FILE.read_text()))


def evaluate_grid() -> None:
    import torch

    from agentic_compression.carbon.energy_meter import CodeCarbonMeter
    from agentic_compression.cli.app import _quiet_libraries
    from agentic_compression.core.objectives import objective_values
    from agentic_compression.core.provenance import machine_summary
    from agentic_compression.evaluation.screening import screening_config
    from agentic_compression.models import load_model
    from agentic_compression.workflow.evaluator import CandidateEvaluator

    _quiet_libraries()
    space, grid = heldout_space(), _load_grid()
    config = full_config()
    grid["settings"] = {
        "full": repr(config),
        "screen": repr(screening_config(config)),
        "torch_threads": torch.get_num_threads(),
        "load_average_before": [round(x, 2) for x in os.getloadavg()],
    }
    grid["machine"] = machine_summary()
    base = load_model("smollm2-135m")
    evaluator = CandidateEvaluator(base, config, CodeCarbonMeter("USA"))
    todo = [
        (point, fidelity)
        for point in space.grid()
        for fidelity in FIDELITIES
        if fidelity not in grid["rows"].get(space.to_recipe(point).hash, {})
    ]
    if todo:  # untimed: a process's first candidate pays one-off costs
        from runtime_table import warm_up_process

        warm_up_process(base, evaluator.meter)
    print(f"{len(todo)} measurements to take", flush=True)
    for index, (point, fidelity) in enumerate(todo, start=1):
        recipe = space.to_recipe(point)
        started = time.perf_counter()
        result = evaluator.evaluate(recipe, lambda _: None, fidelity=fidelity)
        seconds = time.perf_counter() - started
        row = grid["rows"].setdefault(recipe.hash, {"label": point.label})
        row[fidelity] = {
            "status": result.status,
            "error": result.error,
            "seconds": round(seconds, 2),
            "energy_kwh": sum(r.energy_kwh for r in result.energy),
            "objectives": objective_values(result) if result.status == "ok" else None,
            "result": result.model_dump(mode="json"),
        }
        GRID_FILE.write_text(json.dumps(grid, indent=1))
        summary = row[fidelity]["objectives"] or result.error
        print(
            f"[{index}/{len(todo)}] {point.label} {fidelity}: {seconds:.0f} s {summary}", flush=True
        )
    grid["settings"]["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    GRID_FILE.write_text(json.dumps(grid, indent=1))


# ----------------------------------------------------------------------------- phase 2: replay


def _replay_evaluator(rows: dict[str, Any]) -> Any:
    from agentic_compression.core.metrics import CandidateResult
    from agentic_compression.workflow.evaluator import Evaluator

    class ReplayEvaluator(Evaluator):
        """Answers each measurement from the grid and logs what it would have cost."""

        def __init__(self) -> None:
            self.log: list[tuple[str, str]] = []

        @property
        def config_hash(self) -> str:
            return "multifidelity-grid"

        def evaluate(self, recipe, progress, on_energy=None, fidelity="full"):  # type: ignore[no-untyped-def]
            self.log.append((recipe.hash, fidelity))
            return CandidateResult.model_validate(rows[recipe.hash][fidelity]["result"])

    return ReplayEvaluator()


def _search(planner: Any, rows: dict[str, Any], mode: str) -> list[tuple[str, str]]:
    """One search with the product's graph; the measurements it asked for, in order."""
    from agentic_compression.evaluation.screening import FidelitySchedule
    from agentic_compression.planning.base import PlanningGoal
    from agentic_compression.results.store import SqliteResultsStore
    from agentic_compression.workflow import Budgets, RunContext, build_workflow, initial_state
    from agentic_compression.workflow.graph import run_config
    from agentic_compression.workflow.runner import SearchSettings, create_run

    evaluator = _replay_evaluator(rows)
    with tempfile.TemporaryDirectory() as folder:
        store = SqliteResultsStore(Path(folder) / "results.sqlite")
        n = len(rows)
        context = RunContext(
            run_dir=Path(folder) / "run", goal=PlanningGoal(), budgets=Budgets(max_trials=n),
            proposals_per_call=1, schedule=FidelitySchedule(mode),  # type: ignore[arg-type]
        )  # fmt: skip
        create_run(store, "r", SearchSettings(max_trials=n), evaluator.config_hash)
        workflow = build_workflow(planner, evaluator, store, None)
        workflow.invoke(initial_state("r"), run_config("r", 3 * n), context=context)
        store.close()
    return list(evaluator.log)


def _curve(log: list[tuple[str, str]], rows: dict[str, Any], hv_of: Any) -> list[dict[str, float]]:
    """Cost so far and full-front hypervolume share after each measurement."""
    seconds = energy = 0.0
    full: list[str] = []
    out = []
    for recipe_hash, fidelity in log:
        entry = rows[recipe_hash][fidelity]
        seconds += entry["seconds"]
        energy += entry["energy_kwh"]
        if fidelity == "full" and entry["status"] == "ok":
            full.append(recipe_hash)
        out.append({"seconds": seconds, "energy_kwh": energy, "hv": hv_of(full)})
    return out


def _cost_to(curve: list[dict[str, float]], key: str, fallback: float) -> tuple[float, bool]:
    reached = next((c[key] for c in curve if c["hv"] >= TARGET), None)
    return (reached, True) if reached is not None else (fallback, False)


def replay_main() -> None:
    from agentic_compression.core.pareto import (
        DEFAULT_OBJECTIVES,
        Point,
        default_reference,
        hypervolume,
    )
    from agentic_compression.core.provenance import machine_summary
    from agentic_compression.planning.optuna_planner import OptunaPlanner
    from agentic_compression.planning.random_planner import RandomPlanner

    space, grid = heldout_space(), _load_grid()
    rows = grid["rows"]
    missing = [
        p.label
        for p in space.grid()
        if any(f not in rows.get(space.to_recipe(p).hash, {}) for f in FIDELITIES)
    ]
    if missing:
        raise SystemExit(f"grid incomplete, run the grid phase first; missing: {missing}")
    objectives = DEFAULT_OBJECTIVES
    points = {
        h: Point(h, r["full"]["objectives"]) for h, r in rows.items() if r["full"]["status"] == "ok"
    }
    reference = default_reference(list(points.values()), objectives, margin=0.1)
    whole = hypervolume(list(points.values()), objectives, reference)

    def hv_of(hashes: list[str]) -> float:
        return hypervolume([points[h] for h in hashes], objectives, reference) / whole

    grid_seconds = sum(r[f]["seconds"] for r in rows.values() for f in FIDELITIES)
    grid_energy = sum(r[f]["energy_kwh"] for r in rows.values() for f in FIDELITIES)
    planners = {
        "offline": lambda seed: OptunaPlanner(seed=seed, space=space, objectives=objectives),
        "offline-unseeded": lambda seed: OptunaPlanner(
            seed=seed, space=space, objectives=objectives, use_seeds=False
        ),
        "random": lambda seed: RandomPlanner(seed=seed, space=space),
    }
    n = len(rows)
    report: dict[str, Any] = {}
    for name, make in planners.items():
        per_mode: dict[str, Any] = {}
        for mode in ("full", "halving"):
            started = time.perf_counter()
            curves = [_curve(_search(make(seed), rows, mode), rows, hv_of) for seed in SEEDS]
            trials = []
            for curve in curves:  # full mode: each measurement is one trial
                reached = next((i + 1 for i, c in enumerate(curve) if c["hv"] >= TARGET), None)
                trials.append((reached or n + 1) / n)
            per_mode[mode] = {
                "seconds_to_target": [_cost_to(c, "seconds", grid_seconds) for c in curves],
                "energy_kwh_to_target": [_cost_to(c, "energy_kwh", grid_energy) for c in curves],
                "final_hv": [round(c[-1]["hv"], 4) for c in curves],
                "measurements": [len(c) for c in curves],
                "trials_fraction_to_95pct_hv": trials,
                "replay_seconds": round(time.perf_counter() - started, 1),
            }
            print(f"{name} {mode}: {per_mode[mode]['seconds_to_target']}", flush=True)
        ratios = {
            key: [
                f[0] / h[0]
                for f, h in zip(per_mode["full"][key], per_mode["halving"][key], strict=True)
            ]
            for key in ("seconds_to_target", "energy_kwh_to_target")
        }
        fractions = per_mode["full"]["trials_fraction_to_95pct_hv"]
        report[name] = {
            "cost_ratio_seconds": _spread(ratios["seconds_to_target"]),
            "cost_ratio_energy": _spread(ratios["energy_kwh_to_target"]),
            "trials_fraction_to_95pct_hv": _spread(fractions),
            **per_mode,
        }
    unseeded = report["offline-unseeded"]["trials_fraction_to_95pct_hv"]["mean"]
    result = {
        "description": __doc__,
        "cost_ratio_at_equal_front": report["offline"]["cost_ratio_seconds"]["mean"],
        "cost_ratio_at_equal_front_energy": report["offline"]["cost_ratio_energy"]["mean"],
        "heldout_unseeded_vs_random": round(
            report["random"]["trials_fraction_to_95pct_hv"]["mean"] / unseeded, 4
        ),
        "grid_size": n,
        "target_hv_share": TARGET,
        "seeds": list(SEEDS),
        "offline_seeds": [p.label for p in space.seeds()],
        "grid_seconds_both_fidelities": round(grid_seconds, 1),
        "planners": report,
        "grid": {
            r["label"]: {
                f: {k: r[f][k] for k in ("status", "error", "seconds", "energy_kwh", "objectives")}
                for f in FIDELITIES
            }
            for r in rows.values()
        },
        "grid_settings": grid["settings"],
        "grid_machine": grid["machine"],
        "replay_machine": machine_summary(),
    }
    (RESULTS / "multifidelity.json").write_text(json.dumps(result, indent=1))
    (RESULTS / "multifidelity.md").write_text(_markdown(result))
    print((RESULTS / "multifidelity.md").read_text())


def _spread(values: list[float]) -> dict[str, float]:
    return {
        "mean": round(statistics.mean(values), 4),
        "stdev": round(statistics.stdev(values), 4) if len(values) > 1 else 0.0,
        "min": round(min(values), 4),
        "max": round(max(values), 4),
    }


def _markdown(result: dict[str, Any]) -> str:
    lines = [
        "# Multi-fidelity against full-fidelity search on a held-out grid (measured, replayed)",
        "",
        f"Grid: {result['grid_size']} (recipe, runtime) candidates of the embedded model, each "
        f"measured at both fidelities on {result['grid_machine'].get('cpu')} "
        f"({result['grid_seconds_both_fidelities']} s in all). Seeds: {len(result['seeds'])}. "
        f"Target: {result['target_hv_share']:.0%} of the grid's full-fidelity hypervolume.",
        "",
        f"**cost_ratio_at_equal_front = {result['cost_ratio_at_equal_front']}** (offline planner, "
        f"evaluation seconds, full / multi-fidelity; energy: "
        f"{result['cost_ratio_at_equal_front_energy']}); "
        f"**heldout_unseeded_vs_random = {result['heldout_unseeded_vs_random']}**",
        "",
        "| planner | cost ratio (s), mean [min, max] | cost ratio (energy) | trials to 95% HV, "
        "full fidelity (fraction of grid, mean +- sd) | final HV full / halving |",
        "|---|---|---|---|---|",
    ]
    for name, p in result["planners"].items():
        s, e, t = p["cost_ratio_seconds"], p["cost_ratio_energy"], p["trials_fraction_to_95pct_hv"]
        lines.append(
            f"| {name} | {s['mean']} [{s['min']}, {s['max']}] | {e['mean']} | "
            f"{t['mean']} +- {t['stdev']} | {statistics.mean(p['full']['final_hv']):.3f} / "
            f"{statistics.mean(p['halving']['final_hv']):.3f} |"
        )
    lines += [
        "",
        "| candidate | full s | screen s | full accuracy | screen accuracy | full ms/token | "
        "screen ms/token |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, row in result["grid"].items():
        f, s = row["full"], row["screen"]
        fo, so = f["objectives"] or {}, s["objectives"] or {}
        lines.append(
            f"| {label} | {f['seconds']} | {s['seconds']} | {fo.get('accuracy', f['error'])} | "
            f"{so.get('accuracy', s['error'])} | {round(fo.get('latency_ms', 0), 2)} | "
            f"{round(so.get('latency_ms', 0), 2)} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    phase = sys.argv[1] if len(sys.argv) > 1 else "all"
    if phase in ("grid", "all"):
        evaluate_grid()
    if phase in ("replay", "all"):
        replay_main()
