"""The search's graph state and run context.

The state is what the checkpointer saves after every step, so it holds ids, recipes (as JSON-ready
dicts) and objective values only: never a model, a tensor or a client. Full measurements live in the
results store. Reducers are declared in the type: ``trials`` merges by trial number (re-applying a
trial after a resume replaces it rather than appending a copy), ``spent`` sums costs field by field.

The run context (:class:`RunContext`: goal, budgets, run folder) travels apart from the state, as
LangGraph's runtime context; it is rebuilt from the stored run settings on resume.

Example:
    >>> merge_trials([{"number": 0, "status": "ok"}], [{"number": 0, "status": "failed"}])
    [{'number': 0, 'status': 'failed'}]
    >>> add_costs({"trial_co2_kg": 1.0}, {"trial_co2_kg": 0.5, "seconds": 2.0})
    {'trial_co2_kg': 1.5, 'seconds': 2.0}
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, NotRequired, TypedDict

from agentic_compression.evaluation.screening import FidelitySchedule
from agentic_compression.planning.base import PlanningGoal

#: Why a search stopped: the first budget reached, or the planner having nothing left to propose.
StopReason = Literal["carbon_budget", "trial_budget", "time_budget", "converged", "exhausted"]

STOP_REASON_TEXT: dict[str, str] = {
    "carbon_budget": "the carbon budget of the search was spent",
    "trial_budget": "the trial budget was used up",
    "time_budget": "the time budget was used up",
    "converged": "the hypervolume stopped improving (patience reached)",
    "exhausted": "the planner had no new recipe to propose",
}


class TrialSummary(TypedDict):
    """One finished trial as the graph sees it (the full record is in the results store)."""

    number: int
    recipe: dict[str, Any]
    #: The recipe's label (:attr:`Recipe.label`), computed once when the trial was measured.
    label: str
    recipe_hash: str
    candidate_id: str
    status: Literal["ok", "failed"]
    #: Objective values (core.objectives) of an ok trial; None for a failed one.
    objectives: dict[str, float] | None
    #: Relative noise of the timed objectives (core.objectives.objective_noise); absent in
    #: checkpoints written before it was recorded.
    noise: NotRequired[dict[str, float]]
    #: "screen" or "full" (evaluation.screening); absent in older checkpoints: full.
    fidelity: NotRequired[str]
    feasible: bool
    error: str | None
    planner: str
    reasoning: str
    #: What measuring this trial cost (all phases, a failed trial's included).
    co2_kg: float
    energy_kwh: float
    seconds: float


class PendingProposal(TypedDict):
    """A planned recipe not yet evaluated, with the planner's account of why."""

    recipe: dict[str, Any]
    recipe_hash: str
    planner: str
    reasoning: str
    tool_calls: list[str]
    #: The fidelity to measure at ("screen" or "full"; absent: full).
    fidelity: NotRequired[str]
    #: Set for a promotion: the number of the screened trial to measure again in full.
    promote: NotRequired[int]


class SearchCost(TypedDict, total=False):
    """What the search itself has spent so far (summed by :func:`add_costs`)."""

    trial_co2_kg: float
    trial_energy_kwh: float
    #: Measured energy/CO2 of the planner calls on this machine.
    planning_co2_kg: float
    planning_energy_kwh: float
    #: CO2 a planner reported for work done elsewhere (an LLM provider's), an estimate.
    planner_reported_co2_kg: float
    #: Measured phases of trials a kill interrupted (their work was thrown away and redone).
    lost_co2_kg: float
    lost_energy_kwh: float
    #: Seconds spent planning and evaluating (time while the process was down is not counted).
    seconds: float


def add_costs(left: SearchCost, right: SearchCost) -> SearchCost:
    """Field-wise sum (the reducer of ``SearchState.spent``)."""
    out: dict[str, float] = {key: float(value) for key, value in left.items()}  # type: ignore[arg-type]
    for key, value in right.items():
        out[key] = out.get(key, 0.0) + float(value)  # type: ignore[arg-type]
    return SearchCost(**out)  # type: ignore[typeddict-item]


def cost_dict(spent: SearchCost) -> dict[str, float]:
    """The spent budget as a plain mapping (for exports)."""
    return {key: float(value) for key, value in spent.items()}  # type: ignore[arg-type]


def total_co2_kg(spent: SearchCost) -> float:
    """CO2 charged to the carbon budget: trials, planner calls, what planners reported, and the
    work interrupted trials threw away."""
    return (
        spent.get("trial_co2_kg", 0.0)
        + spent.get("planning_co2_kg", 0.0)
        + spent.get("planner_reported_co2_kg", 0.0)
        + spent.get("lost_co2_kg", 0.0)
    )


def merge_trials(left: list[TrialSummary], right: list[TrialSummary]) -> list[TrialSummary]:
    """Union by trial number, the newer write winning, in number order (reducer of ``trials``)."""
    by_number = {trial["number"]: trial for trial in left}
    by_number.update({trial["number"]: trial for trial in right})
    return [by_number[number] for number in sorted(by_number)]


class SearchState(TypedDict, total=False):
    """The graph state (checkpointed after every step)."""

    run_id: str
    trials: Annotated[list[TrialSummary], merge_trials]
    pending: list[PendingProposal]
    spent: Annotated[SearchCost, add_costs]
    #: Candidate ids of the feasible Pareto front, with its hypervolume and reference point.
    front_ids: list[str]
    hypervolume: float | None
    reference_point: dict[str, float] | None
    #: Trials since the hypervolume last grew (the convergence counter).
    trials_without_improvement: int
    stop_reason: StopReason | None
    #: Screened trials whose promotion was decided (evaluation.screening).
    judged: list[int]
    #: The number of the trial the last evaluate step measured.
    last_trial: int | None
    #: Every trial number the last evaluate step measured (a batch with a parallel executor).
    last_batch: list[int]


def initial_state(run_id: str) -> SearchState:
    """The input of a new run.

    >>> initial_state("r1")["trials"]
    []
    """
    return SearchState(
        run_id=run_id,
        trials=[],
        pending=[],
        spent=SearchCost(),
        front_ids=[],
        hypervolume=None,
        reference_point=None,
        trials_without_improvement=0,
        stop_reason=None,
        judged=[],
        last_trial=None,
    )


@dataclass(frozen=True)
class Budgets:
    """Stop conditions; the first one reached stops the search. None disables a budget."""

    max_trials: int
    carbon_kg: float | None = None
    time_s: float | None = None
    #: Stop after this many trials without hypervolume improvement.
    patience: int | None = None


def _ignore(_: str) -> None:
    return None


@dataclass(frozen=True)
class RunContext:
    """Run-scoped settings passed beside the state (LangGraph runtime context)."""

    run_dir: Path
    goal: PlanningGoal
    budgets: Budgets
    #: How many recipes to ask the planner for at a time.
    proposals_per_call: int = 2
    #: How many candidates the executor measures at once (the planner is asked for at least as many).
    parallel: int = 1
    #: Screening and promotion (evaluation.screening); the default measures everything in full.
    schedule: FidelitySchedule = field(default_factory=FidelitySchedule)
    #: Shown live by the CLI; never stored.
    on_progress: Callable[[str], None] = field(default=_ignore)

    @property
    def knowledge_dir(self) -> Path:
        """Readable records of failed trials (one file per error)."""
        return self.run_dir / "knowledge"
