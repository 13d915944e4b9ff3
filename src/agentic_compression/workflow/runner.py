"""Start, resume and finish a search run: settings, checkpointer, graph, outputs.

:class:`SearchSettings` is everything a run was asked for; it is stored (as JSON) in the run's row
of the results store, so ``resume RUN_ID`` rebuilds the same planner, evaluator, goal and budgets.
:func:`run_search` drives the compiled graph with ``durability="sync"`` and works out from the
checkpoint whether to start, continue or only re-export a finished run.

How resume works: the checkpointer holds the graph state after every step (trial summaries,
pending proposals, spent budget, convergence counter). A resumed run continues from the last
checkpoint. If the process died while a trial was being measured, that trial is measured again
under the same number; if it died after the trial was stored but before its checkpoint, the
evaluate step finds it in the results store and reuses it (see ``workflow.nodes``).

Example:
    >>> settings = SearchSettings(model="smollm2-135m", max_trials=8)   # doctest: +SKIP
    >>> outcome = run_search(run, planner, evaluator, store, runs_dir=Path("runs"))  # doctest: +SKIP
"""

from __future__ import annotations

import os
import re
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from agentic_compression.core.provenance import now
from agentic_compression.errors import UserInputError
from agentic_compression.planning.base import Planner, PlanningGoal
from agentic_compression.results.export import RunOutputs, write_run_outputs
from agentic_compression.results.records import RunRecord, TrialRecord
from agentic_compression.results.store import ResultsStore
from agentic_compression.workflow.checkpointer import make_checkpointer
from agentic_compression.workflow.evaluator import Evaluator
from agentic_compression.workflow.graph import build_workflow, run_config
from agentic_compression.workflow.state import (
    Budgets,
    RunContext,
    SearchCost,
    SearchState,
    TrialSummary,
    cost_dict,
    initial_state,
)

if TYPE_CHECKING:
    from agentic_compression.evaluation.candidate import MeasureConfig
    from agentic_compression.evaluation.screening import FidelitySchedule
    from agentic_compression.workflow.evaluator import CandidateEvaluator
    from agentic_compression.workflow.executors import Executor

SelectionPreset = Literal["accuracy", "carbon", "balanced", "efficiency"]


class SearchSettings(BaseModel):
    """What a run was asked for (the CLI's options), stored with the run."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str = "smollm2-135m"
    max_trials: int = Field(12, ge=1)
    #: kg CO2 the search itself may emit (trials + planner calls); None: no carbon budget.
    carbon_budget_kg: float | None = Field(0.1, gt=0)
    time_budget_min: float | None = Field(None, gt=0)
    patience: int | None = Field(6, ge=1)
    planner: str = "offline"
    objective: str = "balanced accuracy and carbon"
    #: Minimum mean accuracy, a fraction in [0, 1] (lm-eval scores are fractions).
    accuracy_threshold: float | None = Field(None, ge=0, le=1)
    max_memory_mb: float | None = Field(None, gt=0)
    max_latency_ms: float | None = Field(None, gt=0)
    tasks: str = "arc_easy"
    limit: int | None = Field(100, ge=1)
    data_dir: str | None = None
    #: Calibration text for pruning and importance matrices (None: the shipped GSM8K train text).
    calibration_file: str | None = None
    country: str = "USA"
    #: Grid zone whose live intensity prices CO2 (None: the country's annual average).
    zone: str | None = None
    #: Energy meter preference (auto picks the best available on the machine).
    meter: str = "auto"
    #: With ``zone``: wait up to this long before each trial for a cleaner forecast window.
    carbon_aware_max_delay_min: float | None = Field(None, gt=0)
    seed: int = 0
    select: SelectionPreset = "balanced"
    device: str = "cpu"
    proposals_per_call: int = Field(2, ge=1)
    #: "halving": screen every candidate cheaply, measure the best half of every 4 in full
    #: (evaluation.screening); "full": every candidate in full once. The CLI's default is
    #: "halving"; "full" here is what a run stored before screening existed resumes with.
    fidelity: Literal["halving", "full"] = "full"
    screen_rung: int = Field(4, ge=1)
    screen_keep: float = Field(0.5, gt=0, le=1)
    #: Runtimes candidates may be served by, comma separated (None: every runtime installed here).
    runtimes: str | None = None
    # Measurement settings (hidden CLI options; small values make quick tests).
    ppl_windows: int = Field(16, ge=1)
    ppl_seq_len: int = Field(512, ge=16)
    latency_prompt_tokens: int = Field(128, ge=1)
    latency_new_tokens: int = Field(32, ge=2)
    latency_repeats: int = Field(3, ge=1)
    latency_warmup: int = Field(1, ge=0)
    #: Where the run's checkpoints live (password removed: pass it again to resume).
    checkpoint_url: str | None = None
    run_dir: str | None = None
    #: Where candidates are measured (workflow.executors): "local" (this process, one at a time)
    #: or "ray" (``workers`` CPU and ``gpu_workers`` GPU actors of the cluster at ``ray_address``).
    executor: Literal["local", "ray"] = "local"
    ray_address: str | None = None
    workers: int = Field(2, ge=0)
    gpu_workers: int = Field(0, ge=0)
    cpus_per_worker: float = Field(1.0, gt=0)
    memory_gb_per_worker: float | None = Field(None, gt=0)
    #: Tries of a candidate whose worker dies before it is recorded failed.
    max_tries: int = Field(3, ge=1)

    @model_validator(mode="after")
    def _workers_for_the_device(self) -> SearchSettings:
        if self.executor == "ray":  # the executor's own rule, checked before any work starts
            from agentic_compression.workflow.executors import ray_slots

            ray_slots(self.device, self.runtimes, self.workers, self.gpu_workers)
        return self

    def goal(self) -> PlanningGoal:
        """The planning goal: objective text and constraints (memory in MB of 10^6 bytes)."""
        return PlanningGoal(
            objective=self.objective,
            accuracy_threshold=self.accuracy_threshold,
            max_memory_bytes=self.max_memory_mb * 1e6 if self.max_memory_mb is not None else None,
            max_latency_ms=self.max_latency_ms,
        )

    def runtime_names(self) -> tuple[str, ...]:
        """The runtimes of the search, checked against what is installed here."""
        from agentic_compression.runtimes import RUNTIMES, installed_runtimes

        installed = installed_runtimes()
        if self.runtimes is None:
            return installed
        names = tuple(dict.fromkeys(n.strip() for n in self.runtimes.split(",") if n.strip()))
        unknown = [n for n in names if n not in RUNTIMES]
        if unknown or not names:
            raise UserInputError(
                f"unknown runtime(s) {unknown or self.runtimes!r}; choose from: {', '.join(RUNTIMES)}"
            )
        missing = [n for n in names if n not in installed]
        if missing:
            from agentic_compression.core.runtime_config import parse_runtime
            from agentic_compression.errors import MethodUnavailableError
            from agentic_compression.runtimes import runtime_for

            try:
                runtime_for(parse_runtime(missing[0]))
                reason = f"runtime {missing[0]} is not installed here"
            except MethodUnavailableError as error:
                reason = str(error)
            raise UserInputError(f"{reason} (available here: {', '.join(installed)})")
        return names

    def schedule(self) -> FidelitySchedule:
        from agentic_compression.evaluation.screening import FidelitySchedule

        return FidelitySchedule(self.fidelity, rung=self.screen_rung, keep=self.screen_keep)

    def budgets(self) -> Budgets:
        return Budgets(
            max_trials=self.max_trials,
            carbon_kg=self.carbon_budget_kg,
            time_s=self.time_budget_min * 60 if self.time_budget_min is not None else None,
            patience=self.patience,
        )

    def measure_config(self) -> MeasureConfig:
        """What each candidate is measured on (accuracy tasks, perplexity, latency), checked."""
        from agentic_compression.evaluation.candidate import build_measure_config
        from agentic_compression.evaluation.latency import LatencyConfig
        from agentic_compression.evaluation.perplexity import PerplexityConfig

        if not self.tasks.strip():  # the objectives need accuracy
            raise UserInputError(
                "--tasks: a search needs at least one accuracy task (arc_easy ...)"
            )
        return build_measure_config(
            tasks=self.tasks, limit=self.limit,
            data_dir=Path(self.data_dir) if self.data_dir else None,
            calibration_file=Path(self.calibration_file) if self.calibration_file else None,
            latency=LatencyConfig(
                prompt_tokens=self.latency_prompt_tokens, new_tokens=self.latency_new_tokens,
                warmup=self.latency_warmup, repeats=self.latency_repeats,
            ),
            perplexity=PerplexityConfig(windows=self.ppl_windows, seq_len=self.ppl_seq_len),
            seed=self.seed,
        )  # fmt: skip


def build_evaluator(
    settings: SearchSettings,
    intensity: Any = None,
    device: str | None = None,
    measure: MeasureConfig | None = None,
) -> CandidateEvaluator:
    """The run's evaluator on this machine: measurement settings (checked before the model
    loads), energy meter (CO2 at ``intensity`` when given, else the country's average), the
    carbon-aware scheduler when asked for, and the base model on ``device`` (default: the run's).
    ``measure``: the settings' measurement config when the caller has already built it."""
    from agentic_compression.carbon.meter_factory import make_energy_meter
    from agentic_compression.models import load_model
    from agentic_compression.workflow.evaluator import CandidateEvaluator

    measure = measure or settings.measure_config()
    meter = make_energy_meter(settings.country, intensity=intensity, prefer=settings.meter)
    scheduler = None
    if settings.carbon_aware_max_delay_min is not None:
        from agentic_compression.carbon import default_chain
        from agentic_compression.carbon.scheduling import CarbonAwareScheduler

        if settings.zone is None:
            raise UserInputError(
                "--carbon-aware-max-delay-min needs --zone (whose forecast to follow)"
            )
        delay_s = settings.carbon_aware_max_delay_min * 60
        scheduler = CarbonAwareScheduler(default_chain(), settings.zone, delay_s)
    base = load_model(settings.model, device=device or settings.device)
    return CandidateEvaluator(base, measure, meter, scheduler)


def build_executor(settings: SearchSettings, evaluator: CandidateEvaluator) -> Executor:
    """The executor the run asked for; a Ray executor's workers rebuild ``evaluator`` remotely."""
    from agentic_compression.workflow.executors import LocalExecutor, RayExecutor, WorkerSpec

    if settings.executor == "local":
        return LocalExecutor()
    spec = WorkerSpec(
        settings=settings.model_dump(mode="json"),
        config_hash=evaluator.config_hash,
        intensity=evaluator.meter.intensity,
    )
    return RayExecutor(
        spec, address=settings.ray_address, workers=settings.workers,
        gpu_workers=settings.gpu_workers, cpus_per_worker=settings.cpus_per_worker,
        memory_gb_per_worker=settings.memory_gb_per_worker, max_tries=settings.max_tries,
    )  # fmt: skip


def new_run_id() -> str:
    """A sortable, unique run id: UTC time and 6 random hex digits (``20250101-120000-1a2b3c``)."""
    return f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


def default_checkpoint_url(run_dir: Path) -> str:
    """``sqlite:///<run_dir>/checkpoint.sqlite`` with an absolute path (resume from anywhere)."""
    return f"sqlite:///{(run_dir / 'checkpoint.sqlite').resolve()}"


def create_run(
    store: ResultsStore, run_id: str, settings: SearchSettings, evaluation_config_hash: str
) -> RunRecord:
    """Store a new run (status ``running``) and return it."""
    stamp = now()
    config = settings.model_dump(mode="json")
    config["evaluation_config_hash"] = evaluation_config_hash
    run = RunRecord(
        run_id=run_id, model=settings.model, config=config, status="running",
        pid=os.getpid(), host=socket.gethostname(), created_at=stamp, updated_at=stamp,
    )  # fmt: skip
    store.create_run(run)
    return run


def settings_of(run: RunRecord) -> SearchSettings:
    """The settings a run was started with."""
    config = {k: v for k, v in run.config.items() if k != "evaluation_config_hash"}
    return SearchSettings.model_validate(config)


def effective_status(run: RunRecord) -> str:
    """The stored status, except that a ``running`` run whose process is gone is ``interrupted``."""
    if run.status != "running" or run.pid is None or run.host != socket.gethostname():
        return run.status
    try:
        os.kill(run.pid, 0)
    except ProcessLookupError:
        return "interrupted"
    except PermissionError:
        pass  # alive, owned by someone else
    return run.status


@dataclass
class SearchOutcome:
    """What a finished (or re-exported) run hands back."""

    run: RunRecord
    state: SearchState
    trials: list[TrialRecord]
    outputs: RunOutputs


@dataclass(frozen=True)
class Callbacks:
    """Live feedback for the CLI; neither is stored."""

    on_progress: Callable[[str], None] = field(default=lambda _: None)
    on_trial: Callable[[TrialSummary], None] = field(default=lambda _: None)


#: What a run id may hold: it names a folder under the runs directory.
RUN_ID_PATTERN = re.compile(r"[A-Za-z0-9_.-]+")


def check_run_id(run_id: str) -> str:
    """``run_id`` if it is a safe folder name (``[A-Za-z0-9_.-]+``, not ``.`` or ``..``)."""
    if not RUN_ID_PATTERN.fullmatch(run_id) or run_id in (".", ".."):
        raise UserInputError(
            f"bad run id {run_id!r}: use letters, digits, '_', '.' and '-' only "
            "(see `agentic-compress runs`)"
        )
    return run_id


def run_folder(runs_dir: Path, run_id: str) -> Path:
    """The run's output folder: always the runs directory plus the validated id."""
    return (runs_dir / check_run_id(run_id)).resolve()


def find_run(store: ResultsStore, run_id: str) -> RunRecord:
    """The stored run ``run_id``, or a one-line error naming how to list runs."""
    run = store.get_run(check_run_id(run_id))
    if run is None:
        raise UserInputError(
            f"no run {run_id!r} in this store; list runs with `agentic-compress runs`"
        )
    return run


def _paths(
    run: RunRecord, runs_dir: Path, checkpoint_url: str | None
) -> tuple[SearchSettings, Path, str]:
    """Settings, output folder and checkpointer URL of ``run``.

    The results database is untrusted input: the folder comes from ``runs_dir`` and the run id,
    never from a path stored in it, and a stored SQLite checkpoint path is used only when it is
    the run folder's own default (otherwise the user passes ``--checkpoint-url``).
    """
    settings = settings_of(run)
    run_dir = run_folder(runs_dir, run.run_id)
    default = default_checkpoint_url(run_dir)
    stored = settings.checkpoint_url
    if checkpoint_url:
        return settings, run_dir, checkpoint_url
    if stored and not stored.startswith("sqlite:"):
        return settings, run_dir, stored
    if stored and stored != default:
        raise UserInputError(
            f"run {run.run_id} keeps its checkpoints outside {run_dir} ({stored}); paths stored "
            "in the results database are not followed: pass --checkpoint-url to resume from it"
        )
    return settings, run_dir, default


def export_run(
    run_id: str,
    store: ResultsStore,
    *,
    runs_dir: Path,
    checkpoint_url: str | None = None,
    plots: bool = True,
) -> SearchOutcome:
    """Write a run's outputs from the store and its last checkpoint (no model is loaded).

    >>> outcome = export_run("20250101-120000-1a2b3c", store, runs_dir=Path("runs"))  # doctest: +SKIP
    """
    run = find_run(store, run_id)
    settings, run_dir, url = _paths(run, runs_dir, checkpoint_url)
    with make_checkpointer(url) as saver:
        saved = saver.get_tuple(run_config(run_id, settings.max_trials))
    values: Any = saved.checkpoint["channel_values"] if saved is not None else {}
    state = SearchState(**{k: v for k, v in values.items() if k in SearchState.__annotations__})
    trials = store.list_trials(run_id)
    spent = cost_dict(state.get("spent", SearchCost()))
    outputs = write_run_outputs(
        run_dir, run, trials, spent, settings.goal(), settings.select, plots=plots
    )
    return SearchOutcome(run, state, trials, outputs)


def run_search(
    run: RunRecord,
    planner: Planner,
    evaluator: Evaluator,
    store: ResultsStore,
    *,
    runs_dir: Path,
    checkpoint_url: str | None = None,
    callbacks: Callbacks | None = None,
    plots: bool = True,
    executor: Executor | None = None,
) -> SearchOutcome:
    """Start or continue ``run`` until a budget stops it, then write its outputs.

    ``checkpoint_url`` overrides the stored one (needed when it had a password); ``executor``
    measures the candidates (default: one at a time in this process).
    """
    settings, run_dir, url = _paths(run, runs_dir, checkpoint_url)
    stored_hash = run.config.get("evaluation_config_hash")
    if stored_hash is not None and stored_hash != evaluator.config_hash:
        raise UserInputError(
            f"run {run.run_id} was measured under evaluation settings {stored_hash}; these are "
            f"{evaluator.config_hash} (a different model or measurement settings); start a new run"
        )
    feedback = callbacks or Callbacks()
    context = RunContext(
        run_dir=run_dir,
        goal=settings.goal(),
        budgets=settings.budgets(),
        proposals_per_call=settings.proposals_per_call,
        parallel=executor.slots if executor is not None else 1,
        schedule=settings.schedule(),
        on_progress=feedback.on_progress,
    )
    config = run_config(run.run_id, settings.max_trials)
    with make_checkpointer(url) as saver:
        workflow = build_workflow(planner, evaluator, store, saver, executor)
        snapshot = workflow.get_state(config)
        # No checkpoint yet: start; a checkpoint with steps left: continue (input None).
        start: SearchState | None = None if snapshot.values else initial_state(run.run_id)
        if snapshot.next or not snapshot.values:
            store.mark_running(run.run_id, os.getpid(), socket.gethostname())
            try:
                for chunk in workflow.stream(
                    start, config, context=context, durability="sync", stream_mode="updates"
                ):
                    update = chunk.get("evaluate") if isinstance(chunk, dict) else None
                    for trial in (update or {}).get("trials", []):
                        feedback.on_trial(trial)
            except KeyboardInterrupt:
                store.end_run(run.run_id, "interrupted", error="interrupted by the user")
                raise
            except Exception as error:
                store.end_run(run.run_id, "failed", error=f"{type(error).__name__}: {error}")
                raise
        else:  # the graph finished but the store was not told (killed right after the last step)
            store.end_run(run.run_id, "finished", stop_reason=snapshot.values.get("stop_reason"))
    return export_run(run.run_id, store, runs_dir=runs_dir, checkpoint_url=url, plots=plots)
