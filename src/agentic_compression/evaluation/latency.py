"""Prefill and decode latency: greedy generation with a KV cache, warm-up, repeats, median and p90."""

from __future__ import annotations

import statistics
import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from agentic_compression.core.metrics import LatencyStats
from agentic_compression.evaluation.text import wikitext2_test


class LatencyConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    prompt_tokens: int = Field(128, ge=1)
    new_tokens: int = Field(32, ge=2)
    warmup: int = Field(1, ge=0)
    repeats: int = Field(3, ge=1)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def measure_latency(model: Any, tokenizer: Any, config: LatencyConfig) -> LatencyStats:
    """Time the prompt's forward pass (prefill) and each next-token step (decode) separately."""
    import torch

    device = next(model.parameters()).device
    synchronize = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    ids = tokenizer(wikitext2_test()[:20000], add_special_tokens=False, return_tensors="pt")
    prompt = ids.input_ids[:, : config.prompt_tokens].to(device)
    prefill_ms: list[float] = []
    decode_ms: list[float] = []
    with torch.inference_mode():
        for run in range(config.warmup + config.repeats):
            synchronize()
            started = time.perf_counter()
            out = model(prompt, use_cache=True)
            synchronize()
            prefill = (time.perf_counter() - started) * 1000
            steps = []
            past = out.past_key_values
            token = out.logits[:, -1:].argmax(-1)
            for _ in range(config.new_tokens):
                started = time.perf_counter()
                out = model(token, past_key_values=past, use_cache=True)
                token = out.logits[:, -1:].argmax(-1)
                synchronize()
                steps.append((time.perf_counter() - started) * 1000)
                past = out.past_key_values
            if run >= config.warmup:
                prefill_ms.append(prefill)
                decode_ms.extend(steps)
    decode_median = statistics.median(decode_ms)
    return LatencyStats(
        prompt_tokens=int(prompt.shape[1]),
        new_tokens=config.new_tokens,
        warmup=config.warmup,
        repeats=config.repeats,
        prefill_ms_median=statistics.median(prefill_ms),
        prefill_ms_p90=_percentile(prefill_ms, 0.9),
        decode_ms_median=decode_median,
        decode_ms_p90=_percentile(decode_ms, 0.9),
        decode_tokens_per_s=1000.0 / decode_median,
        threads=torch.get_num_threads(),
        device=str(device),
    )
