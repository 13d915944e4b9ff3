"""A run's outputs: results JSON with provenance and the frontier, flat CSV, HTML and SVG plots."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from agentic_compression.planning.base import PlanningGoal
from agentic_compression.results.export import CSV_COLUMNS, write_run_outputs
from agentic_compression.results.records import RunRecord, TrialRecord
from agentic_compression.results.store import SqliteResultsStore
from agentic_compression.workflow import nodes
from agentic_compression.workflow.runner import SearchSettings, create_run
from agentic_compression.workflow.state import Budgets, PendingProposal, RunContext, initial_state
from workflow_fakes import FakeEvaluator, FakeMetrics, recipe, table

METRICS = [
    FakeMetrics(0.80, 30.0, 500_000_000, 4e-4),  # most accurate
    FakeMetrics(0.70, 20.0, 250_000_000, 2e-4),  # balanced
    FakeMetrics(0.40, 10.0, 100_000_000, 1e-4),  # cheapest, below the threshold
    FakeMetrics(0.60, 35.0, 600_000_000, 5e-4),  # dominated by the first
    None,  # failed
]
RECIPES = [recipe(0.1 * (i + 1)) for i in range(len(METRICS))]


def _trials(tmp_path: Path, goal: PlanningGoal) -> tuple[RunRecord, list[TrialRecord]]:
    store = SqliteResultsStore(tmp_path / "results.sqlite")
    run = create_run(store, "r1", SearchSettings(accuracy_threshold=0.5), "fakeconfig000000")
    context = RunContext(run_dir=tmp_path / "run", goal=goal, budgets=Budgets(max_trials=9))
    evaluator = FakeEvaluator(table(list(zip(RECIPES, METRICS, strict=True))))
    state = initial_state("r1")
    for r in RECIPES:
        proposal = PendingProposal(recipe=r.to_dict(), recipe_hash=r.hash, planner="llm (test)",
                                   reasoning=f"try {r.label}", tool_calls=["pareto_front()"])  # fmt: skip
        update = nodes.evaluate({**state, "pending": [proposal]}, context, evaluator, store)
        state["trials"] = state["trials"] + update["trials"]
    return run, store.list_trials("r1")


def test_outputs(tmp_path: Path) -> None:
    goal = PlanningGoal(accuracy_threshold=0.5)
    run, trials = _trials(tmp_path, goal)
    spent = {"trial_co2_kg": 5e-4, "seconds": 12.0}
    paths = write_run_outputs(tmp_path / "run", run, trials, spent, goal, "carbon")

    payload = json.loads(paths.results_json.read_text())
    ids = [t.candidate_id for t in trials]
    assert payload["pareto"]["front_ids"] == [ids[0], ids[1]]  # 2 infeasible, 3 dominated, 4 failed
    assert payload["pareto"]["hypervolume"] > 0
    assert set(payload["pareto"]["reference_point"]) == {
        "accuracy",
        "latency_ms",
        "memory_bytes",
        "energy_kwh_per_1k_tokens",
        "co2_kg_per_1k_tokens",
    }
    assert payload["pareto"]["knee"]["trial"] in (0, 1)
    assert payload["selections"]["accuracy"]["trial"] == 0
    assert payload["selections"]["carbon"]["trial"] == 1
    assert payload["selected"] == {"preset": "carbon", "choice": payload["selections"]["carbon"]}
    assert payload["constraints"] == [{"name": "accuracy", "lower": 0.5, "upper": None}]
    assert payload["infeasible"][ids[2]] == ["accuracy 0.4 < minimum 0.5"]
    assert payload["spent"] == spent
    first = payload["trials"][0]
    assert first["provenance"] == {
        "planner": "llm (test)",
        "reasoning": "try mag-10",
        "tool_calls": ["pareto_front()"],
        "evaluation_config_hash": "fakeconfig000000",
        "recipe_hash": RECIPES[0].hash,
        "fidelity": "full",
        "screening": None,
    }
    assert first["result"]["provenance"]["model_hash"] == "feedfacecafebeef"
    assert payload["trials"][4]["status"] == "failed" and payload["trials"][4]["error"]

    rows = list(csv.DictReader(paths.trials_csv.open()))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert [r["on_front"] for r in rows] == ["True", "True", "False", "False", "False"]
    assert [r["feasible"] for r in rows] == ["True", "True", "False", "True", "False"]
    assert float(rows[0]["emissions"]) == 1e-4 and float(rows[0]["energy_consumed"]) == 2.5e-4
    assert float(rows[0]["duration"]) == 1.0 and rows[0]["country_iso_code"] == "FRA"
    assert float(rows[1]["co2_kg_per_1k_tokens"]) == 2e-4 and rows[4]["accuracy"] == ""
    assert rows[4]["emissions"] == "0.0001"  # a failed trial's energy is still reported

    assert (
        paths.pareto_html is not None and "plotly" in paths.pareto_html.read_text()[:5000].lower()
    )
    assert paths.pareto_svg is not None
    svg = paths.pareto_svg.read_text()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    assert "#0 mag-10" in svg  # text stays text (svg.fonttype none): editable in papers


def test_outputs_of_a_run_with_no_feasible_trial(tmp_path: Path) -> None:
    goal = PlanningGoal(accuracy_threshold=0.99)
    run, trials = _trials(tmp_path, goal)
    paths = write_run_outputs(tmp_path / "run", run, trials, {}, goal, "balanced", plots=False)
    payload = json.loads(paths.results_json.read_text())
    assert payload["pareto"]["front_ids"] == [] and payload["pareto"]["hypervolume"] is None
    assert payload["selected"]["choice"] is None and paths.pareto_svg is None
