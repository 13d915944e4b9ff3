"""LoRA recovery and distillation: trained for real, merged back into plain weights, sparsity kept,
metered as training (#11 item 4)."""

from __future__ import annotations

import pytest
import torch

from agentic_compression.carbon.energy_meter import CodeCarbonMeter
from agentic_compression.compression import CompressionContext, compress
from agentic_compression.compression.calibration import CalibrationSource
from agentic_compression.compression.layers import decoder_blocks, linear_layers
from agentic_compression.compression.recipe import Recipe
from agentic_compression.compression.recovery import attach_adapters, merge_adapters
from agentic_compression.errors import (
    MethodUnavailableError,
    UserInputError,
)
from agentic_compression.evaluation.candidate import MeasureConfig, evaluate_candidate
from agentic_compression.evaluation.latency import LatencyConfig
from agentic_compression.evaluation.perplexity import PerplexityConfig
from agentic_compression.models.loading import LoadedModel

FAST = {"steps": 30, "batch_size": 2, "seq_len": 32, "learning_rate": 3e-3}


def _zeros(model) -> int:  # type: ignore[no-untyped-def]
    return sum(int((layer.weight == 0).sum()) for _, layer in linear_layers(decoder_blocks(model)))


def test_lora_recovery_trains_merges_and_keeps_the_sparsity(tiny_llama, embedded_tokenizer) -> None:  # type: ignore[no-untyped-def]
    recipe = Recipe.from_steps(
        [{"method": "magnitude", "sparsity": 0.5}, {"method": "lora_recovery", **FAST}]
    )
    pruned = Recipe.from_steps([{"method": "magnitude", "sparsity": 0.5}])
    reference = type(tiny_llama)(tiny_llama.config).eval()
    reference.load_state_dict(tiny_llama.state_dict())
    compress(reference, pruned, CompressionContext(embedded_tokenizer))
    reports = compress(tiny_llama, recipe, CompressionContext(embedded_tokenizer))
    summary = reports[1].summary
    first, last = (float(x) for x in summary.split("loss ")[1].split(";")[0].split(" -> "))
    assert last < first, summary
    assert (
        "adapters masked to the kept weights" in summary and "training text gsm8k-train" in summary
    )
    # merged back: plain linear layers, no adapter modules or parameters left
    assert not any("lora" in name for name, _ in tiny_llama.named_parameters())
    assert all(type(layer) is torch.nn.Linear for _, layer in linear_layers(tiny_llama))
    assert _zeros(tiny_llama) == _zeros(reference)  # the same weights are zero
    changed = [
        not torch.equal(a.weight, b.weight)
        for (_, a), (_, b) in zip(
            linear_layers(decoder_blocks(tiny_llama)),
            linear_layers(decoder_blocks(reference)),
            strict=True,
        )
    ]
    assert all(changed)


def test_sparse_adapters_train_the_model_that_is_merged(tiny_llama, embedded_tokenizer) -> None:  # type: ignore[no-untyped-def]
    """The masked update is in the forward pass, so merging changes nothing the training saw: the
    same logits before and after the merge, and the pruned weights stay exactly zero."""
    compress(
        tiny_llama,
        Recipe.from_steps([{"method": "magnitude", "sparsity": 0.5}]),
        CompressionContext(embedded_tokenizer),
    )
    layers = dict(linear_layers(decoder_blocks(tiny_llama)))
    masks = {
        name: layer.weight != 0
        for name, layer in layers.items()
        if name.endswith(("q_proj", "down_proj"))
    }
    zeros = _zeros(tiny_llama)
    peft_model = attach_adapters(tiny_llama, ["q_proj", "down_proj"], masks, rank=4, alpha=8)
    torch.manual_seed(0)
    for name, param in peft_model.named_parameters():
        if "lora_B" in name:  # PEFT starts B at zero: give the update something to say
            param.data.normal_(0, 0.5)
    ids = torch.randint(0, tiny_llama.config.vocab_size, (2, 16))
    with torch.no_grad():
        trained = peft_model(input_ids=ids).logits
        merge_adapters(peft_model, tiny_llama)
        merged = tiny_llama(input_ids=ids).logits
    torch.testing.assert_close(trained, merged, rtol=1e-4, atol=1e-4)
    assert _zeros(tiny_llama) == zeros
    assert all(type(layer) is torch.nn.Linear for _, layer in linear_layers(tiny_llama))


def test_distillation_needs_the_teacher_and_uses_it(tiny_llama, embedded_tokenizer) -> None:  # type: ignore[no-untyped-def]
    steps = [{"method": "magnitude", "sparsity": 0.5},
             {"method": "lora_recovery", "distill_weight": 0.5, **FAST}]  # fmt: skip
    with pytest.raises(MethodUnavailableError, match="need the base model as teacher"):
        compress(tiny_llama, Recipe.from_steps(steps), CompressionContext(embedded_tokenizer))
    teacher = type(tiny_llama)(tiny_llama.config).eval()
    teacher.load_state_dict(tiny_llama.state_dict())
    reports = compress(
        tiny_llama,
        Recipe.from_steps(steps),
        CompressionContext(embedded_tokenizer, teacher=teacher),
    )
    assert "distilled (w=0.5, T=1.0)" in reports[1].summary


def test_teacher_generated_text_trains_on_the_base_models_own_samples(
    tiny_llama, embedded_tokenizer
) -> None:  # type: ignore[no-untyped-def]
    steps = [{"method": "magnitude", "sparsity": 0.5},
             {"method": "lora_recovery", "data": "teacher", "teacher_sequences": 6,
              "distill_weight": 0.5, **FAST}]  # fmt: skip
    with pytest.raises(MethodUnavailableError, match="teacher-generated text need the base model"):
        compress(tiny_llama, Recipe.from_steps(steps), CompressionContext(embedded_tokenizer))
    teacher = type(tiny_llama)(tiny_llama.config).eval()
    teacher.load_state_dict(tiny_llama.state_dict())
    context = CompressionContext(embedded_tokenizer, teacher=teacher, seed=3)
    reports = compress(tiny_llama, Recipe.from_steps(steps), context)
    summary = reports[1].summary
    assert "(6 distinct sequences)" in summary
    assert "training text sampled from the base model: 6 x 32 tokens" in summary
    assert "teacher-generated text: 6 x 32 tokens (seed 3)" in context.calibration_used
    first, last = (float(x) for x in summary.split("loss ")[1].split(";")[0].split(" -> "))
    assert last < first, summary


def test_recovery_cannot_follow_quantization() -> None:
    with pytest.raises(UserInputError, match="comes after quantization step"):
        Recipe.from_steps([{"method": "int8_weight_only"}, {"method": "lora_recovery"}])


def test_recovery_is_metered_as_training(tiny_llama, embedded_tokenizer) -> None:  # type: ignore[no-untyped-def]
    recipe = Recipe.from_steps(
        [{"method": "mlp_channels", "fraction": 0.5, "calibration_samples": 4,
          "calibration_seq_len": 32}, {"method": "lora_recovery", **FAST}]
    )  # fmt: skip
    assert [phase for phase, _ in recipe.segments()] == ["compression", "training"]
    config = MeasureConfig(
        latency=LatencyConfig(prompt_tokens=8, new_tokens=2, repeats=1),
        perplexity=PerplexityConfig(windows=1, seq_len=32),
    )
    base = LoadedModel("tiny", "tiny", tiny_llama, embedded_tokenizer, "tinyhash")
    result = evaluate_candidate(base, recipe, config, CodeCarbonMeter("FRA"))
    assert result.status == "ok", result.error
    phases = [reading.phase for reading in result.energy]
    assert phases[:2] == ["compression", "training"]
    assert [s.method for s in result.steps] == ["mlp_channels", "lora_recovery"]


def test_too_little_training_text_is_a_clear_error(
    tiny_llama, embedded_tokenizer, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    text = tmp_path / "train.txt"
    text.write_text("Only a few words of training text.")
    recipe = Recipe.from_steps([{"method": "lora_recovery", "steps": 10, "seq_len": 64}])
    context = CompressionContext(embedded_tokenizer, CalibrationSource(text))
    with pytest.raises(MethodUnavailableError, match="holds 0; use a shorter seq_len"):
        compress(tiny_llama, recipe, context)
