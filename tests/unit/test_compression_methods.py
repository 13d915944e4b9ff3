"""Each method on tiny random Llama and GPT-2 models: real changes, achieved sparsity, finite outputs."""

from __future__ import annotations

import copy

import pytest
import torch

from agentic_compression.compression import CompressionContext, compress
from agentic_compression.compression.layers import decoder_blocks, linear_layers
from agentic_compression.compression.recipe import Recipe
from agentic_compression.errors import CompressionFailedError, MethodUnavailableError
from agentic_compression.evaluation.footprint import size_stats

SMALL_CALIBRATION = {"calibration_samples": 4, "calibration_seq_len": 32}


def _logits(model, tokenizer) -> torch.Tensor:  # type: ignore[no-untyped-def]
    ids = tokenizer("The quick brown fox jumps over the lazy dog.", return_tensors="pt").input_ids
    with torch.no_grad():
        return model(ids).logits.float()


def _apply(model, tokenizer, steps):  # type: ignore[no-untyped-def]
    before = _logits(model, tokenizer)
    base_size = size_stats(model)
    reports = compress(model, Recipe.from_steps(steps), CompressionContext(tokenizer))
    after = _logits(model, tokenizer)
    assert torch.isfinite(after).all()
    assert not torch.allclose(before, after), "the method did not change the model's outputs"
    return reports, base_size, size_stats(model)


@pytest.fixture(params=["tiny_llama", "tiny_gpt2"])
def tiny_model(request):  # type: ignore[no-untyped-def]
    return request.getfixturevalue(request.param)


@pytest.mark.parametrize(
    ("steps", "target"),
    [
        ([{"method": "magnitude", "sparsity": 0.5}], 0.5),
        ([{"method": "magnitude", "sparsity": 0.3}], 0.3),
        ([{"method": "wanda", "sparsity": 0.5, **SMALL_CALIBRATION}], 0.5),
        ([{"method": "nm", "n": 2, "m": 4, **SMALL_CALIBRATION}], 0.5),
        ([{"method": "nm", "n": 4, "m": 8, "criterion": "magnitude"}], 0.5),
    ],
)
def test_pruning_reaches_its_sparsity(tiny_model, embedded_tokenizer, steps, target) -> None:  # type: ignore[no-untyped-def]
    reports, before, after = _apply(tiny_model, embedded_tokenizer, steps)
    assert before.linear_weight_sparsity == 0.0
    assert after.linear_weight_sparsity == pytest.approx(target, abs=0.01)
    assert after.overall_sparsity < after.linear_weight_sparsity  # embeddings are kept
    assert after.parameter_count == before.parameter_count
    assert "achieved sparsity" in reports[0].summary


def test_two_of_four_pattern_holds_in_every_group(tiny_llama, embedded_tokenizer) -> None:  # type: ignore[no-untyped-def]
    _apply(tiny_llama, embedded_tokenizer, [{"method": "nm", "n": 2, "m": 4, **SMALL_CALIBRATION}])
    for _, layer in linear_layers(decoder_blocks(tiny_llama)):
        groups = (layer.weight != 0).reshape(layer.weight.shape[0], -1, 4).sum(-1)
        assert (groups <= 2).all()


def test_wanda_differs_from_magnitude(tiny_llama, embedded_tokenizer) -> None:  # type: ignore[no-untyped-def]
    wanda, magnitude = tiny_llama, copy.deepcopy(tiny_llama)
    _apply(wanda, embedded_tokenizer, [{"method": "wanda", "sparsity": 0.5, **SMALL_CALIBRATION}])
    _apply(magnitude, embedded_tokenizer, [{"method": "magnitude", "sparsity": 0.5}])
    masks_w = [(layer.weight == 0) for _, layer in linear_layers(decoder_blocks(wanda))]
    masks_m = [(layer.weight == 0) for _, layer in linear_layers(decoder_blocks(magnitude))]
    differing = sum(int((a != b).sum()) for a, b in zip(masks_w, masks_m, strict=True))
    assert differing > 0, "activation-aware scores chose exactly the magnitude mask"


@pytest.mark.parametrize(
    ("steps", "max_size_ratio"),
    [
        ([{"method": "int8_weight_only"}], 0.6),
        ([{"method": "int8_dynamic"}], 0.6),
        ([{"method": "bnb_4bit", "quant_type": "nf4"}], 0.6),
        ([{"method": "bnb_4bit", "quant_type": "fp4"}], 0.6),
        ([{"method": "bnb_8bit"}], 0.7),
        ([{"method": "cast", "dtype": "bfloat16"}], 0.55),
    ],
)
def test_quantization_shrinks_serialized_size(
    tiny_model, embedded_tokenizer, steps, max_size_ratio
) -> None:  # type: ignore[no-untyped-def]
    # The tiny models are dominated by their (unquantized) embeddings; compare linear-layer bytes.
    reports, before, after = _apply(tiny_model, embedded_tokenizer, steps)
    assert after.serialized_bytes < before.serialized_bytes
    linear_bytes = sum(
        layer.weight.numel() * 4 for _, layer in linear_layers(decoder_blocks(tiny_model))
    )  # fp32 bytes of the quantized layers (logical shape)
    saved = before.serialized_bytes - after.serialized_bytes
    if steps[0]["method"] == "cast":
        assert saved >= before.serialized_bytes * (1 - max_size_ratio)
    else:
        assert saved >= linear_bytes * (1 - max_size_ratio)
    assert reports[0].seconds >= 0


def test_prune_then_quantize_keeps_zeros(tiny_llama, embedded_tokenizer) -> None:  # type: ignore[no-untyped-def]
    steps = [
        {"method": "wanda", "sparsity": 0.3, **SMALL_CALIBRATION},
        {"method": "int8_weight_only"},
    ]
    reports, _, after = _apply(tiny_llama, embedded_tokenizer, steps)
    assert [r.method for r in reports] == ["wanda", "int8_weight_only"]
    assert after.linear_weight_sparsity == pytest.approx(0.3, abs=0.02)


def test_gpt2_conv1d_layers_become_linear(tiny_gpt2, embedded_tokenizer) -> None:  # type: ignore[no-untyped-def]
    from transformers.pytorch_utils import Conv1D

    assert any(isinstance(m, Conv1D) for m in tiny_gpt2.modules())
    _apply(tiny_gpt2, embedded_tokenizer, [{"method": "magnitude", "sparsity": 0.5}])
    assert not any(isinstance(m, Conv1D) for m in tiny_gpt2.modules())
    assert len(list(linear_layers(decoder_blocks(tiny_gpt2)))) == 2 * 4


def test_conv1d_conversion_is_exact(tiny_gpt2, embedded_tokenizer) -> None:  # type: ignore[no-untyped-def]
    from agentic_compression.compression.layers import conv1d_to_linear

    before = _logits(tiny_gpt2, embedded_tokenizer)
    assert conv1d_to_linear(tiny_gpt2) == 8
    assert torch.allclose(before, _logits(tiny_gpt2, embedded_tokenizer), atol=1e-5)


def test_fp8_on_cpu_fails_with_a_reason(tiny_llama, embedded_tokenizer) -> None:  # type: ignore[no-untyped-def]
    recipe = Recipe.from_steps([{"method": "float8_dynamic"}])
    with pytest.raises(MethodUnavailableError, match="needs a CUDA GPU"):
        compress(tiny_llama, recipe, CompressionContext(embedded_tokenizer))


def test_library_error_names_the_step(tiny_llama, embedded_tokenizer) -> None:  # type: ignore[no-untyped-def]
    # 2:4 needs input widths divisible by 4; a width of 66 is not.
    from transformers import LlamaConfig, LlamaForCausalLM

    odd = LlamaForCausalLM(
        LlamaConfig(vocab_size=len(embedded_tokenizer), hidden_size=66, intermediate_size=130,
                    num_hidden_layers=1, num_attention_heads=3, num_key_value_heads=3)
    )  # fmt: skip
    recipe = Recipe.from_steps([{"method": "nm", "criterion": "magnitude"}])
    with pytest.raises(CompressionFailedError, match=r"step 1 nm\(.*not a multiple of m=4"):
        compress(odd, recipe, CompressionContext(embedded_tokenizer))
