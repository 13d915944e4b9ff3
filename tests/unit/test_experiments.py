"""RQ1-RQ4 commands with measurements replaced at the evaluator boundary (an analytic fake world).

The fake answers any (recipe, runtime) from its bits, Wanda sparsity and runtime: fewer bits and a
fast runtime cut latency, size and CO2; sparsity and 4 bits cost accuracy. One candidate fails, to
show a failure stays a failure. Everything else (planners, arms, statistics, files, report) is real.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from agentic_compression.cli import experiment_commands, search_commands
from agentic_compression.compression.recipe import Recipe
from agentic_compression.core.metrics import CandidateResult
from agentic_compression.evaluation.candidate import EnergySink, Progress
from agentic_compression.experiments import rq4
from agentic_compression.experiments.arms import arm_statistics
from agentic_compression.experiments.measurements import MeasurementLog
from agentic_compression.experiments.scoring import weighted_score
from agentic_compression.experiments.session import grid_recipe
from agentic_compression.workflow.evaluator import Evaluator
from workflow_fakes import FakeMetrics, energy_reading, fake_result

RUNNER = CliRunner()
FAILS = "wanda-70+nf4"


def _bits(recipe: Recipe) -> int:
    label = recipe.label.lower()
    for bits, keys in ((4, ("nf4", "q4", "int4", "fp4")), (8, ("int8", "q8", "8bit")),
                       (16, ("bf16", "f16", "q6", "q5"))):  # fmt: skip
        if any(k in label for k in keys):
            return bits
    return 32


class AnalyticEvaluator(Evaluator):
    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    @property
    def config_hash(self) -> str:
        return "analytic00000000"

    def evaluate(
        self,
        recipe: Recipe,
        progress: Progress,
        on_energy: EnergySink | None = None,
        fidelity: str = "full",
    ) -> CandidateResult:
        self.calls.append((recipe.label, fidelity))
        if recipe.label == FAILS:
            return fake_result(recipe, None, error="kernel missing")
        steps = recipe.to_dict()["steps"]
        sparsity = next((s["sparsity"] for s in steps if s["method"] == "wanda"), 0.0)
        bits = _bits(recipe)
        loss = {32: 0.0, 16: 0.002, 8: 0.006, 4: 0.03}[bits]
        fast = recipe.runtime.name != "torch"
        latency = (12.0 if fast else 40.0) * (bits / 32) ** 0.5 * (1 - 0.2 * sparsity)
        metrics = FakeMetrics(
            accuracy=0.55 - loss - 0.3 * sparsity**2,
            latency_ms=latency,
            size_bytes=int(538e6 * bits / 32 * (1 - 0.4 * sparsity)),
            co2_kg_per_1k_tokens=latency * 4e-6,
        )
        result = fake_result(recipe, metrics)
        # The timed generations: 1e-5 kWh in 1 s, a mean power of 36 W.
        timed = energy_reading(4e-6, phase="latency")
        return result.model_copy(update={"energy": (*result.energy, timed)})


@pytest.fixture()
def app(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[typer.Typer, AnalyticEvaluator]]:
    fake = AnalyticEvaluator()
    monkeypatch.setattr(search_commands, "_evaluator", lambda settings, progress: fake)
    application = typer.Typer()
    experiment_commands.register(application)
    yield application, fake


ARGS = ["--runtime", "torch,llamacpp", "--seeds", "0,1,2", "--quick"]


@pytest.mark.parametrize("rq", ["rq1", "rq2", "rq3", "rq4"])
def test_each_rq_command_writes_json_table_and_plots(
    app: tuple[typer.Typer, AnalyticEvaluator], tmp_path: Path, rq: str
) -> None:
    application, fake = app
    result = RUNNER.invoke(application, [f"run-{rq}", *ARGS, "--output", str(tmp_path)])
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / f"{rq}.json").read_text())
    assert data["options"]["fidelity"] == "screen" and data["options"]["seeds"] == [0, 1, 2]
    assert data["provenance"]["evaluation"]["config_hash"] == "analytic00000000"
    assert "cpu" in data["provenance"]["machine"] and data["provenance"]["seeds"] == [0, 1, 2]
    for suffix in (".md", ".svg", ".png"):
        folder = tmp_path / ("plots" if suffix != ".md" else "")
        assert (folder / f"{rq}{suffix}").stat().st_size > 500
    assert {f for _, f in fake.calls} == {"screen"}
    labels = [label for label, _ in fake.calls]
    assert len(labels) == len(set(labels)), "a candidate was measured twice in one folder"
    assert f"# {data['title']}" in result.output  # the table is printed at the end


def test_run_all_then_report_reproduces_every_table_byte_for_byte(
    app: tuple[typer.Typer, AnalyticEvaluator], tmp_path: Path
) -> None:
    application, fake = app
    result = RUNNER.invoke(application, ["run-all", *ARGS, "--output", str(tmp_path)])
    assert result.exit_code == 0, result.output
    first = {p.name: p.read_bytes() for p in sorted(tmp_path.rglob("rq*.*"))}
    assert len(first) == 16  # 4 x (json, md, svg, png)
    for p in tmp_path.rglob("rq*.*"):
        if p.suffix != ".json":
            p.unlink()
    again = RUNNER.invoke(application, ["report", str(tmp_path)])
    assert again.exit_code == 0, again.output
    assert {p.name: p.read_bytes() for p in sorted(tmp_path.rglob("rq*.*"))} == first
    measured = len(fake.calls)
    rerun = RUNNER.invoke(application, ["run-all", *ARGS, "--output", str(tmp_path)])
    # A second run-all in the folder measures only the failed candidate again.
    assert rerun.exit_code == 0 and [label for label, _ in fake.calls[measured:]] == [FAILS]


def test_rq1_arms_and_statistics(
    app: tuple[typer.Typer, AnalyticEvaluator], tmp_path: Path
) -> None:
    application, _ = app
    assert RUNNER.invoke(application, ["run-rq1", *ARGS, "--output", str(tmp_path)]).exit_code == 0
    data = json.loads((tmp_path / "rq1.json").read_text())
    threshold = data["accuracy_threshold"]
    assert threshold == pytest.approx(0.95 * 0.55)  # retention x the fp32 baseline
    static = [t["label"] for t in data["arms"]["static"]["trials"]]
    assert static == ["fp32", "bf16", "int8", "wanda-30+int8", "wanda-50+int8", "wanda-30+nf4",
                      "wanda-50+nf4"]  # fmt: skip
    # The dynamic rule starts at (8, 0), which meets the threshold here, and stops.
    assert [t["label"] for t in data["arms"]["dynamic"]["trials"]] == ["int8"]
    seeds = data["arms"]["agentic"]["by_seed"]
    assert set(seeds) == {"0", "1", "2"} and all(len(t) == 8 for t in seeds.values())
    assert seeds["0"][0]["label"] == "fp32"  # the known-good seeds come first
    stats = arm_statistics(data["arms"]["static"]["trials"], threshold, None)
    assert stats["trials_to_threshold"] == 1 and stats["best_accuracy"] == pytest.approx(0.55)
    assert stats["energy_kwh_to_threshold"] == pytest.approx((1e-4 + 4e-6) * 2.5)
    # Counting only compressed candidates (smaller than fp32): bf16, the second static recipe.
    smaller = data["baseline"]["objectives"]["memory_bytes"]
    compressed = arm_statistics(
        data["arms"]["static"]["trials"], threshold, None, smaller_than=smaller
    )
    assert compressed["trials_to_threshold"] == 2
    assert compressed["energy_kwh_to_threshold"] == pytest.approx(2 * (1e-4 + 4e-6) * 2.5)
    table = (tmp_path / "rq1.md").read_text()
    assert "| agentic | 3 | 8.0 ± 0.0 |" in table and "| static | 1 | 7.0 |" in table


def test_rq2_savings_and_rq4_limits(
    app: tuple[typer.Typer, AnalyticEvaluator], tmp_path: Path
) -> None:
    application, _ = app
    for rq in ("rq2", "rq4"):
        result = RUNNER.invoke(application, [f"run-{rq}", *ARGS, "--output", str(tmp_path)])
        assert result.exit_code == 0, result.output
    rq2_table = (tmp_path / "rq2.md").read_text()
    # llama.cpp Q4_0 with no pruning: latency 12 * sqrt(4/32) = 4.24 vs 40 -> 89.4% less CO2.
    row = next(line for line in rq2_table.splitlines() if line.startswith("| 90% |"))
    assert "89.4% energy, 89.4% CO2 (gguf-q4_" in row
    data = json.loads((tmp_path / "rq4.json").read_text())
    assert data["profiles"]["edge"]["rule"]["trial"]["status"] == "failed"  # (4, 0.7) fails here
    stats = rq4.summary(data)
    assert stats["edge"]["rule"] == {"trial": data["profiles"]["edge"]["rule"]["trial"],
                                     "ok": False, "error": "RuntimeError: kernel missing"}  # fmt: skip
    # Fake power 36 W: every profile with a power limit under that has no feasible candidate,
    # and says so.
    assert not stats["mobile"]["chosen_feasible"]
    assert stats["cloud"]["chosen_feasible"]
    chosen = stats["cloud"]["chosen"]
    assert chosen["broken"] == [] and chosen["trial"]["objectives"]["latency_ms"] <= 20
    expected = chosen["trial"]["objectives"]["energy_kwh_per_1k_tokens"] * 10_000 * 256 / 1000
    assert chosen["kwh_per_day"] == pytest.approx(expected)
    assert chosen["co2_kg_per_day"] == pytest.approx(expected * 0.5)
    assert "none feasible; closest:" in (tmp_path / "rq4.md").read_text()


def test_rq3_weights_change_the_picks() -> None:
    base = {"accuracy": 0.5, "latency_ms": 40.0, "memory_bytes": 5e8,
            "energy_kwh_per_1k_tokens": 1e-3, "co2_kg_per_1k_tokens": 4e-4}  # fmt: skip
    small = {**base, "accuracy": 0.1, "latency_ms": 10.0, "memory_bytes": 1e8,
             "energy_kwh_per_1k_tokens": 2.5e-4, "co2_kg_per_1k_tokens": 1e-4}  # fmt: skip
    assert weighted_score(base, base, "balanced") == 0.0
    assert weighted_score(small, base, "accuracy") < 0 < weighted_score(small, base, "carbon")


def test_bad_options_are_one_line_errors(
    app: tuple[typer.Typer, AnalyticEvaluator], tmp_path: Path
) -> None:
    application, fake = app
    for args, message in (
        (["--seeds", "a,b"], "--seeds: comma-separated integers"),
        (["--trials", "0"], "--trials must be at least 1"),
        (["--runtime", "tensorrt"], "unknown runtime"),
    ):
        result = RUNNER.invoke(application, ["run-rq1", *args, "--output", str(tmp_path)])
        assert result.exit_code != 0 and message in str(result.exception), result.output
    missing = RUNNER.invoke(application, ["report", str(tmp_path)])
    assert "holds no rq1.json" in str(missing.exception)
    assert fake.calls == []


def test_measurement_log_keeps_failures_and_ignores_other_settings(tmp_path: Path) -> None:
    fake = AnalyticEvaluator()
    path = tmp_path / "measurements.jsonl"
    log = MeasurementLog(path, fake, "full")
    failed_recipe = grid_recipe(4, 0.7)
    assert failed_recipe is not None
    failed = log.measure(failed_recipe)
    assert failed.status == "failed" and not failed.objectives and failed.energy_kwh > 0
    ok_recipe = grid_recipe(8, 0.0)
    assert ok_recipe is not None
    log.measure(ok_recipe)
    with path.open("a") as handle:
        handle.write('{"config_hash": "analytic00000000", "torn li')  # a killed write
    again = MeasurementLog(path, fake, "full")
    # The ok one is reused; the failure is measured again (its cause may have been transient).
    assert set(again.known) == {ok_recipe.hash}
    assert MeasurementLog(path, fake, "screen").known == {}  # another fidelity measures again


def test_scores_stay_finite_and_a_dead_baseline_is_a_one_line_error() -> None:
    from agentic_compression.errors import UserInputError

    base = {"accuracy": 0.5, "latency_ms": 40.0, "memory_bytes": 5e8,
            "energy_kwh_per_1k_tokens": 1e-3, "co2_kg_per_1k_tokens": 4e-4}  # fmt: skip
    zero = weighted_score({**base, "accuracy": 0.0}, base, "accuracy")
    assert zero == pytest.approx(2.0 * -10 / 3.2)  # floored at log2 = -10, weight 2 of 3.2
    with pytest.raises(UserInputError, match="baseline's accuracy is 0"):
        weighted_score(base, {**base, "accuracy": 0.0}, "balanced")


def test_footer_names_disturbed_measurements_and_the_cost() -> None:
    from agentic_compression.experiments.report import footer

    data = {
        "provenance": {"machine": {"cpu": "AMD EPYC", "cpu_count": 2}, "git_revision": "abc"},
        "arms": {
            "static": {
                "trials": [
                    {"label": "int8", "disturbed": True},
                    {"label": "fp32", "disturbed": False},
                ]
            }
        },
        "measurement_cost": {
            "candidates": 2,
            "evaluation_seconds": 61.2,
            "evaluation_energy_kwh": 0.00042,
        },
    }
    text = footer(data)
    assert "Measured on AMD EPYC x2, git abc." in text
    assert "stayed disturbed" in text and ": int8." in text and "fp32" not in text
    assert "2 candidates: 61 s and 0.42 Wh" in text
