"""Trials per hour of a search with 1 and 2 Ray workers, side by side, and the local executor.

``.venv/bin/python benchmarks/parallel_throughput.py`` runs the real CLI three times, one after the
other, on the embedded SmolLM2-135M with the same small per-trial work and the same planner and seed
(the offline planner proposes its seeds first, so every arm measures the same recipes; the JSON
lists them per arm to show it):

- ``ray-1``: ``--executor ray --workers 1`` (one worker, one CPU),
- ``ray-2``: ``--executor ray --workers 2`` (two workers, one CPU each: both cores),
- ``local``: the default executor (this process, one candidate at a time, torch on both cores).

Each arm starts its own local Ray instance (``ray.init`` inside the CLI) and loads the model in each
worker: that start-up is part of the arm's wall time. Reported per arm: wall seconds of the whole
command, the search's own span (first trial stored to last, from the store's timestamps),
trials per hour over both, and the mean decode latency measured (parallel workers share the
machine's memory bandwidth, so their latencies are higher: the price of measuring in parallel).
``speedup_2_workers`` = trials/hour of ray-2 over ray-1 (whole command). Writes
``results/parallel_throughput.json``. Run it alone on the machine.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"
DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "benchmarks"
TRIALS = 6
WORK = [
    "--tasks", "arc_easy", "--limit", "20", "--ppl-windows", "4", "--latency-new-tokens", "16",
    "--latency-repeats", "2", "--runtime", "torch", "--planner", "offline", "--seed", "0",
    "--patience", "50", "--carbon-budget-kg", "1.0", "--max-trials", str(TRIALS),
]  # fmt: skip
ARMS = {
    "ray-1": ["--executor", "ray", "--workers", "1"],
    "ray-2": ["--executor", "ray", "--workers", "2"],
    "local": [],
}


def _arm(name: str, extra: list[str], home: Path) -> dict[str, Any]:
    from agentic_compression.results.store import make_results_store

    runs = home / name
    url = f"sqlite:///{runs / 'results.sqlite'}"
    env = {**os.environ, "AGENTIC_COMPRESSION_DATA": str(DATA_DIR), "RAY_USAGE_STATS_ENABLED": "0",
           "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "disabled"}  # fmt: skip
    command = [str(Path(sys.executable).with_name("agentic-compress")), "run", "--model",
               "smollm2-135m", "--run-id", name, "--runs-dir", str(runs), *WORK, *extra]  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{name} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    with make_results_store(url) as store:
        trials = store.list_trials(name)
    stamps = sorted(datetime.fromisoformat(t.created_at) for t in trials)
    first_start = min(datetime.fromisoformat(t.result.provenance.started_at) for t in trials)
    span = (stamps[-1] - first_start).total_seconds()
    latencies = [t.objectives["latency_ms"] for t in trials if t.objectives]
    return {
        "trials": len(trials),
        "failed": sum(t.status != "ok" for t in trials),
        "recipes": sorted(t.recipe.label for t in trials),
        "workers": sorted({t.result.provenance.worker or "" for t in trials}),
        "wall_s": round(wall, 1),
        "search_span_s": round(span, 1),
        "trials_per_hour": round(len(trials) / wall * 3600, 1),
        "trials_per_hour_search_span": round(len(trials) / span * 3600, 1),
        "mean_trial_s": round(statistics.mean(t.seconds for t in trials), 1),
        "mean_decode_ms_per_token": round(statistics.mean(latencies), 2),
    }


def main() -> None:
    from agentic_compression.core.provenance import git_revision, machine_summary

    arms: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as home:
        for name, extra in ARMS.items():
            print(f"{name} ...", flush=True)
            arms[name] = _arm(name, extra, Path(home))
            print(json.dumps(arms[name]), flush=True)
    one, two, local = arms["ray-1"], arms["ray-2"], arms["local"]
    result = {
        "what": f"{TRIALS}-trial search on the embedded SmolLM2-135M per arm, run one after the other",
        "per_trial_work": " ".join(WORK),
        "arms": arms,
        "same_recipes_in_every_arm": one["recipes"] == two["recipes"] == local["recipes"],
        "speedup_2_workers": round(two["trials_per_hour"] / one["trials_per_hour"], 3),
        "speedup_2_workers_search_span": round(
            two["trials_per_hour_search_span"] / one["trials_per_hour_search_span"], 3
        ),
        "ray_2_workers_vs_local": round(two["trials_per_hour"] / local["trials_per_hour"], 3),
        "decode_latency_ratio_2_workers_vs_1": round(
            two["mean_decode_ms_per_token"] / one["mean_decode_ms_per_token"], 3
        ),
        "machine": machine_summary(),
        "git_revision": git_revision(),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "parallel_throughput.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k not in ("arms", "machine")}, indent=2))


if __name__ == "__main__":
    main()
