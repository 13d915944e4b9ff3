"""``agentic-compress run-rq1`` ... ``run-rq4``, ``run-all`` and ``report DIR``.

Each ``run-rq*`` measures its candidates for real (``--quick``: at screening fidelity, smaller
grids and searches) into one output folder, shared by the RQs run there: a candidate is measured
once per folder (``measurements.jsonl``) and a re-run in the folder reuses every finished
measurement. Each RQ writes ``rqN.json`` (data and provenance), ``rqN.md`` (tables) and
``plots/rqN.svg|png``; ``report DIR`` re-renders tables and plots from the JSON alone.
The experiments themselves: :mod:`agentic_compression.experiments`.

Example:
    >>> import typer
    >>> app = typer.Typer()
    >>> register(app)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

from agentic_compression.cli.options import (
    CountryOption,
    DataDirOption,
    MeterOption,
    check_writable,
    plain,
)
from agentic_compression.errors import UserInputError

if TYPE_CHECKING:
    from agentic_compression.experiments.measurements import Measured
    from agentic_compression.experiments.session import Experiment, ExperimentOptions
    from agentic_compression.workflow.evaluator import Evaluator

console = Console()

RQ_ORDER = ("rq1", "rq2", "rq3", "rq4")
HELP = {
    "rq1": "RQ1: the agentic search vs the static recipe set and the older dynamic rule.",
    "rq2": "RQ2: energy and CO2 per 1k tokens saved at each accuracy retention, per runtime.",
    "rq3": "RQ3: the four weighting schemes: frontiers, picks and their stability across seeds.",
    "rq4": "RQ4: edge, mobile, cloud and data-centre profiles: searched picks vs the older rule.",
}


def _seeds(text: str) -> tuple[int, ...]:
    try:
        seeds = tuple(dict.fromkeys(int(s) for s in text.split(",") if s.strip()))
    except ValueError:
        raise UserInputError(f"--seeds: comma-separated integers, got {text!r}") from None
    if not seeds:
        raise UserInputError("--seeds: give at least one seed (for example 0,1,2)")
    return seeds


def default_output() -> Path:
    return Path("experiments") / datetime.now(UTC).strftime("%Y%m%d-%H%M%S")


def run_experiments(
    which: Sequence[str],
    experiment: Experiment,
    output: Path,
    on_line: Callable[[str], None] = print,
) -> list[Path]:
    """Run the RQs named in ``which`` in order and write their files; the paths written."""
    from agentic_compression.experiments import rq1, rq2, rq3, rq4
    from agentic_compression.experiments.report import write_result

    runners = {"rq1": rq1.run, "rq2": rq2.run, "rq3": rq3.run, "rq4": rq4.run}
    written: list[Path] = []
    for name in which:
        started = time.perf_counter()
        before = experiment.log.measured_here
        experiment.log.start_tally()
        data = runners[name](experiment)
        data["seconds"] = round(time.perf_counter() - started, 1)
        data["measured_new"] = experiment.log.measured_here - before
        # What its candidates cost to measure, also when they were measured by an earlier run.
        data["measurement_cost"] = experiment.log.tally()
        files = write_result(data, output)
        written += files
        on_line(
            f"{name} done in {data['seconds']:.0f} s ({data['measured_new']} new measurements): "
            + ", ".join(str(f) for f in files if f.suffix in (".md", ".json"))
        )
    return written


def _result_line(prefix: str) -> Callable[[Measured, bool], None]:
    def show(measured: Measured, reused: bool) -> None:
        if reused:
            return  # one line per measurement: a reuse is not a new result
        if measured.ok:
            o = measured.objectives
            detail = (
                f"accuracy {o['accuracy']:.3f}, {o['latency_ms']:.1f} ms/token, "
                f"{o['memory_bytes'] / 1e6:.1f} MB ({measured.seconds:.0f} s)"
            )
        else:
            detail = f"[red]failed[/]: {plain(measured.error)}"
        console.print(f"{prefix}{plain(measured.label)}: {detail}", highlight=False)

    return show


def _build(
    options: ExperimentOptions, evaluator: Evaluator, output: Path, progress: Progress, task: TaskID
) -> Experiment:
    from agentic_compression.experiments.measurements import MeasurementLog
    from agentic_compression.experiments.session import Experiment, experiment_provenance
    from agentic_compression.planning.factory import make_planner
    from agentic_compression.planning.space import SearchSpace

    def on_progress(text: str) -> None:
        progress.update(task, description=plain(text))

    log = MeasurementLog(
        output / "measurements.jsonl",
        evaluator,
        "screen" if options.quick else "full",
        on_result=_result_line("measured "),
        on_progress=on_progress,
    )
    return Experiment(
        options=options,
        log=log,
        make_planner=lambda seed, space: make_planner(options.planner, seed=seed, space=space),
        space=SearchSpace.for_this_machine(options.runtimes),
        provenance=experiment_provenance(evaluator, options),
    )


def _command(which: tuple[str, ...]) -> Callable[..., None]:
    def command(
        model: Annotated[
            str, typer.Option(help="Alias, folder, .gguf file or hub id.")
        ] = "smollm2-135m",
        runtime: Annotated[
            str | None,
            typer.Option(help="Runtimes, comma separated [default: every runtime installed here]."),
        ] = None,
        quick: Annotated[
            bool,
            typer.Option(
                help="Screening fidelity (a quarter of the examples and windows, one latency "
                "repeat), smaller grids and 8-trial searches: minutes instead of hours."
            ),
        ] = False,
        seeds: Annotated[str, typer.Option(help="Search seeds, comma separated.")] = "0,1,2",
        trials: Annotated[
            int | None, typer.Option(help="Trials per search [default: 8 with --quick, else 16].")
        ] = None,
        accuracy_threshold: Annotated[
            float | None,
            typer.Option(help="Minimum accuracy (0-1) [default: --retention x the baseline's]."),
        ] = None,
        retention: Annotated[
            float, typer.Option(help="Share of the uncompressed accuracy the threshold keeps.")
        ] = 0.95,
        planner: Annotated[
            str,
            typer.Option(
                envvar="AGENTIC_COMPRESSION_PLANNER",
                help="Planner of the searches: offline (Optuna), llm, rules or random.",
            ),
        ] = "offline",
        requests_per_day: Annotated[int, typer.Option(help="RQ4's daily request volume.")] = 10_000,
        tokens_per_request: Annotated[
            int, typer.Option(help="RQ4's generated tokens per request.")
        ] = 256,
        tasks: Annotated[str, typer.Option(help="lm-eval tasks, comma separated.")] = "arc_easy",
        limit: Annotated[int | None, typer.Option(help="Examples per task (full fidelity).")] = 100,
        data_dir: DataDirOption = None,
        country: CountryOption = "USA",
        meter: MeterOption = "auto",
        output: Annotated[
            Path | None,
            typer.Option(
                help="Output folder [default: experiments/<UTC time>]; reusing one reuses its "
                "measurements."
            ),
        ] = None,
        ppl_windows: Annotated[
            int, typer.Option(help="Perplexity windows (full fidelity).", hidden=True)
        ] = 16,
        latency_new_tokens: Annotated[
            int, typer.Option(help="Generated tokens timed for latency.", hidden=True)
        ] = 32,
    ) -> None:
        from agentic_compression.cli.search_commands import _evaluator, _settings
        from agentic_compression.cli.terminal import run_log
        from agentic_compression.experiments.session import ExperimentOptions
        from agentic_compression.planning.factory import make_planner

        if trials is not None and trials < 1:
            raise UserInputError(f"--trials must be at least 1, got {trials}")
        if not 0 < retention <= 1:
            raise UserInputError(f"--retention must be in (0, 1], got {retention}")
        if requests_per_day < 1 or tokens_per_request < 1:
            raise UserInputError("--requests-per-day and --tokens-per-request must be at least 1")
        folder = output or default_output()
        check_writable(folder, "--output", folder=True)
        settings = _settings(
            model=model, planner=planner, accuracy_threshold=accuracy_threshold, tasks=tasks,
            limit=limit, runtimes=runtime, data_dir=str(data_dir) if data_dir else None,
            country=country, meter=meter, ppl_windows=ppl_windows,
            latency_new_tokens=latency_new_tokens,
        )  # fmt: skip
        options = ExperimentOptions(
            model=model, runtimes=settings.runtime_names(), seeds=_seeds(seeds), quick=quick,
            trials=trials, accuracy_threshold=accuracy_threshold, retention=retention,
            planner=planner, requests_per_day=requests_per_day,
            tokens_per_request=tokens_per_request,
        )  # fmt: skip
        make_planner(planner, seed=0)  # an unconfigured planner fails before the model loads
        columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
        log_path = folder / "run.log"
        console.print(f"experiments {', '.join(which)} -> {plain(folder)}", highlight=False)
        console.print(f"[dim]third-party output: {plain(log_path)}[/]", highlight=False)
        with run_log(log_path), Progress(*columns, console=console, transient=True) as progress:
            evaluator = _evaluator(settings, progress)
            task = progress.add_task("starting", total=None)
            experiment = _build(options, evaluator, folder, progress, task)
            run_experiments(which, experiment, folder, lambda t: console.print(t, highlight=False))
        for name in which:
            table = folder / f"{name}.md"
            if table.exists():
                console.print(table.read_text(encoding="utf-8"), highlight=False, markup=False)

    return command


def report(
    folder: Annotated[Path, typer.Argument(help="An experiment output folder (rq*.json).")],
) -> None:
    """Re-render every RQ table and plot of FOLDER from its JSON files alone."""
    from agentic_compression.experiments.report import regenerate

    if not folder.is_dir():
        raise UserInputError(f"{folder} is not a folder; pass the --output folder of run-rq*")
    for path in regenerate(folder):
        console.print(f"wrote {plain(path)}", highlight=False)


def register(app: typer.Typer) -> None:
    for name in RQ_ORDER:
        app.command(f"run-{name}", help=HELP[name])(_command((name,)))
    app.command("run-all", help="RQ1-RQ4 in one folder, sharing measurements.")(_command(RQ_ORDER))
    app.command("report")(report)
