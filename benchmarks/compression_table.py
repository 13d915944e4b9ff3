"""Every preset on the embedded model: size, sparsity, perplexity, decode latency and its physical bound.

Run: ``.venv/bin/python benchmarks/compression_table.py`` (about 10 minutes on 2 CPU cores).
Writes ``benchmarks/results/compression_table.{json,md}``.

The bound: decode reads every weight once per token, so it cannot be faster than
``weight bytes / memory bandwidth``. Weight bytes = the serialized state dict (the tied embedding
matrix is read in full by the output head each token); bandwidth = the best of several timed
``tensor.sum()`` passes over a 1 GiB buffer (read-only streaming), measured in this same run.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
PRESETS = [
    "fp32", "bf16", "int8-weight-only", "int8-dynamic", "bnb-int8", "nf4", "fp4",
    "magnitude-50", "wanda-50", "2of4", "wanda-30+int8", "int4-weight-only",
]  # fmt: skip


def memory_bandwidth_gb_s(repeats: int = 7) -> float:
    import torch

    buffer = torch.ones(256 * 1024 * 1024, dtype=torch.float32)  # 1 GiB
    buffer.sum()  # fault the pages in
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        buffer.sum()
        times.append(time.perf_counter() - started)
    return buffer.numel() * 4 / min(times) / 1e9


def main() -> None:
    from agentic_compression.carbon.energy_meter import CodeCarbonMeter
    from agentic_compression.cli.app import _quiet_libraries
    from agentic_compression.compression import preset
    from agentic_compression.core.provenance import machine_summary
    from agentic_compression.evaluation.candidate import MeasureConfig, evaluate_candidate
    from agentic_compression.evaluation.latency import LatencyConfig
    from agentic_compression.evaluation.perplexity import PerplexityConfig
    from agentic_compression.models import load_model

    _quiet_libraries()
    presets = sys.argv[1:] or PRESETS
    load_before = os.getloadavg()
    bandwidth = memory_bandwidth_gb_s()
    base = load_model("smollm2-135m")
    meter = CodeCarbonMeter("USA")
    config = MeasureConfig(
        latency=LatencyConfig(prompt_tokens=128, new_tokens=32, warmup=1, repeats=5),
        perplexity=PerplexityConfig(seq_len=512, windows=16),
    )
    # An untimed pass first: the first forward passes of a process pay one-off costs (allocator
    # growth, kernel selection) that would otherwise land on whichever preset runs first.
    warmup = MeasureConfig(latency=LatencyConfig(new_tokens=8, repeats=1), perplexity=None)
    evaluate_candidate(base, preset("fp32"), warmup, meter)
    rows = []
    for name in presets:
        started = time.perf_counter()
        result = evaluate_candidate(base, preset(name), config, meter)
        print(f"{name}: {result.status} in {time.perf_counter() - started:.0f}s", flush=True)
        row: dict[str, object] = {"recipe": name, "status": result.status, "error": result.error}
        if result.metrics is not None and result.metrics.latency and result.metrics.perplexity:
            m = result.metrics
            row.update(
                size_bytes=m.size.serialized_bytes,
                sparsity=round(m.size.linear_weight_sparsity, 4),
                perplexity=round(m.perplexity.value, 3),
                decode_ms_median=round(m.latency.decode_ms_median, 2),
                decode_ms_p90=round(m.latency.decode_ms_p90, 2),
                prefill_ms_median=round(m.latency.prefill_ms_median, 1),
                bound_ms=round(m.size.serialized_bytes / (bandwidth * 1e9) * 1000, 2),
                peak_rss_bytes=m.memory.peak_bytes if m.memory else None,
                energy_kwh_per_1k_tokens=m.inference_energy.energy_kwh_per_token * 1000
                if m.inference_energy
                else None,
                energy_label=m.inference_energy.label if m.inference_energy else None,
            )
        rows.append(row)
    reference = next((r for r in rows if r["recipe"] == "fp32" and r["status"] == "ok"), None)
    for row in rows:
        if reference and row["status"] == "ok":
            for key in ("size_bytes", "perplexity", "decode_ms_median"):
                row[f"{key}_ratio_to_fp32"] = round(float(row[key]) / float(reference[key]), 3)  # type: ignore[arg-type]
    machine = machine_summary()
    machine.update(
        memory_bandwidth_gb_s=round(bandwidth, 2),
        loadavg_before=[round(x, 2) for x in load_before],
        loadavg_after=[round(x, 2) for x in os.getloadavg()],
        model=f"{base.spec} ({base.source})",
        settings="latency: 128-token prompt, 32 new tokens, 1 warm-up + 5 repeats; "
        "perplexity: WikiText-2 raw test, 16 x 512-token windows; one untimed warm-up candidate first",
    )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "compression_table.json").write_text(
        json.dumps({"machine": machine, "rows": rows}, indent=2)
    )
    (RESULTS / "compression_table.md").write_text(markdown(machine, rows))
    print(markdown(machine, rows))


def markdown(machine: dict[str, object], rows: list[dict[str, object]]) -> str:
    lines = [
        "# Compression presets on the embedded SmolLM2-135M (measured)",
        "",
        f"Machine: {machine['cpu']}, {machine['cpu_count']} cores, torch threads "
        f"{machine['torch_threads']}, memory bandwidth {machine['memory_bandwidth_gb_s']} GB/s "
        f"(measured in this run); load average before/after {machine['loadavg_before']} / "
        f"{machine['loadavg_after']}.",
        f"Settings: {machine['settings']}.",
        "",
        "| recipe | size MB | x fp32 | sparsity | perplexity | x fp32 | decode ms/tok p50 | p90 | x fp32 | bound ms | p50 / bound |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        if row["status"] != "ok":
            lines.append(f"| {row['recipe']} | failed: {row['error']} |||||||||||")
            continue
        lines.append(
            f"| {row['recipe']} | {int(row['size_bytes']) / 1e6:.1f} | {row.get('size_bytes_ratio_to_fp32', '')} "  # type: ignore[call-overload]
            f"| {row['sparsity']} | {row['perplexity']} | {row.get('perplexity_ratio_to_fp32', '')} "
            f"| {row['decode_ms_median']} | {row['decode_ms_p90']} | {row.get('decode_ms_median_ratio_to_fp32', '')} "
            f"| {row['bound_ms']} | {float(row['decode_ms_median']) / float(row['bound_ms']):.1f} |"  # type: ignore[arg-type]
        )
    lines += [
        "",
        "Size is the serialized state dict; pruned models are stored dense, so their size does not drop.",
        "The embedded model is dequantised from a Q4_1 GGUF (its weights carry 4-bit rounding).",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
