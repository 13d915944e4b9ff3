"""Every (recipe, runtime) on the embedded model in one run, fp32 in PyTorch eager as the reference.

Run: ``.venv/bin/python benchmarks/runtime_table.py`` (about 50 minutes on 2 CPU cores, alone on
the machine). Writes ``benchmarks/results/runtime_table.{json,md}`` after every row.

``benchmarks/runtime_table.py --strategies`` measures the compression strategies that have no
benchmark of their own (attention-head removal in every runtime, torchao int4 on the CPU) beside
this run's own references, into ``runtime_table_strategies.{json,md}`` (about 25 minutes), and
links the benchmarks of the others (MLP channels and layers, recovery, AutoRound, mixed precision,
KV cache, long context), each measured in every runtime that serves it.

On a machine with an NVIDIA GPU, ``benchmarks/runtime_table.py --gpu`` measures the GPU candidates
instead (torch on CUDA with torchao's int8/int4/float8 kernels, and vLLM where installed), with the
model on the GPU and NVML's energy counter as the meter, into ``runtime_table_gpu.{json,md}``.
Without a visible GPU it stops in one line.

Per row: artefact size, perplexity (WikiText-2 test, 16 x 512 tokens), accuracy (ARC-Easy acc and
HellaSwag acc_norm, 200 examples each, 0-shot, from ``../shared/benchmarks``), decode ms/token p50
and p90 and tokens/s (128-token prompt, 32 new tokens, 1 warm-up + 5 repeats), prefill, energy per
1k generated tokens. Every figure is measured in the runtime that serves the candidate: llama.cpp's
rows come from llama.cpp's own logits and decode calls.

Headline keys:
* ``best_speedup_at_97pct_retention``: over candidates whose mean accuracy retention (candidate /
  fp32, mean over the two tasks) is at least 0.97, the best torch-fp32 decode p50 / candidate p50.
* ``f16_gguf_ppl_ratio``: llama.cpp F16 perplexity / torch fp32 perplexity on the same windows
  (within 0.99-1.01 means export, tokenizer and log-likelihoods are right).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "benchmarks"
CANDIDATES = [
    "fp32", "bf16", "int8-weight-only",
    "gguf-f16", "gguf-bf16", "gguf-q8_0", "gguf-q6_k", "gguf-q5_k_m", "gguf-q5_0",
    "gguf-q4_k_m", "gguf-q4_1", "gguf-q4_0", "gguf-iq4_nl", "gguf-iq4_xs", "gguf-q4_k_m-imatrix",
    "onnx-fp32", "onnx-int8", "onnx-int4",
]  # fmt: skip
GPU_CANDIDATES = [
    "fp32", "bf16", "int8-weight-only", "int8-dynamic", "int4-weight-only", "float8-dynamic",
    "vllm-bf16", "vllm-w8a8", "vllm-w4a16", "vllm-fp8",
]  # fmt: skip
#: ``--strategies``: issue #11's compression strategies in the runtimes that serve them, with this
#: run's own references first (every ratio is to fp32 of the same run). Preset names or inline JSON.
STRATEGY_CANDIDATES = [
    "fp32", "heads-34", "int4-weight-only",
    "gguf-q8_0",
    '{"name": "heads-34 gguf-q8_0", "steps": [{"method": "attention_heads", "fraction": 0.34}], '
    '"runtime": {"name": "llamacpp", "quant": "Q8_0"}}',
    "onnx-int8",
    '{"name": "heads-34 onnx-int8", "steps": [{"method": "attention_heads", "fraction": 0.34}], '
    '"runtime": {"name": "onnxruntime", "precision": "int8"}}',
]  # fmt: skip
STRATEGY_LINKS = """
The other strategies have benchmarks of their own, measured with these settings in every runtime
that serves them: MLP channels and whole layers in torch, llama.cpp and ONNX Runtime
([structured_pruning.md](structured_pruning.md), decode speed interleaved:
[structured_latency.md](structured_latency.md)); LoRA recovery and distillation
([recovery.md](recovery.md)); AutoRound against round-to-nearest in torch and llama.cpp
([autoround.md](autoround.md)); mixed precision at equal size ([mixed_precision.md](mixed_precision.md));
the KV cache at 4k context ([kv_cache.md](kv_cache.md)) and attention sinks
([long_context.md](long_context.md)).
"""
TASKS = {"arc_easy": "acc", "hellaswag": "acc_norm"}


def main() -> None:
    from agentic_compression.carbon.energy_meter import CodeCarbonMeter
    from agentic_compression.cli.app import _quiet_libraries
    from agentic_compression.compression import resolve_recipe
    from agentic_compression.core.provenance import machine_summary
    from agentic_compression.evaluation.candidate import evaluate_candidate
    from agentic_compression.models import load_model
    from agentic_compression.runtimes.llamacpp_lib import build_info, is_installed

    _quiet_libraries()
    import torch

    gpu = "--gpu" in sys.argv
    strategies = "--strategies" in sys.argv
    if gpu and not torch.cuda.is_available():
        raise SystemExit("runtime_table --gpu: no CUDA GPU is visible to torch; run it on a GPU")
    default = GPU_CANDIDATES if gpu else STRATEGY_CANDIDATES if strategies else CANDIDATES
    names = [a for a in sys.argv[1:] if not a.startswith("--")] or default
    stem = "runtime_table_gpu" if gpu else f"runtime_table{'_strategies' if strategies else ''}"
    load_before = os.getloadavg()
    base = load_model("smollm2-135m", device="cuda" if gpu else "cpu")
    if gpu:
        from agentic_compression.carbon.meter_factory import make_energy_meter

        meter: Any = make_energy_meter("USA", prefer="nvml")
    else:
        meter = CodeCarbonMeter("USA")
    config = table_config(
        cache_path=None if gpu or strategies else RESULTS / ".runtime_table_cache.sqlite"
    )
    warm_up_process(base, meter)
    machine = machine_summary()
    machine.update(
        loadavg_before=[round(x, 2) for x in load_before],
        model=f"{base.spec} ({base.source})",
        llama_cpp=build_info() if is_installed() else "llama.cpp not installed",
        settings="latency: 128-token prompt, 32 new tokens, 1 warm-up + 5 repeats; perplexity: "
        "WikiText-2 raw test, 16 x 512-token windows; accuracy: ARC-Easy (acc) and HellaSwag "
        "(acc_norm), first 200 examples each, 0-shot; one untimed warm-up candidate first; "
        "llama.cpp threads = torch threads",
    )
    rows: list[dict[str, Any]] = []
    for name in names:
        started = time.perf_counter()
        recipe = resolve_recipe(name)
        result = evaluate_candidate(base, recipe, config, meter)
        print(
            f"{recipe.label}: {result.status} in {time.perf_counter() - started:.0f}s", flush=True
        )
        rows.append(_row(recipe.label, result))
        summary = _summarise(rows)
        machine["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / f"{stem}.json").write_text(
            json.dumps({"machine": machine, **summary, "rows": rows}, indent=2)
        )
        text = markdown(machine, summary, rows) + (STRATEGY_LINKS if strategies else "")
        (RESULTS / f"{stem}.md").write_text(text)
    print((RESULTS / f"{stem}.md").read_text())


def table_config(repeats: int = 5, cache_path: Path | None = None) -> Any:
    """The table's measurement settings (see the module docstring); shared by the benchmarks that
    compare with it."""
    from agentic_compression.evaluation.accuracy import AccuracyConfig, TaskSpec
    from agentic_compression.evaluation.candidate import MeasureConfig
    from agentic_compression.evaluation.latency import LatencyConfig
    from agentic_compression.evaluation.perplexity import PerplexityConfig

    accuracy = AccuracyConfig(
        tasks=tuple(TaskSpec(task, metric=metric) for task, metric in TASKS.items()),
        data_dir=SHARED,
        limit=200,
        num_fewshot=0,
        cache_path=cache_path,
    )
    return MeasureConfig(
        latency=LatencyConfig(prompt_tokens=128, new_tokens=32, warmup=1, repeats=repeats),
        perplexity=PerplexityConfig(seq_len=512, windows=16),
        accuracy=accuracy,
    )


def warm_up_process(base: Any, meter: Any) -> None:
    """An untimed candidate first: the first forward passes of a process pay one-off costs."""
    from agentic_compression.compression import preset
    from agentic_compression.evaluation.candidate import MeasureConfig, evaluate_candidate
    from agentic_compression.evaluation.latency import LatencyConfig

    warmup = MeasureConfig(latency=LatencyConfig(new_tokens=8, repeats=1), perplexity=None)
    evaluate_candidate(base, preset("fp32"), warmup, meter)


def _row(name: str, result: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "candidate": name,
        "runtime": result.recipe.get("runtime", {}).get("name", "torch"),
        "status": result.status,
        "error": result.error,
    }
    m = result.metrics
    if m is None or m.latency is None or m.perplexity is None:
        return row
    scores = {a.task: a.value for a in m.accuracy}
    row.update(
        format=m.deployment.format if m.deployment else None,
        tensor_types=m.deployment.tensor_types if m.deployment else {},
        size_bytes=m.size.serialized_bytes,
        perplexity=round(m.perplexity.value, 4),
        accuracy={task: round(value, 4) for task, value in scores.items()},
        decode_ms_p50=round(m.latency.decode_ms_median, 2),
        decode_ms_p90=round(m.latency.decode_ms_p90, 2),
        tokens_per_s=round(m.latency.decode_tokens_per_s, 1),
        prefill_ms_p50=round(m.latency.prefill_ms_median, 1),
        threads=m.latency.threads,
        peak_rss_bytes=m.memory.peak_bytes if m.memory else None,
        energy_wh_per_1k_tokens=(
            round(m.inference_energy.energy_kwh_per_token * 1e6, 4) if m.inference_energy else None
        ),
        energy_label=m.inference_energy.label if m.inference_energy else None,
        notes=list(m.deployment.notes) if m.deployment else [],
    )
    return row


def _summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    reference = next((r for r in rows if r["candidate"] == "fp32" and r["status"] == "ok"), None)
    summary: dict[str, Any] = {"best_speedup_at_97pct_retention": None, "f16_gguf_ppl_ratio": None}
    if reference is None:
        return summary
    best: tuple[float, str] | None = None
    for row in rows:
        if row["status"] != "ok":
            continue
        row["size_ratio_to_fp32"] = round(row["size_bytes"] / reference["size_bytes"], 3)
        row["perplexity_ratio_to_fp32"] = round(row["perplexity"] / reference["perplexity"], 4)
        row["speedup_vs_torch_fp32"] = round(reference["decode_ms_p50"] / row["decode_ms_p50"], 3)
        retention = [row["accuracy"][t] / reference["accuracy"][t] for t in TASKS]
        row["accuracy_retention"] = round(sum(retention) / len(retention), 4)
        if row["accuracy_retention"] >= 0.97 and (
            best is None or row["speedup_vs_torch_fp32"] > best[0]
        ):
            best = (row["speedup_vs_torch_fp32"], row["candidate"])
        if row["candidate"] == "gguf-f16":
            summary["f16_gguf_ppl_ratio"] = row["perplexity_ratio_to_fp32"]
    if best is not None:
        summary["best_speedup_at_97pct_retention"] = best[0]
        summary["best_candidate_at_97pct_retention"] = best[1]
    return summary


def markdown(machine: dict[str, Any], summary: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    lines = [
        "# Recipes x runtimes on the embedded SmolLM2-135M (measured)",
        "",
        f"Machine: {machine['cpu']}, {machine['cpu_count']} cores, torch threads "
        f"{machine['torch_threads']}; {machine['llama_cpp']}",
        f"Load average before/after: {machine['loadavg_before']} / {machine.get('loadavg_after')}.",
        f"Settings: {machine['settings']}.",
        "",
        f"**best_speedup_at_97pct_retention = {summary['best_speedup_at_97pct_retention']}** "
        f"({summary.get('best_candidate_at_97pct_retention')}); "
        f"**f16_gguf_ppl_ratio = {summary['f16_gguf_ppl_ratio']}**",
        "",
        "| candidate | runtime | format | size MB | x fp32 | ppl | x fp32 | ARC-E | HS | retention "
        "| decode p50 | p90 | tok/s | x fp32 speed | prefill ms | Wh/1k tok |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        if row["status"] != "ok":
            lines.append(f"| {row['candidate']} | {row['runtime']} | failed: {row['error']} |")
            continue
        acc = row["accuracy"]
        lines.append(
            f"| {row['candidate']} | {row['runtime']} | {row['format']} "
            f"| {row['size_bytes'] / 1e6:.1f} | {row.get('size_ratio_to_fp32', '')} "
            f"| {row['perplexity']:.3f} | {row.get('perplexity_ratio_to_fp32', '')} "
            f"| {acc.get('arc_easy', '')} | {acc.get('hellaswag', '')} "
            f"| {row.get('accuracy_retention', '')} | {row['decode_ms_p50']} | {row['decode_ms_p90']} "
            f"| {row['tokens_per_s']} | {row.get('speedup_vs_torch_fp32', '')} "
            f"| {row['prefill_ms_p50']} | {row['energy_wh_per_1k_tokens']} ({row['energy_label']}) |"
        )
    lines += ["", "Per-tensor GGUF types actually written (read back from each file):", ""]
    for row in rows:
        if row["status"] == "ok" and row.get("tensor_types") and row["runtime"] == "llamacpp":
            types = ", ".join(f"{k} x{v}" for k, v in row["tensor_types"].items())
            lines.append(f"- {row['candidate']}: {types}")
    lines += [
        "",
        "The embedded model is dequantised from a Q4_1 GGUF (its weights carry 4-bit rounding). Its "
        "hidden size, 576, is not a multiple of 256, so K-quant and IQ4_XS tensors with 576-wide "
        "rows fall back to Q5_0/Q5_1/Q8_0/IQ4_NL as llama.cpp does. Energy is CodeCarbon's "
        "estimate (TDP x load) where the label says so.",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
