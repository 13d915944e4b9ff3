"""Quantized KV cache in llama.cpp at 4k context: how much cache memory it saves, and what it costs.

Run: ``.venv/bin/python benchmarks/kv_cache.py`` (about 15 minutes on 2 CPU cores, alone on the
machine). Writes ``benchmarks/results/kv_cache.{json,md}``.

The embedded SmolLM2-135M exported to GGUF Q8_0 and served by llama.cpp with a 4096-token context,
once per K/V cache type (``f16``, llama.cpp's default; ``q8_0``; ``q4_0``; flash attention on for the
quantized ones, as llama.cpp requires). Per cache type, measured by llama.cpp in this process:

- cache bytes with 4096 tokens in the cache: ``llama_state_seq_get_size`` of the sequence, the bytes
  llama.cpp serialises for its K/V cells (in the cache's type, plus each cell's position and ids);
- perplexity on WikiText-2 test in 4096-token windows (2 windows), so every token attends over up to
  4k cached positions;
- decode ms/token with a 512-token prompt (32 new tokens, 1 warm-up + 3 repeats): the cost of
  dequantizing the cache on every step (at 4k prompts llama.cpp's CPU flash attention made one
  candidate take over 10 minutes on this machine, so the timed prompt is shorter).

Headline keys: ``cache_ratio`` (bytes / f16 bytes; llama.cpp's block formats give 8.5/16 = 0.53 for
q8_0 and 4.5/16 = 0.28 for q4_0) and ``ppl_ratio`` (perplexity / f16 perplexity) per cache type.
"""

from __future__ import annotations

import json
import os
from typing import Any

from runtime_table import RESULTS

KV_TYPES = ("f16", "q8_0", "q4_0")
CONTEXT = 4096


def main() -> None:
    from agentic_compression.carbon.energy_meter import CodeCarbonMeter
    from agentic_compression.cli.app import _quiet_libraries
    from agentic_compression.compression.recipe import Recipe
    from agentic_compression.core.provenance import machine_summary
    from agentic_compression.evaluation.candidate import MeasureConfig, evaluate_candidate
    from agentic_compression.evaluation.latency import LatencyConfig
    from agentic_compression.evaluation.perplexity import PerplexityConfig
    from agentic_compression.evaluation.text import wikitext2_test
    from agentic_compression.models import load_model

    _quiet_libraries()
    load_before = os.getloadavg()
    base = load_model("smollm2-135m")
    meter = CodeCarbonMeter("USA")
    config = MeasureConfig(
        latency=LatencyConfig(prompt_tokens=512, new_tokens=32, warmup=1, repeats=3),
        perplexity=PerplexityConfig(seq_len=CONTEXT, windows=2),
    )
    filler = base.tokenizer(wikitext2_test()[:40_000], add_special_tokens=False).input_ids
    filler = filler[: CONTEXT - 1]
    rows: list[dict[str, Any]] = []
    for kv in KV_TYPES:
        runtime = {"name": "llamacpp", "quant": "Q8_0", "context": CONTEXT, "kv_cache": kv}
        recipe = Recipe.from_steps([], f"gguf-q8_0 kv {kv}", runtime)
        cache: dict[str, int] = {}

        def measure_cache(runtime_: Any, deployment: Any, cache: dict[str, int] = cache) -> None:
            deployment.llm.next_token_logprobs(filler)
            cache["tokens"] = deployment.llm.cached_tokens
            cache["bytes"] = deployment.llm.cache_bytes()

        result = evaluate_candidate(base, recipe, config, meter, on_deployed=measure_cache)
        m = result.metrics
        row: dict[str, Any] = {"kv_cache": kv, "status": result.status, "error": result.error}
        if m is not None and m.latency is not None and m.perplexity is not None:
            row.update(
                cache_tokens=cache.get("tokens"),
                cache_bytes=cache.get("bytes"),
                perplexity=round(m.perplexity.value, 4),
                ppl_tokens=m.perplexity.n_tokens,
                decode_ms_p50=round(m.latency.decode_ms_median, 2),
                decode_ms_p90=round(m.latency.decode_ms_p90, 2),
                prefill_ms_p50=round(m.latency.prefill_ms_median, 1),
                latency_disturbed=m.latency.disturbed,
                peak_rss_bytes=m.memory.peak_bytes if m.memory else None,
            )
        print(f"kv {kv}: {result.status} {row.get('cache_bytes')}", flush=True)
        rows.append(row)
    reference = next((r for r in rows if r["kv_cache"] == "f16" and r["status"] == "ok"), None)
    summary: dict[str, Any] = {"cache_ratio": {}, "ppl_ratio": {}}
    for row in rows:
        if reference is not None and row["status"] == "ok" and row["kv_cache"] != "f16":
            summary["cache_ratio"][row["kv_cache"]] = round(
                row["cache_bytes"] / reference["cache_bytes"], 4
            )
            summary["ppl_ratio"][row["kv_cache"]] = round(
                row["perplexity"] / reference["perplexity"], 4
            )
    machine = machine_summary()
    machine.update(
        loadavg_before=[round(x, 2) for x in load_before],
        loadavg_after=[round(x, 2) for x in os.getloadavg()],
    )
    payload = {"machine": machine, **summary, "rows": rows}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "kv_cache.json").write_text(json.dumps(payload, indent=2))
    lines = [
        "# Quantized KV cache in llama.cpp at 4k context (measured)",
        "",
        f"Machine: {machine['cpu']}, {machine['cpu_count']} cores. Load average before/after: "
        f"{machine['loadavg_before']} / {machine['loadavg_after']}. Model: embedded SmolLM2-135M, "
        f"GGUF Q8_0 weights, context {CONTEXT}.",
        "",
        f"cache_ratio: **{summary['cache_ratio']}**; ppl_ratio: **{summary['ppl_ratio']}**",
        "",
        "| KV cache | tokens cached | cache MB | ppl (4k windows) | decode p50 ms | p90 "
        "| prefill ms (512 tokens) |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        if row["status"] != "ok":
            lines.append(f"| {row['kv_cache']} | failed: {row['error']} |")
            continue
        lines.append(
            f"| {row['kv_cache']} | {row['cache_tokens']} | {row['cache_bytes'] / 1e6:.2f} "
            f"| {row['perplexity']:.3f} | {row['decode_ms_p50']} | {row['decode_ms_p90']} "
            f"| {row['prefill_ms_p50']} |"
        )
    (RESULTS / "kv_cache.md").write_text("\n".join(lines) + "\n")
    print((RESULTS / "kv_cache.md").read_text())


if __name__ == "__main__":
    main()
