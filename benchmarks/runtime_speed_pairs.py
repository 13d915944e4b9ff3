"""Decode speed of llama.cpp candidates against torch fp32, interleaved so that drift cancels.

Run: ``.venv/bin/python benchmarks/runtime_speed_pairs.py [gguf presets...]`` (about 4 minutes).
Writes ``benchmarks/results/runtime_speed_pairs.{json,md}``.

Why: on a shared VM the host's memory bandwidth drifts over minutes (torch fp32 decode measured
42.6, 49.0 and 66.6 ms/token at three times of the same afternoon, llama.cpp Q8_0 16.3 to 32.0),
so a table measured candidate after candidate over an hour mixes machine states into its ratios.
Here every deployment is loaded once, then measured round after round in rotating order
(latency: 128-token prompt, 32 decode steps, 1 warm-up + 3 repeats per round); the speedup of a
candidate is the median over rounds of (fp32 p50 / candidate p50) *within the round*.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"
CANDIDATES = ["gguf-f16", "gguf-q8_0", "gguf-q6_k", "gguf-q5_0", "gguf-q4_k_m", "gguf-q4_0"]
ROUNDS = 7


def main() -> None:
    from agentic_compression.cli.app import _quiet_libraries
    from agentic_compression.compression import CompressionContext, preset
    from agentic_compression.core.provenance import machine_summary
    from agentic_compression.evaluation.latency import LatencyConfig, measure_latency
    from agentic_compression.models import load_model
    from agentic_compression.runtimes import Deployment, runtime_for
    from agentic_compression.runtimes.torch_eager import TorchDeployment

    _quiet_libraries()
    names = sys.argv[1:] or CANDIDATES
    load_before = os.getloadavg()
    base = load_model("smollm2-135m")
    config = LatencyConfig(prompt_tokens=128, new_tokens=32, warmup=1, repeats=3)
    deployments: dict[str, Deployment] = {
        "fp32 (torch)": TorchDeployment(base.model, base.tokenizer)
    }
    work = Path(tempfile.mkdtemp(prefix="speed-pairs-"))
    for name in names:
        recipe = preset(name)
        (work / name).mkdir()
        deployments[name] = runtime_for(recipe.runtime).deploy(
            base.fresh_copy(), base, recipe.runtime, CompressionContext(base.tokenizer), work / name
        )
    rounds: list[dict[str, float]] = []
    order = list(deployments)
    for index in range(ROUNDS):
        shift = index % len(order)
        measured = {}
        for name in order[shift:] + order[:shift]:
            measured[name] = measure_latency(deployments[name], config).decode_ms_median
        rounds.append(measured)
        print(json.dumps({k: round(v, 2) for k, v in measured.items()}), flush=True)
    reference = "fp32 (torch)"
    rows: list[dict[str, Any]] = []
    for name in order:
        values = [r[name] for r in rounds]
        ratios = [r[reference] / r[name] for r in rounds]
        rows.append(
            {
                "candidate": name,
                "decode_ms_p50_per_round": [round(v, 2) for v in values],
                "decode_ms_median_of_rounds": round(statistics.median(values), 2),
                "speedup_vs_fp32_median": round(statistics.median(ratios), 3),
                "speedup_vs_fp32_min": round(min(ratios), 3),
                "speedup_vs_fp32_max": round(max(ratios), 3),
            }
        )
    machine = machine_summary()
    machine.update(
        loadavg_before=[round(x, 2) for x in load_before],
        loadavg_after=[round(x, 2) for x in os.getloadavg()],
        settings=f"{ROUNDS} rounds in rotating order; per round per deployment: 128-token prompt, "
        "32 decode steps, 1 warm-up + 3 repeats; threads 2 everywhere",
    )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "runtime_speed_pairs.json").write_text(
        json.dumps({"machine": machine, "rows": rows}, indent=2)
    )
    lines = [
        "# Decode speed vs torch fp32, interleaved rounds (measured)",
        "",
        f"Machine: {machine['cpu']}, {machine['cpu_count']} cores. Load average before/after: "
        f"{machine['loadavg_before']} / {machine['loadavg_after']}. {machine['settings']}.",
        "",
        "| candidate | decode ms/token (median of rounds) | speedup vs fp32 (median of per-round "
        "ratios) | min | max |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['candidate']} | {row['decode_ms_median_of_rounds']} "
            f"| {row['speedup_vs_fp32_median']} | {row['speedup_vs_fp32_min']} "
            f"| {row['speedup_vs_fp32_max']} |"
        )
    (RESULTS / "runtime_speed_pairs.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    for deployment in deployments.values():
        deployment.close()


if __name__ == "__main__":
    main()
