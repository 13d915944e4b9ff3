"""Test doubles of the workflow's boundaries: a scripted planner and an evaluator with fake metrics.

Fake results are built from the real records (CandidateResult, CandidateMetrics, EnergyReading,
Provenance), so everything downstream (objectives, store, exports) runs its real code on them.
Importable from tests/unit and tests/integration (pytest puts tests/, the conftest's folder, on
sys.path).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from agentic_compression.carbon.energy_meter import PhaseBox
from agentic_compression.compression.recipe import Recipe
from agentic_compression.core.metrics import (
    AccuracyMetric,
    CandidateMetrics,
    CandidateResult,
    EnergyReading,
    InferenceEnergy,
    LatencyStats,
    Provenance,
    SizeStats,
)
from agentic_compression.evaluation.candidate import EnergySink, Progress
from agentic_compression.planning.base import Planner, PlanningGoal, Proposal, TrialOutcome
from agentic_compression.workflow.evaluator import Evaluator

MODEL_HASH = "feedfacecafebeef"


def recipe(sparsity: float) -> Recipe:
    """A real, registered recipe; the sparsity makes its hash unique."""
    return Recipe.from_steps(
        [{"method": "magnitude", "sparsity": sparsity}], name=f"mag-{round(sparsity * 100)}"
    )


@dataclass(frozen=True)
class FakeMetrics:
    accuracy: float
    latency_ms: float
    size_bytes: int
    co2_kg_per_1k_tokens: float


def energy_reading(co2_kg: float, phase: str = "compression") -> EnergyReading:
    return EnergyReading(
        phase=phase, duration_s=1.0, energy_kwh=co2_kg * 2.5, co2_kg=co2_kg,
        cpu_energy_kwh=co2_kg * 2.0, gpu_energy_kwh=0.0, ram_energy_kwh=co2_kg * 0.5,
        label="estimated", meter="fake meter", country_iso_code="FRA",
        carbon_intensity_g_per_kwh=400.0, intensity_source="fake table",
    )  # fmt: skip


def provenance(recipe_hash: str) -> Provenance:
    return Provenance(
        package_version="0", packages={}, python="3", platform="test", cpu="test", cpu_count=2,
        gpu=None, torch_threads=2, git_revision=None, seed=0, model="tiny", model_hash=MODEL_HASH,
        recipe_hash=recipe_hash, calibration=None, meter="fake meter", intensity_source="fake",
        started_at="2025-01-01T00:00:00+00:00", finished_at="2025-01-01T00:00:01+00:00",
    )  # fmt: skip


def fake_result(
    r: Recipe, metrics: FakeMetrics | None, *, search_co2_kg: float = 1e-4, error: str = "boom"
) -> CandidateResult:
    """An ok result with ``metrics``, or (``metrics=None``) a failed one that still spent energy."""
    common = {
        "candidate_id": f"{MODEL_HASH[:8]}-{r.hash}",
        "model": "tiny",
        "recipe": r.to_dict(),
        "recipe_hash": r.hash,
        "energy": (energy_reading(search_co2_kg),),
        "provenance": provenance(r.hash),
    }
    if metrics is None:
        return CandidateResult(
            status="failed", error=f"RuntimeError: {error}", failed_phase="compression", **common
        )
    measured = CandidateMetrics(
        size=SizeStats(
            serialized_bytes=metrics.size_bytes, serialization="safetensors",
            parameter_count=1000, zero_parameter_count=100, linear_weight_sparsity=0.1,
            overall_sparsity=0.1,
        ),
        latency=LatencyStats(
            prompt_tokens=16, new_tokens=4, warmup=0, repeats=1, prefill_ms_median=5.0,
            prefill_ms_p90=5.0, decode_ms_median=metrics.latency_ms,
            decode_ms_p90=metrics.latency_ms, decode_tokens_per_s=1000 / metrics.latency_ms,
            threads=2, device="cpu",
        ),
        accuracy=(
            AccuracyMetric(
                task="arc_easy", metric="acc", value=metrics.accuracy, stderr=0.05,
                higher_is_better=True, n_examples=5, num_fewshot=0,
            ),
        ),
        inference_energy=InferenceEnergy(
            generated_tokens=4, energy_kwh_per_token=metrics.co2_kg_per_1k_tokens * 2.5 / 1000,
            co2_kg_per_1k_tokens=metrics.co2_kg_per_1k_tokens, label="estimated",
            meter="fake meter",
        ),
    )  # fmt: skip
    return CandidateResult(status="ok", metrics=measured, **common)


class FakeEvaluator(Evaluator):
    """Answers from a table keyed by recipe hash; ``None`` in the table means a failed candidate."""

    def __init__(
        self,
        table: Mapping[str, FakeMetrics | None],
        *,
        search_co2_kg: float = 1e-4,
        planning_co2_kg: float | None = None,
        screen_table: Mapping[str, FakeMetrics | None] | None = None,
    ) -> None:
        self.table = dict(table)
        self.search_co2_kg = search_co2_kg
        self.planning_co2_kg = planning_co2_kg
        self.screen_table = dict(screen_table or {})
        self.calls: list[str] = []
        self.fidelities: list[str] = []

    @property
    def config_hash(self) -> str:
        return "fakeconfig000000"

    def evaluate(
        self,
        recipe: Recipe,
        progress: Progress,
        on_energy: EnergySink | None = None,
        fidelity: str = "full",
    ) -> CandidateResult:
        progress("measuring (fake)")
        self.calls.append(recipe.hash)
        self.fidelities.append(fidelity)
        table = self.screen_table if fidelity == "screen" and self.screen_table else self.table
        result = fake_result(recipe, table[recipe.hash], search_co2_kg=self.search_co2_kg)
        for reading in result.energy:
            if on_energy is not None:
                on_energy(reading)
        return result

    @contextmanager
    def metered(self, phase: str) -> Iterator[PhaseBox]:
        box = PhaseBox()
        yield box
        if self.planning_co2_kg is not None:
            box.reading = energy_reading(self.planning_co2_kg, phase)


class ScriptedPlanner(Planner):
    """Proposes the given recipes in order, skipping any already in the history."""

    name = "scripted"

    def __init__(self, recipes: Sequence[Recipe], *, reported_co2_kg: float | None = None) -> None:
        self.recipes = list(recipes)
        self.calls = 0
        self.reported_co2_kg = reported_co2_kg

    def propose(
        self,
        history: Sequence[TrialOutcome],
        goal: PlanningGoal,
        count: int,
        pending: Sequence[Recipe] = (),
    ) -> list[Proposal]:
        self.calls += 1
        done = {outcome.recipe.hash for outcome in history} | {r.hash for r in pending}
        fresh = [r for r in self.recipes if r.hash not in done]
        return [
            Proposal(r, self.name, f"next in script: {r.label}", ("script.next()",))
            for r in fresh[:count]
        ]


class ReportingPlanner(ScriptedPlanner):
    """A scripted planner that reports a CO2 estimate for each call (like an LLM planner)."""

    def last_call_co2_kg_estimate(self) -> float:
        return self.reported_co2_kg or 0.0


def table(
    rows: Sequence[tuple[Recipe, FakeMetrics | None]],
) -> dict[str, FakeMetrics | None]:
    return {r.hash: m for r, m in rows}
