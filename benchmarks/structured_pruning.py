"""Structured pruning in the runtimes that serve it: does removing channels or layers pay off there?

Run: ``.venv/bin/python benchmarks/structured_pruning.py`` (about 30 minutes on 2 CPU cores, alone on
the machine). Writes ``benchmarks/results/structured_pruning.{json,md}`` after every row.

For each runtime (PyTorch eager fp32, llama.cpp Q8_0, ONNX Runtime GenAI int8) the embedded
SmolLM2-135M is measured as it is and after each structured recipe, side by side in one process:
``mlp_channels`` 25% (1536 -> 1152 MLP channels in all 30 layers) and ``drop_layers`` 10% (3 of 30
blocks), both calibrated on the shipped GSM8K *train* text (never evaluation text). No recovery
training: these rows show what removal alone costs and saves.

Per row, measured in the runtime itself (same settings as ``runtime_table.py``): artefact size,
perplexity (WikiText-2 test, 16 x 512 tokens), ARC-Easy acc and HellaSwag acc_norm (200 examples
each, 0-shot, from ``../shared/benchmarks``), decode ms/token p50/p90 (128-token prompt, 32 new tokens,
1 warm-up + 5 repeats), energy per 1k tokens (CodeCarbon's estimate on this machine).

Its rows are measured one after another, so a slow minute of the machine lands on one row's latency;
``structured_latency.py`` times the same candidates interleaved and is the figure to quote for speed.

Headline keys, per runtime: ``size_cut`` (1 - pruned size / unpruned size in that runtime) and
``decode_speedup`` (unpruned decode p50 / pruned decode p50) for each structured recipe.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

from runtime_table import RESULTS, TASKS, _row, table_config, warm_up_process

STRUCTURED = {
    "mlp-25": [{"method": "mlp_channels", "fraction": 0.25}],
    "drop-10": [{"method": "drop_layers", "fraction": 0.1}],
}
RUNTIMES = {
    "torch-fp32": (None, [{"method": "cast", "dtype": "float32"}]),
    "llamacpp-Q8_0": ({"name": "llamacpp", "quant": "Q8_0"}, []),
    "onnxruntime-int8": ({"name": "onnxruntime", "precision": "int8"}, []),
}


def candidates() -> list[tuple[str, str, Any]]:
    from agentic_compression.compression.recipe import Recipe

    found = []
    for runtime_name, (runtime, tail) in RUNTIMES.items():
        for name, steps in {"unpruned": [], **STRUCTURED}.items():
            label = f"{name}@{runtime_name}"
            found.append((runtime_name, name, Recipe.from_steps([*steps, *tail], label, runtime)))
    return found


def main() -> None:
    from agentic_compression.carbon.energy_meter import CodeCarbonMeter
    from agentic_compression.cli.app import _quiet_libraries
    from agentic_compression.core.provenance import machine_summary
    from agentic_compression.evaluation.candidate import evaluate_candidate
    from agentic_compression.models import load_model

    _quiet_libraries()
    wanted = sys.argv[1:]
    load_before = os.getloadavg()
    base = load_model("smollm2-135m")
    meter = CodeCarbonMeter("USA")
    config = table_config()
    warm_up_process(base, meter)
    machine = machine_summary()
    machine.update(
        loadavg_before=[round(x, 2) for x in load_before],
        model=f"{base.spec} ({base.source})",
        settings="as runtime_table.py; structured steps calibrated on 32 x 256 tokens of the "
        "shipped GSM8K train text; no recovery training",
    )
    rows: list[dict[str, Any]] = []
    for runtime_name, name, recipe in candidates():
        if wanted and name not in wanted and runtime_name not in wanted:
            continue
        started = time.perf_counter()
        result = evaluate_candidate(base, recipe, config, meter)
        print(f"{recipe.name}: {result.status} in {time.perf_counter() - started:.0f}s", flush=True)
        row = _row(str(recipe.name), result)
        row.update(runtime=runtime_name, recipe=name, seconds=round(time.perf_counter() - started))
        row["steps"] = [s.summary for s in result.steps]
        rows.append(row)
        summary = summarise(rows)
        machine["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
        RESULTS.mkdir(exist_ok=True)
        payload = {"machine": machine, **summary, "rows": rows}
        (RESULTS / "structured_pruning.json").write_text(json.dumps(payload, indent=2))
        (RESULTS / "structured_pruning.md").write_text(markdown(machine, summary, rows))
    print((RESULTS / "structured_pruning.md").read_text())


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per runtime and structured recipe: size cut and decode speed-up against the unpruned row."""
    by_key = {(r["runtime"], r["recipe"]): r for r in rows if r["status"] == "ok"}
    summary: dict[str, dict[str, dict[str, float]]] = {}
    for (runtime, recipe), row in by_key.items():
        reference = by_key.get((runtime, "unpruned"))
        if recipe == "unpruned" or reference is None:
            continue
        retention = [row["accuracy"][t] / reference["accuracy"][t] for t in TASKS]
        summary.setdefault(runtime, {})[recipe] = {
            "size_cut": round(1 - row["size_bytes"] / reference["size_bytes"], 4),
            "decode_speedup": round(reference["decode_ms_p50"] / row["decode_ms_p50"], 3),
            "perplexity_ratio": round(row["perplexity"] / reference["perplexity"], 4),
            "accuracy_retention": round(sum(retention) / len(retention), 4),
        }
    return {"by_runtime": summary}


def markdown(machine: dict[str, Any], summary: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    lines = [
        "# Structured pruning in the runtimes that serve it (measured)",
        "",
        f"Machine: {machine['cpu']}, {machine['cpu_count']} cores, torch threads "
        f"{machine['torch_threads']}. Load average before/after: {machine['loadavg_before']} / "
        f"{machine.get('loadavg_after')}.",
        f"Settings: {machine['settings']}.",
        "",
        "| runtime | recipe | size MB | ppl | ARC-E | HS | decode p50 ms | p90 | Wh/1k tok |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        if row["status"] != "ok":
            lines.append(f"| {row['runtime']} | {row['recipe']} | failed: {row['error']} |")
            continue
        acc = row["accuracy"]
        lines.append(
            f"| {row['runtime']} | {row['recipe']} | {row['size_bytes'] / 1e6:.1f} "
            f"| {row['perplexity']:.2f} | {acc.get('arc_easy', '')} | {acc.get('hellaswag', '')} "
            f"| {row['decode_ms_p50']} | {row['decode_ms_p90']} | {row['energy_wh_per_1k_tokens']} |"
        )
    lines += ["", "Against the unpruned model in the same runtime:", ""]
    lines += ["| runtime | recipe | size cut | decode speed-up | ppl ratio | accuracy retention |"]
    lines += ["|---|---|---|---|---|---|"]
    for runtime, recipes in summary["by_runtime"].items():
        for recipe, s in recipes.items():
            lines.append(
                f"| {runtime} | {recipe} | {s['size_cut']:.1%} | {s['decode_speedup']}x "
                f"| {s['perplexity_ratio']} | {s['accuracy_retention']} |"
            )
    lines += ["", "What each step did:", ""]
    for row in rows:
        for step in row.get("steps", []):
            lines.append(f"- {row['candidate']}: {step}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
