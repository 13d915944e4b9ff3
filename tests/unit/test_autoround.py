"""AutoRound (auto-round) calibrated rounding, and the GGUF exporter writing its Q4_0 grid exactly."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from agentic_compression.compression.apply import CompressionContext, compress
from agentic_compression.compression.recipe import Recipe
from agentic_compression.errors import MethodUnavailableError, UserInputError
from agentic_compression.runtimes.gguf_export import exact_q4_0

QUICK = {"method": "autoround", "iters": 2, "samples": 4, "seq_len": 32, "batch_size": 2}


def _rounded(tiny_llama, embedded_tokenizer, **params):  # type: ignore[no-untyped-def]
    context = CompressionContext(tokenizer=embedded_tokenizer)
    reports = compress(tiny_llama, Recipe.from_steps([{**QUICK, **params}]), context)
    return reports[0], context


def test_autoround_leaves_float_weights_on_the_4bit_grid(tiny_llama, embedded_tokenizer) -> None:
    import torch

    before = {n: p.detach().clone() for n, p in tiny_llama.named_parameters()}
    attributes = {n: set(vars(m)) for n, m in tiny_llama.named_modules()}
    report, context = _rounded(tiny_llama, embedded_tokenizer)

    assert "14 linear layers rounded to 4-bit symmetric groups of 32" in report.summary
    assert "weights stay float32 on the grid" in report.summary
    assert context.calibration_used == [
        "gsm8k-train-first2000 (GSM8K train, shipped with the package): 4 x 32 tokens"
    ]
    layer = tiny_llama.model.layers[0].mlp.down_proj
    assert type(layer) is torch.nn.Linear and layer.weight.dtype == torch.float32
    changed = layer.weight.detach() - before["model.layers.0.mlp.down_proj.weight"]
    assert 0 < float(changed.abs().max()) < 0.05  # rounded, not replaced
    for name, module in tiny_llama.named_modules():
        assert set(vars(module)) == attributes[name], f"auto-round left attributes on {name}"
        if isinstance(module, torch.nn.Linear) and name.startswith("model.layers"):
            weight = module.weight.detach().numpy()
            assert exact_q4_0(weight) is not None, f"{name} is not on a Q4_0 grid"
    embedding = tiny_llama.model.embed_tokens.weight  # tied to the output head: kept float
    assert torch.equal(embedding, before["model.embed_tokens.weight"])
    assert not any(p.requires_grad for p in tiny_llama.parameters())


def test_autoround_8bit_is_not_a_q4_0_grid(tiny_llama, embedded_tokenizer) -> None:
    report, _ = _rounded(tiny_llama, embedded_tokenizer, bits=8, group_size=64)
    assert "rounded to 8-bit symmetric groups of 64" in report.summary
    weight = tiny_llama.model.layers[1].self_attn.q_proj.weight.detach()
    groups = weight.reshape(weight.shape[0], -1, 64)
    levels = max(len(groups[i, j].unique()) for i in range(4) for j in range(groups.shape[1]))
    assert 16 < levels <= 256
    assert exact_q4_0(weight.numpy()) is None


def test_autoround_refusals(tiny_llama, embedded_tokenizer, monkeypatch) -> None:
    with pytest.raises(MethodUnavailableError, match="group_size 128 does not divide the 64"):
        _rounded(tiny_llama, embedded_tokenizer, group_size=128)
    with pytest.raises(UserInputError, match="8 bits symmetrically only; use sym true"):
        Recipe.from_steps([{**QUICK, "bits": 8, "sym": False}])
    with pytest.raises(UserInputError, match="batch_size 8 exceeds samples 4"):
        Recipe.from_steps([{**QUICK, "batch_size": 8}])
    with pytest.raises(UserInputError, match="comes after quantization step 'int4_weight_only'"):
        Recipe.from_steps([{"method": "int4_weight_only", "group_size": 32}, QUICK])
    Recipe.from_steps([QUICK, {"method": "int4_weight_only", "group_size": 32}])  # the other way
    monkeypatch.setitem(sys.modules, "auto_round", None)
    with pytest.raises(
        MethodUnavailableError, match=r"pip install 'agentic-compression\[autoround"
    ):
        _rounded(tiny_llama, embedded_tokenizer)


def test_exact_q4_0_matches_ggml_layout_and_beats_requantizing() -> None:
    import gguf

    from agentic_compression.runtimes.llamacpp_lib import quantize_rows

    rng = np.random.default_rng(0)
    scales = rng.uniform(0.001, 0.1, size=(8, 4)).astype(np.float16).astype(np.float32)
    scales *= rng.choice([-1, 1], size=scales.shape)
    q = rng.integers(-7, 8, size=(8, 4, 32))  # no -8: llama.cpp's own d would differ
    grid = (scales[..., None] * q).reshape(8, 128).astype(np.float32)

    packed = exact_q4_0(grid)
    assert packed is not None and packed.shape == (8, 4 * 18)
    back = gguf.quants.dequantize(packed, gguf.GGMLQuantizationType.Q4_0)
    np.testing.assert_array_equal(back, grid)

    ggml = quantize_rows(grid, int(gguf.GGMLQuantizationType.Q4_0))
    again = gguf.quants.dequantize(ggml.reshape(8, -1), gguf.GGMLQuantizationType.Q4_0)
    assert float(np.abs(again - grid).max()) > 0  # re-rounding moves values off AutoRound's grid

    assert exact_q4_0(rng.normal(size=(4, 64)).astype(np.float32)) is None
    assert exact_q4_0(np.zeros((2, 64), np.float32)) is not None  # all-zero blocks: d = 0
    assert exact_q4_0(grid[:, :48]) is None  # rows that are not whole blocks


def test_rounded_model_exports_exactly_to_gguf_q4_0(
    tiny_llama, embedded_tokenizer, tmp_path
) -> None:
    import gguf

    from agentic_compression.runtimes.gguf_export import export_gguf

    _rounded(tiny_llama, embedded_tokenizer)
    artefact = export_gguf(tiny_llama, embedded_tokenizer, tmp_path / "m.gguf", "Q4_0")
    assert "14 tensors already on the Q4_0 grid written exactly (not re-rounded)" in artefact.notes
    reader = gguf.GGUFReader(tmp_path / "m.gguf")
    tensor = next(t for t in reader.tensors if t.name == "blk.1.ffn_down.weight")
    values = gguf.quants.dequantize(tensor.data, tensor.tensor_type)
    expected = tiny_llama.model.layers[1].mlp.down_proj.weight.detach().numpy()
    np.testing.assert_array_equal(values.reshape(expected.shape), expected)
