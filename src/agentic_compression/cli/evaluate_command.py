"""The ``evaluate`` command: load once, evaluate each recipe, print a table, write JSON."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from agentic_compression.cli.options import check_writable, plain
from agentic_compression.compression.recipe import Recipe
from agentic_compression.core.metrics import CandidateResult
from agentic_compression.errors import UserInputError
from agentic_compression.paths import atomic_output


@dataclass(frozen=True)
class EvaluateRequest:
    model: str
    recipes: tuple[str, ...]
    baseline: bool
    tasks: str | None
    limit: int | None
    allow_code_execution: bool
    data_dir: Path | None
    country: str
    zone: str | None
    meter: str
    device: str
    calibration_file: Path | None
    ppl_windows: int
    latency_repeats: int
    seed: int
    output: Path


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device not in ("cpu", "cuda"):
        raise UserInputError(f"unknown device {device!r}; use cpu, cuda or auto")
    if device == "cuda" and not torch.cuda.is_available():
        raise UserInputError("--device cuda but no CUDA GPU is visible; use --device cpu")
    return device


def run_evaluate(request: EvaluateRequest, console: Console) -> bool:
    """Returns True when every candidate succeeded."""
    from agentic_compression.cli.carbon_commands import build_meter
    from agentic_compression.compression import preset, resolve_recipe
    from agentic_compression.core.provenance import machine_summary
    from agentic_compression.evaluation.candidate import build_measure_config, evaluate_candidate
    from agentic_compression.evaluation.latency import LatencyConfig
    from agentic_compression.evaluation.perplexity import PerplexityConfig
    from agentic_compression.models import load_model

    # Validate everything the user typed before any expensive work.
    recipes = [resolve_recipe(r) for r in request.recipes]
    if request.baseline:
        recipes.insert(0, preset("fp32"))
    device = resolve_device(request.device)
    check_writable(request.output, "--output")
    meter = build_meter(request.country, request.zone, request.meter)
    config = build_measure_config(
        tasks=request.tasks, limit=request.limit, data_dir=request.data_dir,
        allow_code_execution=request.allow_code_execution,
        calibration_file=request.calibration_file,
        latency=LatencyConfig(repeats=request.latency_repeats),
        perplexity=PerplexityConfig(windows=request.ppl_windows), seed=request.seed,
    )  # fmt: skip
    from agentic_compression.cli.terminal import run_log

    results: list[CandidateResult] = []
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    log_path = request.output.with_suffix(".log")
    console.print(f"[dim]third-party output: {plain(log_path)}[/]", highlight=False)
    with run_log(log_path), Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task(f"loading {request.model}", total=None)
        base = load_model(request.model, device=device)
        for index, recipe in enumerate(recipes, start=1):
            prefix = f"[{index}/{len(recipes)}] {recipe.label}"

            def show(text: str, prefix: str = prefix) -> None:
                progress.update(task, description=plain(f"{prefix}: {text}"))

            result = evaluate_candidate(base, recipe, config, meter, show)
            results.append(result)
            status = "ok" if result.status == "ok" else f"[red]failed[/]: {plain(result.error)}"
            console.print(f"{plain(prefix)}: {status}", highlight=False)
            _write(request.output, base.spec, base.source, base.notes, results, machine_summary())
    meter.close()
    measured = list(zip(recipes, results, strict=False))
    console.print(results_table(measured, baseline=results[0] if request.baseline else None))
    for note in base.notes:
        console.print(f"[dim]note: {plain(note)}[/]")
    energy_labels = {r.label for result in results for r in result.energy}
    if "estimated" in energy_labels:
        console.print(
            f"[dim]energy: estimated by {meter.name} (no hardware energy counter here)[/]"
        )
    console.print(f"results: {request.output}", markup=False)
    return all(result.status == "ok" for result in results)


def _write(
    path: Path,
    model: str,
    source: str,
    notes: tuple[str, ...],
    results: list[CandidateResult],
    machine: dict[str, object],
) -> None:
    """Rewritten (atomically) after each candidate, so a crash keeps everything measured so far."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "model": model,
        "source": source,
        "notes": list(notes),
        "machine": machine,
        "results": [r.model_dump(mode="json") for r in results],
    }
    with atomic_output(path) as staging:
        staging.write_text(json.dumps(payload, indent=2))


def _ratio(value: float, reference: float | None) -> str:
    return f" ({value / reference:.2f}x)" if reference else ""


def _runtime_label(recipe: Recipe, result: CandidateResult) -> str:
    deployment = result.metrics.deployment if result.metrics else None
    if deployment is not None:
        return deployment.runtime if deployment.runtime == "torch" else deployment.format
    return recipe.runtime.name


def results_table(
    measured: list[tuple[Recipe, CandidateResult]], baseline: CandidateResult | None
) -> Table:
    """One row per candidate; ratios to the baseline where one was measured."""
    results = [result for _, result in measured]
    base = baseline.metrics if baseline is not None and baseline.metrics is not None else None
    tasks = sorted({(m.task, m.metric) for r in results if r.metrics for m in r.metrics.accuracy})
    table = Table(title="Candidates (measured on this machine)")
    headers = ["recipe", "runtime", "status", "size MB", "sparsity", "ppl"]
    headers += ["decode ms/tok (p50/p90)"]
    headers += ["prefill ms", "peak RSS MB", "energy Wh", "CO2 g"]
    headers += [f"{task} {metric}" for task, metric in tasks]
    for header in headers:
        table.add_column(header, overflow="fold")
    for recipe, result in measured:
        name = plain(recipe.label)
        metrics = result.metrics
        if result.status != "ok" or metrics is None:
            table.add_row(
                name,
                _runtime_label(recipe, result),
                f"[red]failed ({result.failed_phase})[/]",
                *[""] * (len(headers) - 3),
            )
            continue
        size_mb = metrics.size.serialized_bytes / 1e6
        row = [
            name,
            _runtime_label(recipe, result),
            "ok",
            f"{size_mb:.1f}" + _ratio(size_mb, base.size.serialized_bytes / 1e6 if base else None),
        ]
        row.append(f"{metrics.size.linear_weight_sparsity:.3f}")
        if metrics.perplexity:
            ref = base.perplexity.value if base and base.perplexity else None
            row.append(f"{metrics.perplexity.value:.2f}" + _ratio(metrics.perplexity.value, ref))
        else:
            row.append("-")
        if metrics.latency:
            lat = metrics.latency
            ref = base.latency.decode_ms_median if base and base.latency else None
            row.append(
                f"{lat.decode_ms_median:.1f}/{lat.decode_ms_p90:.1f}"
                + _ratio(lat.decode_ms_median, ref)
            )
            row.append(f"{lat.prefill_ms_median:.0f}")
        else:
            row += ["-", "-"]
        row.append(f"{metrics.memory.peak_bytes / 1e6:.0f}" if metrics.memory else "-")
        row.append(f"{sum(e.energy_kwh for e in result.energy) * 1000:.3f}")
        row.append(f"{sum(e.co2_kg for e in result.energy) * 1000:.3f}")
        by_task = {(m.task, m.metric): m for m in metrics.accuracy}
        for key in tasks:
            metric = by_task.get(key)
            stderr = f"±{metric.stderr:.3f}" if metric and metric.stderr is not None else ""
            row.append(f"{metric.value:.3f}{stderr} (n={metric.n_examples})" if metric else "-")
        table.add_row(*row)
    return table
