"""Attention sinks in llama.cpp: generation and scoring past the context in bounded memory.

Run: ``.venv/bin/python benchmarks/long_context.py`` (about 10 minutes on 2 CPU cores, alone on the
machine). Writes ``benchmarks/results/long_context.{json,md}``.

The embedded SmolLM2-135M exported to GGUF Q8_0, loaded by llama.cpp in this process:

- **memory while generating**: a 512-token context with ``sink_tokens`` 4 generates 2048 tokens
  greedily (4x the context) from a 64-token WikiText-2 prompt; every 128 tokens the cache bytes
  (``llama_state_seq_get_size``) and the process's resident memory are read. Without sinks
  generation stops at the context.
- **quality at long context**: the first 4096 tokens of WikiText-2 test scored in 64-token chunks
  (``stream_logprobs``) with (a) a 4096-token context (everything attended, no shift), (b) a 512-token
  context with 4 attention sinks, (c) a 512-token context with no sinks (a plain sliding window,
  llama.cpp's context shift with ``--keep 0``). Perplexity over all 4095 predicted tokens and over
  the tokens after the first 512 (where the windows differ from the full context).

Headline keys: ``cache_bytes_growth`` (max / min of the cache bytes sampled after the context first
filled: the cache refills between halvings, so this is the sawtooth's amplitude, not growth over time;
the cached tokens never exceed the context), ``rss_growth_mb`` (resident memory at the end minus when
the context first filled), and ``ppl`` per setting.
"""

from __future__ import annotations

import json
import math
import os
import resource
from typing import Any

from runtime_table import RESULTS

CONTEXT, SINKS, LONG = 512, 4, 4096


def _rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * resource.getpagesize() / 1e6


def main() -> None:
    import numpy as np
    import torch

    from agentic_compression.cli.app import _quiet_libraries
    from agentic_compression.core.provenance import machine_summary
    from agentic_compression.evaluation.text import wikitext2_test
    from agentic_compression.models import load_model
    from agentic_compression.runtimes.gguf_export import export_gguf
    from agentic_compression.runtimes.llamacpp_lib import LlamaCppModel

    _quiet_libraries()
    load_before = os.getloadavg()
    base = load_model("smollm2-135m")
    threads = torch.get_num_threads()
    path = RESULTS.parent / ".long_context.gguf"
    export_gguf(base.model, base.tokenizer, path, "Q8_0", tokenizer_gguf=base.gguf_file)
    text = base.tokenizer(wikitext2_test()[:40_000], add_special_tokens=False).input_ids[:LONG]

    llm = LlamaCppModel(path, threads=threads, context=CONTEXT, batch=512, sink_tokens=SINKS)
    samples = []
    generated: list[int] = []

    def sample(tokens: list[int]) -> bool:
        if len(tokens) % 128 == 0:
            samples.append(
                {"generated": len(tokens), "cached_tokens": llm.cached_tokens,
                 "cache_bytes": llm.cache_bytes(), "rss_mb": round(_rss_mb(), 1),
                 "shifts": llm.shifts}
            )  # fmt: skip
        generated[:] = tokens
        return False

    timing = llm.generate(text[:64], 4 * CONTEXT, stop_at_eog=False, should_stop=sample)
    llm.close()
    full = [s for s in samples if s["shifts"] > 0 or s["cached_tokens"] >= CONTEXT - 128]
    growth = max(s["cache_bytes"] for s in full) / min(s["cache_bytes"] for s in full)
    rss_growth = samples[-1]["rss_mb"] - full[0]["rss_mb"]
    print(f"generated {len(timing.tokens)} tokens; cache growth {growth:.3f}", flush=True)

    settings = {
        f"full context {LONG}": (LONG, None),
        f"context {CONTEXT} + {SINKS} sinks": (CONTEXT, SINKS),
        f"context {CONTEXT}, no sinks": (CONTEXT, 0),
    }
    quality = []
    for name, (context, sinks) in settings.items():
        model = LlamaCppModel(path, threads=threads, context=context, batch=512, sink_tokens=sinks)
        scores = np.asarray(model.stream_logprobs(text, chunk=64))
        quality.append(
            {"setting": name, "context": model.n_ctx, "sink_tokens": sinks, "shifts": model.shifts,
             "ppl_all": round(math.exp(-scores.mean()), 3),
             "ppl_after_512": round(math.exp(-scores[CONTEXT:].mean()), 3),
             "cache_bytes_end": model.cache_bytes()}
        )  # fmt: skip
        model.close()
        print(json.dumps(quality[-1]), flush=True)
    path.unlink()
    machine = machine_summary()
    machine.update(
        loadavg_before=[round(x, 2) for x in load_before],
        loadavg_after=[round(x, 2) for x in os.getloadavg()],
    )
    payload: dict[str, Any] = {
        "machine": machine,
        "cache_bytes_growth": round(growth, 4),
        "rss_growth_mb": round(rss_growth, 1),
        "generated_tokens": len(timing.tokens),
        "decode_ms_p50": round(float(np.median(timing.decode_ms)), 2),
        "ppl": {q["setting"]: q["ppl_all"] for q in quality},
        "memory_samples": samples,
        "quality": quality,
    }
    (RESULTS / "long_context.json").write_text(json.dumps(payload, indent=2) + "\n")
    lines = [
        "# Attention sinks in llama.cpp: past the context in bounded memory (measured)",
        "",
        f"Machine: {machine['cpu']}, {machine['cpu_count']} cores. Load average before/after: "
        f"{machine['loadavg_before']} / {machine['loadavg_after']}. Model: embedded SmolLM2-135M, "
        "GGUF Q8_0, f16 KV cache.",
        "",
        f"Generation of {len(timing.tokens)} tokens in a {CONTEXT}-token context with {SINKS} sinks: "
        f"cache bytes growth after the context filled **{growth:.4f}x**, resident memory growth "
        f"**{rss_growth:.1f} MB**, decode p50 {payload['decode_ms_p50']} ms/token.",
        "",
        "| generated | cached tokens | cache bytes | RSS MB | shifts |",
        "|---|---|---|---|---|",
        *(
            f"| {s['generated']} | {s['cached_tokens']} | {s['cache_bytes']:,} | {s['rss_mb']} "
            f"| {s['shifts']} |"
            for s in samples
        ),
        "",
        f"Perplexity of the first {LONG} tokens of WikiText-2 test, scored in 64-token chunks:",
        "",
        "| setting | shifts | ppl (all) | ppl (after token 512) | cache bytes at the end |",
        "|---|---|---|---|---|",
        *(
            f"| {q['setting']} | {q['shifts']} | {q['ppl_all']} | {q['ppl_after_512']} "
            f"| {q['cache_bytes_end']:,} |"
            for q in quality
        ),
        "",
    ]
    (RESULTS / "long_context.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
