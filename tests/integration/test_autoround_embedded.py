"""AutoRound on the embedded model, served by llama.cpp from its exact Q4_0 grid (real model, real text)."""

from __future__ import annotations

import pytest

from agentic_compression.compression import CompressionContext, compress
from agentic_compression.compression.recipe import Recipe
from agentic_compression.core.runtime_config import LlamaCppSettings
from agentic_compression.evaluation.perplexity import PerplexityConfig, perplexity
from agentic_compression.runtimes import runtime_for
from agentic_compression.runtimes.torch_eager import TorchDeployment

pytestmark = pytest.mark.integration

#: A few iterations on a few short sequences: minutes of tuning cut to about a minute on 2 cores.
QUICK = {"method": "autoround", "iters": 1, "samples": 2, "seq_len": 64, "batch_size": 2}
WINDOWS = PerplexityConfig(seq_len=256, windows=2)


def test_rounded_weights_reach_llama_cpp_unchanged(embedded_model, tmp_path) -> None:  # type: ignore[no-untyped-def]
    model = embedded_model.fresh_copy()
    context = CompressionContext(embedded_model.tokenizer)
    (report,) = compress(model, Recipe.from_steps([QUICK]), context)
    assert "210 linear layers rounded to 4-bit symmetric groups of 32" in report.summary
    rounded = perplexity(TorchDeployment(model, embedded_model.tokenizer), WINDOWS).value

    config = LlamaCppSettings(quant="Q4_0")
    with runtime_for(config).deploy(model, embedded_model, config, context, tmp_path) as served:
        assert any("210 tensors already on the Q4_0 grid" in note for note in served.info.notes)
        in_llama_cpp = perplexity(served, WINDOWS).value
    # Same weights; only llama.cpp's 8-bit activation dot products and float order differ.
    assert in_llama_cpp == pytest.approx(rounded, rel=0.02)
