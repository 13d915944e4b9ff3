"""The search's carbon ledger: sums by kind of work, labels, and the break-even."""

from __future__ import annotations

import pytest

from agentic_compression.compression.presets import preset
from agentic_compression.compression.recipe import Recipe
from agentic_compression.core.metrics import CandidateResult
from agentic_compression.core.objectives import objective_values
from agentic_compression.results.ledger import build_ledger, is_uncompressed
from agentic_compression.results.records import TrialProvenance, TrialRecord
from workflow_fakes import FakeMetrics, energy_reading, fake_result


def _trial(number: int, result: CandidateResult) -> TrialRecord:
    return TrialRecord(
        run_id="r1", number=number, recipe=Recipe.from_dict(result.recipe), recipe_hash=result.recipe_hash,
        candidate_id=result.candidate_id, status=result.status, error=result.error,
        objectives=objective_values(result) if result.status == "ok" else None, seconds=1.0,
        provenance=TrialProvenance(planner="test", reasoning="", evaluation_config_hash="e",
                                   recipe_hash=result.recipe_hash),
        result=result, created_at="2026-01-01T00:00:00+00:00",
    )  # fmt: skip


def _with_phases(result: CandidateResult, **co2_by_phase: float) -> CandidateResult:
    energy = tuple(energy_reading(kg, phase) for phase, kg in co2_by_phase.items())
    return result.model_copy(update={"energy": energy})


def _trials() -> list[TrialRecord]:
    baseline = _with_phases(
        fake_result(preset("fp32"), FakeMetrics(0.50, 40.0, 538_000_000, 2e-5)),
        compression=1e-5, latency=2e-5, accuracy=3e-5,
    )  # fmt: skip
    nf4 = _with_phases(
        fake_result(preset("nf4"), FakeMetrics(0.48, 30.0, 173_000_000, 1.5e-5)),
        compression=1e-5, latency=2e-5, perplexity=1e-5,
    )  # fmt: skip
    failed = _with_phases(fake_result(preset("int4-weight-only"), None), compression=5e-6)
    return [_trial(0, baseline), _trial(1, nf4), _trial(2, failed)]


def test_ledger_sums_every_phase_and_the_planner() -> None:
    trials = _trials()
    spent = {"planning_co2_kg": 4e-6, "planner_reported_co2_kg": 1e-6, "planning_energy_kwh": 1e-5}
    ledger = build_ledger(trials, spent, chosen_candidate_id=trials[1].candidate_id)
    assert ledger.compression_co2_kg == pytest.approx(1e-5 + 1e-5 + 5e-6)  # the failed one counts
    assert ledger.evaluation_co2_kg == pytest.approx(2e-5 + 3e-5 + 2e-5 + 1e-5)
    assert ledger.training_co2_kg == 0.0
    assert ledger.total_co2_kg == pytest.approx(2.5e-5 + 8e-5 + 4e-6 + 1e-6)
    assert ledger.labels == ("estimated",)


def test_break_even_is_search_co2_over_per_token_saving() -> None:
    trials = _trials()
    ledger = build_ledger(trials, {}, chosen_candidate_id=trials[1].candidate_id)
    saving_per_token = (2e-5 - 1.5e-5) / 1000
    assert ledger.baseline_candidate_id == trials[0].candidate_id
    assert ledger.break_even_tokens == pytest.approx(ledger.total_co2_kg / saving_per_token)
    assert "repays the search" in ledger.break_even_note


def test_no_saving_or_no_baseline_gives_no_number() -> None:
    trials = _trials()
    same = build_ledger(trials, {}, chosen_candidate_id=trials[0].candidate_id)
    assert same.break_even_tokens is None and "never repays" in same.break_even_note
    no_baseline = build_ledger(trials[1:], {}, chosen_candidate_id=trials[1].candidate_id)
    assert no_baseline.break_even_tokens is None
    assert "no uncompressed baseline" in no_baseline.break_even_note
    nothing = build_ledger(trials, {}, chosen_candidate_id=None)
    assert nothing.break_even_tokens is None


def test_only_fp32_recipes_count_as_the_baseline() -> None:
    assert is_uncompressed(preset("fp32"))
    assert not is_uncompressed(preset("gguf-f16"))
    assert is_uncompressed(Recipe())
    assert not is_uncompressed(preset("bf16"))
    assert not is_uncompressed(preset("wanda-30"))
