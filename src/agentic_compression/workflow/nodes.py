"""The steps of the search: plan -> evaluate -> update Pareto -> refine or stop -> (finish).

Each node is a plain function of the state, the run context and the services it needs (planner,
evaluator, store), returning a partial state update; ``graph.py`` binds the services. Evaluate takes
one proposal per step, so every trial is its own checkpoint.

Idempotency of evaluate: the trial is written to the results store *before* the step's checkpoint.
If the process dies between the two, the resumed run repeats the step for the same trial number;
the step finds the trial in the store and reuses it instead of measuring it again. So after a hard
kill no trial is lost (it is either checkpointed or re-run) and none is repeated.

Example:
    >>> update = refine_or_stop(initial_state("r1"), context)       # doctest: +SKIP
    >>> update                                                      # doctest: +SKIP
    {}
"""

from __future__ import annotations

import json
import time
from typing import Any, Protocol, runtime_checkable

from agentic_compression.compression.recipe import Recipe
from agentic_compression.core.metrics import EnergyReading
from agentic_compression.core.objectives import (
    MissingObjectiveError,
    objective_noise,
    objective_values,
    upgrade_objectives,
)
from agentic_compression.core.provenance import now
from agentic_compression.errors import AgenticCompressionError
from agentic_compression.evaluation.screening import Fidelity
from agentic_compression.planning.base import Planner, TrialOutcome
from agentic_compression.results.analysis import (
    analyse,
    constraints_for,
    hypervolume_improved,
    is_feasible,
)
from agentic_compression.results.records import TrialProvenance, TrialRecord
from agentic_compression.results.store import ResultsStore
from agentic_compression.workflow.evaluator import Evaluator
from agentic_compression.workflow.state import (
    PendingProposal,
    RunContext,
    SearchCost,
    SearchState,
    StopReason,
    TrialSummary,
    total_co2_kg,
)


class WorkflowStateError(AgenticCompressionError):
    """The checkpoint and the results store disagree (they belong to different runs)."""


@runtime_checkable
class ReportsPlanningCarbon(Protocol):
    """A planner that can say what its last ``propose`` call cost in CO2 elsewhere (for example an
    LLM provider's estimate). Such estimates are charged to the carbon budget and kept apart from
    what this machine measured."""

    def last_call_co2_kg_estimate(self) -> float: ...


def planner_reported_co2_kg(planner: Planner) -> float:
    """The planner's own CO2 estimate for its last call, 0.0 if it reports none."""
    if isinstance(planner, ReportsPlanningCarbon):
        return float(planner.last_call_co2_kg_estimate())
    return 0.0


def _outcome(trial: TrialSummary) -> TrialOutcome:
    return TrialOutcome(
        number=trial["number"],
        recipe=Recipe.from_dict(trial["recipe"]),
        status=trial["status"],
        objectives=upgrade_objectives(trial["objectives"]) or {},
        feasible=trial["feasible"],
        error=trial["error"],
        fidelity=fidelity_of(trial),
    )


def fidelity_of(trial: TrialSummary) -> str:
    """ "screen" or "full" (trials of checkpoints older than screening are full)."""
    return trial.get("fidelity", "full")


def awaiting_promotion(state: SearchState) -> list[TrialSummary]:
    """Screened trials whose promotion to full fidelity has not been decided yet."""
    judged = set(state.get("judged", []))
    return [
        t
        for t in state.get("trials", [])
        if fidelity_of(t) == "screen" and t["number"] not in judged
    ]


def _promotions(waiting: list[TrialSummary], context: RunContext) -> list[PendingProposal]:
    """The screened trials worth measuring in full (``context.schedule``), as proposals."""
    constraints = constraints_for(context.goal)
    screened = [
        (t["candidate_id"], upgrade_objectives(t["objectives"]) or {})
        for t in waiting
        if t["status"] == "ok" and t["objectives"] is not None
    ]
    feasible = {cid for cid, values in screened if is_feasible(values, constraints)}
    chosen = set(context.schedule.promotions(screened, feasible))
    context.on_progress(
        f"screening: {len(chosen)} of {len(waiting)} screened candidates promoted to full fidelity"
    )
    return [
        PendingProposal(
            recipe=t["recipe"],
            recipe_hash=t["recipe_hash"],
            planner=t["planner"],
            reasoning=t["reasoning"],
            tool_calls=[],
            fidelity="full",
            promote=t["number"],
        )
        for t in waiting
        if t["candidate_id"] in chosen
    ]


def plan(
    state: SearchState, context: RunContext, planner: Planner, evaluator: Evaluator
) -> dict[str, Any]:
    """Promote a full rung of screened trials to full fidelity (when screening), else ask the
    planner for the next recipes; a planner with nothing new stops the search."""
    trials = state.get("trials", [])
    waiting = awaiting_promotion(state)
    no_new = len(trials) >= context.budgets.max_trials
    judged: list[int] = []
    if waiting and (len(waiting) >= context.schedule.rung or no_new):
        judged = [*state.get("judged", []), *(t["number"] for t in waiting)]
        promoted = _promotions(waiting, context)
        if promoted:
            return {"pending": promoted, "judged": judged}
        if no_new:
            return {"pending": [], "judged": judged, "stop_reason": "trial_budget"}
    count = max(1, min(context.proposals_per_call, context.budgets.max_trials - len(trials)))
    context.on_progress(f"planning with {planner.name}")
    started = time.perf_counter()
    with evaluator.metered("planning") as box:
        proposals = planner.propose([_outcome(t) for t in trials], context.goal, count)
    seconds = time.perf_counter() - started
    cost = SearchCost(seconds=seconds, planner_reported_co2_kg=planner_reported_co2_kg(planner))
    if box.reading is not None:
        cost["planning_co2_kg"] = box.reading.co2_kg
        cost["planning_energy_kwh"] = box.reading.energy_kwh
    seen = {t["recipe_hash"] for t in trials}
    pending: list[PendingProposal] = []
    for proposal in proposals[:count]:
        if proposal.recipe.hash in seen:  # the interface forbids it; never evaluate twice anyway
            continue
        seen.add(proposal.recipe.hash)
        pending.append(
            PendingProposal(
                recipe=proposal.recipe.to_dict(),
                recipe_hash=proposal.recipe.hash,
                planner=proposal.planner,
                reasoning=proposal.reasoning,
                tool_calls=list(proposal.tool_calls),
                fidelity=context.schedule.first,
            )
        )
    update: dict[str, Any] = {"pending": pending, "spent": cost}
    if judged:
        update["judged"] = judged
    if not pending:
        waiting = [t for t in waiting if t["number"] not in judged]
        if waiting:  # the planner has nothing new: the last screened ones still get their chance
            update["judged"] = [
                *(judged or state.get("judged", [])),
                *(t["number"] for t in waiting),
            ]
            update["pending"] = _promotions(waiting, context)
        if not update["pending"]:
            update["stop_reason"] = "exhausted"
    return update


def _measure(
    proposal: PendingProposal,
    number: int,
    state: SearchState,
    context: RunContext,
    evaluator: Evaluator,
    store: ResultsStore,
    screened: TrialRecord | None = None,
) -> TrialRecord:
    """Measure ``proposal`` as trial ``number`` and store it; ``screened``: the screening
    measurement of the same trial, which the full one now replaces (kept in its provenance)."""
    run_id = state["run_id"]
    recipe = Recipe.from_dict(proposal["recipe"])
    fidelity: Fidelity = (
        "screen" if screened is None and proposal.get("fidelity") == "screen" else "full"
    )
    prefix = f"trial {number} ({recipe.label}{', screening' if fidelity == 'screen' else ''})"
    # A promotion's phases are recorded under a number no trial row has, so that a kill during
    # it charges them as lost work (take_unfinished_costs), like any unfinished trial.
    cost_number = number if screened is None else -1 - number

    def progress(text: str) -> None:
        store.set_progress(run_id, f"{prefix}: {text}")
        context.on_progress(f"{prefix}: {text}")

    def spent(reading: EnergyReading) -> None:
        store.record_phase_cost(
            run_id, cost_number, reading.phase, reading.energy_kwh, reading.co2_kg
        )

    progress("starting")
    started = time.perf_counter()
    result = evaluator.evaluate(recipe, progress, on_energy=spent, fidelity=fidelity)
    seconds = time.perf_counter() - started
    status, error, objectives = result.status, result.error, None
    if status == "ok":
        try:
            objectives = objective_values(result)
        except MissingObjectiveError as missing:
            status, error = "failed", f"missing objective: {missing}"
    record = TrialRecord(
        run_id=run_id,
        number=number,
        recipe=recipe,
        recipe_hash=result.recipe_hash,
        candidate_id=result.candidate_id,
        status=status,
        error=error,
        objectives=objectives,
        seconds=seconds,
        provenance=TrialProvenance(
            planner=proposal["planner"],
            reasoning=proposal["reasoning"],
            tool_calls=tuple(proposal["tool_calls"]),
            evaluation_config_hash=evaluator.config_hash,
            recipe_hash=result.recipe_hash,
            fidelity=fidelity,
            screening=_screening_summary(screened) if screened is not None else None,
        ),
        result=result,
        created_at=now(),
    )
    if screened is not None:
        stored = store.replace_trial(record)
        store.discard_phase_costs(run_id, cost_number)  # finished: counted in the trial now
        return stored
    return store.save_trial(record)


def _screening_summary(trial: TrialRecord) -> dict[str, Any]:
    return {
        "objectives": trial.objectives,
        "noise": objective_noise(trial.result),
        "seconds": trial.seconds,
        "energy_kwh": trial.search_energy_kwh,
        "co2_kg": trial.search_co2_kg,
        "created_at": trial.created_at,
    }


def write_knowledge(context: RunContext, trial: TrialRecord) -> None:
    """A readable record of a failed trial under the run's ``knowledge/`` folder."""
    folder = context.knowledge_dir
    folder.mkdir(parents=True, exist_ok=True)
    text = "\n".join(
        [
            f"# Trial {trial.number} failed: {trial.recipe.label}",
            "",
            f"- run: `{trial.run_id}`",
            f"- candidate: `{trial.candidate_id}` (recipe hash `{trial.recipe_hash}`)",
            f"- failed phase: {trial.result.failed_phase or 'objectives'}",
            f"- error: {trial.error}",
            f"- planner: {trial.provenance.planner}",
            f"- planner reasoning: {trial.provenance.reasoning or '(none given)'}",
            f"- evaluation config hash: `{trial.provenance.evaluation_config_hash}`",
            f"- recorded: {trial.created_at}",
            "",
            "The trial is kept in the results store as a failure; it is not a Pareto point.",
            "",
            "```json",
            json.dumps({"recipe": trial.recipe.to_dict(), "error": trial.error}, indent=2),
            "```",
            "",
        ]
    )
    (folder / f"trial-{trial.number:04d}-{trial.recipe_hash}.md").write_text(text)


def evaluate(
    state: SearchState, context: RunContext, evaluator: Evaluator, store: ResultsStore
) -> dict[str, Any]:
    """Measure the first pending proposal as the next trial (or reuse it from the store)."""
    pending = state.get("pending", [])
    if not pending:
        raise WorkflowStateError("evaluate was reached with no pending proposal")
    proposal, rest = pending[0], pending[1:]
    promoting = "promote" in proposal
    number = proposal["promote"] if promoting else len(state.get("trials", []))
    # Phases of a trial that a kill interrupted were stored as they ended: count them once.
    lost_kwh, lost_kg = store.take_unfinished_costs(state["run_id"])
    trial = store.get_trial(state["run_id"], number)
    if promoting:
        if trial is None:
            raise WorkflowStateError(
                f"run {state['run_id']}: no screened trial {number} to promote"
            )
        if trial.provenance.fidelity == "screen":  # else: measured before a kill, reuse it
            trial = _measure(proposal, number, state, context, evaluator, store, screened=trial)
    elif trial is None:
        trial = _measure(proposal, number, state, context, evaluator, store)
    if trial.recipe_hash != proposal["recipe_hash"]:
        raise WorkflowStateError(
            f"run {state['run_id']}: stored trial {number} has recipe {trial.recipe_hash} but the "
            f"checkpoint planned {proposal['recipe_hash']}; the store and checkpoint do not match"
        )
    if trial.status == "failed":
        write_knowledge(context, trial)
    constraints = constraints_for(context.goal)
    summary = TrialSummary(
        number=number,
        recipe=trial.recipe.to_dict(),
        label=trial.recipe.label,
        recipe_hash=trial.recipe_hash,
        candidate_id=trial.candidate_id,
        status=trial.status,
        objectives=trial.objectives,
        noise=objective_noise(trial.result),
        fidelity=trial.provenance.fidelity,
        feasible=trial.objectives is not None and is_feasible(trial.objectives, constraints),
        error=trial.error,
        planner=trial.provenance.planner,
        reasoning=trial.provenance.reasoning,
        co2_kg=trial.search_co2_kg,
        energy_kwh=trial.search_energy_kwh,
        seconds=trial.seconds,
    )
    cost = SearchCost(
        trial_co2_kg=trial.search_co2_kg,
        trial_energy_kwh=trial.search_energy_kwh,
        seconds=trial.seconds,
    )
    if lost_kg or lost_kwh:
        cost["lost_co2_kg"], cost["lost_energy_kwh"] = lost_kg, lost_kwh
    return {"trials": [summary], "pending": rest, "spent": cost, "last_trial": number}


def measured(trials: list[TrialSummary]) -> list[tuple[str, dict[str, float]]]:
    """``(candidate id, objectives)`` of the trials that have objective values."""
    # Checkpoints written before the objectives carried their units hold the older names.
    return [
        (t["candidate_id"], upgrade_objectives(t["objectives"]) or {})
        for t in trials
        if t["objectives"] is not None
    ]


def update_pareto(state: SearchState, context: RunContext) -> dict[str, Any]:
    """Recompute the feasible front of the full-fidelity trials and count full-fidelity trials
    since its hypervolume last grew."""
    full = [t for t in state.get("trials", []) if fidelity_of(t) == "full"]
    constraints = constraints_for(context.goal)
    noise = {t["candidate_id"]: t.get("noise", {}) for t in full}
    analysis = analyse(measured(full), constraints, noise=noise)
    last = state.get("last_trial")
    stale = state.get("trials_without_improvement", 0)
    if last is None or any(t["number"] == last for t in full):  # a screening leaves it as it is
        before = [t for t in full if t["number"] != last] if last is not None else full[:-1]
        improved = bool(full) and hypervolume_improved(
            measured(before), measured(full), constraints
        )
        stale = 0 if improved else stale + 1
    return {
        "front_ids": list(analysis.front_ids),
        "hypervolume": analysis.hypervolume,
        "reference_point": analysis.reference_point,
        "trials_without_improvement": stale,
    }


def budget_reached(state: SearchState, context: RunContext) -> StopReason | None:
    """The first budget reached, in the order carbon, trials, time, convergence."""
    budgets = context.budgets
    spent = state.get("spent", SearchCost())
    if budgets.carbon_kg is not None and total_co2_kg(spent) >= budgets.carbon_kg:
        return "carbon_budget"
    if (
        len(state.get("trials", [])) >= budgets.max_trials
        and not state.get("pending")
        and not awaiting_promotion(state)
    ):  # the last screened candidates are judged (and promoted ones measured) first
        return "trial_budget"
    if budgets.time_s is not None and spent.get("seconds", 0.0) >= budgets.time_s:
        return "time_budget"
    stale = state.get("trials_without_improvement", 0)
    if budgets.patience is not None and state.get("front_ids") and stale >= budgets.patience:
        return "converged"
    return None


def refine_or_stop(state: SearchState, context: RunContext) -> dict[str, Any]:
    """Record the stop reason when a budget is reached; otherwise the search goes on."""
    if state.get("stop_reason"):
        return {}
    reason = budget_reached(state, context)
    return {"stop_reason": reason} if reason is not None else {}


def finish(state: SearchState, store: ResultsStore) -> dict[str, Any]:
    """Mark the run finished in the store, with its stop reason."""
    store.end_run(state["run_id"], "finished", stop_reason=state.get("stop_reason"))
    return {}
