"""The runtime conformance suite on the embedded SmolLM2-135M: every runtime scores, generates and
times the same model consistently (offline, CPU, real WikiText-2 and ARC-Easy data)."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from agentic_compression.compression import CompressionContext
from agentic_compression.core.runtime_config import (
    LlamaCppSettings,
    OnnxRuntimeSettings,
    RuntimeConfig,
    TorchSettings,
)
from agentic_compression.evaluation.accuracy import AccuracyConfig, evaluate_accuracy
from agentic_compression.evaluation.latency import LatencyConfig, measure_latency
from agentic_compression.evaluation.perplexity import PerplexityConfig, perplexity
from agentic_compression.runtimes import runtime_for

pytestmark = pytest.mark.integration

WINDOWS = PerplexityConfig(seq_len=512, windows=4)
RUNTIMES: dict[str, RuntimeConfig] = {
    "torch": TorchSettings(),
    "llamacpp-F16": LlamaCppSettings(quant="F16"),
    "llamacpp-Q8_0": LlamaCppSettings(quant="Q8_0"),
    "onnxruntime-int8": OnnxRuntimeSettings(precision="int8"),
}


@dataclass
class Request:
    """What lm-eval hands an ``LM``: the request's arguments."""

    args: tuple[Any, ...]


@pytest.fixture(scope="module", params=list(RUNTIMES))
def deployed(request, embedded_model, tmp_path_factory):  # type: ignore[no-untyped-def]
    config = RUNTIMES[request.param]
    context = CompressionContext(embedded_model.tokenizer)
    model = embedded_model.model if config.is_default else embedded_model.fresh_copy()
    workdir = tmp_path_factory.mktemp(request.param)
    with runtime_for(config).deploy(model, embedded_model, config, context, workdir) as deployment:
        yield request.param, deployment


@pytest.fixture(scope="module")
def torch_perplexity(embedded_model) -> float:  # type: ignore[no-untyped-def]
    from agentic_compression.runtimes.torch_eager import TorchDeployment

    deployment = TorchDeployment(embedded_model.model, embedded_model.tokenizer)
    return perplexity(deployment, WINDOWS).value


def test_perplexity_matches_the_reference_within_the_format_error(
    deployed, torch_perplexity
) -> None:  # type: ignore[no-untyped-def]
    name, deployment = deployed
    value = perplexity(deployment, WINDOWS).value
    tolerance = {
        "torch": 1e-9, "llamacpp-F16": 0.01, "llamacpp-Q8_0": 0.02, "onnxruntime-int8": 0.02
    }[name]  # fmt: skip
    assert value == pytest.approx(torch_perplexity, rel=tolerance)
    assert 25 < value < 35  # the embedded model on WikiText-2 test


def test_greedy_generation_is_what_log_likelihood_ranks_first(deployed) -> None:  # type: ignore[no-untyped-def]
    _, deployment = deployed
    lm = deployment.lm_eval_model(batch_size=1)
    prompt = "The capital of France is Paris. The capital of Germany is"
    (continuation,) = lm.generate_until([Request((prompt, {"until": ["\n"], "max_gen_toks": 6}))])
    assert continuation.strip()
    ((logprob, is_greedy),) = lm.loglikelihood([Request((prompt, continuation))])
    assert is_greedy and logprob < 0


def test_latency_record_is_complete(deployed) -> None:  # type: ignore[no-untyped-def]
    _, deployment = deployed
    stats = measure_latency(deployment, LatencyConfig(prompt_tokens=64, new_tokens=8, repeats=2))
    assert stats.prompt_tokens == 64 and stats.new_tokens == 8 and stats.threads >= 1
    assert 0 < stats.decode_ms_median <= stats.decode_ms_p90 < 1000
    assert 0 < stats.prefill_ms_median <= stats.prefill_ms_p90


def test_accuracy_comes_from_the_runtime_and_agrees_with_torch(
    deployed, embedded_model, benchmarks_dir, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    name, deployment = deployed
    config = AccuracyConfig(("arc_easy",), data_dir=benchmarks_dir, limit=20, num_fewshot=0)
    (metric,) = evaluate_accuracy(deployment, None, config)
    (reference,) = evaluate_accuracy(embedded_model.model, embedded_model.tokenizer, config)
    assert metric.n_examples == 20 and metric.metric == "acc"
    assert abs(metric.value - reference.value) <= (0.0 if name == "torch" else 0.1)


def test_evaluate_cli_measures_a_gguf_candidate(tmp_path: Path) -> None:
    output = tmp_path / "results.json"
    done = subprocess.run(
        [
            sys.executable, "-m", "agentic_compression.cli.app", "evaluate",
            "--recipe", "gguf-q4_0", "--ppl-windows", "2", "--latency-repeats", "1",
            "--output", str(output),
        ],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    (candidate,) = json.loads(output.read_text())["results"]
    deployment = candidate["metrics"]["deployment"]
    assert deployment["runtime"] == "llamacpp" and deployment["format"] == "GGUF Q4_0"
    assert candidate["metrics"]["size"]["serialized_bytes"] < 120e6  # vs 538 MB in fp32
