"""Prefill and decode latency: greedy generation with a KV cache, warm-up, repeats, median and p90."""

from __future__ import annotations

import statistics

from pydantic import BaseModel, ConfigDict, Field

from agentic_compression.core.metrics import LatencyStats
from agentic_compression.evaluation.text import wikitext2_test
from agentic_compression.runtimes.base import Deployment


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


def latency_prompt(deployment: Deployment, config: LatencyConfig) -> list[int]:
    """The first ``prompt_tokens`` tokens of WikiText-2 test as the runtime tokenizes them."""
    return deployment.tokenize(wikitext2_test()[:20000])[: config.prompt_tokens]


def warm_up(deployment: Deployment, config: LatencyConfig) -> list[int]:
    """Run the ``warmup`` untimed generations; the prompt they used."""
    prompt = latency_prompt(deployment, config)
    for _ in range(config.warmup):
        deployment.time_generation(prompt, config.new_tokens)
    return prompt


def timed_latency(deployment: Deployment, config: LatencyConfig, prompt: list[int]) -> LatencyStats:
    """The ``repeats`` timed generations only (meter this call for energy per generated token)."""
    prefill_ms: list[float] = []
    decode_ms: list[float] = []
    for _ in range(config.repeats):
        times = deployment.time_generation(prompt, config.new_tokens)
        prefill_ms.append(times.prefill_ms)
        decode_ms.extend(times.decode_ms)
    decode_median = statistics.median(decode_ms)
    return LatencyStats(
        prompt_tokens=len(prompt),
        new_tokens=config.new_tokens,
        warmup=config.warmup,
        repeats=config.repeats,
        prefill_ms_median=statistics.median(prefill_ms),
        prefill_ms_p90=_percentile(prefill_ms, 0.9),
        decode_ms_median=decode_median,
        decode_ms_p90=_percentile(decode_ms, 0.9),
        decode_tokens_per_s=1000.0 / decode_median,
        threads=deployment.threads,
        device=deployment.device,
    )


def measure_latency(deployment: Deployment, config: LatencyConfig) -> LatencyStats:
    """Time the prompt's forward pass (prefill) and each next-token step (decode) separately.

    ``warmup`` untimed generations come first (:func:`warm_up`), then ``repeats`` timed ones
    (:func:`timed_latency`).
    """
    return timed_latency(deployment, config, warm_up(deployment, config))
