"""The steps of the search: plan -> evaluate -> update Pareto -> refine or stop -> (finish).

Each node is a plain function of the state, the run context and the services it needs (planner,
evaluator, store), returning a partial state update; ``graph.py`` binds the services. Evaluate takes
one proposal per step, so every trial is its own checkpoint.

Idempotency of evaluate: each trial is written to the results store *before* the step's checkpoint.
If the process dies between the two (or in the middle of a batch), the resumed run repeats the step
for the same trial numbers; the step finds the trials already in the store and reuses them instead
of measuring them again. So after a hard
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
from agentic_compression.workflow.executors import Executor, Job, LocalExecutor
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
    asked = max(context.proposals_per_call, context.parallel)
    count = max(1, min(asked, context.budgets.max_trials - len(trials)))
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


def _job(
    proposal: PendingProposal, number: int, screened: TrialRecord | None
) -> tuple[Job, PendingProposal, TrialRecord | None]:
    fidelity: Fidelity = (
        "screen" if screened is None and proposal.get("fidelity") == "screen" else "full"
    )
    return Job(number, Recipe.from_dict(proposal["recipe"]), fidelity), proposal, screened


def _measure_batch(
    jobs: list[tuple[Job, PendingProposal, TrialRecord | None]],
    state: SearchState,
    context: RunContext,
    evaluator: Evaluator,
    store: ResultsStore,
    executor: Executor,
) -> dict[int, TrialRecord]:
    """Measure ``jobs`` on ``executor`` and store each trial as soon as it is measured.

    A job with a ``screened`` record is a promotion: its full measurement replaces the screening
    one (kept in its provenance). A promotion's phases are recorded under a number no trial row
    has, so that a kill during it charges them as lost work (take_unfinished_costs), like any
    unfinished trial.
    """
    run_id = state["run_id"]
    by_number = {job.number: (proposal, screened) for job, proposal, screened in jobs}

    def prefix(job: Job) -> str:
        stage = ", screening" if job.fidelity == "screen" else ""
        return f"trial {job.number} ({job.recipe.label}{stage})"

    def cost_number(job: Job) -> int:
        return job.number if by_number[job.number][1] is None else -1 - job.number

    def progress(job: Job, text: str) -> None:
        store.set_progress(run_id, f"{prefix(job)}: {text}")
        context.on_progress(f"{prefix(job)}: {text}")

    def spent(job: Job, reading: EnergyReading) -> None:
        store.record_phase_cost(
            run_id, cost_number(job), reading.phase, reading.energy_kwh, reading.co2_kg
        )

    for job, _, _ in jobs:
        progress(job, "starting")
    stored: dict[int, TrialRecord] = {}
    for done in executor.run(evaluator, [job for job, _, _ in jobs], progress, spent):
        job = done.job
        proposal, screened = by_number[job.number]
        result = done.result.model_copy(
            update={"provenance": done.result.provenance.model_copy(update={"worker": done.worker})}
        )
        status, error, objectives = result.status, result.error, None
        if status == "ok":
            try:
                objectives = objective_values(result)
            except MissingObjectiveError as missing:
                status, error = "failed", f"missing objective: {missing}"
        record = TrialRecord(
            run_id=run_id,
            number=job.number,
            recipe=job.recipe,
            recipe_hash=result.recipe_hash,
            candidate_id=result.candidate_id,
            status=status,
            error=error,
            objectives=objectives,
            seconds=done.seconds,
            provenance=TrialProvenance(
                planner=proposal["planner"],
                reasoning=proposal["reasoning"],
                tool_calls=tuple(proposal["tool_calls"]),
                evaluation_config_hash=evaluator.config_hash,
                recipe_hash=result.recipe_hash,
                fidelity=job.fidelity,
                screening=_screening_summary(screened) if screened is not None else None,
            ),
            result=result,
            created_at=now(),
        )
        if screened is not None:
            stored[job.number] = store.replace_trial(record)
            store.discard_phase_costs(run_id, cost_number(job))  # counted in the trial now
        else:
            stored[job.number] = store.save_trial(record)
    return stored


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
    state: SearchState,
    context: RunContext,
    evaluator: Evaluator,
    store: ResultsStore,
    executor: Executor | None = None,
) -> dict[str, Any]:
    """Measure the next ``executor.slots`` pending proposals as trials (reusing any the store
    already holds), in parallel when the executor has more than one slot."""
    executor = executor or LocalExecutor()
    pending = state.get("pending", [])
    if not pending:
        raise WorkflowStateError("evaluate was reached with no pending proposal")
    batch, rest = pending[: executor.slots], pending[executor.slots :]
    run_id = state["run_id"]
    # Phases of a trial that a kill interrupted were stored as they ended: count them once.
    lost_kwh, lost_kg = store.take_unfinished_costs(run_id)
    next_number = len(state.get("trials", []))
    numbered: list[tuple[int, PendingProposal]] = []
    for proposal in batch:
        if "promote" in proposal:
            numbered.append((proposal["promote"], proposal))
        else:
            numbered.append((next_number, proposal))
            next_number += 1
    trials: dict[int, TrialRecord] = {}
    jobs = []
    for number, proposal in numbered:
        trial = store.get_trial(run_id, number)
        if "promote" in proposal:
            if trial is None:
                raise WorkflowStateError(f"run {run_id}: no screened trial {number} to promote")
            if trial.provenance.fidelity == "screen":  # else: measured before a kill, reuse it
                jobs.append(_job(proposal, number, trial))
                continue
        elif trial is None:
            jobs.append(_job(proposal, number, None))
            continue
        trials[number] = trial
    started = time.perf_counter()
    trials.update(_measure_batch(jobs, state, context, evaluator, store, executor))
    # The time budget pays for the batch as it ran (side by side, worker start-ups and retries
    # included); a batch found whole in the store after a kill pays its slowest trial again.
    batch_seconds = time.perf_counter() - started
    constraints = constraints_for(context.goal)
    summaries: list[TrialSummary] = []
    cost = SearchCost(trial_co2_kg=0.0, trial_energy_kwh=0.0, seconds=0.0)
    for number, proposal in numbered:
        trial = trials[number]
        if trial.recipe_hash != proposal["recipe_hash"]:
            raise WorkflowStateError(
                f"run {run_id}: stored trial {number} has recipe {trial.recipe_hash} but the "
                f"checkpoint planned {proposal['recipe_hash']}; the store and checkpoint do not "
                "match"
            )
        if trial.status == "failed":
            write_knowledge(context, trial)
        summaries.append(_summary(trial, constraints))
        cost["trial_co2_kg"] += trial.search_co2_kg
        cost["trial_energy_kwh"] += trial.search_energy_kwh
    cost["seconds"] = batch_seconds if jobs else max(t.seconds for t in trials.values())
    if lost_kg or lost_kwh:
        cost["lost_co2_kg"], cost["lost_energy_kwh"] = lost_kg, lost_kwh
    numbers = [number for number, _ in numbered]
    return {
        "trials": summaries,
        "pending": rest,
        "spent": cost,
        "last_trial": numbers[-1],
        "last_batch": numbers,
    }


def _summary(trial: TrialRecord, constraints: Any) -> TrialSummary:
    return TrialSummary(
        number=trial.number,
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
    # The trials of the last evaluate step (a batch when candidates run in parallel).
    batch = set(state.get("last_batch") or ([] if last is None else [last]))
    stale = state.get("trials_without_improvement", 0)
    new_full = [t for t in full if t["number"] in batch]
    if not batch or new_full:  # a screening leaves the counter as it is
        before = [t for t in full if t["number"] not in batch] if batch else full[:-1]
        improved = bool(full) and hypervolume_improved(
            measured(before), measured(full), constraints
        )
        stale = 0 if improved else stale + max(1, len(new_full))
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
