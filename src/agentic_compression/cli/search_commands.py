"""``agentic-compress run``, ``resume RUN_ID`` and ``runs``: the search, its recovery, its listing.

``run`` plans, compresses and measures recipes until the first budget is reached (carbon, trials,
time, convergence), checkpointing every step; ``resume`` continues a killed or interrupted run where
it stopped; ``runs`` lists the runs of a store with their state. Outputs go to
``<runs-dir>/<run_id>/``: ``results.json``, ``trials.csv``, ``pareto.html``, ``pareto.svg``,
``knowledge/`` (one file per failed trial) and, by default, ``checkpoint.sqlite``; the results
store defaults to ``<runs-dir>/results.sqlite``.

Hidden options (``--ppl-windows``, ``--latency-repeats``, ``--run-id``, ...) shrink the per-trial
work for quick tests; docs/DEVELOPING.md lists them.

Example:
    >>> import typer
    >>> app = typer.Typer()
    >>> register(app)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from agentic_compression.cli.options import (
    CountryOption,
    DataDirOption,
    MeterOption,
    ZoneOption,
    check_writable,
    plain,
)
from agentic_compression.errors import UserInputError

if TYPE_CHECKING:
    from agentic_compression.planning.base import Planner
    from agentic_compression.results.ledger import SearchLedger
    from agentic_compression.results.records import RunRecord, TrialRecord
    from agentic_compression.results.store import ResultsStore
    from agentic_compression.workflow.evaluator import CandidateEvaluator
    from agentic_compression.workflow.runner import SearchOutcome, SearchSettings

console = Console()

RunsDir = Annotated[Path, typer.Option(help="Folder of run outputs (and the default stores).")]
StoreUrl = Annotated[
    str | None,
    typer.Option(
        help="Results store: sqlite:///file or postgresql://... [default: <runs-dir>/results.sqlite]"
    ),
]
CheckpointUrl = Annotated[
    str | None,
    typer.Option(
        help="Checkpointer: sqlite:///file or postgresql://... [default: <run dir>/checkpoint.sqlite]"
    ),
]


def _hidden(help_text: str) -> typer.models.OptionInfo:
    return typer.Option(help=help_text, hidden=True)


def default_store_url(runs_dir: Path) -> str:
    return f"sqlite:///{(runs_dir / 'results.sqlite').resolve()}"


def _settings(**values: object) -> SearchSettings:
    from pydantic import ValidationError

    from agentic_compression.workflow.runner import SearchSettings

    try:
        return SearchSettings.model_validate(values)
    except ValidationError as error:
        item = error.errors()[0]
        where = ".".join(str(p) for p in item["loc"]).replace("_", "-")
        raise UserInputError(f"--{where}: {item['msg']} (got {item.get('input')!r})") from None


def _planner(settings: SearchSettings) -> Planner:
    from agentic_compression.planning.factory import make_planner
    from agentic_compression.planning.space import SearchSpace

    space = SearchSpace.for_this_machine(settings.runtime_names())
    return make_planner(settings.planner, seed=settings.seed, space=space)


def _run_device(device: str, executor: str, gpu_workers: int) -> str:
    """The device candidates are measured on. Local runs check this machine; on Ray the workers
    hold the GPUs (the driver need not have one): auto means cuda when there are GPU workers."""
    from agentic_compression.cli.evaluate_command import resolve_device

    if executor != "ray":
        return resolve_device(device)
    if device == "auto":
        return "cuda" if gpu_workers > 0 else "cpu"
    if device not in ("cpu", "cuda"):
        raise UserInputError(f"unknown device {device!r}; use cpu, cuda or auto")
    return device


def _evaluator(settings: SearchSettings, progress: Progress) -> CandidateEvaluator:
    from agentic_compression.cli.carbon_commands import intensity_for_zone
    from agentic_compression.workflow.runner import build_evaluator

    measure = settings.measure_config()  # checks tasks, their data and files: before any work
    intensity = intensity_for_zone(settings.zone).reading if settings.zone else None
    task = progress.add_task(f"loading {settings.model}", total=None)
    # On Ray the driver's copy only names the model and its settings: the workers measure.
    device = "cpu" if settings.executor == "ray" else None
    evaluator = build_evaluator(settings, intensity=intensity, device=device, measure=measure)
    progress.remove_task(task)
    for note in evaluator.base.notes:
        console.print(f"[dim]note: {plain(note)}[/]")
    return evaluator


@dataclass
class _Tally:
    """What the live line shows besides the phase: trials done of the budget, CO2 of the carbon
    budget, and an ETA from the mean time of the trials so far."""

    max_trials: int
    budget_kg: float | None
    done: int = 0
    co2_kg: float = 0.0
    seconds: float = 0.0

    @classmethod
    def of(cls, trials: Sequence[TrialRecord], settings: SearchSettings) -> _Tally:
        tally = cls(settings.max_trials, settings.carbon_budget_kg)
        for trial in trials:
            tally.add(sum(r.co2_kg for r in trial.result.energy), trial.seconds)
        return tally

    def add(self, co2_kg: float, seconds: float) -> None:
        self.done, self.co2_kg, self.seconds = (
            self.done + 1, self.co2_kg + co2_kg, self.seconds + seconds
        )  # fmt: skip

    def summary(self) -> str:
        budget = f" of {self.budget_kg * 1000:.1f}" if self.budget_kg else ""
        text = f"{self.done}/{self.max_trials} trials done, {self.co2_kg * 1000:.3f}{budget} g CO2"
        if self.done:
            left = self.seconds / self.done * max(0, self.max_trials - self.done)
            text += f", ETA ~{left / 60:.0f} min" if left >= 60 else f", ETA ~{left:.0f} s"
        return text


def _drive(
    run: RunRecord,
    store: ResultsStore,
    checkpoint_url: str | None,
    settings: SearchSettings,
    runs_dir: Path,
    planner: Planner | None = None,
    evaluator: CandidateEvaluator | None = None,
) -> SearchOutcome:
    from agentic_compression.cli.terminal import run_log
    from agentic_compression.workflow.runner import (
        Callbacks,
        build_executor,
        run_folder,
        run_search,
    )
    from agentic_compression.workflow.state import TrialSummary

    planner = planner or _planner(settings)
    log_path = run_folder(runs_dir, run.run_id) / "run.log"
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with run_log(log_path), Progress(*columns, console=console, transient=True) as progress:
        evaluator = evaluator or _evaluator(settings, progress)
        live = progress.add_task(f"run {run.run_id}", total=None)
        tally = _Tally.of(store.list_trials(run.run_id), settings)

        def on_progress(text: str) -> None:
            progress.update(live, description=f"{plain(text)}  [dim]{tally.summary()}[/]")

        screened: set[int] = set()

        def on_trial(trial: TrialSummary) -> None:
            tally.add(trial["co2_kg"], trial["seconds"])
            label = plain(trial["label"])
            if trial["status"] == "ok" and trial["objectives"]:
                objectives = trial["objectives"]
                detail = (
                    f"accuracy {objectives['accuracy']:.3f}, "
                    f"{objectives['latency_ms']:.1f} ms/token, "
                    f"{objectives['memory_bytes'] / 1e6:.1f} MB"
                    + ("" if trial["feasible"] else " [yellow](infeasible)[/]")
                )
            else:
                detail = f"[red]failed[/]: {plain(trial['error'])}"
            stage = ""
            if trial.get("fidelity") == "screen":
                stage = " (screening)"
                screened.add(trial["number"])
            elif trial["number"] in screened:
                stage = " (promoted, full fidelity)"
            console.print(f"trial {trial['number']} {label}{stage}: {detail}", highlight=False)

        console.print(f"[dim]third-party output: {plain(log_path)}[/]", highlight=False)
        callbacks = Callbacks(on_progress=on_progress, on_trial=on_trial)
        executor = build_executor(settings, evaluator)
        if settings.executor != "local":
            console.print(f"candidates measured on {plain(executor.describe())}", highlight=False)
        try:
            return run_search(
                run, planner, evaluator, store, runs_dir=runs_dir, checkpoint_url=checkpoint_url,
                callbacks=callbacks, executor=executor,
            )  # fmt: skip
        finally:
            executor.close()


def run(
    model: Annotated[
        str, typer.Option(help="Alias, folder, .gguf file or hub id.")
    ] = "smollm2-135m",
    max_trials: Annotated[int, typer.Option(help="Trial budget.")] = 12,
    carbon_budget_kg: Annotated[
        float | None, typer.Option(help="CO2 the search itself may emit (kg); measured per trial.")
    ] = 0.1,
    time_budget_min: Annotated[
        float | None, typer.Option(help="Minutes of planning and evaluation.")
    ] = None,
    patience: Annotated[
        int | None, typer.Option(help="Stop after this many trials without hypervolume gain.")
    ] = 6,
    planner: Annotated[
        str,
        typer.Option(
            envvar="AGENTIC_COMPRESSION_PLANNER", help="offline (Optuna), llm, rules or random."
        ),
    ] = "offline",
    objective: Annotated[
        str, typer.Option(help="What the search is for, in words (planners read it).")
    ] = "balanced accuracy and carbon",
    accuracy_threshold: Annotated[
        float | None, typer.Option(help="Minimum accuracy a candidate must reach (0-1).")
    ] = None,
    max_memory_mb: Annotated[
        float | None, typer.Option(help="Largest serialized size (MB).")
    ] = None,
    max_latency_ms: Annotated[
        float | None, typer.Option(help="Slowest decode latency (ms/token).")
    ] = None,
    tasks: Annotated[str, typer.Option(help="lm-eval tasks, comma separated.")] = "arc_easy",
    limit: Annotated[int | None, typer.Option(help="Examples per task.")] = 100,
    runtime: Annotated[
        str | None,
        typer.Option(
            help="Runtimes candidates are served and measured in: torch, llamacpp (comma "
            "separated) [default: every runtime installed here]."
        ),
    ] = None,
    data_dir: DataDirOption = None,
    calibration_file: Annotated[
        Path | None,
        typer.Option(help="Calibration text (UTF-8) for pruning and importance matrices."),
    ] = None,
    country: CountryOption = "USA",
    zone: ZoneOption = None,
    meter: MeterOption = "auto",
    carbon_aware_max_delay_min: Annotated[
        float | None,
        typer.Option(help="Wait up to this long before each trial for a cleaner forecast window."),
    ] = None,
    seed: int = 0,
    runs_dir: RunsDir = Path("runs"),
    checkpoint_url: CheckpointUrl = None,
    store_url: StoreUrl = None,
    select: Annotated[
        str,
        typer.Option(help="Preset that picks the recipe: accuracy, carbon, balanced, efficiency."),
    ] = "balanced",
    fidelity: Annotated[
        str,
        typer.Option(
            help="halving: screen each candidate cheaply (a quarter of the examples, one latency "
            "repeat) and measure the best half of every --screen-rung in full; full: every "
            "candidate in full (default: on the held-out grid of benchmarks/results/"
            "multifidelity.md halving cost more to reach the same front). Only full measurements "
            "reach the Pareto front."
        ),
    ] = "full",
    executor: Annotated[
        str,
        typer.Option(
            help="Where candidates are measured: local (this process, one at a time) or ray "
            "(in parallel on a Ray cluster; docs/SCALING.md)."
        ),
    ] = "local",
    ray_address: Annotated[
        str | None,
        typer.Option(
            help="Ray cluster to join (host:6379 or ray://host:10001) [default: a local one]."
        ),
    ] = None,
    workers: Annotated[
        int, typer.Option(help="Ray CPU workers (candidates measured at once).")
    ] = 2,
    gpu_workers: Annotated[
        int, typer.Option(help="Ray GPU workers (one GPU each) for GPU runtimes and --device cuda.")
    ] = 0,
    cpus_per_worker: Annotated[float, typer.Option(help="CPUs each Ray worker reserves.")] = 1.0,
    worker_memory_gb: Annotated[
        float | None, typer.Option(help="Memory each Ray worker reserves (GB).")
    ] = None,
    max_tries: Annotated[
        int, typer.Option(help="Tries of a candidate whose Ray worker dies, then it is failed.")
    ] = 3,
    screen_rung: Annotated[int, _hidden("Screened candidates judged together.")] = 4,
    device: Annotated[str, _hidden("cpu, cuda or auto.")] = "auto",
    run_id: Annotated[str | None, _hidden("Use this run id instead of a new one.")] = None,
    proposals_per_call: Annotated[int, _hidden("Recipes asked of the planner at a time.")] = 2,
    ppl_windows: Annotated[int, _hidden("Perplexity windows per trial.")] = 16,
    ppl_seq_len: Annotated[int, _hidden("Tokens per perplexity window.")] = 512,
    latency_prompt_tokens: Annotated[int, _hidden("Prompt tokens for latency.")] = 128,
    latency_new_tokens: Annotated[int, _hidden("Generated tokens for latency.")] = 32,
    latency_repeats: Annotated[int, _hidden("Timed latency repeats.")] = 3,
    latency_warmup: Annotated[int, _hidden("Untimed warm-up runs.")] = 1,
) -> None:
    """Search compression recipes for the model under carbon, trial, time and convergence budgets."""
    from agentic_compression.results.store import make_results_store, redact_url
    from agentic_compression.workflow.checkpointer import make_checkpointer
    from agentic_compression.workflow.runner import (
        check_run_id,
        create_run,
        default_checkpoint_url,
        new_run_id,
        run_folder,
    )

    run_id = check_run_id(run_id) if run_id is not None else new_run_id()
    check_writable(runs_dir, "--runs-dir", folder=True)
    run_dir = run_folder(runs_dir, run_id)
    checkpoint = checkpoint_url or default_checkpoint_url(run_dir)
    settings = _settings(
        model=model, max_trials=max_trials, carbon_budget_kg=carbon_budget_kg,
        time_budget_min=time_budget_min, patience=patience, planner=planner, objective=objective,
        accuracy_threshold=accuracy_threshold, max_memory_mb=max_memory_mb,
        max_latency_ms=max_latency_ms, tasks=tasks, limit=limit, runtimes=runtime,
        data_dir=str(data_dir) if data_dir else None,
        calibration_file=str(calibration_file) if calibration_file else None,
        country=country, zone=zone, meter=meter,
        carbon_aware_max_delay_min=carbon_aware_max_delay_min, seed=seed, select=select,
        device=_run_device(device, executor, gpu_workers), proposals_per_call=proposals_per_call,
        fidelity=fidelity, screen_rung=screen_rung, ppl_windows=ppl_windows, ppl_seq_len=ppl_seq_len,
        latency_prompt_tokens=latency_prompt_tokens, latency_new_tokens=latency_new_tokens,
        latency_repeats=latency_repeats, latency_warmup=latency_warmup,
        checkpoint_url=redact_url(checkpoint), run_dir=str(run_dir), executor=executor,
        ray_address=ray_address, workers=workers, gpu_workers=gpu_workers,
        cpus_per_worker=cpus_per_worker, memory_gb_per_worker=worker_memory_gb,
        max_tries=max_tries,
    )  # fmt: skip
    search_planner = _planner(settings)  # an unconfigured planner fails before the model loads
    if not checkpoint.startswith("sqlite:"):  # a server that cannot be reached: before any work
        with make_checkpointer(checkpoint):
            pass
    # The model loads before the store opens: a bad model leaves no results store behind.
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), console=console,
                  transient=True) as progress:  # fmt: skip
        evaluator = _evaluator(settings, progress)
    with make_results_store(store_url or default_store_url(runs_dir)) as store:
        if store.get_run(run_id) is not None:
            raise UserInputError(f"run {run_id!r} already exists; resume it or pick another id")
        record = create_run(store, run_id, settings, evaluator.config_hash)
        console.print(f"run [bold]{run_id}[/] ({plain(run_dir)})", highlight=False)
        outcome = _drive(record, store, checkpoint, settings, runs_dir, search_planner, evaluator)
    print_summary(outcome, settings)


def resume(
    run_id: Annotated[
        str, typer.Argument(help="The run to continue (see `agentic-compress runs`).")
    ],
    runs_dir: RunsDir = Path("runs"),
    store_url: StoreUrl = None,
    checkpoint_url: Annotated[
        str | None, typer.Option(help="Checkpointer URL, if it differs from the stored one.")
    ] = None,
    force: Annotated[
        bool,
        typer.Option(help="Resume a run marked running on another machine (its process is gone)."),
    ] = False,
    executor: Annotated[
        str | None, typer.Option(help="local or ray [default: the run's own].")
    ] = None,
    ray_address: Annotated[
        str | None, typer.Option(help="Ray cluster to continue on [default: the run's own].")
    ] = None,
    workers: Annotated[
        int | None, typer.Option(help="Ray CPU workers [default: the run's own].")
    ] = None,
) -> None:
    """Continue a killed or interrupted run from its last checkpoint (a finished one re-exports).

    The executor may change (another cluster, more workers, or local): it decides where
    candidates are measured, not how, so the trials already measured stay comparable."""
    from agentic_compression.results.store import make_results_store
    from agentic_compression.workflow.runner import (
        check_run_id,
        export_run,
        find_run,
        run_folder,
        settings_of,
    )

    check_run_id(run_id)
    check_writable(runs_dir, "--runs-dir", folder=True)
    with make_results_store(store_url or default_store_url(runs_dir)) as store:
        record = find_run(store, run_id)
        changes = {"executor": executor, "ray_address": ray_address, "workers": workers}
        settings = settings_of(record)
        if any(value is not None for value in changes.values()):
            given = {k: v for k, v in changes.items() if v is not None}
            settings = _settings(**{**settings.model_dump(), **given})
        _refuse_if_alive(record, force)
        if record.status == "finished":
            console.print(f"run {run_id} has finished; writing its outputs again", highlight=False)
            outcome = export_run(run_id, store, runs_dir=runs_dir, checkpoint_url=checkpoint_url)
        else:
            folder = run_folder(runs_dir, run_id)
            console.print(f"resuming run [bold]{run_id}[/] ({plain(folder)})", highlight=False)
            outcome = _drive(record, store, checkpoint_url, settings, runs_dir)
    print_summary(outcome, settings)


def _refuse_if_alive(record: RunRecord, force: bool) -> None:
    """Two processes must never drive one run (two writers, two budgets)."""
    import socket

    from agentic_compression.workflow.runner import effective_status

    if effective_status(record) != "running":
        return
    if record.host == socket.gethostname():
        raise UserInputError(
            f"run {record.run_id} is still running (pid {record.pid}); stop it before resuming"
        )
    if not force:
        raise UserInputError(
            f"run {record.run_id} is marked running on {record.host} (pid {record.pid}); if that "
            "process is gone, resume with --force"
        )


def runs(runs_dir: RunsDir = Path("runs"), store_url: StoreUrl = None) -> None:
    """List the runs of a results store: state, trials, stop reason, what each is doing now."""
    from rich.table import Table

    from agentic_compression.results.store import make_results_store
    from agentic_compression.workflow.runner import effective_status

    with make_results_store(store_url or default_store_url(runs_dir)) as store:
        records = store.list_runs()
        table = Table(title=f"Runs ({len(records)})")
        for header in ("run id", "model", "status", "trials", "stop reason / progress", "updated"):
            table.add_column(header, overflow="fold")
        for record in records:
            status = effective_status(record)
            shown = {
                "interrupted": "[yellow]interrupted[/] (resume it)",
                "failed": "[red]failed[/]",
            }
            detail = record.stop_reason or record.progress or record.error or ""
            table.add_row(plain(record.run_id), plain(record.model), shown.get(status, status),
                          str(store.count_trials(record.run_id)), plain(detail),
                          record.updated_at)  # fmt: skip
    console.print(table)


def print_summary(outcome: SearchOutcome, settings: SearchSettings) -> None:
    """The rich summary: why the search stopped, what it spent, the front, the chosen recipe."""

    from rich.table import Table

    from agentic_compression.results.export import frontier_of
    from agentic_compression.results.ledger import build_ledger
    from agentic_compression.workflow.state import STOP_REASON_TEXT, cost_dict, total_co2_kg

    trials, state = outcome.trials, outcome.state
    frontier = frontier_of(trials, settings.goal())
    failed = sum(1 for t in trials if t.status == "failed")
    reason = outcome.run.stop_reason or state.get("stop_reason")
    spent = state.get("spent", {})
    budget = f" of {settings.carbon_budget_kg} kg" if settings.carbon_budget_kg else ""
    console.print(
        f"\nstopped: {STOP_REASON_TEXT.get(reason or '', reason or 'not finished')}; "
        f"{len(trials)} trials ({failed} failed); search CO2 {total_co2_kg(spent):.6f} kg{budget}; "
        f"{spent.get('seconds', 0.0) / 60:.1f} min",
        highlight=False,
    )
    by_id = {t.candidate_id: t for t in trials}
    table = Table(title="Pareto front (feasible, 5 objectives; measured on this machine)")
    for header in (
        "trial",
        "recipe",
        "accuracy",
        "decode ms/tok",
        "size MB",
        "CO2 g/1k tok",
        "picked by",
    ):
        table.add_column(header)
    for candidate_id in frontier.front_ids:
        trial = by_id[candidate_id]
        values = trial.objectives or {}
        picks = [name for name, chosen in frontier.selections.items() if chosen == candidate_id]
        if candidate_id == frontier.knee_id:
            picks.append("knee")
        table.add_row(str(trial.number), plain(trial.recipe.label), f"{values['accuracy']:.3f}",
                      f"{values['latency_ms']:.1f}", f"{values['memory_bytes'] / 1e6:.1f}",
                      f"{values['co2_kg_per_1k_tokens'] * 1000:.4f}", ", ".join(picks))  # fmt: skip
    console.print(table)
    if frontier.hypervolume is not None:
        console.print(f"hypervolume {frontier.hypervolume:.6g} (reference point in results.json)")
    chosen = frontier.selections.get(settings.select)
    full = [t for t in trials if t.provenance.fidelity == "full" and t.status == "ok"]
    if chosen is None and trials and not full:
        console.print(
            "[yellow]no candidate was measured at full fidelity before the search stopped (only "
            "screenings, which never enter the front); raise the budget or use --fidelity full[/]"
        )
    elif chosen is None:
        console.print(f"[yellow]no feasible recipe for preset {settings.select!r}[/]")
    else:
        trial = by_id[chosen]
        console.print(
            f"[bold]chosen ({settings.select}):[/] trial {trial.number} "
            f"{plain(trial.recipe.label)}\n{plain(trial.recipe.to_json())}",
            highlight=False,
        )
    print_ledger(build_ledger(trials, cost_dict(spent), chosen))
    paths = outcome.outputs
    for path in (paths.results_json, paths.trials_csv, paths.pareto_html, paths.pareto_svg):
        if path is not None:
            console.print(f"wrote {path}", highlight=False, markup=False)


def print_ledger(ledger: SearchLedger) -> None:
    """The search's own CO2 by kind of work, its labels, and the break-even."""
    grams = {
        "compression": ledger.compression_co2_kg,
        "evaluation": ledger.evaluation_co2_kg,
        "training": ledger.training_co2_kg,
        "planning (measured here)": ledger.planning_co2_kg,
        "planner LLM (estimate from tokens)": ledger.planner_reported_co2_kg,
        "interrupted trials (measured, redone)": ledger.interrupted_co2_kg,
    }
    parts = ", ".join(f"{name} {kg * 1000:.3f} g" for name, kg in grams.items() if kg)
    console.print(
        f"search ledger ({'/'.join(ledger.labels) or 'nothing measured'}): "
        f"{ledger.total_co2_kg * 1000:.3f} g CO2, {ledger.total_energy_kwh * 1000:.2f} Wh ({parts})",
        highlight=False,
    )
    console.print(f"break-even: {ledger.break_even_note}", highlight=False, markup=False)


def register(app: typer.Typer) -> None:
    """Add ``run``, ``resume`` and ``runs`` to ``app``."""
    app.command("run")(run)
    app.command("resume")(resume)
    app.command("runs")(runs)
