"""What the results store keeps: one :class:`RunRecord` per search, one :class:`TrialRecord` per trial.

A trial record carries its :class:`Recipe` (typed: validated through the method registry when read
back, and checked against its stored hash), the full :class:`CandidateResult` (every measurement, its
environment provenance) and the search-side provenance of how the recipe was chosen: the planner, its
reasoning, the tool calls it made, the hash of the evaluation settings and the recipe hash. Records
are frozen pydantic models, so they round-trip through JSON exactly.

Example:
    >>> TrialProvenance(planner="rules", reasoning="seed", evaluation_config_hash="ab",
    ...                 recipe_hash="cd").tool_calls
    ()
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, PlainSerializer, model_validator

from agentic_compression.compression.recipe import Recipe
from agentic_compression.core.metrics import CandidateResult
from agentic_compression.core.objectives import upgrade_objectives

RunStatus = Literal["running", "finished", "failed", "interrupted"]


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _as_recipe(value: Any) -> Any:
    return value if isinstance(value, Recipe) else Recipe.from_dict(value)


#: A recipe in a record: a typed :class:`Recipe` in memory, its JSON form when stored.
RecipeField = Annotated[
    Recipe,
    BeforeValidator(_as_recipe),
    PlainSerializer(lambda recipe: recipe.to_dict(), return_type=dict),
]


class TrialProvenance(_Record):
    """How a trial's recipe was chosen and under which evaluation settings it was measured."""

    planner: str
    reasoning: str
    tool_calls: tuple[str, ...] = ()
    #: SHA-256 (16 hex) of the model hash and every measurement setting (see workflow.evaluator).
    evaluation_config_hash: str
    recipe_hash: str
    #: How the objectives were measured: "full", or "screen" (evaluation.screening: fewer examples
    #: and repeats; such a trial never enters the Pareto front).
    fidelity: Literal["screen", "full"] = "full"
    #: A promoted trial's screening measurement: its objectives, seconds, energy and CO2.
    screening: dict[str, Any] | None = None


class TrialRecord(_Record):
    """One finished trial of one run; ``status="failed"`` trials carry ``error`` and no objectives."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    run_id: str
    number: int
    recipe: RecipeField
    recipe_hash: str
    candidate_id: str
    status: Literal["ok", "failed"]
    error: str | None = None
    #: Objective values (core.objectives) of an ``ok`` trial; None for a failed one.
    objectives: dict[str, float] | None = None
    #: Wall-clock seconds the evaluation took.
    seconds: float
    provenance: TrialProvenance
    result: CandidateResult
    created_at: str

    @model_validator(mode="before")
    @classmethod
    def _upgrade(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("objectives") is not None:
            data = {**data, "objectives": upgrade_objectives(data["objectives"])}
        return data

    @model_validator(mode="after")
    def _recipe_matches_hash(self) -> TrialRecord:
        if self.recipe.hash != self.recipe_hash:
            raise ValueError(
                f"trial {self.number}: its recipe hashes to {self.recipe.hash}, not the stored "
                f"{self.recipe_hash}"
            )
        return self

    @property
    def search_co2_kg(self) -> float:
        """CO2 spent measuring this trial (every phase, a failed one included)."""
        return sum(reading.co2_kg for reading in self.result.energy)

    @property
    def search_energy_kwh(self) -> float:
        return sum(reading.energy_kwh for reading in self.result.energy)


class RunRecord(_Record):
    """One search: its settings (JSON), status, stop reason, and what it is doing right now."""

    run_id: str
    model: str
    config: dict[str, Any]
    status: RunStatus
    stop_reason: str | None = None
    error: str | None = None
    #: The trial and phase in progress ("trial 3 (wanda-30): measuring perplexity").
    progress: str | None = None
    pid: int | None = None
    host: str | None = None
    created_at: str
    updated_at: str
