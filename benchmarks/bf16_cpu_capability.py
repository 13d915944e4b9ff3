"""Why bf16 (and int8 weight-only) trials can take several times as long as fp32 on some CPUs.

A new user's ``make run`` on an Intel Xeon without AVX512-BF16 spent 83 s on the fp32 trial and 355 s
on bf16. Hypothesis: without native bf16 instructions PyTorch converts bf16 to fp32 in software on
every matrix multiply. This machine has AVX512-BF16, so the script measures the same model with
PyTorch's kernels restricted to AVX2 (``ATEN_CPU_CAPABILITY=avx2`` and ``ONEDNN_MAX_CPU_ISA=AVX2``,
which oneDNN's bf16 matmuls obey: what a CPU without AVX-512 gets)
and unrestricted, each in its own process, interleaved over rounds: decode ms/token (128-token
prompt, 32 steps) and the time of a perplexity pass (4 x 512 tokens: the shape of lm-eval's
log-likelihood work).

Run alone: ``.venv/bin/python benchmarks/bf16_cpu_capability.py`` (about 6 minutes on 2 cores).
Writes ``benchmarks/results/bf16_cpu_capability.{json,md}``.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"
CAPABILITIES = ("avx2", "default")  # "default": whatever the CPU has (AVX-512 / BF16 here)
RECIPES = ("fp32", "bf16", "int8-weight-only")
ROUNDS = 2


def measure(recipe_name: str) -> dict[str, float]:
    """In this process: compress, then time decode and a perplexity pass."""
    import time

    from agentic_compression.cli.app import _quiet_libraries
    from agentic_compression.compression import CompressionContext, compress, preset
    from agentic_compression.evaluation.latency import LatencyConfig, measure_latency
    from agentic_compression.evaluation.perplexity import PerplexityConfig, perplexity
    from agentic_compression.models import load_model
    from agentic_compression.runtimes.torch_eager import TorchDeployment

    _quiet_libraries()
    base = load_model("smollm2-135m")
    model = base.fresh_copy()
    compress(model, preset(recipe_name), CompressionContext(base.tokenizer))
    deployment = TorchDeployment(model, base.tokenizer)
    latency = measure_latency(deployment, LatencyConfig(warmup=1, repeats=3))
    started = time.perf_counter()
    perplexity(deployment, PerplexityConfig(seq_len=512, windows=4))
    return {
        "decode_ms_p50": latency.decode_ms_median,
        "prefill_ms_p50": latency.prefill_ms_median,
        "perplexity_pass_s": time.perf_counter() - started,
    }


def main() -> None:
    from agentic_compression.core.provenance import machine_summary

    rows: dict[str, dict[str, list[dict[str, float]]]] = {}
    for _ in range(ROUNDS):
        for capability in CAPABILITIES:
            for recipe in RECIPES:
                env = {**os.environ}
                if capability != "default":  # both PyTorch's own kernels and oneDNN's matmuls
                    env["ATEN_CPU_CAPABILITY"] = capability
                    env["ONEDNN_MAX_CPU_ISA"] = capability.upper()
                done = subprocess.run(
                    [sys.executable, __file__, "--measure", recipe],
                    env=env, capture_output=True, text=True, check=True,
                )  # fmt: skip
                result = json.loads(done.stdout.strip().splitlines()[-1])
                rows.setdefault(capability, {}).setdefault(recipe, []).append(result)
                print(capability, recipe, result, flush=True)
    summary: dict[str, Any] = {}
    for capability, by_recipe in rows.items():
        for recipe, results in by_recipe.items():
            summary[f"{capability}/{recipe}"] = {
                key: round(statistics.median(r[key] for r in results), 2) for key in results[0]
            }
    for capability in CAPABILITIES:
        fp32 = summary[f"{capability}/fp32"]
        for recipe in RECIPES[1:]:
            row = summary[f"{capability}/{recipe}"]
            row["decode_x_fp32"] = round(row["decode_ms_p50"] / fp32["decode_ms_p50"], 2)
            row["perplexity_pass_x_fp32"] = round(
                row["perplexity_pass_s"] / fp32["perplexity_pass_s"], 2
            )
    payload = {"machine": machine_summary(), "rounds": ROUNDS, "summary": summary, "raw": rows}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "bf16_cpu_capability.json").write_text(json.dumps(payload, indent=2))
    lines = [
        "# bf16 and int8 weight-only vs fp32 with and without AVX-512 kernels (measured)",
        "",
        f"Machine: {payload['machine']['cpu']} ({', '.join(payload['machine']['cpu_flags'])}), "
        f"{payload['machine']['cpu_count']} cores; median of {ROUNDS} interleaved rounds, one "
        "process per measurement; `avx2` = `ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2`.",
        "",
        "| kernels | recipe | decode ms p50 | x fp32 | perplexity pass s | x fp32 |",
        "|---|---|---|---|---|---|",
    ]
    for key, row in summary.items():
        capability, recipe = key.split("/")
        lines.append(
            f"| {capability} | {recipe} | {row['decode_ms_p50']} | {row.get('decode_x_fp32', 1.0)} "
            f"| {row['perplexity_pass_s']} | {row.get('perplexity_pass_x_fp32', 1.0)} |"
        )
    (RESULTS / "bf16_cpu_capability.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--measure":
        print(json.dumps(measure(sys.argv[2])))
    else:
        main()
