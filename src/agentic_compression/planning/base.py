"""The planner interface: given what has been measured so far, propose the next recipes.

Planners are stateless between calls: everything they need is in ``history``, so a resumed run
rebuilds the same planner state from the stored trials (the Optuna planner replays them into a fresh
in-memory study).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from agentic_compression.compression.recipe import Recipe


@dataclass(frozen=True)
class TrialOutcome:
    """One finished trial as a planner sees it (objective names: core.objectives.OBJECTIVE_NAMES)."""

    number: int
    recipe: Recipe
    status: Literal["ok", "failed"]
    objectives: Mapping[str, float] = field(default_factory=dict)
    feasible: bool = True
    error: str | None = None
    #: "full", or "screen": measured with fewer examples and repeats (evaluation.screening).
    fidelity: str = "full"


@dataclass(frozen=True)
class Proposal:
    """A recipe to try, with why the planner chose it (stored as provenance)."""

    recipe: Recipe
    planner: str
    reasoning: str
    tool_calls: tuple[str, ...] = ()


@dataclass(frozen=True)
class PlanningGoal:
    """What the search is for: the objective text and the constraints candidates must meet."""

    objective: str = "balanced accuracy and carbon"
    accuracy_threshold: float | None = None
    max_memory_bytes: float | None = None
    max_latency_ms: float | None = None


def taken_hashes(history: Sequence[TrialOutcome], pending: Sequence[Recipe]) -> set[str]:
    """Hashes a planner must not propose again: every tried and every in-flight recipe."""
    return {o.recipe.hash for o in history} | {r.hash for r in pending}


class Planner(ABC):
    """Proposes recipes. Implementations: offline (Optuna), LLM (LangChain), rules (baseline)."""

    name: str

    @abstractmethod
    def propose(
        self,
        history: Sequence[TrialOutcome],
        goal: PlanningGoal,
        count: int,
        pending: Sequence[Recipe] = (),
    ) -> list[Proposal]:
        """Up to ``count`` new recipes, never one whose hash is in ``history`` or ``pending``.

        ``pending`` are recipes proposed earlier and still being evaluated (by parallel workers):
        a planner treats them as taken, and a model-based one (TPE) as in flight, so a batch
        asked while others run spreads out instead of piling onto the same region.
        """
