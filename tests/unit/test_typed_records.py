"""Typed records end to end and objectives named with their units (#10.22)."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from agentic_compression.compression.presets import preset
from agentic_compression.compression.recipe import Recipe
from agentic_compression.core.objectives import (
    OBJECTIVE_NAMES,
    accuracy_fidelity,
    objective_values,
)
from agentic_compression.core.pareto import DEFAULT_OBJECTIVES
from agentic_compression.results.records import TrialRecord
from agentic_compression.results.store import make_results_store
from store_contract import run_record, trial_record
from workflow_fakes import FakeMetrics, fake_result


def test_objectives_carry_their_units_and_fidelity_is_not_one() -> None:
    result = fake_result(preset("nf4"), FakeMetrics(0.6, 25.0, 90_000_000, 3e-5))
    values = objective_values(result)
    assert tuple(values) == OBJECTIVE_NAMES == tuple(o.name for o in DEFAULT_OBJECTIVES)
    assert values["co2_kg_per_1k_tokens"] == pytest.approx(3e-5)
    assert "fidelity" not in values and "co2_kg" not in values
    assert accuracy_fidelity(result) == min(m.n_examples for m in result.metrics.accuracy)  # type: ignore[union-attr]


def test_trial_record_holds_a_typed_recipe_and_round_trips(tmp_path) -> None:  # type: ignore[no-untyped-def]
    trial = trial_record("run-a", 0, 0.3)
    assert isinstance(trial.recipe, Recipe)
    assert trial.recipe.label == trial.recipe.name
    stored = json.loads(trial.model_dump_json())
    assert stored["recipe"] == trial.recipe.to_dict()  # JSON at the storage boundary only
    assert TrialRecord.model_validate(stored) == trial
    store = make_results_store(f"sqlite:///{tmp_path / 'results.db'}")
    store.create_run(run_record("run-a"))
    store.save_trial(trial)
    again = store.get_trial("run-a", 0)
    assert again is not None and isinstance(again.recipe, Recipe) and again == trial


def test_a_record_whose_recipe_does_not_match_its_hash_is_refused() -> None:
    stored = json.loads(trial_record("run-a", 0, 0.3).model_dump_json())
    stored["recipe"]["steps"][0]["sparsity"] = 0.9
    with pytest.raises(ValidationError, match="hashes to"):
        TrialRecord.model_validate(stored)


def test_records_stored_before_the_rename_read_under_todays_names() -> None:
    stored = json.loads(trial_record("run-a", 0, 0.3).model_dump_json())
    stored["objectives"] = {"accuracy": 0.7, "co2_kg": 2e-5, "energy_kwh": 5e-5, "fidelity": 200.0}
    old = TrialRecord.model_validate(stored)
    assert old.objectives == {
        "accuracy": 0.7,
        "co2_kg_per_1k_tokens": 2e-5,
        "energy_kwh_per_1k_tokens": 5e-5,
    }
