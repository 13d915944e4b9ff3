"""Perplexity on held-out text with non-overlapping windows (the standard fixed-length protocol)."""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict, Field

from agentic_compression.core.metrics import PerplexityResult
from agentic_compression.evaluation.text import WIKITEXT2_TEST, wikitext2_test
from agentic_compression.runtimes.base import Deployment


class PerplexityConfig(BaseModel):
    """``windows`` windows of ``seq_len`` tokens from the start of WikiText-2 test."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seq_len: int = Field(512, ge=16)
    windows: int = Field(16, ge=1)


def _leading_tokens(deployment: Deployment, needed: int) -> list[int]:
    """The first ``needed`` tokens of WikiText-2 test (all of it if shorter), tokenizing only a
    prefix of the text: the tokens of a prefix equal the whole text's except at the cut, which the
    margin keeps out of the windows."""
    text = wikitext2_test()
    chars = needed * 6
    while True:
        ids = deployment.tokenize(text[:chars])
        if chars >= len(text) or len(ids) >= needed + 64:
            return ids[:needed]
        chars *= 2


def perplexity(deployment: Deployment, config: PerplexityConfig) -> PerplexityResult:
    """exp(mean next-token negative log-likelihood) over the windows, in the deployment's runtime."""
    ids = _leading_tokens(deployment, config.windows * config.seq_len)
    windows = min(config.windows, len(ids) // config.seq_len)
    chunks = [ids[i * config.seq_len : (i + 1) * config.seq_len] for i in range(windows)]
    total_nll, predicted = deployment.window_nll(chunks)
    return PerplexityResult(
        dataset=WIKITEXT2_TEST,
        value=math.exp(total_nll / predicted),
        n_tokens=predicted,
        seq_len=config.seq_len,
        windows=windows,
    )
