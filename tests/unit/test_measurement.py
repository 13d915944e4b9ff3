"""Measuring a candidate on tiny random models: latency, perplexity, size, memory, energy, failures."""

from __future__ import annotations

import math
import mmap
import time

import pytest

from agentic_compression.carbon.energy_meter import CodeCarbonMeter
from agentic_compression.compression.presets import preset
from agentic_compression.compression.recipe import Recipe
from agentic_compression.errors import UserInputError
from agentic_compression.evaluation.candidate import MeasureConfig, evaluate_candidate
from agentic_compression.evaluation.footprint import peak_memory, size_stats
from agentic_compression.evaluation.latency import LatencyConfig, measure_latency
from agentic_compression.evaluation.perplexity import PerplexityConfig, perplexity
from agentic_compression.models.loading import LoadedModel, tensor_hash
from agentic_compression.runtimes.torch_eager import TorchDeployment

FAST = MeasureConfig(
    latency=LatencyConfig(prompt_tokens=16, new_tokens=4, warmup=1, repeats=2),
    perplexity=PerplexityConfig(seq_len=64, windows=2),
)


@pytest.fixture(scope="module")
def meter() -> CodeCarbonMeter:
    return CodeCarbonMeter("FRA")


@pytest.fixture()
def tiny_base(tiny_llama, embedded_tokenizer) -> LoadedModel:  # type: ignore[no-untyped-def]
    return LoadedModel(
        "tiny-llama", "test:random", tiny_llama, embedded_tokenizer, tensor_hash(tiny_llama)
    )


def test_latency_stats_are_consistent(tiny_llama, embedded_tokenizer) -> None:  # type: ignore[no-untyped-def]
    stats = measure_latency(
        TorchDeployment(tiny_llama, embedded_tokenizer),
        LatencyConfig(prompt_tokens=16, new_tokens=5, repeats=3),
    )
    assert stats.prompt_tokens == 16 and stats.new_tokens == 5 and stats.repeats == 3
    assert 0 < stats.decode_ms_median <= stats.decode_ms_p90
    assert 0 < stats.prefill_ms_median <= stats.prefill_ms_p90
    assert stats.decode_tokens_per_s == pytest.approx(1000 / stats.decode_ms_median)
    assert stats.device == "cpu" and stats.threads >= 1


def test_perplexity_of_a_random_model_is_near_vocabulary_size(
    tiny_llama, embedded_tokenizer
) -> None:  # type: ignore[no-untyped-def]
    result = perplexity(
        TorchDeployment(tiny_llama, embedded_tokenizer), PerplexityConfig(seq_len=64, windows=3)
    )
    assert result.windows == 3 and result.n_tokens == 3 * 63
    # An untrained model is close to uniform over 49152 tokens: perplexity within a factor of 2.
    assert len(embedded_tokenizer) / 2 < result.value < len(embedded_tokenizer) * 2
    assert math.isfinite(result.value)


def test_size_stats_count_real_bytes(tiny_llama) -> None:  # type: ignore[no-untyped-def]
    stats = size_stats(tiny_llama)
    n_params = sum(p.numel() for p in tiny_llama.parameters())
    assert stats.parameter_count == n_params
    assert n_params * 4 <= stats.serialized_bytes < n_params * 4 * 1.1  # fp32 plus a small header
    assert stats.linear_weight_sparsity == 0.0


def test_peak_memory_sees_an_allocation() -> None:
    # A fresh anonymous mapping: malloc's free lists (large after other tests) cannot absorb it.
    size = 200 * 1024 * 1024
    with peak_memory("cpu") as box:
        block = mmap.mmap(-1, size)
        for offset in range(0, size, mmap.PAGESIZE):
            block[offset] = 1  # touch every page so it is resident
        time.sleep(0.05)  # several sampling intervals
        block.close()
    assert box.stats is not None
    assert box.stats.peak_bytes - box.stats.baseline_bytes > 150 * 1024 * 1024
    assert box.stats.kind == "process_rss"


def test_meter_labels_and_country(meter: CodeCarbonMeter) -> None:
    with meter.phase("work") as box:
        sum(i * i for i in range(200_000))
    reading = box.reading
    assert reading is not None
    assert reading.energy_kwh > 0 and reading.co2_kg > 0 and reading.duration_s > 0
    assert reading.energy_kwh == pytest.approx(
        reading.cpu_energy_kwh + reading.gpu_energy_kwh + reading.ram_energy_kwh, rel=1e-6
    )
    # No RAPL and no GPU on CI machines: CodeCarbon's power model, labelled as an estimate.
    assert reading.label in ("measured", "estimated")
    assert "codecarbon" in reading.meter and reading.country_iso_code == "FRA"
    assert 0 < reading.carbon_intensity_g_per_kwh < 1000


def test_meter_rejects_unknown_country() -> None:
    with pytest.raises(UserInputError, match="unknown country code 'XXX'"):
        CodeCarbonMeter("XXX")


def test_repeated_phase_names_are_measured_separately(meter: CodeCarbonMeter) -> None:
    durations = []
    for spin in (50_000, 2_000_000):
        with meter.phase("same") as box:
            sum(i * i for i in range(spin))
        assert box.reading is not None
        durations.append(box.reading.duration_s)
    assert durations[1] > durations[0] * 3  # each phase timed on its own


def test_evaluate_candidate_measures_everything(tiny_base, meter) -> None:  # type: ignore[no-untyped-def]
    result = evaluate_candidate(tiny_base, preset("magnitude-50"), FAST, meter)
    assert result.status == "ok" and result.error is None
    assert result.metrics is not None and result.metrics.latency is not None
    assert result.metrics.size.linear_weight_sparsity == pytest.approx(0.5, abs=0.01)
    assert result.metrics.perplexity is not None and result.metrics.memory is not None
    assert [e.phase for e in result.energy] == [
        "compression", "size", "latency-warmup", "latency", "perplexity"
    ]  # fmt: skip
    assert result.metrics.inference_energy is not None
    assert (
        result.metrics.inference_energy.generated_tokens == (4 + 1) * 2
    )  # each repeat: the prefill token + 4 steps
    prov = result.provenance
    assert prov.recipe_hash == preset("magnitude-50").hash == result.recipe_hash
    assert prov.model_hash == tiny_base.model_hash and prov.packages["torch"].startswith("2.")
    assert prov.started_at <= prov.finished_at
    # The base model is untouched: the candidate was a copy.
    assert size_stats(tiny_base.model).linear_weight_sparsity == 0.0


def test_failed_compression_is_a_failed_result_without_metrics(tiny_base, meter) -> None:  # type: ignore[no-untyped-def]
    result = evaluate_candidate(
        tiny_base, Recipe.from_steps([{"method": "int4_weight_only"}]), FAST, meter
    )
    assert result.status == "failed" and result.metrics is None
    assert result.failed_phase == "compression"
    assert "group_size 128 does not divide" in (result.error or "")
    assert [e.phase for e in result.energy] == [
        "compression"
    ]  # the energy it spent is still counted
