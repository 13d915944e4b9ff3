"""Decode speed of structurally pruned models, interleaved so that machine drift cancels out.

Run: ``.venv/bin/python benchmarks/structured_latency.py [--model SPEC --name NAME]`` (about 10
minutes on 2 CPU cores for the embedded model, alone on the machine). Writes
``benchmarks/results/structured_latency.{json,md}``; with ``--model`` (any model ``load_model``
takes, e.g. a folder from ``shaped_model.py``), only the unpruned model and ``mlp-25`` are measured,
into ``structured_latency_NAME.{json,md}``.

``structured_pruning.py`` measures each candidate once, one after another, so a slow minute of the
machine lands on one row. Here every candidate of a runtime is deployed first and then timed in
rounds, A B C D A B C D ..., 128-token prompt and 32 decode steps per round (one untimed round
first), so every candidate sees the same machine. Reported per candidate: the median over rounds
of the per-round median decode ms/token, and the ratio to the unpruned model.

Candidates: the unpruned model; ``mlp_channels`` at 25% with channels kept in multiples of 32
(1152 of 1536) and of 256 (1024: 33% removed, every matrix width a multiple of 256, the
super-block of llama.cpp's K-quants and the width its repacked CPU kernels handle best);
``drop_layers`` 10% (27 of 30 blocks).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
from pathlib import Path
from typing import Any

from runtime_table import RESULTS

ROUNDS = 15
CANDIDATES: dict[str, list[dict[str, Any]]] = {
    "unpruned": [],
    "mlp-25 (x32: 1152)": [{"method": "mlp_channels", "fraction": 0.25, "multiple_of": 32}],
    "mlp-33 (x256: 1024)": [{"method": "mlp_channels", "fraction": 0.25, "multiple_of": 256}],
    "drop-10": [{"method": "drop_layers", "fraction": 0.1}],
}
RUNTIMES: dict[str, Any] = {
    "torch-fp32": None,
    "llamacpp-Q8_0": {"name": "llamacpp", "quant": "Q8_0"},
    "llamacpp-Q4_0": {"name": "llamacpp", "quant": "Q4_0"},
    "onnxruntime-int8": {"name": "onnxruntime", "precision": "int8"},
}


def main() -> None:
    from agentic_compression.cli.app import _quiet_libraries
    from agentic_compression.compression import CompressionContext, compress
    from agentic_compression.compression.recipe import Recipe
    from agentic_compression.core.provenance import machine_summary
    from agentic_compression.evaluation.latency import LatencyConfig, latency_prompt
    from agentic_compression.models import load_model
    from agentic_compression.runtimes import runtime_for

    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--name", default="")
    args = parser.parse_args()
    if args.model != "smollm2-135m" and not args.name:
        parser.error("--model needs --name (the results file's suffix)")
    candidates = (
        CANDIDATES
        if not args.name
        else {k: v for k, v in CANDIDATES.items() if k in ("unpruned", "mlp-25 (x32: 1152)")}
    )
    stem = f"structured_latency_{args.name}" if args.name else "structured_latency"
    _quiet_libraries()
    load_before = os.getloadavg()
    base = load_model(args.model)
    config = LatencyConfig(prompt_tokens=128, new_tokens=32)
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="structured-latency-") as scratch:
        for runtime_name, runtime in RUNTIMES.items():
            deployments = {}
            for name, steps in candidates.items():
                recipe = Recipe.from_steps(steps, name, runtime)
                model = base.fresh_copy()
                context = CompressionContext(base.tokenizer)
                compress(model, recipe, context)
                folder = Path(scratch) / f"{runtime_name}-{len(deployments)}"
                folder.mkdir()
                deployment = runtime_for(recipe.runtime).deploy(
                    model, base, recipe.runtime, context, folder
                )
                deployments[name] = (deployment, deployment.size_stats().serialized_bytes)
            prompt = latency_prompt(next(iter(deployments.values()))[0], config)
            rounds: dict[str, list[float]] = {name: [] for name in deployments}
            for round_index in range(ROUNDS + 1):
                for name, (deployment, _) in deployments.items():
                    times = deployment.time_generation(prompt, config.new_tokens)
                    if round_index:  # round 0 is the untimed warm-up
                        rounds[name].append(statistics.median(times.decode_ms))
            reference = statistics.median(rounds["unpruned"])
            results[runtime_name] = {
                name: {
                    "decode_ms_p50": round(statistics.median(values), 3),
                    "decode_ms_spread": round(max(values) / min(values), 3),
                    "speedup": round(reference / statistics.median(values), 3),
                    "size_bytes": deployments[name][1],
                }
                for name, values in rounds.items()
            }
            for deployment, _ in deployments.values():
                deployment.close()
            print(runtime_name, json.dumps(results[runtime_name]), flush=True)
    machine = machine_summary()
    machine.update(
        loadavg_before=[round(x, 2) for x in load_before],
        loadavg_after=[round(x, 2) for x in os.getloadavg()],
        settings=f"128-token prompt, 32 decode steps, {ROUNDS} interleaved rounds + 1 untimed",
    )
    RESULTS.mkdir(exist_ok=True)
    machine["model"] = args.model
    payload = {"machine": machine, "by_runtime": results}
    (RESULTS / f"{stem}.json").write_text(json.dumps(payload, indent=2))
    lines = [
        "# Decode speed after structured pruning, candidates interleaved (measured)",
        "",
        f"Machine: {machine['cpu']}, {machine['cpu_count']} cores. Load average before/after: "
        f"{machine['loadavg_before']} / {machine['loadavg_after']}. {machine['settings']}.",
        f"Model: {args.model}.",
        "",
        "| runtime | candidate | size MB | decode p50 ms/token | max/min over rounds | speed-up |",
        "|---|---|---|---|---|---|",
    ]
    for runtime_name, rows in results.items():
        for name, row in rows.items():
            lines.append(
                f"| {runtime_name} | {name} | {row['size_bytes'] / 1e6:.1f} "
                f"| {row['decode_ms_p50']} | {row['decode_ms_spread']} | {row['speedup']}x |"
            )
    (RESULTS / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print((RESULTS / f"{stem}.md").read_text())


if __name__ == "__main__":
    main()
