"""Perplexity on held-out text with non-overlapping windows (the standard fixed-length protocol)."""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from agentic_compression.core.metrics import PerplexityResult
from agentic_compression.evaluation.text import WIKITEXT2_TEST, wikitext2_test


class PerplexityConfig(BaseModel):
    """``windows`` windows of ``seq_len`` tokens from the start of WikiText-2 test."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seq_len: int = Field(512, ge=16)
    windows: int = Field(16, ge=1)
    batch_size: int = Field(4, ge=1)


def perplexity(model: Any, tokenizer: Any, config: PerplexityConfig) -> PerplexityResult:
    """exp(mean next-token negative log-likelihood) over the windows."""
    import torch

    device = next(model.parameters()).device
    ids = tokenizer(wikitext2_test(), add_special_tokens=False, return_tensors="pt").input_ids[0]
    windows = min(config.windows, len(ids) // config.seq_len)
    batches = ids[: windows * config.seq_len].view(windows, config.seq_len).split(config.batch_size)
    total_nll = 0.0
    predicted = 0
    with torch.inference_mode():
        for batch in batches:
            batch = batch.to(device)
            logits = model(batch, use_cache=False).logits.float()
            nll = torch.nn.functional.cross_entropy(
                logits[:, :-1].reshape(-1, logits.shape[-1]),
                batch[:, 1:].reshape(-1),
                reduction="sum",
            )
            total_nll += float(nll)
            predicted += batch[:, 1:].numel()
    return PerplexityResult(
        dataset=WIKITEXT2_TEST,
        value=math.exp(total_nll / predicted),
        n_tokens=predicted,
        seq_len=config.seq_len,
        windows=windows,
    )
