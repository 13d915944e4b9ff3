"""The ONNX Runtime GenAI runtime on tiny random models: its model builder's export scores like
PyTorch, int4 is really quantized, threads are pinned, and what it cannot build is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentic_compression.compression import CompressionContext
from agentic_compression.core.runtime_config import OnnxRuntimeSettings, parse_runtime
from agentic_compression.errors import UserInputError
from agentic_compression.evaluation.perplexity import PerplexityConfig, perplexity
from agentic_compression.models.loading import LoadedModel
from agentic_compression.planning.space import ONNX_CHOICES, SearchSpace, SpacePoint
from agentic_compression.runtimes import installed_runtimes, runtime_for
from agentic_compression.runtimes.torch_eager import TorchDeployment

pytest.importorskip("onnxruntime_genai")
WINDOWS = PerplexityConfig(seq_len=64, windows=3)


def _deploy(model, tokenizer, precision: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    base = LoadedModel("tiny", "test", model, tokenizer, "tinyhash")
    config = OnnxRuntimeSettings(precision=precision, threads=1, context=256)  # type: ignore[arg-type]
    return runtime_for(config).deploy(model, base, config, CompressionContext(tokenizer), tmp_path)


def test_fp32_build_scores_like_pytorch(tiny_llama, embedded_tokenizer, tmp_path) -> None:  # type: ignore[no-untyped-def]
    reference = perplexity(TorchDeployment(tiny_llama, embedded_tokenizer), WINDOWS).value
    with _deploy(tiny_llama, embedded_tokenizer, "fp32", tmp_path) as deployment:
        assert perplexity(deployment, WINDOWS).value == pytest.approx(reference, rel=2e-3)
        assert deployment.info.format == "ONNX fp32" and deployment.threads == 1
        config = json.loads((tmp_path / "onnx" / "genai_config.json").read_text())
        assert config["model"]["decoder"]["session_options"]["intra_op_num_threads"] == 1


def test_int4_is_matmulnbits_and_smaller(tiny_llama, embedded_tokenizer, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import onnx

    with _deploy(tiny_llama, embedded_tokenizer, "int4", tmp_path / "q") as deployment:
        graph = onnx.load(str(tmp_path / "q" / "onnx" / "model.onnx"), load_external_data=False)
        ops = {node.op_type for node in graph.graph.node}
        assert "MatMulNBits" in ops
        lm = deployment.lm_eval_model(batch_size=1)
        assert lm is not None
        int4_bytes = deployment.size_stats().serialized_bytes
    with _deploy(tiny_llama, embedded_tokenizer, "fp32", tmp_path / "f") as deployment:
        assert int4_bytes < deployment.size_stats().serialized_bytes


def test_an_architecture_the_builder_lacks_is_refused(
    tiny_gpt2, embedded_tokenizer, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(UserInputError, match="cannot build this architecture"):
        _deploy(tiny_gpt2, embedded_tokenizer, "int8", tmp_path)


def test_settings_presets_and_space() -> None:
    assert "onnxruntime" in installed_runtimes()
    assert parse_runtime({"name": "onnxruntime", "precision": "int8"}).label == "onnxruntime-int8"
    with pytest.raises(UserInputError, match="'int4', 'int8' or 'fp32'"):
        parse_runtime({"name": "onnxruntime", "precision": "int2"})
    space = SearchSpace.for_this_machine(("torch", "onnxruntime"))
    assert set(ONNX_CHOICES) <= set(space.quantizations)
    point = SpacePoint("wanda", 0.3, "onnx-int4")
    assert space.from_recipe(space.to_recipe(point)) == point
